// SPEC §2.1–2.5 and §2.6 at the door: quota, depth, cooldown, resources, stop conditions, the
// kill switch and the parent's state, for issuance (root and spawn) and again at registration.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { DomainError, type ErrorCode } from '../../src/domain/errors.js'
import type { Warden } from '../../src/domain/index.js'
import { exceeds } from '../../src/domain/resources.js'
import type { ContractInput, Manifest, Resources } from '../../src/schemas/index.js'
import { createTestWarden, occupiedSlots, registerChild, registerRoot, storeOf } from '../helpers/harness.js'
import {
  auditRecords,
  expectDomainError,
  lastAudit,
  manifestStatus,
  SECOND,
  tableCount,
  updateContract,
  worker,
  wardenPerTest,
  WAYS_TO_END,
} from './support.js'

const setup = wardenPerTest()

const spawn = (warden: Warden, parentId: string, request: { resources?: Resources; state_snapshot?: Record<string, never> } = {}) =>
  warden.admission.spawn(worker(warden, parentId), { reason: 'test', ...request })

const res = (cpu_limit: number, memory_limit_mb: number, allow_external = false): Resources => ({
  cpu_limit,
  memory_limit_mb,
  network_policy: { allow_controller: true, allow_external },
})

describe('quota: live + quarantined + outstanding manifests <= max_replicas', () => {
  it('counts active, quarantined and outstanding manifests, and denies the next issuance with quota_exceeded', () => {
    const { warden } = setup({ max_replicas: 3 })
    registerRoot(warden)
    const b = registerRoot(warden)
    warden.transitions.quarantine(b.id, 'inspect')
    warden.admission.issueRoot({})
    expect(occupiedSlots(warden)).toBe(3)

    const manifestsBefore = tableCount(warden, 'manifests')
    const error = expectDomainError(() => warden.admission.issueRoot({}), 'quota_exceeded')
    expect(error.status).toBe(403)
    expect(tableCount(warden, 'manifests')).toBe(manifestsBefore)
    expect(lastAudit(warden)).toMatchObject({ type: 'manifest_denied', code: 'quota_exceeded' })
  })

  it('denies a spawn over the quota with quota_exceeded and a spawn_denied record', () => {
    const { warden } = setup({ max_replicas: 2 })
    const root = registerRoot(warden)
    spawn(warden, root.id)
    expectDomainError(() => spawn(warden, root.id), 'quota_exceeded')
    expect(lastAudit(warden)).toMatchObject({ type: 'spawn_denied', code: 'quota_exceeded', parent_id: root.id })
    expect(occupiedSlots(warden)).toBe(2)
  })

  it('keeps the slot of an outstanding manifest until it registers, then counts that worker once', () => {
    const { warden } = setup({ max_replicas: 2 })
    const first = warden.admission.issueRoot({})
    warden.admission.issueRoot({})
    expectDomainError(() => warden.admission.issueRoot({}), 'quota_exceeded')
    warden.admission.register(first)
    expect(occupiedSlots(warden)).toBe(2)
    expectDomainError(() => warden.admission.issueRoot({}), 'quota_exceeded')
  })

  it('frees the slot of an outstanding manifest exactly when its TTL passes, before any reaper tick', () => {
    const { warden, clock } = setup({ max_replicas: 1, manifest_ttl_seconds: 10 })
    const stale = warden.admission.issueRoot({})
    clock.advance(10 * SECOND - 1)
    expectDomainError(() => warden.admission.issueRoot({}), 'quota_exceeded')
    clock.advance(1)
    const fresh = warden.admission.issueRoot({})
    expect(occupiedSlots(warden)).toBe(1)
    expectDomainError(() => warden.admission.register(stale), 'manifest_expired')
    expect(warden.admission.register(fresh).worker.status).toBe('active')
  })

  // The kill switch frees slots too, but leaves nothing to admit afterwards.
  for (const [status, end] of WAYS_TO_END.filter(([reason]) => reason !== 'kill_switch')) {
    it(`frees the slot of a ${status} worker`, () => {
      const t = setup({ max_replicas: 1, heartbeat_timeout_seconds: 30, expiration_seconds: 40 })
      const { id } = registerRoot(t.warden)
      expectDomainError(() => t.warden.admission.issueRoot({}), 'quota_exceeded')
      end(t, id)
      expect(worker(t.warden, id).status).toBe(status)
      expect(occupiedSlots(t.warden)).toBe(0)
      expect(t.warden.admission.issueRoot({}).depth).toBe(0)
    })
  }

  it('refuses to register an outstanding manifest with quota_exceeded after max_replicas was lowered below use', () => {
    const { warden } = setup({ max_replicas: 3 })
    registerRoot(warden)
    const a = warden.admission.issueRoot({})
    const b = warden.admission.issueRoot({})
    updateContract(warden, { max_replicas: 2 })

    expectDomainError(() => warden.admission.register(a), 'quota_exceeded')
    expect(storeOf(warden).workers.get(a.worker_id)).toBeUndefined()
    expect(manifestStatus(warden, a.worker_id)).toBe('rejected')
    expect(lastAudit(warden)).toMatchObject({ type: 'registration_rejected', code: 'quota_exceeded', worker_id: a.worker_id })
    // The refused manifest gave its slot back: 1 live + b = 2, within the new limit.
    expect(warden.admission.register(b).worker.status).toBe('active')
    expect(occupiedSlots(warden)).toBe(2)
  })
})

describe('depth', () => {
  it('gives a root depth 0 and each child its parent depth + 1', () => {
    const { warden } = setup({ max_depth: 3 })
    const root = registerRoot(warden)
    const child = registerChild(warden, root.id)
    const grandchild = registerChild(warden, child.id)
    expect([root, child, grandchild].map((w) => w.manifest.depth)).toEqual([0, 1, 2])
    expect(worker(warden, grandchild.id)).toMatchObject({ depth: 2, parent_id: child.id })
    expect(worker(warden, child.id)).toMatchObject({ depth: 1, parent_id: root.id })
  })

  it('denies a spawn beyond max_depth with depth_exceeded and issues nothing', () => {
    const { warden } = setup({ max_depth: 1 })
    const root = registerRoot(warden)
    const child = registerChild(warden, root.id)
    const manifests = tableCount(warden, 'manifests')
    expectDomainError(() => spawn(warden, child.id), 'depth_exceeded')
    expect(tableCount(warden, 'manifests')).toBe(manifests)
    expect(lastAudit(warden)).toMatchObject({ type: 'spawn_denied', code: 'depth_exceeded', parent_id: child.id })
  })

  it('with max_depth 0 allows roots but no spawn at all', () => {
    const { warden } = setup({ max_depth: 0 })
    const root = registerRoot(warden)
    expect(root.manifest.depth).toBe(0)
    expectDomainError(() => spawn(warden, root.id), 'depth_exceeded')
  })

  it('checks depth again at registration when max_depth was lowered after issuance', () => {
    const { warden } = setup({ max_depth: 2 })
    const root = registerRoot(warden)
    const child = registerChild(warden, root.id)
    const grandchild = spawn(warden, child.id)
    expect(grandchild.depth).toBe(2)
    updateContract(warden, { max_depth: 1 })

    const slots = occupiedSlots(warden)
    expectDomainError(() => warden.admission.register(grandchild), 'depth_exceeded')
    expect(storeOf(warden).workers.get(grandchild.worker_id)).toBeUndefined()
    expect(manifestStatus(warden, grandchild.worker_id)).toBe('rejected')
    expect(occupiedSlots(warden)).toBe(slots - 1)
    expect(lastAudit(warden)).toMatchObject({ type: 'registration_rejected', code: 'depth_exceeded', worker_id: grandchild.worker_id })
  })
})

describe('cooldown (measured from approval)', () => {
  it('denies a spawn inside the cooldown with cooldown_active, status 429 and retry_after, then allows it at the boundary', () => {
    const { warden, clock } = setup({ cooldown_seconds: 10 })
    const root = registerRoot(warden)
    spawn(warden, root.id)
    clock.advance(4 * SECOND)
    const error = expectDomainError(() => spawn(warden, root.id), 'cooldown_active')
    expect(error.status).toBe(429)
    expect(error.extras.retry_after).toBe(6)
    expect(lastAudit(warden)).toMatchObject({ type: 'spawn_denied', code: 'cooldown_active', data: { retry_after: 6 } })

    clock.advance(6 * SECOND - 1)
    expect(expectDomainError(() => spawn(warden, root.id), 'cooldown_active').extras.retry_after).toBe(1)
    clock.advance(1)
    expect(spawn(warden, root.id).parent_id).toBe(root.id)
  })

  it('rounds retry_after up to whole seconds', () => {
    const { warden, clock } = setup({ cooldown_seconds: 10 })
    const root = registerRoot(warden)
    spawn(warden, root.id)
    clock.advance(4500)
    expect(expectDomainError(() => spawn(warden, root.id), 'cooldown_active').extras.retry_after).toBe(6)
  })

  it('measures from the approval, not from the child registration', () => {
    const { warden, clock } = setup({ cooldown_seconds: 10 })
    const root = registerRoot(warden)
    const child = spawn(warden, root.id)
    clock.advance(8 * SECOND)
    warden.admission.register(child)
    clock.advance(2 * SECOND)
    // 10 s after the approval, 2 s after the registration.
    expect(spawn(warden, root.id).parent_id).toBe(root.id)
  })

  it('does not restart the cooldown on a denied spawn', () => {
    const { warden, clock } = setup({ cooldown_seconds: 10 })
    const root = registerRoot(warden)
    spawn(warden, root.id)
    clock.advance(9 * SECOND)
    expectDomainError(() => spawn(warden, root.id), 'cooldown_active')
    clock.advance(1 * SECOND)
    expect(spawn(warden, root.id).parent_id).toBe(root.id)
  })

  it('keeps one cooldown per parent', () => {
    const { warden } = setup({ cooldown_seconds: 60 })
    const a = registerRoot(warden)
    const b = registerRoot(warden)
    spawn(warden, a.id)
    expect(spawn(warden, b.id).parent_id).toBe(b.id)
    expectDomainError(() => spawn(warden, a.id), 'cooldown_active')
  })
})

describe('resources never grow down the tree', () => {
  it('denies a root or a spawn above max_resources with resources_exceed_contract', () => {
    const { warden } = setup()
    expectDomainError(() => warden.admission.issueRoot({ resources: res(4, 256) }), 'resources_exceed_contract')
    expect(lastAudit(warden)).toMatchObject({ type: 'manifest_denied', code: 'resources_exceed_contract' })
    expectDomainError(() => warden.admission.issueRoot({ resources: res(1, 4096) }), 'resources_exceed_contract')
    expectDomainError(() => warden.admission.issueRoot({ resources: res(1, 256, true) }), 'resources_exceed_contract')
    const root = registerRoot(warden, { resources: res(2, 2048) })
    expectDomainError(() => spawn(warden, root.id, { resources: res(2.5, 256) }), 'resources_exceed_contract')
  })

  it('denies a child above its parent in cpu or memory with resources_exceed_parent', () => {
    const { warden } = setup()
    const root = registerRoot(warden, { resources: res(1, 512) })
    expectDomainError(() => spawn(warden, root.id, { resources: res(1.5, 256) }), 'resources_exceed_parent')
    expect(lastAudit(warden)).toMatchObject({ type: 'spawn_denied', code: 'resources_exceed_parent' })
    expectDomainError(() => spawn(warden, root.id, { resources: res(0.5, 1024) }), 'resources_exceed_parent')
    expect(spawn(warden, root.id, { resources: res(1, 512) }).resources).toEqual(res(1, 512))
  })

  it('allows allow_external for a child only when its parent has it', () => {
    const { warden } = setup({ max_resources: res(2, 2048, true) })
    const open = registerRoot(warden, { resources: res(1, 512, true) })
    const closed = registerRoot(warden, { resources: res(1, 512, false) })
    expect(spawn(warden, open.id, { resources: res(1, 512, true) }).resources.network_policy.allow_external).toBe(true)
    expectDomainError(() => spawn(warden, closed.id, { resources: res(1, 512, true) }), 'resources_exceed_parent')
  })

  it('gives a child that names no resources the contract default clamped to its parent', () => {
    const { warden } = setup({
      default_resources: res(0.5, 256, true),
      max_resources: res(2, 2048, true),
    })
    const small = registerRoot(warden, { resources: res(0.25, 128, false) })
    expect(spawn(warden, small.id).resources).toEqual(res(0.25, 128, false))
    const big = registerRoot(warden, { resources: res(2, 1024, true) })
    expect(spawn(warden, big.id).resources).toEqual(res(0.5, 256, true))
  })

  it('checks resources again at registration against a lowered max_resources', () => {
    const { warden } = setup()
    const manifest = warden.admission.issueRoot({ resources: res(2, 1024) })
    updateContract(warden, { max_resources: res(1, 1024), default_resources: res(0.5, 256) })
    expectDomainError(() => warden.admission.register(manifest), 'resources_exceed_contract')
    expect(manifestStatus(warden, manifest.worker_id)).toBe('rejected')
  })
})

describe('stop conditions', () => {
  const condition = (name: string, expression: string) => ({ name, description: '', expression })

  it('reports the first triggered condition in list order, with its name', () => {
    const { warden } = setup({
      stop_conditions: [condition('never', 'active_count > 100'), condition('second', 'manifest.depth >= 0'), condition('third', 'true')],
    })
    const error = expectDomainError(() => warden.admission.issueRoot({}), 'stop_condition')
    expect(error.extras.condition).toBe('second')
    expect(lastAudit(warden)).toMatchObject({ type: 'manifest_denied', code: 'stop_condition', data: { condition: 'second' } })
    expect(tableCount(warden, 'manifests')).toBe(0)
  })

  it('evaluates against the replication context (manifest, active_count, contract, parent)', () => {
    const { warden } = setup({
      stop_conditions: [
        condition('memory', 'manifest.resources.memory_limit_mb * (active_count + 1) > 1024'),
        condition('deep', 'parent != null && parent.depth >= 1 && contract.max_depth > 1'),
      ],
    })
    const roots = [0, 1, 2, 3].map(() => registerRoot(warden))
    // 4 live workers: a fifth 256 MB worker would make 5 × 256 > 1024.
    expect(expectDomainError(() => warden.admission.issueRoot({}), 'stop_condition').extras.condition).toBe('memory')
    warden.transitions.deregister(roots[3]!.id, 'make room')
    warden.transitions.deregister(roots[2]!.id, 'make room')
    const child = registerChild(warden, roots[0]!.id)
    expect(expectDomainError(() => spawn(warden, child.id), 'stop_condition').extras.condition).toBe('deep')
  })

  it('evaluates the conditions again at registration', () => {
    const { warden } = setup()
    registerRoot(warden)
    const manifest = warden.admission.issueRoot({})
    updateContract(warden, { stop_conditions: [condition('crowded', 'active_count >= 1')] })
    const error = expectDomainError(() => warden.admission.register(manifest), 'stop_condition')
    expect(error.extras.condition).toBe('crowded')
    expect(storeOf(warden).workers.get(manifest.worker_id)).toBeUndefined()
    expect(manifestStatus(warden, manifest.worker_id)).toBe('rejected')
    expect(lastAudit(warden)).toMatchObject({ type: 'registration_rejected', code: 'stop_condition', data: { condition: 'crowded' } })
  })

  it('fails closed on an evaluation error at issuance and audits the error', () => {
    const { warden } = setup({ stop_conditions: [condition('broken', 'manifest.state_snapshot.missing > 1')] })
    const error = expectDomainError(() => warden.admission.issueRoot({}), 'stop_condition')
    expect(error.extras.condition).toBe('broken')
    const record = lastAudit(warden)
    expect(record).toMatchObject({ type: 'manifest_denied', code: 'stop_condition', data: { condition: 'broken' } })
    expect(record.data.evaluation_error).toMatch(/missing/)
    // The same condition evaluates cleanly when the key exists: it was the error that stopped it.
    expect(warden.admission.issueRoot({ state_snapshot: { missing: 0 } }).depth).toBe(0)
  })

  it('fails closed when a dyn expression evaluates to a non-bool', () => {
    const { warden } = setup({ stop_conditions: [condition('flag', 'manifest.state_snapshot.flag')] })
    expectDomainError(() => warden.admission.issueRoot({ state_snapshot: { flag: 'yes' } }), 'stop_condition')
    expect(lastAudit(warden).data.evaluation_error).toEqual(expect.any(String))
    expect(warden.admission.issueRoot({ state_snapshot: { flag: false } }).depth).toBe(0)
  })

  it('fails closed on an evaluation error at registration and audits the error', () => {
    const { warden } = setup()
    const manifest = warden.admission.issueRoot({})
    updateContract(warden, { stop_conditions: [condition('broken', 'manifest.state_snapshot.missing > 1')] })
    expect(expectDomainError(() => warden.admission.register(manifest), 'stop_condition').extras.condition).toBe('broken')
    const record = lastAudit(warden)
    expect(record).toMatchObject({ type: 'registration_rejected', code: 'stop_condition', data: { condition: 'broken' } })
    expect(JSON.stringify(record.data)).toMatch(/No such key: missing/)
  })
})

describe('kill switch at the door', () => {
  it('issues no root manifest while engaged, and audits the denial', () => {
    const { warden } = setup()
    warden.killSwitch.engage('drill')
    expectDomainError(() => warden.admission.issueRoot({}), 'kill_switch_engaged')
    expect(tableCount(warden, 'manifests')).toBe(0)
    expect(lastAudit(warden)).toMatchObject({ type: 'manifest_denied', code: 'kill_switch_engaged' })
    warden.killSwitch.disengage()
    expect(warden.admission.issueRoot({}).depth).toBe(0)
  })

  it('registers no worker while engaged, even from a manifest issued before', () => {
    const { warden } = setup()
    const manifest = warden.admission.issueRoot({})
    warden.killSwitch.engage('drill')
    expectDomainError(() => warden.admission.register(manifest), 'kill_switch_engaged')
    expect(tableCount(warden, 'workers')).toBe(0)
    expect(lastAudit(warden)).toMatchObject({ type: 'registration_rejected', code: 'kill_switch_engaged' })
    warden.killSwitch.disengage()
    // The manifest was voided by the switch: it never registers afterwards either.
    expectDomainError(() => warden.admission.register(manifest), 'manifest_expired')
  })

  it('approves no spawn while engaged', () => {
    const { warden } = setup()
    const root = registerRoot(warden)
    const parentRow = worker(warden, root.id)
    warden.killSwitch.engage('drill')
    const manifests = tableCount(warden, 'manifests')
    expectDomainError(() => warden.admission.spawn(parentRow, { reason: 'try' }), 'kill_switch_engaged')
    expect(tableCount(warden, 'manifests')).toBe(manifests)
    expect(lastAudit(warden)).toMatchObject({ type: 'spawn_denied', code: 'kill_switch_engaged' })
  })
})

describe("the parent's state", () => {
  it('denies a spawn by a quarantined parent with parent_quarantined', () => {
    const { warden } = setup()
    const root = registerRoot(warden)
    warden.transitions.quarantine(root.id, 'inspect')
    expectDomainError(() => spawn(warden, root.id), 'parent_quarantined')
    expect(lastAudit(warden)).toMatchObject({ type: 'spawn_denied', code: 'parent_quarantined', parent_id: root.id })
    expect(tableCount(warden, 'manifests')).toBe(1)
  })

  it('refuses to register a child whose parent was quarantined after issuance', () => {
    const { warden } = setup()
    const root = registerRoot(warden)
    const child = spawn(warden, root.id)
    warden.transitions.quarantine(root.id, 'inspect')
    expectDomainError(() => warden.admission.register(child), 'parent_quarantined')
    expect(storeOf(warden).workers.get(child.worker_id)).toBeUndefined()
  })

  it('denies a spawn by a terminated parent with worker_terminated', () => {
    const { warden } = setup()
    const root = registerRoot(warden)
    const row = worker(warden, root.id)
    warden.transitions.deregister(root.id, 'bye')
    const error = expectDomainError(() => warden.admission.spawn(row, { reason: 'late' }), 'worker_terminated')
    expect(error.extras).toMatchObject({ directive: 'terminate', reason: 'deregistered' })
  })

  it('denies a spawn by a parent whose lifetime ran out before any tick, and settles it as expired', () => {
    const { warden, clock } = setup({ expiration_seconds: 20, heartbeat_timeout_seconds: 30 })
    const root = registerRoot(warden)
    clock.advance(20 * SECOND)
    const error = expectDomainError(() => spawn(warden, root.id), 'worker_terminated')
    expect(error.extras).toMatchObject({ reason: 'expired', directive: 'terminate' })
    expect(worker(warden, root.id).status).toBe('expired')
    expect(tableCount(warden, 'manifests')).toBe(1)
  })

  it('voids the outstanding child manifest when its parent terminates, freeing the slot', () => {
    const { warden } = setup()
    const root = registerRoot(warden)
    const child = spawn(warden, root.id)
    expect(occupiedSlots(warden)).toBe(2)
    warden.transitions.kill(root.id, { reason: 'stop', cascade: true })
    expect(manifestStatus(warden, child.worker_id)).toBe('voided')
    expect(occupiedSlots(warden)).toBe(0)
    expect(auditRecords(warden, 'manifest_expired').find((r) => r.worker_id === child.worker_id)).toMatchObject({
      parent_id: root.id,
      code: 'parent_not_active',
    })
  })

  it('refuses the child with parent_not_active when the parent was killed before the child registers', () => {
    const { warden } = setup()
    const root = registerRoot(warden)
    const child = spawn(warden, root.id)
    warden.transitions.kill(root.id, { reason: 'stop', cascade: false })
    // SPEC §3: "parent_not_active (a child manifest whose parent is no longer live cannot register)".
    expectDomainError(() => warden.admission.register(child), 'parent_not_active')
    expect(storeOf(warden).workers.get(child.worker_id)).toBeUndefined()
  })

  it('refuses the child with parent_not_active when the parent lease ran out before any reaper tick', () => {
    const { warden, clock } = setup({ heartbeat_timeout_seconds: 30 })
    const root = registerRoot(warden)
    const child = spawn(warden, root.id)
    clock.advance(30 * SECOND)
    expectDomainError(() => warden.admission.register(child), 'parent_not_active')
    expect(worker(warden, root.id).status).toBe('reaped')
    expect(storeOf(warden).workers.get(child.worker_id)).toBeUndefined()
  })
})

describe('admission invariants under random operation sequences (property)', () => {
  type Op =
    | { kind: 'root'; resources: Resources | undefined }
    | { kind: 'spawn'; pick: number; resources: Resources | undefined }
    | { kind: 'register'; pick: number; fresh: boolean }
    | { kind: 'heartbeat' | 'deregister' | 'quarantine' | 'release'; pick: number }
    | { kind: 'kill'; pick: number; cascade: boolean }
    | { kind: 'advance'; ms: number }
    | { kind: 'tick' }
    | { kind: 'max_replicas'; value: number }
    | { kind: 'max_depth'; value: number }

  // Mostly no resources (the clamped default), sometimes an explicit request that may be too big.
  const resourcesArb: fc.Arbitrary<Resources | undefined> = fc.oneof(
    { arbitrary: fc.constant(undefined), weight: 3 },
    {
      arbitrary: fc.record({
        cpu_limit: fc.constantFrom(0.25, 0.5, 1, 2, 3),
        memory_limit_mb: fc.constantFrom(128, 256, 512, 1024, 2048),
        network_policy: fc.record({ allow_controller: fc.constant(true), allow_external: fc.boolean() }),
      }),
      weight: 2,
    },
  )
  const pick = fc.nat(50)
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    { arbitrary: fc.record({ kind: fc.constant('root' as const), resources: resourcesArb }), weight: 3 },
    { arbitrary: fc.record({ kind: fc.constant('spawn' as const), pick, resources: resourcesArb }), weight: 5 },
    { arbitrary: fc.record({ kind: fc.constant('register' as const), pick, fresh: fc.boolean() }), weight: 6 },
    { arbitrary: fc.record({ kind: fc.constantFrom('heartbeat' as const, 'deregister' as const, 'quarantine' as const, 'release' as const), pick }), weight: 4 },
    { arbitrary: fc.record({ kind: fc.constant('kill' as const), pick, cascade: fc.boolean() }), weight: 1 },
    { arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 12_000 }) }), weight: 3 },
    { arbitrary: fc.record({ kind: fc.constant('tick' as const) }), weight: 2 },
    { arbitrary: fc.record({ kind: fc.constant('max_replicas' as const), value: fc.integer({ min: 1, max: 8 }) }), weight: 1 },
    { arbitrary: fc.record({ kind: fc.constant('max_depth' as const), value: fc.integer({ min: 0, max: 3 }) }), weight: 1 },
  )

  // Denials the sequence may legitimately meet; anything else (or a non-domain error) is a bug.
  const expected = new Set<ErrorCode>([
    'quota_exceeded',
    'cooldown_active',
    'depth_exceeded',
    'parent_quarantined',
    'parent_not_active',
    'resources_exceed_parent',
    'resources_exceed_contract',
    'manifest_already_used',
    'manifest_expired',
    'worker_terminated',
  ])

  const COOLDOWN_MS = 3 * SECOND
  const contract: Partial<ContractInput> = {
    max_replicas: 4,
    max_depth: 2,
    cooldown_seconds: COOLDOWN_MS / SECOND,
    heartbeat_timeout_seconds: 10,
    manifest_ttl_seconds: 8,
    expiration_seconds: 40,
    default_resources: res(0.5, 256),
    max_resources: res(2, 1024, true),
  }

  function run(ops: Op[], mutate: (warden: Warden) => void = () => {}) {
    const t = createTestWarden(contract)
    const { warden, clock } = t
    mutate(warden)
    try {
      const issued: Manifest[] = []
      const terminal = new Set<string>()
      const depthLimitAtRegistration = new Map<string, number>()
      const current = () => warden.contracts.current()
      const workers = () => storeOf(warden).workers.list({ after_seq: 0, limit: 10_000 })
      const at = <T>(list: T[], i: number): T | undefined => (list.length === 0 ? undefined : list[i % list.length])

      const attempt = (fn: () => void) => {
        try {
          fn()
        } catch (error) {
          if (!(error instanceof DomainError) || !expected.has(error.code)) throw error
        }
      }

      const check = (step: string) => {
        const ctx = `after ${step}`
        const c = current()
        expect(occupiedSlots(warden), ctx).toBeLessThanOrEqual(c.max_replicas)
        const rows = workers()
        const byId = new Map(rows.map((row) => [row.worker_id, row]))
        for (const row of rows) {
          const limit = depthLimitAtRegistration.get(row.worker_id)
          expect(limit, `${ctx}: ${row.worker_id} registered through a successful register()`).toBeDefined()
          expect(row.depth, ctx).toBeLessThanOrEqual(limit!)
          const resources = row.resources
          expect(exceeds(resources, c.max_resources), ctx).toBeNull()
          if (row.parent_id === null) {
            expect(row.depth, ctx).toBe(0)
          } else {
            const parent = byId.get(row.parent_id)
            expect(parent, ctx).toBeDefined()
            expect(row.depth, ctx).toBe(parent!.depth + 1)
            expect(exceeds(resources, parent!.resources), ctx).toBeNull()
          }
          if (terminal.has(row.worker_id)) expect(['active', 'quarantined'], ctx).not.toContain(row.status)
          if (row.status !== 'active' && row.status !== 'quarantined') terminal.add(row.worker_id)
        }
        const lastApproval = new Map<string, number>()
        for (const record of auditRecords(warden, 'spawn_approved')) {
          const when = Date.parse(record.at)
          const previous = lastApproval.get(record.parent_id!)
          if (previous !== undefined) expect(when - previous, ctx).toBeGreaterThanOrEqual(COOLDOWN_MS)
          lastApproval.set(record.parent_id!, when)
        }
        expect(warden.queries.verifyAudit().ok, ctx).toBe(true)
      }

      for (const [index, op] of ops.entries()) {
        const live = workers().filter((row) => row.status === 'active' || row.status === 'quarantined')
        const all = workers()
        switch (op.kind) {
          case 'root':
            attempt(() => {
              const manifest = warden.admission.issueRoot({ resources: op.resources })
              expect(manifest.depth).toBeLessThanOrEqual(current().max_depth)
              issued.push(manifest)
            })
            break
          case 'spawn': {
            const parent = at(live, op.pick)
            if (parent) {
              attempt(() => {
                const manifest = warden.admission.spawn(parent, { reason: 'property', resources: op.resources })
                expect(manifest.depth).toBe(parent.depth + 1)
                expect(manifest.depth).toBeLessThanOrEqual(current().max_depth)
                issued.push(manifest)
              })
            }
            break
          }
          case 'register': {
            const candidates = op.fresh ? issued.filter((m) => manifestStatus(warden, m.worker_id) === 'outstanding') : issued
            const manifest = at(candidates, op.pick)
            if (manifest) {
              attempt(() => {
                const limit = current().max_depth
                warden.admission.register(manifest)
                depthLimitAtRegistration.set(manifest.worker_id, limit)
              })
            }
            break
          }
          case 'heartbeat':
          case 'deregister':
          case 'quarantine':
          case 'release': {
            const target = at(all, op.pick)
            if (!target) break
            attempt(() => {
              if (op.kind === 'heartbeat') warden.liveness.heartbeat(target.worker_id)
              else if (op.kind === 'deregister') warden.transitions.deregister(target.worker_id, 'property')
              else if (op.kind === 'quarantine') warden.transitions.quarantine(target.worker_id, 'property')
              else warden.transitions.release(target.worker_id)
            })
            break
          }
          case 'kill': {
            const target = at(all, op.pick)
            if (target) attempt(() => warden.transitions.kill(target.worker_id, { cascade: op.cascade }))
            break
          }
          case 'advance':
            clock.advance(op.ms)
            break
          case 'tick':
            warden.liveness.tick()
            break
          case 'max_replicas':
            // Never below current use: the invariant is then checked against the new limit.
            if (op.value >= occupiedSlots(warden)) updateContract(warden, { max_replicas: op.value })
            break
          case 'max_depth':
            updateContract(warden, { max_depth: op.value })
            break
        }
        check(`step ${index} ${JSON.stringify(op)}`)
      }
    } finally {
      t.close()
    }
  }

  it('never exceeds quota, depth or parent resources, respects cooldowns, keeps terminal workers terminal and the chain valid', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 10, maxLength: 50 }), (ops) => run(ops)),
      { numRuns: 200 },
    )
  })

  // The property must be able to fail: against deliberately broken rules it finds a counterexample.
  it('finds a counterexample when outstanding manifests are left out of the quota', () => {
    const mutant = (warden: Warden) => {
      storeOf(warden).manifests.countOutstanding = () => 0
    }
    const result = fc.check(fc.property(fc.array(opArb, { minLength: 10, maxLength: 50 }), (ops) => run(ops, mutant)), { numRuns: 300, endOnFailure: true })
    expect(result.failed).toBe(true)
  })

  it('finds a counterexample when approvals do not start the cooldown', () => {
    const mutant = (warden: Warden) => {
      storeOf(warden).workers.recordSpawn = () => {}
    }
    const result = fc.check(fc.property(fc.array(opArb, { minLength: 10, maxLength: 50 }), (ops) => run(ops, mutant)), { numRuns: 300, endOnFailure: true })
    expect(result.failed).toBe(true)
  })
})
