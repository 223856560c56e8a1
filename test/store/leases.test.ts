// Migration 0009: the hot lease of a live worker lives in the narrow `leases` table. A row exists
// exactly while its worker is live, whatever ends it; renewals, the restart shift and the reaper's
// scans use it; a worker that ends keeps its final lease in its workers row.
import { afterEach, describe, expect, it } from 'vitest'
import { createTestWarden, leasesOf, registerRoot, storeOf, type TestWarden } from '../helpers/harness.js'
import { ManualClock } from '../../src/domain/clock.js'
import { SECOND, tempDbFile, WAYS_TO_END } from '../domain/support.js'

const open: TestWarden[] = []
afterEach(() => {
  for (const t of open.splice(0)) t.close()
})
function setup(): TestWarden {
  const t = createTestWarden({ heartbeat_timeout_seconds: 30, expiration_seconds: 40, max_replicas: 100 })
  open.push(t)
  return t
}

type LeaseRow = { worker_id: string; status: string; lease_token_hash: Buffer; lease_expires_at: number; last_heartbeat_at: number | null; expires_at: number | null }
const leaseRows = (t: TestWarden): LeaseRow[] => storeOf(t.warden).db.prepare(`SELECT * FROM leases ORDER BY worker_id`).all() as LeaseRow[]
// Workers as they stand (worker_states applies a kill switch sweep not yet written to the rows).
const liveIds = (t: TestWarden): string[] =>
  (storeOf(t.warden).db.prepare(`SELECT worker_id FROM worker_states WHERE status IN ('active', 'quarantined') ORDER BY worker_id`).pluck().all() as string[])

describe('leases (hot table)', () => {
  it('holds a row for each live worker, with its status, token hash and lifetime, and none for the others', () => {
    const t = setup()
    const ids = [registerRoot(t.warden).id, registerRoot(t.warden).id, registerRoot(t.warden).id]
    t.warden.transitions.quarantine(ids[1]!, 'look')
    t.warden.transitions.deregister(ids[2]!, 'done')
    const rows = leaseRows(t)
    expect(rows.map((r) => r.worker_id)).toEqual(liveIds(t))
    for (const row of rows) {
      const worker = storeOf(t.warden).db.prepare(`SELECT * FROM workers WHERE worker_id = ?`).get(row.worker_id) as LeaseRow
      expect(row).toMatchObject({ status: worker.status, expires_at: worker.expires_at })
      expect(row.lease_token_hash.equals(worker.lease_token_hash)).toBe(true)
    }
    t.warden.transitions.release(ids[1]!)
    expect(leaseRows(t).find((r) => r.worker_id === ids[1])?.status).toBe('active')
  })

  for (const [reason, end] of WAYS_TO_END) {
    it(`drops the row of a worker ended by ${reason}, and the book loaded from it at start holds only live workers`, () => {
      const t = setup()
      const { id } = registerRoot(t.warden)
      registerRoot(t.warden)
      end(t, id)
      expect(leaseRows(t).some((r) => r.worker_id === id)).toBe(false)
      expect(leaseRows(t).map((r) => r.worker_id)).toEqual(liveIds(t))
      t.warden.liveness.resume()
      expect(leasesOf(t.warden).get(id)).toBeUndefined()
      expect(leasesOf(t.warden).size).toBe(liveIds(t).length)
    })
  }

  it('takes renewals from the flusher, and gives an ended worker its final lease in the workers row', () => {
    const t = setup()
    const { id } = registerRoot(t.warden)
    t.clock.advance(7 * SECOND)
    t.warden.liveness.heartbeat(id)
    t.warden.liveness.flushAllLeases()
    const renewedTo = t.clock.now() + 30 * SECOND
    expect(leaseRows(t)[0]).toMatchObject({ lease_expires_at: renewedTo, last_heartbeat_at: t.clock.now() })
    const heartbeatAt = t.clock.now()
    t.clock.advance(SECOND)
    t.warden.transitions.kill(id, { cascade: true })
    expect(storeOf(t.warden).workers.get(id)).toMatchObject({ status: 'killed', lease_expires_at: renewedTo, last_heartbeat_at: heartbeatAt })
  })

  it('follows a rotated lease token (a repeated registration)', () => {
    const t = setup()
    const { id } = registerRoot(t.warden)
    const hash = Buffer.alloc(32, 7)
    storeOf(t.warden).workers.setTokenHash(id, hash)
    expect(leaseRows(t)[0]!.lease_token_hash.equals(hash)).toBe(true)
  })

  it('shows live workers in lists with the hot lease', () => {
    const t = setup()
    const { id } = registerRoot(t.warden)
    t.clock.advance(3 * SECOND)
    t.warden.liveness.heartbeat(id)
    t.warden.liveness.flushAllLeases()
    const [listed] = storeOf(t.warden).workers.list({ status: 'active', after_seq: 0, limit: 10 })
    expect(listed).toMatchObject({ worker_id: id, last_heartbeat_at: t.clock.now(), lease_expires_at: t.clock.now() + 30 * SECOND })
  })
})

describe('leases on the controller clock (migration 0013)', () => {
  it('a restart moves the clock by the downtime, not the rows: only a lease under the floor is rewritten', () => {
    const { file, cleanup } = tempDbFile()
    const clock = new ManualClock()
    try {
      const first = createTestWarden({ heartbeat_timeout_seconds: 30 }, file, clock)
      const early = registerRoot(first.warden).id
      clock.advance(25 * SECOND)
      const late = registerRoot(first.warden).id
      first.warden.liveness.tick()
      const before = new Map(leaseRows(first).map((row) => [row.worker_id, row.lease_expires_at]))
      const lateLease = storeOf(first.warden).workers.get(late)!.lease_expires_at
      first.close()

      clock.advance(60 * SECOND)
      const second = createTestWarden({ heartbeat_timeout_seconds: 30 }, file, clock)
      open.push(second)
      const floor = clock.now() + 10 * SECOND // the heartbeat interval: a third of the timeout
      const stored = new Map(leaseRows(second).map((row) => [row.worker_id, row.lease_expires_at]))
      expect(stored.get(late)).toBe(before.get(late))
      expect(stored.get(early)).not.toBe(before.get(early))
      const workers = storeOf(second.warden).workers
      expect(workers.get(late)!.lease_expires_at).toBe(lateLease + 60 * SECOND)
      expect(workers.get(early)!.lease_expires_at).toBe(floor)
      expect([...workers.live()].map((row) => [row.worker_id, row.lease_expires_at]).sort()).toEqual(
        [[early, floor], [late, lateLease + 60 * SECOND]].sort(),
      )
      // Renewed after the restart, a lease reads back as written; one due is offered as due.
      second.warden.liveness.heartbeat(late)
      second.warden.liveness.flushAllLeases()
      expect(workers.get(late)!.lease_expires_at).toBe(clock.now() + 30 * SECOND)
      expect(workers.dueLease(floor, 10).map((due) => due.worker_id)).toEqual([early])
    } finally {
      cleanup()
    }
  })
})

describe('workers by status (kept in memory for the metrics scrape)', () => {
  const counted = (t: TestWarden) =>
    Object.fromEntries(storeOf(t.warden).workers.countByStatus().map(({ status, n }) => [status, n]))
  const grouped = (t: TestWarden, table: 'worker_states' | 'workers' = 'worker_states') =>
    Object.fromEntries(
      (storeOf(t.warden).db.prepare(`SELECT status, count(*) AS n FROM ${table} GROUP BY status`).all() as Array<{ status: string; n: number }>).map(
        ({ status, n }) => [status, n],
      ),
    )

  it('matches a count of the table after every kind of change, a rolled-back one included', () => {
    const t = setup()
    const ids = Array.from({ length: 8 }, () => registerRoot(t.warden).id)
    expect(counted(t)).toEqual(grouped(t))
    t.warden.transitions.quarantine(ids[0]!, 'look')
    t.warden.transitions.quarantine(ids[1]!, 'look')
    t.warden.transitions.release(ids[1]!)
    t.warden.transitions.deregister(ids[2]!, 'done')
    t.warden.transitions.kill(ids[3]!, { cascade: true })
    expect(counted(t)).toEqual(grouped(t))
    expect(() =>
      storeOf(t.warden).transaction(() => {
        storeOf(t.warden).workers.terminate(ids[4]!, 'killed', 'rolled back', t.clock.now())
        throw new Error('roll back')
      }),
    ).toThrow('roll back')
    expect(counted(t)).toEqual(grouped(t))
    t.clock.advance(20 * SECOND)
    t.warden.liveness.heartbeat(ids[5]!)
    t.clock.advance(15 * SECOND)
    t.warden.liveness.tick()
    expect(counted(t)).toEqual(grouped(t))
    registerRoot(t.warden)
    t.warden.transitions.quarantine(ids[5]!, 'look')
    t.warden.killSwitch.engage('drill')
    expect(counted(t)).toEqual(grouped(t))
    expect(counted(t).killed).toBeGreaterThan(1)
    // The sweep brings the stored rows to the same counts, and moves none of them.
    t.warden.liveness.tick()
    expect(counted(t)).toEqual(grouped(t, 'workers'))
  })
})
