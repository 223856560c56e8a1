// SPEC §2.6 at scale (migration 0010): engaging the kill switch commits the termination of every
// live worker as one sweep row and drops their leases; the wide workers rows are rewritten
// afterwards, a slice per reaper turn. Every reader must see the workers killed from the commit
// on, the slices must never touch a worker registered later, and a crash between the commit and
// the last slice must lose nothing.
import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../src/domain/clock.js'
import type { Warden } from '../../src/domain/index.js'
import { createTestWarden, registerChild, registerRoot, storeOf, type TestWarden } from '../helpers/harness.js'
import { auditRecords, auditSeq, expectDomainError, SECOND, tempDbFile, wardenPerTest } from './support.js'

const CONTRACT = { max_replicas: 10_000, max_depth: 3, heartbeat_timeout_seconds: 600 }
const setup = wardenPerTest(CONTRACT)

/** `roots` roots with `children` children each, all live: ids in registration order, and the tree. */
function fleet(warden: Warden, roots: number, children: number) {
  const ids: string[] = []
  const tokens = new Map<string, string>()
  const kids = new Map<string, string[]>()
  for (let r = 0; r < roots; r++) {
    const root = registerRoot(warden)
    ids.push(root.id)
    tokens.set(root.id, root.token)
    kids.set(root.id, [])
    for (let c = 0; c < children; c++) {
      const child = registerChild(warden, root.id)
      ids.push(child.id)
      tokens.set(child.id, child.token)
      kids.get(root.id)!.push(child.id)
    }
  }
  return { ids, tokens, kids }
}

const db = (warden: Warden) => storeOf(warden).db
/** The stored rows (not worker_states): what the sweep has written so far. */
const storedLive = (warden: Warden): number =>
  db(warden).prepare(`SELECT count(*) FROM workers WHERE status IN ('active', 'quarantined')`).pluck().get() as number
const sweepRows = (warden: Warden): number => db(warden).prepare(`SELECT count(*) FROM kill_sweep`).pluck().get() as number

/** Every page of the list for `status`, following the cursor. */
function listAll(warden: Warden, status?: 'active' | 'quarantined' | 'killed' | 'deregistered', parent?: string) {
  const items = []
  let cursor: string | undefined
  for (;;) {
    const page = warden.queries.workers({ limit: 1000, ...(status ? { status } : {}), ...(parent ? { parent_id: parent } : {}), ...(cursor ? { cursor } : {}) })
    items.push(...page.items)
    if (page.next_cursor === null) return items
    cursor = page.next_cursor
  }
}

/** What every reader says about the fleet after the kill switch (the same before and after the sweep). */
function expectEveryReaderSeesKilled(t: TestWarden, f: ReturnType<typeof fleet>, engagedAt: number, others: { done: string }) {
  const { warden } = t
  const store = storeOf(warden)
  for (const id of f.ids) {
    expect(store.workers.get(id), id).toMatchObject({ status: 'killed', reason: 'kill_switch', ended_at: engagedAt })
    expect(store.sandboxes.get(id), id).toMatchObject({ status: 'stopped', stop_reason: 'kill_switch', stopped_at: engagedAt })
  }
  const sample = f.ids.filter((_, i) => i % 97 === 0)
  for (const id of sample) {
    expect(warden.queries.worker(id)).toMatchObject({ status: 'killed', reason: 'kill_switch', ended_at: new Date(engagedAt).toISOString() })
    const beat = expectDomainError(() => warden.liveness.heartbeat(id), 'worker_terminated')
    expect(beat.extras).toMatchObject({ directive: 'terminate', reason: 'kill_switch' })
  }
  // Lists: by status (the status index reads stored rows; the sweep's must count as killed), all, by parent.
  expect(listAll(warden, 'active')).toEqual([])
  expect(listAll(warden, 'quarantined')).toEqual([])
  const killed = listAll(warden, 'killed')
  expect(killed.map((w) => w.worker_id)).toEqual(f.ids)
  expect(killed.every((w) => w.reason === 'kill_switch')).toBe(true)
  expect(listAll(warden, 'deregistered').map((w) => w.worker_id)).toEqual([others.done])
  const all = listAll(warden)
  expect(all.filter((w) => w.status === 'killed').map((w) => w.worker_id)).toEqual(f.ids)
  const [root, children] = [...f.kids][0]!
  expect(listAll(warden, undefined, root).map((w) => [w.worker_id, w.status])).toEqual(children.map((id) => [id, 'killed']))
  // Lineage, both ways.
  const lineage = warden.queries.lineage(children[0]!)
  expect(lineage.ancestors.map((n) => [n.worker_id, n.status])).toEqual([[root, 'killed']])
  expect(warden.queries.lineage(root).descendants.map((n) => n.status)).toEqual(children.map(() => 'killed'))
  // Counts (the metrics gauges and the summary) and the quota.
  const summary = warden.queries.summary()
  expect(summary.workers).toMatchObject({ active: 0, quarantined: 0, killed: f.ids.length, deregistered: 1 })
  expect(summary.slots_in_use).toBe(0)
  expect(store.workers.countLive()).toBe(0)
  // Decisions on a killed worker change nothing and record nothing.
  const head = auditSeq(warden)
  expect(warden.transitions.kill(root, { cascade: true }).killed).toEqual([])
  expect(warden.transitions.deregister(children[1]!, 'late').status).toBe('killed')
  expectDomainError(() => warden.transitions.quarantine(children[2]!, 'late'), 'worker_terminated')
  t.clock.advance(SECOND)
  warden.liveness.tick() // the reaper would have reaped none of them either
  expect(auditSeq(warden)).toBe(head)
  expect(warden.queries.summary().workers).toMatchObject({ active: 0, quarantined: 0, killed: f.ids.length })
}

describe('kill switch sweep: hot flip in the transaction, cold rows after', () => {
  it('every reader sees all 5,000 workers killed from the commit on, while their stored rows still say live', () => {
    const t = setup()
    const { warden, clock } = t
    const f = fleet(warden, 1000, 4)
    const done = registerRoot(warden).id
    warden.transitions.deregister(done, 'finished')
    warden.transitions.quarantine(f.ids[7]!, 'look')
    clock.advance(SECOND)

    const engaged = warden.killSwitch.engage('drill')
    const engagedAt = clock.now()
    expect(engaged.terminated).toBe(5000)
    const [record] = auditRecords(warden, 'kill_switch_engaged')
    expect([...(record!.data.worker_ids as string[])].sort()).toEqual([...f.ids].sort())
    // The window: nothing written to the wide rows yet, one sweep row, no lease row.
    expect(storedLive(warden)).toBe(5000)
    expect(sweepRows(warden)).toBe(1)
    expect(db(warden).prepare(`SELECT count(*) FROM leases`).pluck().get()).toBe(0)

    // Readers before the sweep (the last of them runs a reaper tick, which writes it all).
    const before = structuredClone(listAll(warden))
    expectEveryReaderSeesKilled(t, f, engagedAt, { done })
    expect(storedLive(warden)).toBe(0)
    expect(sweepRows(warden)).toBe(0)
    expect(storeOf(warden).workers.sweepPending()).toBe(false)
    // After it: the stored rows say what the readers said.
    expect(listAll(warden)).toEqual(before)
    expect(db(warden).prepare(`SELECT count(*) FROM workers WHERE status = 'killed' AND reason = 'kill_switch' AND ended_at = ?`).pluck().get(engagedAt)).toBe(5000)
    expectEveryReaderSeesKilled(t, f, engagedAt, { done })
  })

  it('writes the rows a slice per reaper turn, and never touches a worker registered after a disengagement', () => {
    const t = setup()
    const { warden, clock } = t
    const f = fleet(warden, 500, 4)
    warden.killSwitch.engage('drill')
    clock.advance(SECOND)
    warden.killSwitch.disengage()
    const late = registerRoot(warden).id
    expect(warden.queries.worker(late).status).toBe('active')
    expect(listAll(warden, 'active').map((w) => w.worker_id)).toEqual([late])

    const first = warden.liveness.tickSlice()
    expect(first.more).toBe(true)
    expect(storedLive(warden)).toBe(f.ids.length + 1 - 500)
    warden.liveness.tick()
    expect(storedLive(warden)).toBe(1)
    expect(warden.queries.worker(late).status).toBe('active')
    expect(warden.liveness.heartbeat(late).directive).toBe('continue')
    expect(warden.queries.summary().workers).toMatchObject({ active: 1, killed: f.ids.length })
  })

  it('a second engagement while a sweep is pending finishes the first and kills the newcomers with their own time', () => {
    const t = setup()
    const { warden, clock } = t
    const f = fleet(warden, 300, 4)
    warden.killSwitch.engage('first')
    const firstAt = clock.now()
    clock.advance(SECOND)
    warden.killSwitch.disengage()
    const late = registerRoot(warden).id
    clock.advance(SECOND)
    expect(warden.killSwitch.engage('second').terminated).toBe(1)
    const secondAt = clock.now()
    expect(storedLive(warden)).toBe(1) // the first sweep was written out by the second engagement
    expect(storeOf(warden).workers.get(late)).toMatchObject({ status: 'killed', ended_at: secondAt })
    expect(storeOf(warden).workers.get(f.ids[0]!)).toMatchObject({ status: 'killed', ended_at: firstAt })
    warden.liveness.tick()
    expect(storedLive(warden)).toBe(0)
    expect(storeOf(warden).workers.get(late)).toMatchObject({ status: 'killed', reason: 'kill_switch', ended_at: secondAt })
    expect(listAll(warden, 'killed')).toHaveLength(f.ids.length + 1)
  })

  it('names every live worker even if the lease rows, a copy, had lost one: the stored rows decide', () => {
    const t = setup()
    const { warden } = t
    const f = fleet(warden, 10, 2)
    db(warden).prepare(`DELETE FROM leases WHERE worker_id = ?`).run(f.ids[3])
    expect(warden.killSwitch.engage('drill').terminated).toBe(f.ids.length)
    const [record] = auditRecords(warden, 'kill_switch_engaged')
    expect([...(record!.data.worker_ids as string[])].sort()).toEqual([...f.ids].sort())
  })

  it('a slice whose commit fails (a full disk) leaves the sweep pending, and the next turn writes it', () => {
    const t = setup()
    const { warden } = t
    const f = fleet(warden, 100, 2)
    warden.killSwitch.engage('drill')
    const store = storeOf(warden)
    const lazyTransaction = store.lazyTransaction
    store.lazyTransaction = <T>(fn: () => T): T =>
      lazyTransaction(() => {
        fn()
        throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' })
      })
    expectDomainError(() => warden.liveness.tickSlice(), 'storage_unavailable')
    store.lazyTransaction = lazyTransaction
    expect(storedLive(warden)).toBe(f.ids.length)
    expect(store.workers.sweepPending()).toBe(true)
    warden.liveness.tick()
    expect(storedLive(warden)).toBe(0)
    expect(sweepRows(warden)).toBe(0)
    expect(store.workers.sweepPending()).toBe(false)
  })

  it('a crash between the commit and the last slice loses nothing: the next start counts them killed and finishes the sweep', () => {
    const { file, cleanup } = tempDbFile()
    const clock = new ManualClock()
    try {
      const first = createTestWarden(CONTRACT, file, clock)
      const f = fleet(first.warden, 300, 3)
      first.warden.killSwitch.engage('crash drill')
      const engagedAt = clock.now()
      first.warden.liveness.tickSlice() // one slice of 500 written, 700 rows to go
      expect(storedLive(first.warden)).toBe(700)
      // The process dies here: nothing of it runs again (its connection is closed, its book and counts lost).
      storeOf(first.warden).db.close()

      clock.advance(60 * SECOND)
      const second = createTestWarden(CONTRACT, file, clock)
      try {
        const { warden } = second
        expect(storedLive(warden)).toBe(700)
        expect(warden.queries.summary().workers).toMatchObject({ active: 0, killed: 1200 })
        for (const id of f.ids) expect(storeOf(warden).workers.get(id), id).toMatchObject({ status: 'killed', reason: 'kill_switch', ended_at: engagedAt })
        expect(listAll(warden, 'killed')).toHaveLength(1200)
        expect(warden.killSwitch.state()).toMatchObject({ engaged: true, reason: 'crash drill' })
        expect(storeOf(warden).workers.sweepPending()).toBe(true)
        warden.liveness.tick()
        expect(storedLive(warden)).toBe(0)
        expect(sweepRows(warden)).toBe(0)
        expect(warden.queries.summary().workers).toMatchObject({ active: 0, killed: 1200 })
        expect(warden.queries.verifyAudit().ok).toBe(true)
      } finally {
        second.close()
      }
    } finally {
      cleanup()
    }
  })
})
