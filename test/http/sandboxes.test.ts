// The sandbox routes (SPEC §3, §5) over a fake driver: launching a managed root, a managed
// parent's spawn, the driver status, worker views with `managed` and `sandbox`, and bad programs.
import { afterEach, describe, expect, it } from 'vitest'
import type { Manifest } from '../../src/schemas/index.js'
import { createFakeSandbox, type FakeSandbox } from '../helpers/fake-sandbox.js'
import { createTestApp, registerRoot, type TestApp, storeOf } from '../helpers/harness.js'
import { bearer, call, dbSnapshot, expectProblem } from './support.js'

const apps: TestApp[] = []
afterEach(() => {
  for (const t of apps.splice(0)) t.close()
})

async function fresh(fake: FakeSandbox = createFakeSandbox()) {
  const t = await createTestApp({ max_replicas: 20 }, fake)
  apps.push(t)
  return { ...t, fake }
}

/** No driver at all, as with WARDEN_SANDBOX=none. */
async function withoutDriver() {
  const t = await createTestApp({ max_replicas: 20 })
  apps.push(t)
  return t
}

const PROGRAM = { command: ['node', 'worker.mjs'], env: { MODE: 'demo' } }

describe('POST /v1/sandboxes', () => {
  it('answers 201 {worker, manifest} once the sandbox runs', async () => {
    const t = await fresh()
    const res = await t.app.inject(call('POST', '/v1/sandboxes', { headers: t.op, body: { program: PROGRAM, state_snapshot: { n: 1 } } }))
    expect(res.statusCode, res.body).toBe(201)
    const body = res.json<{ worker: Record<string, unknown>; manifest: Manifest }>()
    expect(body.worker).toMatchObject({
      worker_id: body.manifest.worker_id,
      status: 'active',
      managed: true,
      state_snapshot: { n: 1 },
      sandbox: { driver: 'process', state: 'running', pid: 1000, ended_at: null, exit_code: null, signal: null, usage: { pids: 1 } },
    })
    expect(body.worker).not.toHaveProperty('lease_token')
    expect(res.body).not.toContain(t.fake.launches[0]!.env.WARDEN_LEASE_TOKEN)
    // The manifest answered is the one in use: registering it again conflicts.
    expectProblem(await t.app.inject(call('POST', '/v1/workers', { body: body.manifest })), 409, 'manifest_already_used')

    const listed = (await t.app.inject(call('GET', '/v1/workers', { headers: t.op }))).json<{ items: Array<Record<string, unknown>> }>()
    expect(listed.items[0]).toMatchObject({ managed: true, sandbox: { state: 'running' } })
  })

  it('answers 503 sandbox_unavailable when no driver can run, changing nothing but the audit', async () => {
    const t = await withoutDriver()
    const before = dbSnapshot(storeOf(t.warden).db)
    const res = await t.app.inject(call('POST', '/v1/sandboxes', { headers: t.op, body: { program: PROGRAM } }))
    expectProblem(res, 503, 'sandbox_unavailable')
    const after = dbSnapshot(storeOf(t.warden).db)
    expect(after.workers).toEqual(before.workers)
    expect(after.manifests).toEqual(before.manifests)
    const driver = await t.app.inject(call('GET', '/v1/sandbox-driver', { headers: t.op }))
    expect(driver.json()).toMatchObject({ driver: 'none', available: false })
  })

  it.each([
    ['no program', {}],
    ['an empty command', { program: { command: [] } }],
    ['65 argv items', { program: { command: Array.from({ length: 65 }, () => 'x') } }],
    ['an over-long argument', { program: { command: ['node', 'x'.repeat(4097)] } }],
    ['a NUL in an argument', { program: { command: ['node', 'a\u0000b'] } }],
    ['65 env entries', { program: { command: ['node'], env: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`V${i}`, 'x'])) } }],
    ['a WARDEN_ variable', { program: { command: ['node'], env: { WARDEN_LEASE_TOKEN: 'forged' } } }],
    ['a bad env name', { program: { command: ['node'], env: { 'A=B': 'x' } } }],
    ['an unknown field', { program: { command: ['node'], cwd: '/' } }],
    ['a parent_id', { program: { command: ['node'] }, parent_id: '0'.repeat(32) }],
  ])('refuses %s with 400, launching nothing', async (_label, body) => {
    const t = await fresh()
    expectProblem(await t.app.inject(call('POST', '/v1/sandboxes', { headers: t.op, body })), 400, 'validation_failed')
    expect(t.fake.calls).toEqual([])
  })

  it('needs the operator token', async () => {
    const t = await fresh()
    const w = registerRoot(t.warden)
    expectProblem(await t.app.inject(call('POST', '/v1/sandboxes', { headers: bearer(w.token), body: { program: PROGRAM } })), 401, 'unauthorized')
    expect(t.fake.calls).toEqual([])
  })
})

describe('spawn of a managed worker over HTTP', () => {
  it('answers the child manifest, already registered and launched with the root program', async () => {
    const t = await fresh()
    const root = (await t.app.inject(call('POST', '/v1/sandboxes', { headers: t.op, body: { program: PROGRAM } }))).json<{ manifest: Manifest }>()
    const token = t.fake.launches[0]!.env.WARDEN_LEASE_TOKEN!
    const res = await t.app.inject(
      call('POST', `/v1/workers/${root.manifest.worker_id}/spawn`, { headers: bearer(token), body: { reason: 'grow', state_snapshot: { g: 1 } } }),
    )
    expect(res.statusCode, res.body).toBe(201)
    const child = res.json<Manifest>()
    expect(t.fake.launches[1]).toMatchObject({ worker_id: child.worker_id, program: PROGRAM })
    expect(JSON.parse(t.fake.launches[1]!.env.WARDEN_MANIFEST!).state_snapshot).toEqual({ g: 1 })
    expectProblem(await t.app.inject(call('POST', '/v1/workers', { body: child })), 409, 'manifest_already_used')
    const view = (await t.app.inject(call('GET', `/v1/workers/${child.worker_id}`, { headers: t.op }))).json()
    expect(view).toMatchObject({ status: 'active', managed: true, parent_id: root.manifest.worker_id, sandbox: { state: 'running' } })
    const lineage = (await t.app.inject(call('GET', `/v1/workers/${root.manifest.worker_id}/lineage`, { headers: t.op }))).json()
    expect(lineage.descendants).toEqual([expect.objectContaining({ worker_id: child.worker_id, managed: true, sandbox: expect.objectContaining({ state: 'running' }) })])
  })

  it('a worker whose sandbox exited gets 410 with reason exited', async () => {
    const t = await fresh()
    const root = (await t.app.inject(call('POST', '/v1/sandboxes', { headers: t.op, body: { program: PROGRAM } }))).json<{ manifest: Manifest }>()
    const token = t.fake.launches[0]!.env.WARDEN_LEASE_TOKEN!
    t.warden.sandboxes.ended({ worker_id: root.manifest.worker_id, exit_code: 1, signal: null, oom: false })
    const res = await t.app.inject(call('POST', `/v1/workers/${root.manifest.worker_id}/heartbeat`, { headers: bearer(token) }))
    expect(expectProblem(res, 410, 'worker_terminated')).toMatchObject({ reason: 'exited', directive: 'terminate' })
  })
})

describe('GET /v1/sandbox-driver', () => {
  it('says which driver runs and what it enforces', async () => {
    const t = await fresh()
    const res = await t.app.inject(call('GET', '/v1/sandbox-driver', { headers: t.op }))
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({
      driver: 'process',
      available: true,
      reason: null,
      cgroup: 'v1',
      enforces: { memory: true, cpu: true, pids: true, network: true, freeze: true, kill: true },
    })
  })
})

describe('readiness and metrics', () => {
  it('/readyz names the driver and what it does not enforce; /metrics has usage per sandbox state, no worker ids', async () => {
    const fake = createFakeSandbox()
    const t = await fresh(fake)
    const ready = await t.app.inject(call('GET', '/readyz'))
    expect(ready.json()).toEqual({ status: 'ready', sandbox: { driver: 'process', available: true, not_enforced: [], reason: null } })

    const running = (await t.app.inject(call('POST', '/v1/sandboxes', { headers: t.op, body: { program: PROGRAM } }))).json<{ manifest: Manifest }>()
    const frozen = (await t.app.inject(call('POST', '/v1/sandboxes', { headers: t.op, body: { program: PROGRAM } }))).json<{ manifest: Manifest }>()
    await t.app.inject(call('POST', `/v1/workers/${frozen.manifest.worker_id}/quarantine`, { headers: t.op, body: { reason: 'look' } }))
    await t.warden.sandboxes.settled(frozen.manifest.worker_id)
    const text = (await t.app.inject(call('GET', '/metrics'))).body
    expect(text).toContain('warden_sandboxes{state="running"} 1')
    expect(text).toContain('warden_sandboxes{state="frozen"} 1')
    expect(text).toContain('warden_sandboxes{state="starting"} 0')
    expect(text).toContain(`warden_sandbox_memory_bytes{state="running"} ${1 << 20}`)
    expect(text).toContain('warden_sandbox_pids{state="frozen"} 1')
    expect(text).not.toContain(running.manifest.worker_id)
  })
})
