// SPEC §2.7 liveness with a manual clock: heartbeat directives and lease renewal, reaping silent
// workers, expiring lifetimes, voiding manifests past their TTL, and the restart rule (lease time
// does not run while the controller is down).
import { afterEach, describe, expect, it } from 'vitest'
import { ManualClock } from '../../src/domain/clock.js'
import type { ContractInput } from '../../src/schemas/index.js'
import { createTestWarden, occupiedSlots, registerRoot, type TestWarden, storeOf } from '../helpers/harness.js'
import { auditRecords, expectDomainError, lastAudit, manifestStatus, SECOND, tempDbFile, worker, WAYS_TO_END } from './support.js'

const TIMEOUT = 30 * SECOND
const INTERVAL = 10 * SECOND // heartbeat_timeout / 3
const contract: Partial<ContractInput> = { heartbeat_timeout_seconds: TIMEOUT / SECOND, expiration_seconds: null, max_replicas: 5000 }

const open: Array<{ close(): void }> = []
function setup(overrides: Partial<ContractInput> = {}): TestWarden {
  const t = createTestWarden({ ...contract, ...overrides })
  open.push(t)
  return t
}
const cleanups: Array<() => void> = []
afterEach(() => {
  for (const t of open.splice(0)) t.close()
  for (const cleanup of cleanups.splice(0)) cleanup()
})

/** A temp database file and a clock shared by successive "processes" on it. */
function durable() {
  const { file, cleanup } = tempDbFile()
  cleanups.push(cleanup)
  const clock = new ManualClock()
  return { clock, start: () => createTestWarden(contract, file, clock) }
}

const iso = (ms: number) => new Date(ms).toISOString()
const leaseLeft = (t: TestWarden, id: string) => worker(t.warden, id).lease_expires_at - t.clock.now()

describe('heartbeat', () => {
  it('answers continue and renews the lease to now + heartbeat_timeout', () => {
    const { warden, clock } = setup({ expiration_seconds: 600 })
    const registeredAt = clock.now()
    const { id, registration } = registerRoot(warden)
    expect(registration).toMatchObject({ heartbeat_interval_seconds: 10, heartbeat_timeout_seconds: 30 })
    expect(worker(warden, id).lease_expires_at).toBe(registeredAt + 30 * SECOND)

    clock.advance(12 * SECOND)
    const answer = warden.liveness.heartbeat(id)
    expect(answer).toEqual({
      directive: 'continue',
      lease_expires_at: iso(clock.now() + 30 * SECOND),
      expires_at: iso(registeredAt + 600 * SECOND),
      heartbeat_interval_seconds: 10,
      heartbeat_timeout_seconds: 30,
    })
    expect(worker(warden, id)).toMatchObject({ lease_expires_at: clock.now() + 30 * SECOND, last_heartbeat_at: clock.now() })
  })

  it('answers each heartbeat its own lease end, and the new interval and timeout once the contract changes', () => {
    const { warden, clock } = setup({ max_replicas: 5 })
    const a = registerRoot(warden).id
    const b = registerRoot(warden).id
    clock.advance(SECOND)
    expect(warden.liveness.heartbeat(a).lease_expires_at).toBe(iso(clock.now() + 30 * SECOND))
    expect(warden.liveness.heartbeat(b).lease_expires_at).toBe(iso(clock.now() + 30 * SECOND))
    clock.advance(1)
    expect(warden.liveness.heartbeat(a).lease_expires_at).toBe(iso(clock.now() + 30 * SECOND))
    const { version: _version, updated_at: _updated, ...input } = warden.contracts.view()
    warden.contracts.replace({ ...input, heartbeat_timeout_seconds: 90 })
    expect(warden.liveness.heartbeat(b)).toMatchObject({
      lease_expires_at: iso(clock.now() + 90 * SECOND),
      heartbeat_interval_seconds: 30,
      heartbeat_timeout_seconds: 90,
    })
  })

  it('answers suspend to a quarantined worker and still renews its lease', () => {
    const { warden, clock } = setup()
    const { id } = registerRoot(warden)
    warden.transitions.quarantine(id, 'inspect')
    clock.advance(20 * SECOND)
    const answer = warden.liveness.heartbeat(id)
    expect(answer.directive).toBe('suspend')
    expect(answer.lease_expires_at).toBe(iso(clock.now() + 30 * SECOND))
    clock.advance(25 * SECOND)
    expect(warden.liveness.tick().reaped).toBe(0)
    expect(worker(warden, id).status).toBe('quarantined')
  })

  it('answers null expires_at when the contract sets no lifetime', () => {
    const { warden } = setup({ expiration_seconds: null })
    const { id } = registerRoot(warden)
    expect(warden.liveness.heartbeat(id).expires_at).toBeNull()
  })

  for (const [reason, end] of WAYS_TO_END) {
    it(`answers a ${reason} worker with worker_terminated (410), directive terminate and reason ${reason}, forever`, () => {
      const t = setup({ expiration_seconds: 40 })
      const { id } = registerRoot(t.warden)
      end(t, id)
      for (let i = 0; i < 2; i++) {
        const error = expectDomainError(() => t.warden.liveness.heartbeat(id), 'worker_terminated')
        expect(error.status).toBe(410)
        expect(error.extras).toMatchObject({ directive: 'terminate', reason })
        t.clock.advance(SECOND)
      }
      expect(['active', 'quarantined']).not.toContain(worker(t.warden, id).status)
    })
  }

  it('reaps a worker that heartbeats after its lease ran out, before any tick, and answers terminate', () => {
    const { warden, clock } = setup()
    const { id } = registerRoot(warden)
    clock.advance(30 * SECOND)
    const error = expectDomainError(() => warden.liveness.heartbeat(id), 'worker_terminated')
    expect(error.extras).toMatchObject({ reason: 'reaped', directive: 'terminate' })
    expect(worker(warden, id)).toMatchObject({ status: 'reaped', ended_at: clock.now() })
    expect(lastAudit(warden)).toMatchObject({ type: 'worker_reaped', worker_id: id })
  })

  it('keeps a worker whose heartbeat comes 1 ms before the lease runs out', () => {
    const { warden, clock } = setup()
    const { id } = registerRoot(warden)
    clock.advance(30 * SECOND - 1)
    expect(warden.liveness.heartbeat(id).directive).toBe('continue')
  })

  it('throws worker_not_found for an unknown worker', () => {
    const { warden } = setup()
    expectDomainError(() => warden.liveness.heartbeat('0'.repeat(32)), 'worker_not_found')
  })
})


describe('reaping silent workers', () => {
  it('reaps a worker silent for heartbeat_timeout on the next tick, not before', () => {
    const { warden, clock } = setup()
    const { id } = registerRoot(warden)
    clock.advance(TIMEOUT - 1)
    expect(warden.liveness.tick()).toEqual({ reaped: 0, expired: 0, manifests_expired: 0 })
    expect(worker(warden, id).status).toBe('active')

    clock.advance(1)
    expect(warden.liveness.tick()).toEqual({ reaped: 1, expired: 0, manifests_expired: 0 })
    expect(worker(warden, id)).toMatchObject({ status: 'reaped', reason: 'heartbeat timeout', ended_at: clock.now() })
    expect(lastAudit(warden)).toMatchObject({ type: 'worker_reaped', actor: 'controller', worker_id: id, code: 'reaped' })
    expect(warden.liveness.tick().reaped).toBe(0)
  })

  it('reaps on a tick that comes late, still recording the reaping once', () => {
    const { warden, clock } = setup()
    const { id } = registerRoot(warden)
    clock.advance(TIMEOUT + 750)
    expect(warden.liveness.tick().reaped).toBe(1)
    expect(auditRecords(warden, 'worker_reaped').map((r) => r.worker_id)).toEqual([id])
  })

  it('keeps alive a worker whose heartbeat comes just before the timeout', () => {
    const { warden, clock } = setup()
    const { id } = registerRoot(warden)
    clock.advance(TIMEOUT - 1)
    warden.liveness.heartbeat(id)
    clock.advance(TIMEOUT - 1)
    expect(warden.liveness.tick().reaped).toBe(0)
    expect(worker(warden, id).status).toBe('active')
    clock.advance(1)
    expect(warden.liveness.tick().reaped).toBe(1)
  })

  it('reaps only the silent ones among many', () => {
    const { warden, clock } = setup()
    const ids = Array.from({ length: 6 }, () => registerRoot(warden).id)
    clock.advance(20 * SECOND)
    for (const id of ids.slice(0, 3)) warden.liveness.heartbeat(id)
    clock.advance(10 * SECOND)
    expect(warden.liveness.tick().reaped).toBe(3)
    expect(ids.map((id) => worker(warden, id).status)).toEqual(['active', 'active', 'active', 'reaped', 'reaped', 'reaped'])
  })
})

describe('lifetime', () => {
  it('expires a heartbeating worker at expiration_seconds after registration, not before', () => {
    const { warden, clock } = setup({ expiration_seconds: 60 })
    const { id } = registerRoot(warden)
    for (let t = 0; t < 3; t++) {
      clock.advance(20 * SECOND)
      if (t < 2) warden.liveness.heartbeat(id)
    }
    clock.advance(-1)
    expect(warden.liveness.tick()).toEqual({ reaped: 0, expired: 0, manifests_expired: 0 })
    clock.advance(1)
    expect(warden.liveness.tick()).toEqual({ reaped: 0, expired: 1, manifests_expired: 0 })
    expect(worker(warden, id)).toMatchObject({ status: 'expired', reason: 'lifetime over' })
    expect(lastAudit(warden)).toMatchObject({ type: 'worker_expired', worker_id: id })
    expect(expectDomainError(() => warden.liveness.heartbeat(id), 'worker_terminated').extras.reason).toBe('expired')
  })
})

describe('outstanding manifests past their TTL', () => {
  it('are closed by the tick, free their slot, are audited as manifest_expired and never register', () => {
    const { warden, clock } = setup({ manifest_ttl_seconds: 10, max_replicas: 2 })
    const manifest = warden.admission.issueRoot({})
    clock.advance(10 * SECOND - 1)
    expect(warden.liveness.tick().manifests_expired).toBe(0)
    expect(occupiedSlots(warden)).toBe(1)
    clock.advance(1)
    expect(warden.liveness.tick().manifests_expired).toBe(1)
    expect(manifestStatus(warden, manifest.worker_id)).toBe('expired')
    expect(occupiedSlots(warden)).toBe(0)
    expect(lastAudit(warden)).toMatchObject({ type: 'manifest_expired', worker_id: manifest.worker_id, code: 'manifest_expired' })
    expectDomainError(() => warden.admission.register(manifest), 'manifest_expired')
  })

  it('closes more manifests than one batch holds in a single tick', () => {
    const { warden, clock } = setup({ manifest_ttl_seconds: 10 })
    const n = 2100
    for (let i = 0; i < n; i++) warden.admission.issueRoot({})
    clock.advance(10 * SECOND)
    expect(warden.liveness.tick().manifests_expired).toBe(n)
    expect(occupiedSlots(warden)).toBe(0)
    expect(storeOf(warden).manifests.due(clock.now(), 10)).toEqual([])
  })
})

describe('restart: lease time does not run while the controller is down', () => {
  it('gives each live worker the lease it had left at the last tick (at least one heartbeat interval) and reaps none on the first tick', () => {
    const { clock, start } = durable()
    const first = start()
    const a = registerRoot(first.warden).id // silent: 8 s left at the last tick
    const b = registerRoot(first.warden).id // heartbeats at +5 s: 13 s left
    const c = registerRoot(first.warden).id // heartbeats at +22 s: 30 s left
    clock.advance(5 * SECOND)
    first.warden.liveness.heartbeat(b)
    clock.advance(17 * SECOND)
    first.warden.liveness.heartbeat(c)
    first.warden.liveness.tick()
    expect([a, b, c].map((id) => leaseLeft(first, id))).toEqual([8 * SECOND, 13 * SECOND, 30 * SECOND])
    first.close()

    const downtime = 60 * 60 * SECOND
    clock.advance(downtime)
    const second = start()
    open.push(second)
    expect(lastAudit(second.warden)).toMatchObject({ type: 'controller_started', data: { downtime_ms: downtime, leases_resumed: 3 } })
    expect([a, b, c].map((id) => leaseLeft(second, id))).toEqual([INTERVAL, 13 * SECOND, 30 * SECOND])
    expect(second.warden.liveness.tick().reaped).toBe(0)

    // Silent from here: each is reaped when its resumed lease runs out, and not before.
    clock.advance(INTERVAL - 1)
    expect(second.warden.liveness.tick().reaped).toBe(0)
    clock.advance(1)
    second.warden.liveness.tick()
    expect([a, b, c].map((id) => worker(second.warden, id).status)).toEqual(['reaped', 'active', 'active'])
    clock.advance(3 * SECOND)
    second.warden.liveness.tick()
    expect(worker(second.warden, b).status).toBe('reaped')
    clock.advance(17 * SECOND - 1)
    second.warden.liveness.tick()
    expect(worker(second.warden, c).status).toBe('active')
    clock.advance(1)
    second.warden.liveness.tick()
    expect(worker(second.warden, c).status).toBe('reaped')
  })

  it('lets a worker that heartbeats after the restart carry on normally', () => {
    const { clock, start } = durable()
    const first = start()
    const { id } = registerRoot(first.warden)
    first.warden.liveness.tick()
    first.close()
    clock.advance(10 * 60 * SECOND)
    const second = start()
    open.push(second)
    expect(second.warden.liveness.tick().reaped).toBe(0)
    clock.advance(25 * SECOND)
    expect(second.warden.liveness.heartbeat(id).directive).toBe('continue')
    expect(leaseLeft(second, id)).toBe(TIMEOUT)
  })

  it('does not extend a manifest registration deadline over the downtime', () => {
    const { clock, start } = durable()
    const first = start()
    const manifest = first.warden.admission.issueRoot({})
    first.warden.liveness.tick()
    first.close()
    clock.advance(60 * 60 * SECOND)
    const second = start()
    open.push(second)
    expectDomainError(() => second.warden.admission.register(manifest), 'manifest_expired')
  })

  /** Restarts `cycles` times, running `upMs` (ticking every second) between restarts; the lease left after each start. */
  function crashLoop(upMs: number, cycles: number) {
    const { clock, start } = durable()
    let t = start()
    const { id } = registerRoot(t.warden)
    const leftAfterStart: number[] = [leaseLeft(t, id)]
    for (let cycle = 0; cycle < cycles; cycle++) {
      for (let up = 0; up < upMs; up += SECOND) {
        clock.advance(SECOND)
        t.warden.liveness.tick()
      }
      const status = worker(t.warden, id).status
      t.close()
      if (status !== 'active') return { leftAfterStart, reapedInCycle: cycle }
      clock.advance(10 * 60 * SECOND)
      t = start()
      leftAfterStart.push(leaseLeft(t, id))
    }
    t.close()
    return { leftAfterStart, reapedInCycle: null }
  }

  it('in a crash loop, consumes the lease by the up-time of each run down to the heartbeat-interval floor', () => {
    const upMs = 6 * SECOND
    const { leftAfterStart, reapedInCycle } = crashLoop(upMs, 6)
    expect(leftAfterStart).toEqual([30, 24, 18, 12, 10, 10, 10].map((s) => s * SECOND))
    // Never more than what a lease reset would give, never more than the remaining lease or the floor.
    leftAfterStart.forEach((left, i) => expect(left).toBeLessThanOrEqual(Math.max(TIMEOUT - i * upMs, INTERVAL)))
    // Up-time shorter than the floor cannot reap it: that is the promised minimum, not a reset.
    expect(reapedInCycle).toBeNull()
  })

  it('in a crash loop with up-time longer than the floor, still reaps a dead worker', () => {
    const { leftAfterStart, reapedInCycle } = crashLoop(12 * SECOND, 10)
    expect(leftAfterStart).toEqual([30, 18, 10].map((s) => s * SECOND))
    expect(reapedInCycle).toBe(2)
  })
})
