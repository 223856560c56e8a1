// Every endpoint of SPEC §3 as a user drives it: what it answers and what it changes.
import { createHash, createHmac } from 'node:crypto'
import canonicalize from 'canonicalize'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { buildApp } from '../../src/app.js'
import { ManualClock } from '../../src/domain/clock.js'
import { DEFAULT_CONTRACT } from '../../src/domain/contract.js'
import { createSigner } from '../../src/domain/signing.js'
import { createMetrics } from '../../src/http/metrics.js'
import type { ContractInput, Manifest, WorkerStatus } from '../../src/schemas/index.js'
import { openDatabase } from '../../src/store/db.js'
import { createStore } from '../../src/store/index.js'
import { storeHooks } from '../../src/domain/store-hooks.js'
import { createTestApp, OPERATOR_TOKEN, registerChild, registerRoot, SIGNING_KEY, type TestApp, storeOf, buildWarden } from '../helpers/harness.js'
import { auditCount, auditHead, bearer, call, dbSnapshot, expectProblem, SPEC_ROUTES, urlOf, type Method } from './support.js'

const T0 = Date.parse('2026-01-01T00:00:00.000Z')
const iso = (ms: number) => new Date(ms).toISOString()
const HEX32 = /^[0-9a-f]{32}$/
const MANIFEST_FIELDS = ['depth', 'expires_at', 'issued_at', 'key_id', 'parent_id', 'resources', 'signature', 'state_snapshot', 'worker_id']
const DEFAULT_RESOURCES = { cpu_limit: 0.5, memory_limit_mb: 256, network_policy: { allow_controller: true, allow_external: false } }

const apps: Array<{ close(): void }> = []
afterEach(() => {
  for (const app of apps.splice(0)) app.close()
})

async function fresh(overrides: Partial<ContractInput> = {}): Promise<TestApp> {
  const t = await createTestApp(overrides)
  apps.push(t)
  return t
}

/** An app wired like server.ts: the store reports audit records to the metrics; options as given. */
async function serverLikeApp(options: { registerRateLimit?: number } = {}) {
  const metrics = createMetrics()
  const db = openDatabase(':memory:')
  const warden = buildWarden({
    store: createStore(db, { ...storeHooks, onAudit: metrics.auditRecorded }),
    clock: new ManualClock(),
    signer: createSigner(SIGNING_KEY),
    contract: { ...DEFAULT_CONTRACT, cooldown_seconds: 0 },
  })
  warden.liveness.resume()
  const app = await buildApp({ warden, operatorToken: OPERATOR_TOKEN, metrics, ...options })
  await app.ready()
  const handle = {
    app,
    warden,
    close: () => {
      void app.close()
      db.close()
    },
  }
  apps.push(handle)
  return handle
}

function send(t: { app: FastifyInstance }, method: Method, url: string, options: Parameters<typeof call>[2] = {}) {
  return t.app.inject(call(method, url, options))
}

interface AuditRow {
  seq: number
  type: string
  actor: string
  worker_id: string | null
  parent_id: string | null
  code: string | null
  data: string
}

function auditRows(t: TestApp, type?: string): AuditRow[] {
  const db = storeOf(t.warden).db
  return (type === undefined
    ? db.prepare(`SELECT * FROM audit ORDER BY seq`).all()
    : db.prepare(`SELECT * FROM audit WHERE type = ? ORDER BY seq`).all(type)) as AuditRow[]
}

const lastAudit = (t: TestApp) => auditRows(t).at(-1)!
const count = (t: TestApp, sql: string, ...params: unknown[]) => (storeOf(t.warden).db.prepare(sql).get(...params) as { n: number }).n

/** Registers over HTTP the manifest `res` carries. */
async function registerOver(t: TestApp, manifest: Manifest) {
  const res = await send(t, 'POST', '/v1/workers', { body: manifest })
  expect(res.statusCode, res.body).toBe(201)
  return res.json<{ worker: { worker_id: string }; lease_token: string }>()
}

/** Asserts a refused admission: its status and code, its audit record, and no new manifest or worker. */
/** `auditType` null: a refusal that adds no audit record of its own (a manifest failing verification, SPEC §7). */
async function expectDenied(t: TestApp, request: () => Promise<LightMyRequestResponse>, status: number, code: string, auditType: string | null) {
  const manifests = count(t, `SELECT count(*) AS n FROM manifests`)
  const workers = count(t, `SELECT count(*) AS n FROM workers`)
  const audits = auditCount(storeOf(t.warden).db)
  const res = await request()
  const problem = expectProblem(res, status, code)
  expect(count(t, `SELECT count(*) AS n FROM manifests`)).toBe(manifests)
  expect(count(t, `SELECT count(*) AS n FROM workers`)).toBe(workers)
  if (auditType === null) {
    expect(auditCount(storeOf(t.warden).db)).toBe(audits)
    return problem
  }
  expect(auditCount(storeOf(t.warden).db)).toBe(audits + 1)
  expect(lastAudit(t)).toMatchObject({ type: auditType, code })
  return problem
}

describe('POST /v1/manifests', () => {
  it('issues a root manifest with 201 carrying every manifest field, stores it outstanding and audits manifest_issued', async () => {
    const t = await fresh()
    const res = await send(t, 'POST', '/v1/manifests', {
      headers: t.op,
      body: { state_snapshot: { task: 'index', step: 1 }, resources: { cpu_limit: 1, memory_limit_mb: 512 } },
    })
    expect(res.statusCode, res.body).toBe(201)
    const manifest = res.json<Manifest>()
    expect(Object.keys(manifest).sort()).toEqual(MANIFEST_FIELDS)
    expect(manifest).toMatchObject({
      parent_id: null,
      depth: 0,
      state_snapshot: { task: 'index', step: 1 },
      resources: { cpu_limit: 1, memory_limit_mb: 512, network_policy: { allow_controller: true, allow_external: false } },
      issued_at: iso(T0),
      expires_at: iso(T0 + 300_000),
    })
    expect(manifest.worker_id).toMatch(HEX32)
    expect(manifest.signature).toMatch(/^[0-9a-f]{64}$/)
    expect(manifest.key_id).toEqual(expect.any(String))
    expect(storeOf(t.warden).manifests.get(manifest.worker_id)).toMatchObject({ status: 'outstanding', parent_id: null, depth: 0 })
    expect(lastAudit(t)).toMatchObject({ type: 'manifest_issued', actor: 'operator', worker_id: manifest.worker_id })
  })

  it('signs the RFC 8785 canonical JSON of every other field with HMAC-SHA256', async () => {
    const t = await fresh()
    const manifest = (await send(t, 'POST', '/v1/manifests', { headers: t.op, body: { state_snapshot: { b: 2, a: [1, { y: 1, x: 0 }] } } })).json<Manifest>()
    const { signature, ...unsigned } = manifest
    expect(createHmac('sha256', SIGNING_KEY).update(canonicalize(unsigned)!).digest('hex')).toBe(signature)
  })

  it('issues from a bare POST with no body and no content type, with default resources and an empty snapshot', async () => {
    const t = await fresh()
    const res = await t.app.inject({ method: 'POST', url: '/v1/manifests', headers: t.op })
    expect(res.statusCode, res.body).toBe(201)
    expect(res.json()).toMatchObject({ state_snapshot: {}, resources: DEFAULT_RESOURCES })
  })

  it('issues from an empty body sent as application/json', async () => {
    const t = await fresh()
    const res = await t.app.inject({ method: 'POST', url: '/v1/manifests', headers: { ...t.op, 'content-type': 'application/json' }, payload: '' })
    expect(res.statusCode, res.body).toBe(201)
  })

  it('denies with 403 quota_exceeded once live workers plus outstanding manifests reach max_replicas', async () => {
    const t = await fresh({ max_replicas: 2 })
    registerRoot(t.warden)
    t.warden.admission.issueRoot({})
    await expectDenied(t, () => send(t, 'POST', '/v1/manifests', { headers: t.op }), 403, 'quota_exceeded', 'manifest_denied')
  })

  it('frees the slot of a manifest whose TTL ran out', async () => {
    const t = await fresh({ max_replicas: 1, manifest_ttl_seconds: 10 })
    t.warden.admission.issueRoot({})
    expectProblem(await send(t, 'POST', '/v1/manifests', { headers: t.op }), 403, 'quota_exceeded')
    t.clock.advance(10_000)
    expect((await send(t, 'POST', '/v1/manifests', { headers: t.op })).statusCode).toBe(201)
  })

  it('denies with 403 resources_exceed_contract resources above max_resources', async () => {
    const t = await fresh()
    await expectDenied(
      t,
      () => send(t, 'POST', '/v1/manifests', { headers: t.op, body: { resources: { cpu_limit: 4, memory_limit_mb: 256 } } }),
      403,
      'resources_exceed_contract',
      'manifest_denied',
    )
    await expectDenied(
      t,
      () => send(t, 'POST', '/v1/manifests', { headers: t.op, body: { resources: { cpu_limit: 1, memory_limit_mb: 256, network_policy: { allow_external: true } } } }),
      403,
      'resources_exceed_contract',
      'manifest_denied',
    )
  })

  it('denies with 403 stop_condition naming the first triggered condition in list order', async () => {
    const t = await fresh({
      stop_conditions: [
        { name: 'never', description: '', expression: 'active_count > 1000' },
        { name: 'big_memory', description: '', expression: 'manifest.resources.memory_limit_mb > 1024' },
        { name: 'also_big', description: '', expression: 'manifest.resources.memory_limit_mb > 512' },
      ],
    })
    const problem = await expectDenied(
      t,
      () => send(t, 'POST', '/v1/manifests', { headers: t.op, body: { resources: { cpu_limit: 1, memory_limit_mb: 2048 } } }),
      403,
      'stop_condition',
      'manifest_denied',
    )
    expect(problem.condition).toBe('big_memory')
    expect((await send(t, 'POST', '/v1/manifests', { headers: t.op, body: { resources: { cpu_limit: 1, memory_limit_mb: 256 } } })).statusCode).toBe(201)
  })
})

describe('POST /v1/workers (registration)', () => {
  it('registers with 201 {worker, lease_token, heartbeat_interval_seconds, heartbeat_timeout_seconds} and stores only the token hash', async () => {
    const t = await fresh()
    const manifest = t.warden.admission.issueRoot({ state_snapshot: { task: 'x' } })
    t.clock.advance(2_000)
    const res = await send(t, 'POST', '/v1/workers', { body: manifest })
    expect(res.statusCode, res.body).toBe(201)
    const body = res.json<{ worker: Record<string, unknown>; lease_token: string; heartbeat_interval_seconds: number; heartbeat_timeout_seconds: number }>()
    expect(Object.keys(body).sort()).toEqual(['heartbeat_interval_seconds', 'heartbeat_timeout_seconds', 'lease_token', 'worker'])
    expect(body.heartbeat_timeout_seconds).toBe(30)
    expect(body.heartbeat_interval_seconds).toBe(10)
    expect(body.lease_token.length).toBeGreaterThanOrEqual(32)
    const now = T0 + 2_000
    expect(body.worker).toEqual({
      worker_id: manifest.worker_id,
      parent_id: null,
      depth: 0,
      status: 'active',
      reason: null,
      resources: DEFAULT_RESOURCES,
      key_id: manifest.key_id,
      issued_at: iso(T0),
      registered_at: iso(now),
      last_heartbeat_at: null,
      lease_expires_at: iso(now + 30_000),
      expires_at: iso(now + 3_600_000),
      ended_at: null,
      managed: false,
      sandbox: null,
      state_snapshot: { task: 'x' },
      children_count: 0,
    })
    const row = storeOf(t.warden).workers.get(manifest.worker_id)!
    expect(row.status).toBe('active')
    expect(row.lease_token_hash.equals(createHash('sha256').update(body.lease_token).digest())).toBe(true)
    expect(storeOf(t.warden).manifests.get(manifest.worker_id)!.status).toBe('registered')
    expect(lastAudit(t)).toMatchObject({ type: 'worker_registered', worker_id: manifest.worker_id })
  })

  it('refuses a second registration of one manifest with 409 manifest_already_used', async () => {
    const t = await fresh()
    const manifest = t.warden.admission.issueRoot({})
    await registerOver(t, manifest)
    await expectDenied(t, () => send(t, 'POST', '/v1/workers', { body: manifest }), 409, 'manifest_already_used', 'registration_rejected')
  })

  it('refuses a manifest after its registration deadline with 403 manifest_expired', async () => {
    const t = await fresh({ manifest_ttl_seconds: 60 })
    const manifest = t.warden.admission.issueRoot({})
    t.clock.advance(60_000)
    await expectDenied(t, () => send(t, 'POST', '/v1/workers', { body: manifest }), 403, 'manifest_expired', 'registration_rejected')
  })

  it.each<[string, (m: Manifest) => Manifest]>([
    ['state_snapshot', (m) => ({ ...m, state_snapshot: { task: 'y' } })],
    ['resources', (m) => ({ ...m, resources: { ...m.resources, cpu_limit: 0.25 } })],
    ['network_policy', (m) => ({ ...m, resources: { ...m.resources, network_policy: { allow_controller: true, allow_external: true } } })],
    ['depth', (m) => ({ ...m, depth: 1 })],
    ['parent_id', (m) => ({ ...m, parent_id: 'f'.repeat(32) })],
    ['worker_id', (m) => ({ ...m, worker_id: 'e'.repeat(32) })],
    ['issued_at', (m) => ({ ...m, issued_at: iso(T0 - 1) })],
    ['expires_at', (m) => ({ ...m, expires_at: iso(T0 + 86_400_000) })],
    ['signature', (m) => ({ ...m, signature: (m.signature[0] === 'a' ? 'b' : 'a') + m.signature.slice(1) })],
  ])('refuses a manifest whose %s was changed with 403 invalid_signature', async (_field, tamper) => {
    const t = await fresh()
    const manifest = t.warden.admission.issueRoot({ state_snapshot: { task: 'x' } })
    const problem = await expectDenied(t, () => send(t, 'POST', '/v1/workers', { body: tamper(manifest) }), 403, 'invalid_signature', null)
    expect(problem.detail).toMatch(/signature|issued/)
    expect(storeOf(t.warden).manifests.get(manifest.worker_id)!.status).toBe('outstanding')
  })

  it('refuses a manifest signed with a key it does not hold with 403 unknown_key', async () => {
    const t = await fresh()
    const foreign = createSigner(Buffer.alloc(32, 7)).sign({
      worker_id: 'c'.repeat(32),
      parent_id: null,
      depth: 0,
      state_snapshot: {},
      resources: DEFAULT_RESOURCES,
      issued_at: iso(T0),
      expires_at: iso(T0 + 300_000),
    })
    await expectDenied(t, () => send(t, 'POST', '/v1/workers', { body: foreign }), 403, 'unknown_key', null)
  })

  it('refuses a child manifest whose parent has shut down with 403 parent_not_active', async () => {
    const t = await fresh()
    const parent = registerRoot(t.warden)
    const child = t.warden.admission.spawn(storeOf(t.warden).workers.get(parent.id)!, { reason: 'grow' })
    expect((await send(t, 'DELETE', `/v1/workers/${parent.id}`, { headers: bearer(parent.token) })).statusCode).toBe(200)
    const res = await send(t, 'POST', '/v1/workers', { body: child })
    expectProblem(res, 403, 'parent_not_active')
    expect(storeOf(t.warden).workers.get(child.worker_id)).toBeUndefined()
  })

  it('refuses a child manifest whose parent was quarantined after the spawn with 403 parent_quarantined', async () => {
    const t = await fresh()
    const parent = registerRoot(t.warden)
    const child = t.warden.admission.spawn(storeOf(t.warden).workers.get(parent.id)!, { reason: 'grow' })
    expect((await send(t, 'POST', `/v1/workers/${parent.id}/quarantine`, { headers: t.op, body: { reason: 'watch' } })).statusCode).toBe(200)
    await expectDenied(t, () => send(t, 'POST', '/v1/workers', { body: child }), 403, 'parent_quarantined', 'registration_rejected')
  })

  it('checks depth again at registration: a manifest issued before max_depth was lowered is refused with 403 depth_exceeded', async () => {
    const t = await fresh()
    const parent = registerRoot(t.warden)
    const child = t.warden.admission.spawn(storeOf(t.warden).workers.get(parent.id)!, { reason: 'grow' })
    const contract = { ...DEFAULT_CONTRACT, cooldown_seconds: 0, max_depth: 0 }
    expect((await send(t, 'PUT', '/v1/contract', { headers: t.op, body: contract })).statusCode).toBe(200)
    await expectDenied(t, () => send(t, 'POST', '/v1/workers', { body: child }), 403, 'depth_exceeded', 'registration_rejected')
  })
})

describe('POST /v1/workers rate limit', () => {
  it('limits registrations per address with 429 rate_limited and Retry-After, changing nothing', async () => {
    const m = await serverLikeApp({ registerRateLimit: 3 })
    for (let i = 0; i < 3; i++) {
      expect((await m.app.inject(call('POST', '/v1/workers', { body: m.warden.admission.issueRoot({}) }))).statusCode).toBe(201)
    }
    const manifest = m.warden.admission.issueRoot({})
    const before = dbSnapshot(storeOf(m.warden).db)
    const res = await m.app.inject(call('POST', '/v1/workers', { body: manifest }))
    const problem = expectProblem(res, 429, 'rate_limited')
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0)
    expect(problem.retry_after).toEqual(expect.any(Number))
    expect(dbSnapshot(storeOf(m.warden).db)).toEqual(before)
    // Other endpoints are not limited.
    expect((await m.app.inject(call('GET', '/v1/workers', { headers: bearer(OPERATOR_TOKEN) }))).statusCode).toBe(200)
  })
})

describe('POST /v1/workers/{id}/heartbeat', () => {
  it('renews the lease with 200 {directive: continue, lease_expires_at, expires_at, heartbeat_interval_seconds, heartbeat_timeout_seconds}', async () => {
    const t = await fresh()
    const w = registerRoot(t.warden)
    t.clock.advance(5_000)
    const res = await send(t, 'POST', `/v1/workers/${w.id}/heartbeat`, { headers: bearer(w.token) })
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json()).toEqual({
      directive: 'continue',
      lease_expires_at: iso(T0 + 35_000),
      expires_at: iso(T0 + 3_600_000),
      heartbeat_interval_seconds: 10,
      heartbeat_timeout_seconds: 30,
    })
    const view = await send(t, 'GET', `/v1/workers/${w.id}`, { headers: t.op })
    expect(view.json()).toMatchObject({ lease_expires_at: iso(T0 + 35_000), last_heartbeat_at: iso(T0 + 5_000) })
    // The renewal reaches the database with the next lease flush (SPEC §2.10 allows the lag).
    t.warden.liveness.flushLeases()
    const row = storeOf(t.warden).workers.get(w.id)!
    expect(row.lease_expires_at).toBe(T0 + 35_000)
    expect(row.last_heartbeat_at).toBe(T0 + 5_000)
  })

  it('validates the metrics of a heartbeat body and then drops them: stored nowhere, audited nowhere; an empty JSON body is accepted too', async () => {
    const t = await fresh()
    const w = registerRoot(t.warden)
    const audited = auditCount(storeOf(t.warden).db)
    const withMetrics = await send(t, 'POST', `/v1/workers/${w.id}/heartbeat`, { headers: bearer(w.token), body: { metrics: { cpu: 0.4, rss_mb_7f3a: 120 } } })
    expect(withMetrics.statusCode, withMetrics.body).toBe(200)
    expect(withMetrics.json()).toMatchObject({ directive: 'continue' })
    expect(withMetrics.body).not.toContain('rss_mb_7f3a')
    t.warden.liveness.flushAllLeases()
    expect(JSON.stringify(dbSnapshot(storeOf(t.warden).db))).not.toContain('rss_mb_7f3a')
    expect(auditCount(storeOf(t.warden).db)).toBe(audited)
    const bad = await send(t, 'POST', `/v1/workers/${w.id}/heartbeat`, { headers: bearer(w.token), body: { metrics: { cpu: 'high' } } })
    expect(expectProblem(bad, 400, 'validation_failed').detail).toContain('metrics.cpu')
    expect((await send(t, 'POST', `/v1/workers/${w.id}/heartbeat`, { headers: bearer(w.token), body: {} })).statusCode).toBe(200)
    const empty = await t.app.inject({ method: 'POST', url: `/v1/workers/${w.id}/heartbeat`, headers: { ...bearer(w.token), 'content-type': 'application/json' }, payload: '' })
    expect(empty.statusCode, empty.body).toBe(200)
  })

  it('answers suspend to a quarantined worker and still renews its lease', async () => {
    const t = await fresh()
    const w = registerRoot(t.warden)
    t.warden.transitions.quarantine(w.id, 'watch')
    t.clock.advance(1_000)
    const res = await send(t, 'POST', `/v1/workers/${w.id}/heartbeat`, { headers: bearer(w.token) })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ directive: 'suspend', lease_expires_at: iso(T0 + 31_000) })
    expect(storeOf(t.warden).workers.get(w.id)!.status).toBe('quarantined')
  })

  it.each<[string, Partial<ContractInput>, (t: TestApp, w: { id: string; token: string }) => Promise<unknown> | unknown, string, WorkerStatus]>([
    ['killed by an operator', {}, (t, w) => send(t, 'POST', `/v1/workers/${w.id}/kill`, { headers: t.op }), 'killed', 'killed'],
    ['killed by the kill switch', {}, (t) => send(t, 'POST', '/v1/kill-switch', { headers: t.op }), 'kill_switch', 'killed'],
    ['silent past its heartbeat timeout', {}, (t) => t.clock.advance(30_000), 'reaped', 'reaped'],
    ['past its lifetime', { expiration_seconds: 20 }, (t) => t.clock.advance(20_000), 'expired', 'expired'],
    ['shut down by itself', {}, (t, w) => send(t, 'DELETE', `/v1/workers/${w.id}`, { headers: bearer(w.token) }), 'deregistered', 'deregistered'],
  ])('answers 410 worker_terminated, directive terminate, to a worker %s', async (_label, overrides, end, reason, status) => {
    const t = await fresh(overrides)
    const w = registerRoot(t.warden)
    await end(t, w)
    const res = await send(t, 'POST', `/v1/workers/${w.id}/heartbeat`, { headers: bearer(w.token) })
    const problem = expectProblem(res, 410, 'worker_terminated')
    expect(problem).toMatchObject({ directive: 'terminate', reason })
    const row = storeOf(t.warden).workers.get(w.id)!
    expect(row.status).toBe(status)
    expect(row.last_heartbeat_at).toBeNull()
    // Terminal is forever: asking again changes nothing.
    const before = dbSnapshot(storeOf(t.warden).db)
    expectProblem(await send(t, 'POST', `/v1/workers/${w.id}/heartbeat`, { headers: bearer(w.token) }), 410, 'worker_terminated')
    expect(dbSnapshot(storeOf(t.warden).db)).toEqual(before)
  })

  it('answers a wrong token 401 alike for an unknown and a known worker, so ids cannot be probed (issue #7 item 9)', async () => {
    const t = await fresh()
    const w = registerRoot(t.warden)
    const other = registerRoot(t.warden)
    const unknown = await send(t, 'POST', `/v1/workers/${'d'.repeat(32)}/heartbeat`, { headers: bearer(w.token) })
    const known = await send(t, 'POST', `/v1/workers/${other.id}/heartbeat`, { headers: bearer(w.token) })
    expectProblem(unknown, 401, 'unauthorized')
    expectProblem(known, 401, 'unauthorized')
    for (const path of ['spawn', '']) {
      const url = (id: string) => `/v1/workers/${id}${path ? `/${path}` : ''}`
      const method = path ? 'POST' : 'DELETE'
      const body = path ? { reason: 'probe' } : undefined
      expect((await send(t, method, url('e'.repeat(32)), { headers: bearer(w.token), body })).statusCode).toBe(401)
      expect((await send(t, method, url(other.id), { headers: bearer(w.token), body })).statusCode).toBe(401)
    }
  })
})

describe('POST /v1/workers/{id}/spawn', () => {
  it('approves with 201 a child manifest one level deeper that inherits the snapshot and resources within the parent', async () => {
    const t = await fresh()
    const parent = registerRoot(t.warden, { state_snapshot: { task: 'crawl' }, resources: { cpu_limit: 0.25, memory_limit_mb: 512, network_policy: { allow_controller: true, allow_external: false } } })
    t.clock.advance(1_000)
    const res = await send(t, 'POST', `/v1/workers/${parent.id}/spawn`, { headers: bearer(parent.token), body: { reason: 'more pages' } })
    expect(res.statusCode, res.body).toBe(201)
    const child = res.json<Manifest>()
    expect(Object.keys(child).sort()).toEqual(MANIFEST_FIELDS)
    expect(child).toMatchObject({
      parent_id: parent.id,
      depth: 1,
      state_snapshot: { task: 'crawl' },
      resources: { cpu_limit: 0.25, memory_limit_mb: 256, network_policy: { allow_controller: true, allow_external: false } },
      issued_at: iso(T0 + 1_000),
    })
    expect(child.worker_id).toMatch(HEX32)
    expect(storeOf(t.warden).manifests.get(child.worker_id)).toMatchObject({ status: 'outstanding', parent_id: parent.id, depth: 1 })
    expect(storeOf(t.warden).workers.get(parent.id)!.last_spawn_at).toBe(T0 + 1_000)
    const audit = lastAudit(t)
    expect(audit).toMatchObject({ type: 'spawn_approved', actor: `worker:${parent.id}`, worker_id: child.worker_id, parent_id: parent.id })
    expect(JSON.parse(audit.data)).toMatchObject({ reason: 'more pages', depth: 1 })

    const registered = await registerOver(t, child)
    expect(registered.worker).toMatchObject({ parent_id: parent.id, depth: 1, status: 'active' })
    const view = await send(t, 'GET', `/v1/workers/${parent.id}`, { headers: t.op })
    expect(view.json()).toMatchObject({ children_count: 1 })
  })

  it('takes the state_snapshot and resources the request names', async () => {
    const t = await fresh()
    const parent = registerRoot(t.warden)
    const res = await send(t, 'POST', `/v1/workers/${parent.id}/spawn`, {
      headers: bearer(parent.token),
      body: { reason: 'shard', state_snapshot: { shard: 2 }, resources: { cpu_limit: 0.1, memory_limit_mb: 64 } },
    })
    expect(res.statusCode).toBe(201)
    expect(res.json()).toMatchObject({ state_snapshot: { shard: 2 }, resources: { cpu_limit: 0.1, memory_limit_mb: 64, network_policy: { allow_controller: true, allow_external: false } } })
  })

  const spawnAs = (t: TestApp, w: { id: string; token: string }, body: Record<string, unknown> = { reason: 'grow' }) => () =>
    send(t, 'POST', `/v1/workers/${w.id}/spawn`, { headers: bearer(w.token), body })

  it('denies with 403 depth_exceeded a child deeper than max_depth', async () => {
    const t = await fresh({ max_depth: 1 })
    const root = registerRoot(t.warden)
    const child = registerChild(t.warden, root.id)
    const problem = await expectDenied(t, spawnAs(t, child), 403, 'depth_exceeded', 'spawn_denied')
    expect(problem.detail).toMatch(/depth 2/)
  })

  it('denies with 403 quota_exceeded when the outstanding child manifests fill max_replicas', async () => {
    const t = await fresh({ max_replicas: 2 })
    const root = registerRoot(t.warden)
    expect((await spawnAs(t, root)()).statusCode).toBe(201)
    await expectDenied(t, spawnAs(t, root), 403, 'quota_exceeded', 'spawn_denied')
  })

  it('denies with 429 cooldown_active and Retry-After inside the cooldown, measured from the last approval', async () => {
    const t = await fresh({ cooldown_seconds: 60, heartbeat_timeout_seconds: 600 })
    const root = registerRoot(t.warden)
    expect((await spawnAs(t, root)()).statusCode).toBe(201)
    t.clock.advance(20_000)
    const res = await spawnAs(t, root)()
    const problem = expectProblem(res, 429, 'cooldown_active')
    expect(res.headers['retry-after']).toBe('40')
    expect(problem.retry_after).toBe(40)
    expect(lastAudit(t)).toMatchObject({ type: 'spawn_denied', code: 'cooldown_active' })
    t.clock.advance(39_999)
    expect((await spawnAs(t, root)()).statusCode).toBe(429)
    t.clock.advance(1)
    expect((await spawnAs(t, root)()).statusCode).toBe(201)
  })

  it('denies with 403 parent_quarantined a spawn by a quarantined worker', async () => {
    const t = await fresh()
    const root = registerRoot(t.warden)
    await send(t, 'POST', `/v1/workers/${root.id}/quarantine`, { headers: t.op, body: { reason: 'watch' } })
    await expectDenied(t, spawnAs(t, root), 403, 'parent_quarantined', 'spawn_denied')
  })

  it('denies with 403 stop_condition and the condition name', async () => {
    const t = await fresh({ stop_conditions: [{ name: 'one_is_enough', description: 'no children', expression: 'active_count >= 1' }] })
    // The root registers while active_count is 0; its own spawn then sees 1.
    const root = registerRoot(t.warden)
    const problem = await expectDenied(t, spawnAs(t, root), 403, 'stop_condition', 'spawn_denied')
    expect(problem.condition).toBe('one_is_enough')
  })

  it('denies with 403 resources_exceed_parent a child asking for more than its parent has', async () => {
    const t = await fresh()
    const root = registerRoot(t.warden)
    await expectDenied(t, spawnAs(t, root, { reason: 'grow', resources: { cpu_limit: 1, memory_limit_mb: 256 } }), 403, 'resources_exceed_parent', 'spawn_denied')
    await expectDenied(t, spawnAs(t, root, { reason: 'grow', resources: { cpu_limit: 0.5, memory_limit_mb: 512 } }), 403, 'resources_exceed_parent', 'spawn_denied')
  })

  it('denies with 403 resources_exceed_contract a child asking for more than max_resources', async () => {
    const t = await fresh()
    const root = registerRoot(t.warden)
    await expectDenied(t, spawnAs(t, root, { reason: 'grow', resources: { cpu_limit: 4, memory_limit_mb: 256 } }), 403, 'resources_exceed_contract', 'spawn_denied')
  })

  it('answers 410 worker_terminated with directive terminate to a spawn by a killed worker', async () => {
    const t = await fresh()
    const root = registerRoot(t.warden)
    t.warden.transitions.kill(root.id, { cascade: true })
    const res = await spawnAs(t, root)()
    expect(expectProblem(res, 410, 'worker_terminated')).toMatchObject({ directive: 'terminate', reason: 'killed' })
    expect(count(t, `SELECT count(*) AS n FROM manifests WHERE parent_id = ?`, root.id)).toBe(0)
  })
})

describe('DELETE /v1/workers/{id} (shutdown)', () => {
  it('shuts a worker down with 200 and its view, recording ?reason; repeating it is harmless', async () => {
    const t = await fresh()
    const w = registerRoot(t.warden)
    t.clock.advance(3_000)
    const res = await send(t, 'DELETE', `/v1/workers/${w.id}?reason=job%20done`, { headers: bearer(w.token) })
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json()).toMatchObject({ worker_id: w.id, status: 'deregistered', reason: 'job done', ended_at: iso(T0 + 3_000) })
    expect(storeOf(t.warden).workers.get(w.id)).toMatchObject({ status: 'deregistered', reason: 'job done' })
    const audits = auditCount(storeOf(t.warden).db)
    const again = await send(t, 'DELETE', `/v1/workers/${w.id}`, { headers: bearer(w.token) })
    expect(again.statusCode).toBe(200)
    expect(again.json()).toMatchObject({ status: 'deregistered', reason: 'job done' })
    expect(auditCount(storeOf(t.warden).db)).toBe(audits)
    expect(auditRows(t, 'worker_deregistered')).toHaveLength(1)
  })

  it('voids the outstanding manifests of a worker that shuts down, freeing their slots', async () => {
    const t = await fresh({ max_replicas: 2 })
    const w = registerRoot(t.warden)
    const child = t.warden.admission.spawn(storeOf(t.warden).workers.get(w.id)!, { reason: 'grow' })
    await send(t, 'DELETE', `/v1/workers/${w.id}`, { headers: bearer(w.token) })
    expect(storeOf(t.warden).manifests.get(child.worker_id)!.status).toBe('voided')
    expect((await send(t, 'POST', '/v1/manifests', { headers: t.op })).statusCode).toBe(201)
    expect((await send(t, 'POST', '/v1/manifests', { headers: t.op })).statusCode).toBe(201)
  })
})

describe('quarantine and release', () => {
  it('quarantines with 200, suspends heartbeats and spawns; release restores active; both audited', async () => {
    const t = await fresh()
    const w = registerRoot(t.warden)
    const res = await send(t, 'POST', `/v1/workers/${w.id}/quarantine`, { headers: t.op, body: { reason: 'odd traffic' } })
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json()).toMatchObject({ worker_id: w.id, status: 'quarantined', reason: 'odd traffic' })
    expect(storeOf(t.warden).workers.get(w.id)!.status).toBe('quarantined')
    expect(lastAudit(t)).toMatchObject({ type: 'worker_quarantined', worker_id: w.id })
    expect((await send(t, 'POST', `/v1/workers/${w.id}/heartbeat`, { headers: bearer(w.token) })).json()).toMatchObject({ directive: 'suspend' })
    expectProblem(await send(t, 'POST', `/v1/workers/${w.id}/spawn`, { headers: bearer(w.token), body: { reason: 'x' } }), 403, 'parent_quarantined')

    const released = await send(t, 'DELETE', `/v1/workers/${w.id}/quarantine`, { headers: t.op })
    expect(released.statusCode).toBe(200)
    expect(released.json()).toMatchObject({ status: 'active', reason: null })
    expect(lastAudit(t)).toMatchObject({ type: 'worker_released', worker_id: w.id })
    expect((await send(t, 'POST', `/v1/workers/${w.id}/heartbeat`, { headers: bearer(w.token) })).json()).toMatchObject({ directive: 'continue' })
    expect((await send(t, 'POST', `/v1/workers/${w.id}/spawn`, { headers: bearer(w.token), body: { reason: 'x' } })).statusCode).toBe(201)
  })

  it('quarantining twice and releasing an active worker are harmless and audit nothing', async () => {
    const t = await fresh()
    const w = registerRoot(t.warden)
    await send(t, 'POST', `/v1/workers/${w.id}/quarantine`, { headers: t.op, body: { reason: 'a' } })
    const audits = auditCount(storeOf(t.warden).db)
    expect((await send(t, 'POST', `/v1/workers/${w.id}/quarantine`, { headers: t.op, body: { reason: 'b' } })).statusCode).toBe(200)
    expect(auditCount(storeOf(t.warden).db)).toBe(audits)
    const other = registerRoot(t.warden)
    const before = auditCount(storeOf(t.warden).db)
    expect((await send(t, 'DELETE', `/v1/workers/${other.id}/quarantine`, { headers: t.op })).json()).toMatchObject({ status: 'active' })
    expect(auditCount(storeOf(t.warden).db)).toBe(before)
  })

  it('answers 404 worker_not_found for an unknown worker and 410 for a terminated one', async () => {
    const t = await fresh()
    const unknown = 'a'.repeat(32)
    expectProblem(await send(t, 'POST', `/v1/workers/${unknown}/quarantine`, { headers: t.op, body: { reason: 'x' } }), 404, 'worker_not_found')
    expectProblem(await send(t, 'DELETE', `/v1/workers/${unknown}/quarantine`, { headers: t.op }), 404, 'worker_not_found')
    const w = registerRoot(t.warden)
    t.warden.transitions.kill(w.id, { cascade: true })
    expectProblem(await send(t, 'POST', `/v1/workers/${w.id}/quarantine`, { headers: t.op, body: { reason: 'x' } }), 410, 'worker_terminated')
    expect(storeOf(t.warden).workers.get(w.id)!.status).toBe('killed')
  })
})

describe('POST /v1/workers/{id}/kill', () => {
  async function tree() {
    const t = await fresh()
    const root = registerRoot(t.warden)
    const child = registerChild(t.warden, root.id)
    const grandchild = registerChild(t.warden, child.id)
    const bystander = registerRoot(t.warden)
    return { t, root, child, grandchild, bystander }
  }

  it('kills the worker and its live descendants by default (bare POST, no body)', async () => {
    const { t, root, child, grandchild, bystander } = await tree()
    const res = await t.app.inject({ method: 'POST', url: `/v1/workers/${root.id}/kill`, headers: t.op })
    expect(res.statusCode, res.body).toBe(200)
    const body = res.json<{ worker: { status: string }; killed: string[] }>()
    expect(body.worker).toMatchObject({ status: 'killed', reason: 'killed' })
    expect(body.killed.sort()).toEqual([root.id, child.id, grandchild.id].sort())
    for (const id of [root.id, child.id, grandchild.id]) expect(storeOf(t.warden).workers.get(id)!.status).toBe('killed')
    expect(storeOf(t.warden).workers.get(bystander.id)!.status).toBe('active')
    expect(auditRows(t, 'worker_killed').map((r) => r.worker_id).sort()).toEqual([root.id, child.id, grandchild.id].sort())
  })

  it('kills only the worker with cascade false, recording the reason', async () => {
    const { t, root, child, grandchild } = await tree()
    const res = await send(t, 'POST', `/v1/workers/${root.id}/kill`, { headers: t.op, body: { reason: 'misbehaving', cascade: false } })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ worker: { status: 'killed', reason: 'misbehaving' }, killed: [root.id] })
    expect(storeOf(t.warden).workers.get(child.id)!.status).toBe('active')
    expect(storeOf(t.warden).workers.get(grandchild.id)!.status).toBe('active')
  })

  it('cascades when the body names a reason and leaves cascade out', async () => {
    const { t, root } = await tree()
    const res = await send(t, 'POST', `/v1/workers/${root.id}/kill`, { headers: t.op, body: { reason: 'drill' } })
    expect(res.json<{ killed: string[] }>().killed).toHaveLength(3)
  })

  it('killing a dead worker again answers 200 with nothing killed and audits nothing', async () => {
    const { t, root } = await tree()
    await send(t, 'POST', `/v1/workers/${root.id}/kill`, { headers: t.op })
    const before = dbSnapshot(storeOf(t.warden).db)
    const res = await send(t, 'POST', `/v1/workers/${root.id}/kill`, { headers: t.op })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ killed: [] })
    expect(dbSnapshot(storeOf(t.warden).db)).toEqual(before)
  })

  it('answers 404 worker_not_found for an unknown worker', async () => {
    const t = await fresh()
    const before = dbSnapshot(storeOf(t.warden).db)
    expectProblem(await send(t, 'POST', `/v1/workers/${'0'.repeat(32)}/kill`, { headers: t.op }), 404, 'worker_not_found')
    expect(dbSnapshot(storeOf(t.warden).db)).toEqual(before)
  })
})

describe('kill switch', () => {
  it('engages from a bare POST with no body and no content type, terminating every live worker in one go', async () => {
    const t = await fresh()
    const a = registerRoot(t.warden)
    const b = registerChild(t.warden, a.id)
    t.warden.transitions.quarantine(b.id, 'watch')
    const gone = registerRoot(t.warden)
    t.warden.transitions.deregister(gone.id, undefined)
    t.warden.admission.issueRoot({})
    const res = await t.app.inject({ method: 'POST', url: '/v1/kill-switch', headers: t.op })
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json()).toEqual({ engaged: true, engaged_at: iso(T0), reason: null, terminated: 2, manifests_voided: 1 })
    expect(storeOf(t.warden).workers.get(a.id)).toMatchObject({ status: 'killed', reason: 'kill_switch' })
    expect(storeOf(t.warden).workers.get(b.id)).toMatchObject({ status: 'killed', reason: 'kill_switch' })
    expect(storeOf(t.warden).workers.get(gone.id)!.status).toBe('deregistered')
    expect(count(t, `SELECT count(*) AS n FROM manifests WHERE status = 'outstanding'`)).toBe(0)
    expect(storeOf(t.warden).killSwitch.get()).toMatchObject({ engaged: 1, engaged_at: T0 })
    expect(lastAudit(t)).toMatchObject({ type: 'kill_switch_engaged', actor: 'operator' })
  })

  it('engages from a POST with content-type application/json and an empty body', async () => {
    const t = await fresh()
    registerRoot(t.warden)
    const res = await t.app.inject({ method: 'POST', url: '/v1/kill-switch', headers: { ...t.op, 'content-type': 'application/json' }, payload: '' })
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json()).toMatchObject({ engaged: true, terminated: 1 })
  })

  it('engaging twice is harmless: 200, terminated 0, and one audit record', async () => {
    const t = await fresh()
    registerRoot(t.warden)
    await send(t, 'POST', '/v1/kill-switch', { headers: t.op, body: { reason: 'drill' } })
    t.clock.advance(5_000)
    const again = await send(t, 'POST', '/v1/kill-switch', { headers: t.op })
    expect(again.statusCode).toBe(200)
    expect(again.json()).toEqual({ engaged: true, engaged_at: iso(T0), reason: 'drill', terminated: 0, manifests_voided: 0 })
    expect(auditRows(t, 'kill_switch_engaged')).toHaveLength(1)
  })

  it('while engaged refuses manifests, registrations and spawns with 403 kill_switch_engaged and heartbeats with 410', async () => {
    const t = await fresh()
    const w = registerRoot(t.warden)
    const manifest = t.warden.admission.issueRoot({})
    await send(t, 'POST', '/v1/kill-switch', { headers: t.op })
    expectProblem(await send(t, 'POST', '/v1/manifests', { headers: t.op }), 403, 'kill_switch_engaged')
    expectProblem(await send(t, 'POST', '/v1/workers', { body: manifest }), 403, 'kill_switch_engaged')
    expectProblem(await send(t, 'POST', `/v1/workers/${w.id}/spawn`, { headers: bearer(w.token), body: { reason: 'x' } }), 403, 'kill_switch_engaged')
    const hb = expectProblem(await send(t, 'POST', `/v1/workers/${w.id}/heartbeat`, { headers: bearer(w.token) }), 410, 'worker_terminated')
    expect(hb).toMatchObject({ directive: 'terminate', reason: 'kill_switch' })
    expect(count(t, `SELECT count(*) AS n FROM worker_states WHERE status IN ('active','quarantined')`)).toBe(0)
  })

  it('GET reports the state; DELETE disengages, is audited, and admission works again', async () => {
    const t = await fresh()
    expect((await send(t, 'GET', '/v1/kill-switch', { headers: t.op })).json()).toEqual({ engaged: false, engaged_at: null, reason: null })
    await send(t, 'POST', '/v1/kill-switch', { headers: t.op, body: { reason: 'incident 42' } })
    expect((await send(t, 'GET', '/v1/kill-switch', { headers: t.op })).json()).toEqual({ engaged: true, engaged_at: iso(T0), reason: 'incident 42' })
    t.clock.advance(60_000)
    const off = await send(t, 'DELETE', '/v1/kill-switch', { headers: t.op })
    expect(off.statusCode).toBe(200)
    expect(off.json()).toEqual({ engaged: false, engaged_at: null, reason: null })
    expect(storeOf(t.warden).killSwitch.get().engaged).toBe(0)
    expect(lastAudit(t)).toMatchObject({ type: 'kill_switch_disengaged', actor: 'operator' })
    expect((await send(t, 'POST', '/v1/manifests', { headers: t.op })).statusCode).toBe(201)
    // Disengaging again is harmless.
    const audits = auditCount(storeOf(t.warden).db)
    expect((await send(t, 'DELETE', '/v1/kill-switch', { headers: t.op })).statusCode).toBe(200)
    expect(auditCount(storeOf(t.warden).db)).toBe(audits)
  })
})

describe('GET /v1/workers', () => {
  interface Summary {
    worker_id: string
    parent_id: string | null
    depth: number
    status: string
  }

  async function population() {
    const t = await fresh({ max_replicas: 1000, max_depth: 5 })
    const ids: string[] = []
    const roots = [registerRoot(t.warden), registerRoot(t.warden), registerRoot(t.warden)]
    ids.push(...roots.map((r) => r.id))
    for (let i = 0; i < 20; i++) {
      const parent = ids[Math.floor(i / 2)]!
      ids.push(registerChild(t.warden, parent).id)
    }
    for (const id of ids.slice(5, 9)) t.warden.transitions.kill(id, { cascade: false })
    t.warden.transitions.quarantine(ids[10]!, 'watch')
    return { t, ids, roots }
  }

  async function pages(t: TestApp, query: string, limit: number): Promise<{ items: Summary[]; pageCount: number }> {
    const items: Summary[] = []
    let cursor: string | null = null
    let pageCount = 0
    do {
      const res = await send(t, 'GET', `/v1/workers?${query}&limit=${limit}${cursor === null ? '' : `&cursor=${cursor}`}`, { headers: t.op })
      expect(res.statusCode, res.body).toBe(200)
      const page = res.json<{ items: Summary[]; next_cursor: string | null }>()
      expect(page.items.length).toBeLessThanOrEqual(limit)
      items.push(...page.items)
      cursor = page.next_cursor
      pageCount++
      expect(pageCount).toBeLessThan(100)
    } while (cursor !== null)
    return { items, pageCount }
  }

  it.each([1, 2, 7, 23, 100, 1000])('pages through every worker with limit %i, in registration order, without duplicates or gaps', async (limit) => {
    const { t, ids } = await population()
    const { items, pageCount } = await pages(t, '', limit)
    expect(items.map((w) => w.worker_id)).toEqual(ids)
    expect(pageCount).toBeGreaterThanOrEqual(Math.ceil(ids.length / limit))
  })

  it('filters by status, parent_id and depth, and pages the filtered list', async () => {
    const { t, ids, roots } = await population()
    const rows = ids.map((id) => storeOf(t.warden).workers.get(id)!)
    const expectIds = (items: Summary[], want: typeof rows) => expect(items.map((w) => w.worker_id)).toEqual(want.map((r) => r.worker_id))

    expectIds((await pages(t, 'status=killed', 3)).items, rows.filter((r) => r.status === 'killed'))
    expectIds((await pages(t, 'status=quarantined', 3)).items, rows.filter((r) => r.status === 'quarantined'))
    expectIds((await pages(t, `parent_id=${roots[0]!.id}`, 2)).items, rows.filter((r) => r.parent_id === roots[0]!.id))
    expectIds((await pages(t, 'depth=0', 2)).items, rows.filter((r) => r.depth === 0))
    expectIds((await pages(t, 'depth=2', 2)).items, rows.filter((r) => r.depth === 2))
    expectIds((await pages(t, `status=active&depth=1`, 4)).items, rows.filter((r) => r.status === 'active' && r.depth === 1))
    expect((await pages(t, 'status=reaped', 5)).items).toEqual([])
  })

  it('lists summaries without the snapshot or any token, 100 by default', async () => {
    const { t, ids } = await population()
    const res = await send(t, 'GET', '/v1/workers', { headers: t.op })
    const body = res.json<{ items: Array<Record<string, unknown>>; next_cursor: string | null }>()
    expect(body.items).toHaveLength(ids.length)
    expect(body.next_cursor).toBeNull()
    expect(Object.keys(body.items[0]!).sort()).toEqual(
      ['depth', 'ended_at', 'expires_at', 'issued_at', 'key_id', 'last_heartbeat_at', 'lease_expires_at', 'managed', 'parent_id', 'reason', 'registered_at', 'resources', 'sandbox', 'status', 'worker_id'],
    )
  })
})

describe('GET /v1/workers/{id} and lineage', () => {
  it('shows one worker with its manifest fields, status, reason, timestamps and children_count', async () => {
    const t = await fresh()
    const root = registerRoot(t.warden, { state_snapshot: { k: 'v' } })
    registerChild(t.warden, root.id)
    registerChild(t.warden, root.id)
    const res = await send(t, 'GET', `/v1/workers/${root.id}`, { headers: t.op })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ worker_id: root.id, parent_id: null, depth: 0, status: 'active', reason: null, state_snapshot: { k: 'v' }, children_count: 2, registered_at: iso(T0) })
  })

  it('answers 404 worker_not_found for an unknown worker', async () => {
    const t = await fresh()
    expectProblem(await send(t, 'GET', `/v1/workers/${'9'.repeat(32)}`, { headers: t.op }), 404, 'worker_not_found')
    expectProblem(await send(t, 'GET', `/v1/workers/${'9'.repeat(32)}/lineage`, { headers: t.op }), 404, 'worker_not_found')
  })

  it('lists ancestors root first and descendants breadth first with their depth', async () => {
    const t = await fresh({ max_replicas: 100 })
    const root = registerRoot(t.warden)
    const c1 = registerChild(t.warden, root.id)
    const c2 = registerChild(t.warden, root.id)
    const g1 = registerChild(t.warden, c1.id)
    const gg1 = registerChild(t.warden, g1.id)
    t.warden.transitions.kill(c2.id, { cascade: false })

    const ofLeaf = (await send(t, 'GET', `/v1/workers/${gg1.id}/lineage`, { headers: t.op })).json()
    expect(ofLeaf).toEqual({
      worker_id: gg1.id,
      ancestors: [
        { worker_id: root.id, parent_id: null, depth: 0, status: 'active', managed: false, sandbox: null },
        { worker_id: c1.id, parent_id: root.id, depth: 1, status: 'active', managed: false, sandbox: null },
        { worker_id: g1.id, parent_id: c1.id, depth: 2, status: 'active', managed: false, sandbox: null },
      ],
      descendants: [],
      truncated: false,
    })
    const ofRoot = (await send(t, 'GET', `/v1/workers/${root.id}/lineage`, { headers: t.op })).json()
    expect(ofRoot).toEqual({
      worker_id: root.id,
      ancestors: [],
      descendants: [
        { worker_id: c1.id, parent_id: root.id, depth: 1, status: 'active', managed: false, sandbox: null },
        { worker_id: c2.id, parent_id: root.id, depth: 1, status: 'killed', managed: false, sandbox: null },
        { worker_id: g1.id, parent_id: c1.id, depth: 2, status: 'active', managed: false, sandbox: null },
        { worker_id: gg1.id, parent_id: g1.id, depth: 3, status: 'active', managed: false, sandbox: null },
      ],
      truncated: false,
    })
  })
})

describe('audit', () => {
  interface Record_ {
    seq: number
    type: string
    worker_id: string | null
    parent_id: string | null
    prev_hash: string
    hash: string
  }

  async function history() {
    const t = await fresh()
    const root = registerRoot(t.warden)
    const child = registerChild(t.warden, root.id)
    const other = registerRoot(t.warden)
    t.warden.transitions.quarantine(other.id, 'watch')
    t.warden.transitions.kill(child.id, { cascade: true })
    return { t, root, child, other }
  }

  it('lists every record in order, hash-chained', async () => {
    const { t } = await history()
    const res = await send(t, 'GET', '/v1/audit?limit=1000', { headers: t.op })
    expect(res.statusCode).toBe(200)
    const { items, next_after_seq } = res.json<{ items: Record_[]; next_after_seq: number | null }>()
    expect(items.map((r) => r.seq)).toEqual(items.map((_, i) => i + 1))
    expect(items).toHaveLength(auditCount(storeOf(t.warden).db))
    for (let i = 1; i < items.length; i++) expect(items[i]!.prev_hash).toBe(items[i - 1]!.hash)
    expect(next_after_seq).toBeNull()
    expect(Object.keys(items[0]!).sort()).toEqual(['actor', 'at', 'code', 'data', 'hash', 'parent_id', 'prev_hash', 'seq', 'type', 'worker_id'])
  })

  it('filters by type, worker_id (the worker or its children) and after_seq, and pages with limit', async () => {
    const { t, root, child } = await history()
    const get = async (query: string) => (await send(t, 'GET', `/v1/audit?${query}`, { headers: t.op })).json<{ items: Record_[]; next_after_seq: number | null }>()

    const registered = await get('type=worker_registered')
    expect(registered.items.map((r) => r.type)).toEqual(['worker_registered', 'worker_registered', 'worker_registered'])

    const aboutRoot = await get(`worker_id=${root.id}`)
    expect(aboutRoot.items.length).toBeGreaterThan(0)
    for (const r of aboutRoot.items) expect([r.worker_id, r.parent_id]).toContain(root.id)
    expect(aboutRoot.items.some((r) => r.worker_id === child.id)).toBe(true)

    const after = await get('after_seq=3')
    expect(after.items[0]!.seq).toBe(4)

    const all: Record_[] = []
    let cursor = 0
    for (;;) {
      const page = await get(`limit=2&after_seq=${cursor}`)
      expect(page.items.length).toBeLessThanOrEqual(2)
      all.push(...page.items)
      if (page.next_after_seq === null) break
      cursor = page.next_after_seq
    }
    expect(all.map((r) => r.seq)).toEqual(Array.from({ length: auditCount(storeOf(t.warden).db) }, (_, i) => i + 1))
  })

  it('lists newest first with order=desc (the last decisions first), and pages back with before_seq', async () => {
    const { t } = await history()
    await send(t, 'POST', '/v1/kill-switch', { headers: t.op })
    const total = auditCount(storeOf(t.warden).db)
    const get = async (query: string) =>
      (await send(t, 'GET', `/v1/audit?${query}`, { headers: t.op })).json<{ items: Record_[]; next_after_seq: number | null; next_before_seq: number | null }>()

    const latest = await get('order=desc&limit=5')
    expect(latest.items.map((r) => r.seq)).toEqual([total, total - 1, total - 2, total - 3, total - 4])
    expect(latest.items[0]!.type).toBe('kill_switch_engaged')
    expect(latest.next_after_seq).toBeNull()
    expect(latest.next_before_seq).toBe(total - 4)

    const seen: number[] = []
    let before: number | null = null
    for (;;) {
      const page = await get(`order=desc&limit=3${before === null ? '' : `&before_seq=${before}`}`)
      seen.push(...page.items.map((r) => r.seq))
      if (page.next_before_seq === null) break
      before = page.next_before_seq
    }
    expect(seen).toEqual(Array.from({ length: total }, (_, i) => total - i))
    expect((await get('order=desc&type=worker_registered&limit=1')).items[0]!.type).toBe('worker_registered')
    expect((await send(t, 'GET', '/v1/audit?order=newest', { headers: t.op })).statusCode).toBe(400)
  })

  it('verifies the chain: ok with the record count and head hash, and finds an edited record', async () => {
    const { t } = await history()
    const res = await send(t, 'GET', '/v1/audit/verify', { headers: t.op })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ ok: true, records: auditCount(storeOf(t.warden).db), head_hash: auditHead(storeOf(t.warden).db), first_invalid_seq: null })

    storeOf(t.warden).db.prepare(`UPDATE audit SET data = '{"edited":true}' WHERE seq = 3`).run()
    expect((await send(t, 'GET', '/v1/audit/verify', { headers: t.op })).json()).toMatchObject({ ok: false, first_invalid_seq: 3 })
  })
})

describe('contract', () => {
  const contractBody = (overrides: Partial<ContractInput> = {}) => ({ ...DEFAULT_CONTRACT, cooldown_seconds: 0, ...overrides })

  it('GET returns the current contract with its version', async () => {
    const t = await fresh({ max_depth: 2 })
    const res = await send(t, 'GET', '/v1/contract', { headers: t.op })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ ...contractBody({ max_depth: 2 }), version: 1, updated_at: iso(T0) })
  })

  it('PUT refuses max_depth -1 with 400 saying "max_depth must be >= 0, got -1", and keeps the version', async () => {
    const t = await fresh()
    const before = dbSnapshot(storeOf(t.warden).db)
    const problem = expectProblem(await send(t, 'PUT', '/v1/contract', { headers: t.op, body: contractBody({ max_depth: -1 }) }), 400)
    expect(problem.detail).toContain('max_depth must be >= 0, got -1')
    expect(dbSnapshot(storeOf(t.warden).db)).toEqual(before)
    expect((await send(t, 'GET', '/v1/contract', { headers: t.op })).json()).toMatchObject({ version: 1 })
  })

  it.each<[string, Partial<ContractInput>, RegExp]>([
    ['max_replicas 0', { max_replicas: 0 }, /max_replicas must be >= 1, got 0/],
    ['heartbeat_timeout_seconds 0', { heartbeat_timeout_seconds: 0 }, /heartbeat_timeout_seconds must be > 0, got 0/],
    ['expiration_seconds 0', { expiration_seconds: 0 }, /expiration_seconds must be > 0, got 0/],
    ['default above max resources', { default_resources: { cpu_limit: 8, memory_limit_mb: 256, network_policy: { allow_controller: true, allow_external: false } } }, /default_resources/],
    ['a duplicate stop condition name', { stop_conditions: [{ name: 'a', description: '', expression: 'true' }, { name: 'a', description: '', expression: 'false' }] }, /stop_conditions\.1\.name/],
    ['a stop condition that does not compile', { stop_conditions: [{ name: 'broken', description: '', expression: 'active_count >' }] }, /stop_conditions\.0\.expression/],
    ['33 stop conditions', { stop_conditions: Array.from({ length: 33 }, (_, i) => ({ name: `c${i}`, description: '', expression: 'false' })) }, /stop_conditions/],
  ])('PUT refuses %s with 400 naming the field', async (_label, overrides, detail) => {
    const t = await fresh()
    const before = dbSnapshot(storeOf(t.warden).db)
    const problem = expectProblem(await send(t, 'PUT', '/v1/contract', { headers: t.op, body: contractBody(overrides) }), 400)
    expect(problem.detail).toMatch(detail)
    expect(dbSnapshot(storeOf(t.warden).db)).toEqual(before)
  })

  it('PUT replaces the contract with version + 1, audits contract_updated, and the new rules apply at once', async () => {
    const t = await fresh()
    const root = registerRoot(t.warden)
    t.clock.advance(1_000)
    const res = await send(t, 'PUT', '/v1/contract', { headers: t.op, body: contractBody({ max_depth: 0 }) })
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json()).toMatchObject({ max_depth: 0, version: 2, updated_at: iso(T0 + 1_000) })
    expect(lastAudit(t)).toMatchObject({ type: 'contract_updated', actor: 'operator' })
    expect(JSON.parse(lastAudit(t).data)).toMatchObject({ version: 2 })
    expect((await send(t, 'GET', '/v1/contract', { headers: t.op })).json()).toMatchObject({ version: 2, max_depth: 0 })
    expectProblem(await send(t, 'POST', `/v1/workers/${root.id}/spawn`, { headers: bearer(root.token), body: { reason: 'x' } }), 403, 'depth_exceeded')
    const third = await send(t, 'PUT', '/v1/contract', { headers: t.op, body: contractBody({ max_depth: 1 }) })
    expect(third.json()).toMatchObject({ version: 3 })
  })
})

describe('system endpoints', () => {
  it('GET /healthz answers ok and GET /readyz answers ready', async () => {
    const t = await fresh()
    const health = await send(t, 'GET', '/healthz')
    expect(health.statusCode).toBe(200)
    expect(health.json()).toEqual({ status: 'ok' })
    const ready = await send(t, 'GET', '/readyz')
    expect(ready.statusCode).toBe(200)
    expect(ready.json()).toEqual({
      status: 'ready',
      sandbox: { driver: 'none', available: false, not_enforced: ['memory', 'cpu', 'pids', 'network', 'freeze', 'kill'], reason: 'no sandbox driver is configured' },
    })
  })

  const scrape = async (app: FastifyInstance) => {
    const res = await app.inject({ method: 'GET', url: '/metrics' })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toMatch(/^text\/plain/)
    return res.body
  }

  it('GET /metrics exposes workers by status, decisions, the kill switch and request durations in Prometheus text', async () => {
    const m = await serverLikeApp()
    const op = bearer(OPERATOR_TOKEN)
    const a = registerRoot(m.warden)
    registerRoot(m.warden)
    await m.app.inject(call('POST', `/v1/workers/${a.id}/heartbeat`, { headers: bearer(a.token) }))
    await m.app.inject(call('POST', '/v1/manifests', { headers: op, body: { resources: { cpu_limit: 99, memory_limit_mb: 1 } } }))

    let text = await scrape(m.app)
    expect(text).toContain('# TYPE warden_workers gauge')
    expect(text).toMatch(/^warden_workers\{status="active"\} 2$/m)
    expect(text).toMatch(/^warden_kill_switch_engaged 0$/m)
    expect(text).toMatch(/^warden_decisions_total\{type="worker_registered",code=""\} 2$/m)
    expect(text).toMatch(/^warden_decisions_total\{type="manifest_denied",code="resources_exceed_contract"\} 1$/m)
    expect(text).toMatch(/^warden_http_request_duration_seconds_count\{method="POST",route="\/v1\/workers\/:id\/heartbeat",status="200"\} 1$/m)

    await m.app.inject({ method: 'POST', url: '/v1/kill-switch', headers: op })
    text = await scrape(m.app)
    expect(text).toMatch(/^warden_kill_switch_engaged 1$/m)
    expect(text).toMatch(/^warden_workers\{status="killed"\} 2$/m)
    expect(text).toMatch(/^warden_workers\{status="active"\} 0$/m)
  })

  it('GET /metrics counts heartbeats by directive in warden_heartbeats_total', async () => {
    const m = await serverLikeApp()
    const a = registerRoot(m.warden)
    await m.app.inject(call('POST', `/v1/workers/${a.id}/heartbeat`, { headers: bearer(a.token) }))
    await m.app.inject(call('POST', `/v1/workers/${a.id}/heartbeat`, { headers: bearer(a.token) }))
    const text = await scrape(m.app)
    expect(text).toContain('# TYPE warden_heartbeats_total counter')
    expect(text).toMatch(/^warden_heartbeats_total\{directive="continue"\} 2$/m)
  })

  it('GET /openapi.json serves an OpenAPI 3.1 document with every SPEC §3 path, each operation with an operationId and the right security', async () => {
    const t = await fresh()
    const res = await send(t, 'GET', '/openapi.json')
    expect(res.statusCode, res.body.slice(0, 300)).toBe(200)
    const doc = res.json<{ openapi: string; paths: Record<string, Record<string, { operationId?: string; security?: unknown }>> }>()
    expect(doc.openapi).toMatch(/^3\.1\./)
    const operationIds: string[] = []
    for (const route of SPEC_ROUTES.filter((r) => r.path !== '/docs' && r.path !== '/openapi.json')) {
      const operation = doc.paths[route.path]?.[route.method.toLowerCase()]
      expect(operation, `${route.method} ${route.path} is missing`).toBeDefined()
      expect(operation!.operationId, `${route.method} ${route.path} has no operationId`).toMatch(/^[A-Za-z]\w+$/)
      operationIds.push(operation!.operationId!)
      const security = { op: [{ operatorToken: [] }], worker: [{ leaseToken: [] }], none: undefined }[route.auth]
      expect(operation!.security, `${route.method} ${route.path} security`).toEqual(security)
    }
    for (const operations of Object.values(doc.paths)) for (const operation of Object.values(operations)) expect(operation.operationId).toBeDefined()
    expect(new Set(operationIds).size).toBe(operationIds.length)
  })

  it('GET /docs serves the Swagger UI, and the document it loads', async () => {
    const t = await fresh()
    let res = await send(t, 'GET', '/docs')
    for (let hops = 0; res.statusCode >= 300 && res.statusCode < 400 && hops < 3; hops++) {
      res = await send(t, 'GET', new URL(String(res.headers.location), 'http://localhost/docs').pathname)
    }
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toMatch(/^text\/html/)
    expect(res.body).toMatch(/swagger-ui/i)
    const document = await send(t, 'GET', '/docs/json')
    expect(document.statusCode, document.body.slice(0, 300)).toBe(200)
  })

  it('answers an unknown route with a 404 not_found problem', async () => {
    const t = await fresh()
    expectProblem(await send(t, 'GET', '/v2/workers', { headers: t.op }), 404, 'not_found')
    expectProblem(await t.app.inject({ method: 'PATCH', url: '/v1/contract', headers: t.op }), 404, 'not_found')
  })
})

describe('request ids', () => {
  it('puts a unique x-request-id on every response, success or problem, equal to the problem request_id', async () => {
    const t = await fresh()
    const w = registerRoot(t.warden)
    const responses: LightMyRequestResponse[] = []
    for (const route of SPEC_ROUTES) {
      const headers = route.auth === 'worker' ? bearer(w.token) : t.op
      const body = route.method === 'PUT' ? { ...DEFAULT_CONTRACT } : route.path.endsWith('/spawn') ? { reason: 'x' } : route.path.endsWith('/quarantine') && route.method === 'POST' ? { reason: 'x' } : undefined
      responses.push(await send(t, route.method, urlOf(route.path, w.id), { headers, body }))
      responses.push(await send(t, route.method, urlOf(route.path, w.id), { headers: bearer('wrong') }))
    }
    responses.push(await t.app.inject({ method: 'POST', url: '/v1/manifests', headers: { ...t.op, 'content-type': 'application/json' }, payload: 'x'.repeat(70_000) }))
    responses.push(await t.app.inject({ method: 'POST', url: '/v1/manifests', headers: { ...t.op, 'content-type': 'application/xml' }, payload: '<a/>' }))
    responses.push(await t.app.inject({ method: 'POST', url: '/v1/manifests', headers: { ...t.op, 'content-type': 'application/json' }, payload: '{' }))
    responses.push(await send(t, 'GET', '/nowhere'))

    const ids = responses.map((res) => res.headers['x-request-id'])
    for (const [index, res] of responses.entries()) {
      expect(ids[index], `${res.statusCode} ${res.body.slice(0, 120)}`).toEqual(expect.any(String))
      if (String(res.headers['content-type']).startsWith('application/problem+json')) {
        expect(res.json<{ request_id: string }>().request_id).toBe(ids[index])
      }
    }
    expect(new Set(ids).size).toBe(ids.length)
  })
})

describe('GET /v1/summary', () => {
  it('counts workers by status, outstanding manifests and slots in use (live + outstanding), with the kill switch and audit head', async () => {
    const t = await fresh({ max_replicas: 9 })
    const a = registerRoot(t.warden)
    const b = registerRoot(t.warden)
    registerChild(t.warden, a.id)
    t.warden.admission.issueRoot({}) // outstanding
    await send(t, 'POST', `/v1/workers/${b.id}/quarantine`, { headers: t.op, body: { reason: 'look' } })
    await send(t, 'POST', `/v1/workers/${a.id}/kill`, { headers: t.op, body: { cascade: false } })
    const res = await send(t, 'GET', '/v1/summary', { headers: t.op })
    expect(res.statusCode, res.body).toBe(200)
    const body = res.json()
    expect(body.workers).toMatchObject({ active: 1, quarantined: 1, killed: 1, reaped: 0 })
    expect(body.outstanding_manifests).toBe(1)
    expect(body.slots_in_use).toBe(3)
    expect(body.max_replicas).toBe(9)
    expect(body.kill_switch.engaged).toBe(false)
    expect(body.audit_head_seq).toBe(storeOf(t.warden).audit.head().seq)
  })
})
