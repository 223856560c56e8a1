// Managed workers (SPEC §5, §2.12–2.13) against a fake driver that records its calls: every
// decision maps to the driver call that carries it out, and every end of a sandbox to `exited`.
import { afterEach, describe, expect, it } from 'vitest'
import { exitReason } from '../../src/domain/sandboxes.js'
import type { ContractInput, Manifest, SandboxLaunchRequest, StateSnapshot } from '../../src/schemas/index.js'
import { createFakeSandbox, flushAsync, type FakeSandbox } from '../helpers/fake-sandbox.js'
import { createTestWarden, registerRoot, type TestWarden, storeOf } from '../helpers/harness.js'
import { auditRecords, expectDomainError, lastAudit, SECOND, tableCount, worker } from './support.js'

const open: TestWarden[] = []
afterEach(() => {
  for (const t of open.splice(0)) t.close()
})

function setup(overrides: Partial<ContractInput> = {}): TestWarden & { fake: FakeSandbox } {
  const fake = createFakeSandbox()
  const t = createTestWarden({ heartbeat_timeout_seconds: 30, expiration_seconds: 3600, ...overrides }, ':memory:', undefined, fake)
  open.push(t)
  return { ...t, fake }
}

const PROGRAM = { command: ['node', 'agent.mjs', '--rounds', '3'], env: { AGENT_MODE: 'test' } }

async function launch(t: TestWarden, request: Partial<SandboxLaunchRequest> = {}) {
  const result = t.warden.sandboxes.launchRoot({ program: PROGRAM, ...request })
  await result.launched
  return result
}

async function spawnManaged(t: TestWarden, parentId: string, request: { state_snapshot?: StateSnapshot } = {}) {
  const { manifest, launched } = t.warden.sandboxes.spawn({ worker_id: parentId }, { reason: 'grow', ...request })
  expect(launched, 'a managed parent gets a launched child').not.toBeNull()
  await launched
  return manifest
}

describe('POST /v1/sandboxes: a managed root in one decision', () => {
  it('issues, registers and launches with the program, the lease token and the signed manifest', async () => {
    const t = setup()
    const { manifest, worker: view } = await launch(t, { state_snapshot: { task: 'count' } })
    expect(view).toMatchObject({ worker_id: manifest.worker_id, status: 'active', managed: true, depth: 0 })

    expect(t.fake.calls).toEqual([`launch ${manifest.worker_id}`])
    const spec = t.fake.launches[0]!
    expect(spec.program).toEqual(PROGRAM)
    expect(spec.resources).toEqual(manifest.resources)
    expect(spec.env.WARDEN_WORKER_ID).toBe(manifest.worker_id)
    expect(JSON.parse(spec.env.WARDEN_MANIFEST!)).toEqual(manifest)
    expect(t.warden.authentication.worker(manifest.worker_id, spec.env.WARDEN_LEASE_TOKEN)).toEqual({ worker_id: manifest.worker_id })
    expect(Object.keys(spec.env).sort()).toEqual(['WARDEN_LEASE_TOKEN', 'WARDEN_MANIFEST', 'WARDEN_WORKER_ID'])

    const after = t.warden.queries.worker(manifest.worker_id)
    expect(after.sandbox).toMatchObject({ driver: 'process', state: 'running', pid: 1000, exit_code: null, signal: null })
    expect(after.sandbox!.usage).toMatchObject({ pids: 1, memory_bytes: 1 << 20 })
    expect(storeOf(t.warden).manifests.get(manifest.worker_id)?.status).toBe('registered')
    expect(auditRecords(t.warden).slice(-3).map((r) => r.type)).toEqual(['manifest_issued', 'worker_registered', 'sandbox_launched'])
    expect(lastAudit(t.warden).data).toMatchObject({ pid: 1000, command: 'node', driver: 'process' })
    // The manifest was used by Warden: nobody can register it again.
    expectDomainError(() => t.warden.admission.register(manifest), 'manifest_already_used')
  })

  it('answers sandbox_unavailable when no driver can run, issuing nothing', () => {
    const t = setup()
    t.fake.available = false
    expectDomainError(() => t.warden.sandboxes.launchRoot({ program: PROGRAM }), 'sandbox_unavailable')
    expect(tableCount(t.warden, 'manifests')).toBe(0)
    expect(t.fake.calls).toEqual([])
    expect(lastAudit(t.warden)).toMatchObject({ type: 'manifest_denied', code: 'sandbox_unavailable' })
  })

  it('without a driver at all (WARDEN_SANDBOX=none) refuses the same way', () => {
    const t = createTestWarden()
    open.push(t)
    expect(t.warden.queries.sandboxDriver()).toMatchObject({ driver: 'none', available: false })
    expectDomainError(() => t.warden.sandboxes.launchRoot({ program: PROGRAM }), 'sandbox_unavailable')
  })

  it('is denied by the contract like any root (quota, kill switch): audited, nothing launched', async () => {
    const t = setup({ max_replicas: 1 })
    await launch(t)
    expectDomainError(() => t.warden.sandboxes.launchRoot({ program: PROGRAM }), 'quota_exceeded')
    expect(lastAudit(t.warden)).toMatchObject({ type: 'manifest_denied', code: 'quota_exceeded' })
    t.warden.killSwitch.engage('drill')
    expectDomainError(() => t.warden.sandboxes.launchRoot({ program: PROGRAM }), 'kill_switch_engaged')
    expect(t.fake.launches).toHaveLength(1)
  })

  it('a launch that fails ends the worker exited with the cause, freeing its slot', async () => {
    const t = setup({ max_replicas: 1 })
    t.fake.failLaunch = 'bwrap: execvp node: No such file or directory'
    const { manifest } = await launch(t)
    const row = worker(t.warden, manifest.worker_id)
    expect(row).toMatchObject({ status: 'exited', reason: 'launch failed: bwrap: execvp node: No such file or directory' })
    expect(t.warden.queries.worker(row.worker_id).sandbox).toMatchObject({ state: 'ended', pid: null, usage: null })
    expect(lastAudit(t.warden)).toMatchObject({ type: 'sandbox_exited', worker_id: manifest.worker_id, code: 'exited' })
    t.fake.failLaunch = null
    await launch(t)
  })
})

describe('spawn of a managed worker', () => {
  it("launches the child with its root's program and its own manifest, already registered", async () => {
    const t = setup()
    const root = (await launch(t, { state_snapshot: { generation: 0 } })).manifest
    const child = await spawnManaged(t, root.worker_id, { state_snapshot: { generation: 1 } })
    const grandchild = await spawnManaged(t, child.worker_id, { state_snapshot: { generation: 2 } })

    for (const [manifest, generation] of [
      [child, 1],
      [grandchild, 2],
    ] as Array<[Manifest, number]>) {
      const spec = t.fake.launches.find((s) => s.worker_id === manifest.worker_id)!
      expect(spec.program).toEqual(PROGRAM)
      expect(JSON.parse(spec.env.WARDEN_MANIFEST!)).toEqual(manifest)
      expect(JSON.parse(spec.env.WARDEN_MANIFEST!).state_snapshot).toEqual({ generation })
      expect(worker(t.warden, manifest.worker_id)).toMatchObject({ status: 'active', parent_id: manifest.parent_id })
      expect(t.warden.queries.worker(manifest.worker_id)).toMatchObject({ managed: true, sandbox: { state: 'running' } })
      // The approval is not a process the parent can run elsewhere.
      expectDomainError(() => t.warden.admission.register(manifest), 'manifest_already_used')
    }
    expect(grandchild.depth).toBe(2)
  })

  it('keeps the spawn rules: a denied spawn launches nothing', async () => {
    const t = setup({ max_depth: 1 })
    const root = (await launch(t)).manifest
    const child = await spawnManaged(t, root.worker_id)
    expectDomainError(() => t.warden.sandboxes.spawn({ worker_id: child.worker_id }, { reason: 'deeper' }), 'depth_exceeded')
    expect(t.fake.launches.map((s) => s.worker_id)).toEqual([root.worker_id, child.worker_id])
  })

  it('an external parent gets a manifest to register itself, and nothing is launched', () => {
    const t = setup()
    const parent = registerRoot(t.warden).id
    const { manifest, launched } = t.warden.sandboxes.spawn({ worker_id: parent }, { reason: 'grow' })
    expect(launched).toBeNull()
    expect(storeOf(t.warden).manifests.get(manifest.worker_id)?.status).toBe('outstanding')
    expect(t.fake.calls).toEqual([])
    expect(t.warden.queries.worker(parent)).toMatchObject({ managed: false, sandbox: null })
  })
})

describe('Idempotency-Key on managed launches (SPEC §3 Retries)', () => {
  it('a keyed repeat of POST /v1/sandboxes answers the first manifest and launches nothing more', async () => {
    const t = setup()
    const first = t.warden.sandboxes.launchRoot({ program: PROGRAM }, 'key-1')
    await first.launched
    const again = t.warden.sandboxes.launchRoot({ program: PROGRAM }, 'key-1')
    await again.launched
    expect(again.manifest).toEqual(first.manifest)
    expect(t.fake.launches).toHaveLength(1)
    expect(tableCount(t.warden, 'workers')).toBe(1)
    expectDomainError(() => t.warden.sandboxes.launchRoot({ program: { command: ['other'] } }, 'key-1'), 'idempotency_key_reused')
  })

  it('a keyed repeat answers the first launch even when the driver has become unavailable; a keyed 503 is not kept', async () => {
    const t = setup()
    t.fake.available = false
    expectDomainError(() => t.warden.sandboxes.launchRoot({ program: PROGRAM }, 'key-2'), 'sandbox_unavailable')
    t.fake.available = true
    // The 503 decided nothing: the same key now launches.
    const first = t.warden.sandboxes.launchRoot({ program: PROGRAM }, 'key-2')
    await first.launched
    expect(t.fake.launches).toHaveLength(1)
    const records = auditRecords(t.warden).length
    t.fake.available = false
    const again = t.warden.sandboxes.launchRoot({ program: PROGRAM }, 'key-2')
    await again.launched
    expect(again.manifest).toEqual(first.manifest)
    expect(auditRecords(t.warden)).toHaveLength(records)
    expect(t.fake.launches).toHaveLength(1)
  })

  it("a managed parent's keyed repeat spawn answers the same child and launches nothing more", async () => {
    const t = setup()
    const root = (await launch(t)).manifest.worker_id
    const first = t.warden.sandboxes.spawn({ worker_id: root }, { reason: 'grow' }, 'spawn-1')
    await first.launched
    const again = t.warden.sandboxes.spawn({ worker_id: root }, { reason: 'grow' }, 'spawn-1')
    expect(again.launched).toBeNull()
    expect(again.manifest).toEqual(first.manifest)
    expect(t.fake.launches.map((spec) => spec.worker_id)).toEqual([root, first.manifest.worker_id])
  })
})

describe('decisions carried out on processes (SPEC §2.12)', () => {
  async function tree(t: TestWarden & { fake: FakeSandbox }) {
    const root = (await launch(t)).manifest.worker_id
    const child = (await spawnManaged(t, root)).worker_id
    const external = registerRoot(t.warden).id
    t.fake.calls.length = 0
    return { root, child, external }
  }

  it('kill with cascade kills every sandbox of the subtree', async () => {
    const t = setup()
    const { root, child } = await tree(t)
    t.warden.transitions.kill(root, { reason: 'stop', cascade: true })
    await flushAsync()
    expect(t.fake.calls.sort()).toEqual([`kill ${child}`, `kill ${root}`].sort())
    expect(t.fake.running.size).toBe(0)
  })

  it('the kill switch kills every managed sandbox, and only those', async () => {
    const t = setup()
    const { root, child } = await tree(t)
    t.warden.killSwitch.engage('drill')
    await flushAsync()
    expect(t.fake.calls).toEqual([`kill ${[root, child].sort().join(',')}`])
  })

  it('reap, expiry and deregistration kill the sandbox', async () => {
    const t = setup({ expiration_seconds: 100, heartbeat_timeout_seconds: 30 })
    const { root, child } = await tree(t)
    t.warden.transitions.deregister(child, 'done')
    await flushAsync()
    expect(t.fake.calls).toEqual([`kill ${child}`])

    t.fake.calls.length = 0
    t.clock.advance(31 * SECOND)
    t.warden.liveness.tick()
    await flushAsync()
    expect(worker(t.warden, root).status).toBe('reaped')
    expect(t.fake.calls).toEqual([`kill ${root}`])

    const expiring = (await launch(t)).manifest.worker_id
    t.fake.calls.length = 0
    for (let i = 0; i < 4; i++) {
      t.clock.advance(29 * SECOND)
      if (i < 3) t.warden.liveness.heartbeat(expiring)
    }
    t.warden.liveness.tick()
    await flushAsync()
    expect(worker(t.warden, expiring).status).toBe('expired')
    expect(t.fake.calls).toEqual([`kill ${expiring}`])
  })

  it('a worker ended lazily at its own heartbeat is killed too', async () => {
    const t = setup({ heartbeat_timeout_seconds: 30 })
    const { child } = await tree(t)
    t.clock.advance(31 * SECOND)
    expectDomainError(() => t.warden.liveness.heartbeat(child), 'worker_terminated')
    await flushAsync()
    expect(t.fake.calls).toContain(`kill ${child}`)
  })

  it('decisions on an external worker make no driver call', async () => {
    const t = setup()
    const { external } = await tree(t)
    t.warden.transitions.quarantine(external, 'look')
    t.warden.transitions.release(external)
    t.warden.transitions.kill(external, { cascade: true })
    await flushAsync()
    expect(t.fake.calls).toEqual([])
  })

  it('a kill committed while the launch is under way kills the sandbox once it runs', async () => {
    const t = setup()
    t.fake.holdLaunches = true
    const pending = t.warden.sandboxes.launchRoot({ program: PROGRAM })
    t.warden.transitions.kill(pending.manifest.worker_id, { cascade: true })
    t.fake.releaseLaunches()
    await pending.launched
    await flushAsync()
    // Killed when the decision committed (the driver may not know it yet) and again once it runs.
    expect(t.fake.calls).toEqual([`launch ${pending.manifest.worker_id}`, `kill ${pending.manifest.worker_id}`, `kill ${pending.manifest.worker_id}`])
    expect(t.fake.running.size).toBe(0)
  })
})

describe('quarantine freezes, release thaws (SPEC §5)', () => {
  it('freezes, holds the lease while frozen (never reaped), then thaws with a fresh lease', async () => {
    const t = setup({ heartbeat_timeout_seconds: 30 })
    const id = (await launch(t)).manifest.worker_id
    t.warden.transitions.quarantine(id, 'inspect')
    await t.warden.sandboxes.settled(id)
    expect(t.fake.frozen.has(id)).toBe(true)
    expect(t.warden.queries.worker(id).sandbox?.state).toBe('frozen')
    expect(lastAudit(t.warden)).toMatchObject({ type: 'sandbox_frozen', worker_id: id })

    for (let i = 0; i < 5; i++) {
      t.clock.advance(20 * SECOND)
      t.warden.liveness.tick()
    }
    expect(worker(t.warden, id).status).toBe('quarantined')

    t.warden.transitions.release(id)
    await t.warden.sandboxes.settled(id)
    expect(t.fake.frozen.has(id)).toBe(false)
    expect(t.warden.queries.worker(id)).toMatchObject({
      status: 'active',
      sandbox: { state: 'running' },
      lease_expires_at: new Date(t.clock.now() + 30 * SECOND).toISOString(),
    })
    expect(lastAudit(t.warden)).toMatchObject({ type: 'sandbox_thawed', worker_id: id })
    expect(t.fake.calls.slice(-2)).toEqual([`freeze ${id}`, `thaw ${id}`])

    // Released, it must heartbeat again: silence now reaps it.
    t.clock.advance(31 * SECOND)
    t.warden.liveness.tick()
    expect(worker(t.warden, id).status).toBe('reaped')
  })

  it('an external quarantined worker keeps its own lease (it can still heartbeat)', () => {
    const t = setup({ heartbeat_timeout_seconds: 30 })
    const id = registerRoot(t.warden).id
    t.warden.transitions.quarantine(id, 'inspect')
    t.clock.advance(31 * SECOND)
    t.warden.liveness.tick()
    expect(worker(t.warden, id).status).toBe('reaped')
  })
})

describe('a sandbox that ends', () => {
  it.each([
    [{ exit_code: 3, signal: null, oom: false }, 'exit code 3'],
    [{ exit_code: null, signal: 'SIGSEGV', oom: false }, 'killed by signal SIGSEGV'],
    [{ exit_code: null, signal: 'SIGKILL', oom: true }, 'out of memory (killed by signal SIGKILL)'],
  ])('ends its live worker exited (%o -> %s), audited; its heartbeat answers 410 exited', async (exit, reason) => {
    const t = setup()
    const id = (await launch(t)).manifest.worker_id
    const token = t.fake.launches[0]!.env.WARDEN_LEASE_TOKEN
    expect(exitReason(exit)).toBe(reason)
    t.warden.sandboxes.ended({ worker_id: id, ...exit })
    expect(worker(t.warden, id)).toMatchObject({ status: 'exited', reason })
    expect(t.warden.queries.worker(id).sandbox).toMatchObject({ state: 'ended', exit_code: exit.exit_code, signal: exit.signal })
    const records = auditRecords(t.warden).filter((r) => r.worker_id === id && r.type.startsWith('sandbox_'))
    expect(records.map((r) => r.type)).toEqual(exit.oom ? ['sandbox_launched', 'sandbox_exited', 'sandbox_oom'] : ['sandbox_launched', 'sandbox_exited'])
    expect(records[1]).toMatchObject({ code: 'exited', data: { reason, exit_code: exit.exit_code, signal: exit.signal } })
    expect(token).toBeDefined()
    const gone = expectDomainError(() => t.warden.liveness.heartbeat(id), 'worker_terminated')
    expect(gone.extras).toMatchObject({ reason: 'exited', directive: 'terminate' })
  })

  it('after a kill, the sandbox end is recorded and the worker stays killed', async () => {
    const t = setup()
    const id = (await launch(t)).manifest.worker_id
    t.warden.transitions.kill(id, { reason: 'stop', cascade: true })
    t.warden.sandboxes.ended({ worker_id: id, exit_code: null, signal: 'SIGKILL', oom: false })
    t.warden.sandboxes.ended({ worker_id: id, exit_code: null, signal: 'SIGKILL', oom: false })
    expect(worker(t.warden, id)).toMatchObject({ status: 'killed', reason: 'stop' })
    expect(auditRecords(t.warden, 'sandbox_exited')).toHaveLength(1)
    expect(lastAudit(t.warden)).toMatchObject({ type: 'sandbox_exited', data: { worker_status: 'killed', signal: 'SIGKILL' } })
  })

  it('an OOM kill inside a sandbox that keeps running is audited when usage shows it', async () => {
    const t = setup()
    const id = (await launch(t)).manifest.worker_id
    t.fake.usageOf.set(id, { cpu_seconds: 1, memory_bytes: 10, memory_peak_bytes: 64 << 20, pids: 2, oom_kills: 1 })
    t.clock.advance(5 * SECOND)
    t.warden.sandboxes.poll()
    t.warden.sandboxes.poll()
    expect(auditRecords(t.warden, 'sandbox_oom')).toHaveLength(1)
    expect(lastAudit(t.warden)).toMatchObject({ type: 'sandbox_oom', worker_id: id, data: { oom_kills: 1 } })
    expect(worker(t.warden, id).status).toBe('active')
  })

  it('at start, every managed worker still live ends exited (controller stopped); external ones keep their lease', async () => {
    const t = setup()
    const managed = (await launch(t)).manifest.worker_id
    const frozen = (await launch(t)).manifest.worker_id
    t.warden.transitions.quarantine(frozen, 'look')
    await t.warden.sandboxes.settled(frozen)
    const external = registerRoot(t.warden).id
    expect(t.warden.sandboxes.reconcile()).toEqual({ exited: 2 })
    for (const id of [managed, frozen]) {
      expect(worker(t.warden, id)).toMatchObject({ status: 'exited', reason: 'controller stopped' })
      expect(t.warden.queries.worker(id).sandbox?.state).toBe('ended')
    }
    expect(worker(t.warden, external).status).toBe('active')
    expect(auditRecords(t.warden, 'sandbox_exited').map((r) => r.data.reason)).toEqual(['controller stopped', 'controller stopped'])
    expect(t.warden.sandboxes.reconcile()).toEqual({ exited: 0 })
  })

  it('usage by sandbox state sums the live sandboxes', async () => {
    const t = setup()
    await launch(t)
    const frozen = (await launch(t)).manifest.worker_id
    t.warden.transitions.quarantine(frozen, 'look')
    await t.warden.sandboxes.settled(frozen)
    const byState = Object.fromEntries(t.warden.sandboxes.usageByState().map((entry) => [entry.state, entry]))
    expect(byState.running).toMatchObject({ sandboxes: 1, pids: 1 })
    expect(byState.frozen).toMatchObject({ sandboxes: 1, memory_bytes: 1 << 20 })
  })
})
