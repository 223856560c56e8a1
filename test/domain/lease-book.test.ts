// Heartbeats renew leases in memory (SPEC §2.10 lets the renewal timestamp lag up to 1 s); these
// tests attack the places where the book and the database could disagree.
import { describe, expect, it } from 'vitest'
import { registerRoot, type TestWarden, storeOf, leasesOf } from '../helpers/harness.js'
import { SECOND, wardenPerTest } from './support.js'

const setup = wardenPerTest({ heartbeat_timeout_seconds: 30, expiration_seconds: null })
const setupMany = wardenPerTest({ heartbeat_timeout_seconds: 30, expiration_seconds: null, max_replicas: 500 })
const stored = (t: TestWarden, id: string) => storeOf(t.warden).workers.get(id)!

describe('lease book', () => {
  it('renews in memory and writes the renewal back on the next flush', () => {
    const t = setup()
    const { id } = registerRoot(t.warden)
    const registeredLease = stored(t, id).lease_expires_at
    t.clock.advance(10 * SECOND)
    t.warden.liveness.heartbeat(id)
    expect(stored(t, id).lease_expires_at).toBe(registeredLease)
    expect(leasesOf(t.warden).pending).toBe(1)
    expect(t.warden.liveness.flushLeases()).toBe(1)
    expect(stored(t, id)).toMatchObject({ lease_expires_at: t.clock.now() + 30 * SECOND, last_heartbeat_at: t.clock.now() })
    expect(leasesOf(t.warden).pending).toBe(0)
  })

  it('a flush cut short by its budget commits what it wrote and keeps the rest pending for the next', () => {
    const t = setupMany()
    const ids = Array.from({ length: 200 }, () => registerRoot(t.warden).id)
    t.clock.advance(10 * SECOND)
    for (const id of ids) t.warden.liveness.heartbeat(id)
    const renewed = t.clock.now() + 30 * SECOND
    let asked = 0
    const written = t.warden.liveness.flushLeases(1000, () => ++asked >= 2)
    expect(written).toBeGreaterThan(0)
    expect(written).toBeLessThan(ids.length)
    expect(ids.filter((id) => stored(t, id).lease_expires_at === renewed)).toHaveLength(written)
    expect(leasesOf(t.warden).pending).toBe(ids.length - written)
    expect(t.warden.liveness.flushLeases(1000)).toBe(ids.length - written)
    expect(ids.every((id) => stored(t, id).lease_expires_at === renewed)).toBe(true)
    expect(leasesOf(t.warden).pending).toBe(0)
  })

  it('writes renewals in worker_id order, a short flush the lowest ids and the next one on from there (a slice touches a narrow range of the lease table)', () => {
    const t = setupMany()
    const ids = Array.from({ length: 200 }, () => registerRoot(t.warden).id)
    t.clock.advance(10 * SECOND)
    for (const id of ids) t.warden.liveness.heartbeat(id) // registration order: random ids
    const renewed = t.clock.now() + 30 * SECOND
    const sorted = [...ids].sort()
    let asked = 0
    const first = t.warden.liveness.flushLeases(1000, () => ++asked >= 2)
    expect(first).toBeGreaterThan(0)
    expect(first).toBeLessThan(ids.length)
    const written = (list: string[]) => list.filter((id) => stored(t, id).lease_expires_at === renewed)
    expect(written(ids).sort()).toEqual(sorted.slice(0, first))
    // A renewal of an id already written waits for the next round; the rest of this one goes on in order.
    t.clock.advance(SECOND)
    t.warden.liveness.heartbeat(sorted[0]!)
    const second = t.warden.liveness.flushLeases(1000, () => true)
    expect(second).toBeGreaterThan(0)
    expect(first + second).toBeLessThan(ids.length)
    expect(written(ids).sort()).toEqual(sorted.slice(0, first + second)) // sorted[0] as first written
    expect(t.warden.liveness.flushLeases(1000)).toBe(ids.length - first - second)
    expect(t.warden.liveness.flushLeases(1000)).toBe(1) // the next round: the id renewed again
    expect(stored(t, sorted[0]!).lease_expires_at).toBe(renewed + SECOND)
    expect(leasesOf(t.warden).pending).toBe(0)
  })

  it('a flush whose write fails midway keeps every renewal it took pending, and the next flush writes them', () => {
    const t = setupMany()
    const ids = Array.from({ length: 10 }, () => registerRoot(t.warden).id)
    t.clock.advance(10 * SECOND)
    for (const id of ids) t.warden.liveness.heartbeat(id)
    const workers = storeOf(t.warden).workers
    const renewLease = workers.renewLease
    let calls = 0
    workers.renewLease = (renewal) => {
      if (++calls === 5) throw new Error('disk full')
      renewLease(renewal)
    }
    expect(() => t.warden.liveness.flushLeases(1000)).toThrow('disk full')
    workers.renewLease = renewLease
    expect(leasesOf(t.warden).pending).toBe(ids.length)
    expect(t.warden.liveness.flushLeases(1000)).toBe(ids.length)
    expect(ids.every((id) => stored(t, id).lease_expires_at === t.clock.now() + 30 * SECOND)).toBe(true)
  })

  it('never reaps a worker whose renewal is still only in memory, and writes that renewal back', () => {
    const t = setup()
    const { id } = registerRoot(t.warden)
    t.clock.advance(29 * SECOND)
    t.warden.liveness.heartbeat(id) // not flushed: the stored lease ends in 1 s
    t.clock.advance(2 * SECOND)
    expect(t.warden.liveness.tick().reaped).toBe(0)
    expect(stored(t, id)).toMatchObject({ status: 'active', lease_expires_at: t.clock.now() - 2 * SECOND + 30 * SECOND })
  })

  it('shows the renewed lease in the worker view before it is flushed', () => {
    const t = setup()
    const { id } = registerRoot(t.warden)
    t.clock.advance(5 * SECOND)
    const answer = t.warden.liveness.heartbeat(id)
    const view = t.warden.queries.worker(id)
    expect(view.lease_expires_at).toBe(answer.lease_expires_at)
    expect(view.last_heartbeat_at).toBe(new Date(t.clock.now()).toISOString())
  })

  it('drops the lease of every worker that ends, so a later heartbeat goes to the database and answers 410', () => {
    const t = setup()
    const a = registerRoot(t.warden).id
    const b = registerRoot(t.warden).id
    t.warden.transitions.kill(a, { cascade: true })
    expect(leasesOf(t.warden).get(a)).toBeUndefined()
    expect(() => t.warden.liveness.heartbeat(a)).toThrow(expect.objectContaining({ code: 'worker_terminated' }))
    t.warden.killSwitch.engage('test')
    expect(leasesOf(t.warden).size).toBe(0)
    expect(() => t.warden.liveness.heartbeat(b)).toThrow(expect.objectContaining({ code: 'worker_terminated' }))
  })

  it('follows quarantine and release, and counts exactly the live workers', () => {
    const t = setup()
    const ids = [registerRoot(t.warden).id, registerRoot(t.warden).id, registerRoot(t.warden).id]
    t.warden.transitions.quarantine(ids[0]!, 'inspect')
    expect(t.warden.liveness.heartbeat(ids[0]!).directive).toBe('suspend')
    t.warden.transitions.release(ids[0]!)
    expect(t.warden.liveness.heartbeat(ids[0]!).directive).toBe('continue')
    t.warden.transitions.deregister(ids[1]!, 'done')
    expect(leasesOf(t.warden).size).toBe(storeOf(t.warden).workers.countLive())
    expect(leasesOf(t.warden).size).toBe(2)
  })

  it('keeps the book unchanged when a transaction rolls back', () => {
    const t = setup()
    const { id } = registerRoot(t.warden)
    storeOf(t.warden).db.exec(`CREATE TRIGGER no_audit BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'audit blocked'); END`)
    expect(() => t.warden.transitions.kill(id, { cascade: true })).toThrow(/audit blocked/)
    storeOf(t.warden).db.exec(`DROP TRIGGER no_audit`)
    expect(leasesOf(t.warden).get(id)).toBeDefined()
    expect(t.warden.liveness.heartbeat(id).directive).toBe('continue')
  })
})
