// SQL for the workers table. Records come out parsed (JSON columns as objects), typed by the
// schema below; every statement is prepared once.
import { z } from 'zod'
import { isLive, LIVE_STATUSES, ResourcesSchema, StateSnapshotSchema, WorkerIdSchema, WorkerStatusSchema, type LiveStatus, type WorkerStatus } from '../schemas/index.js'
import type { Db } from './db.js'

export const WorkerRecordSchema = z.object({
  seq: z.int(),
  worker_id: WorkerIdSchema,
  parent_id: WorkerIdSchema.nullable(),
  depth: z.int(),
  status: WorkerStatusSchema,
  reason: z.string().nullable(),
  /** SHA-256 of the lease token: the token itself is never stored. */
  lease_token_hash: z.instanceof(Buffer),
  resources: ResourcesSchema,
  state_snapshot: StateSnapshotSchema,
  key_id: z.string(),
  issued_at: z.number(),
  registered_at: z.number(),
  last_heartbeat_at: z.number().nullable(),
  lease_expires_at: z.number(),
  expires_at: z.number().nullable(),
  last_spawn_at: z.number().nullable(),
  ended_at: z.number().nullable(),
})
export type WorkerRecord = z.infer<typeof WorkerRecordSchema>

/** The row as SQLite holds it: the JSON columns as text. */
type StoredWorker = Omit<WorkerRecord, 'resources' | 'state_snapshot'> & { resources: string; state_snapshot: string }

const fromStored = (row: StoredWorker): WorkerRecord => ({
  ...row,
  resources: JSON.parse(row.resources) as WorkerRecord['resources'],
  state_snapshot: JSON.parse(row.state_snapshot) as WorkerRecord['state_snapshot'],
})

/** A registration; `ended_at` only for a worker recorded as already ended (an import, the benchmark's seed). */
export type NewWorker = Omit<WorkerRecord, 'seq' | 'last_heartbeat_at' | 'last_spawn_at' | 'ended_at'> & { ended_at?: number | null }

export type LiveLeaseRow = Pick<
  WorkerRecord,
  'worker_id' | 'status' | 'lease_token_hash' | 'lease_expires_at' | 'expires_at' | 'last_heartbeat_at'
>

export interface WorkerFilter {
  status?: WorkerStatus | undefined
  parent_id?: string | undefined
  depth?: number | undefined
  after_seq: number
  limit: number
}

/** A worker's place in the tree: what a lineage node is made of. */
export type TreeNode = Pick<WorkerRecord, 'worker_id' | 'parent_id' | 'depth' | 'status'>

/** SQL for "the worker at `column` is live", built from the one definition in schemas/. */
export const liveSql = (column = 'status'): string => `${column} IN (${LIVE_STATUSES.map((s) => `'${s}'`).join(', ')})`
const LIVE = liveSql()
/**
 * The last seq of a kill switch sweep still being written (migration 0010), NULL when none: the
 * stored rows up to it that still say live were killed by the switch. Constant in a statement.
 */
const SWEEP_SEQ = `(SELECT through_seq FROM kill_sweep)`
/**
 * Leases are kept on the controller's clock, which stops while it is down (migration 0013): the
 * stored time plus this offset is the wall-clock time. Constant in a statement.
 */
const OFFSET = `(SELECT lease_offset FROM controller_state WHERE id = 1)`
/** Live as it stands: live in the stored row and not in a pending sweep. */
const LIVE_NOW = `${LIVE} AND seq > coalesce(${SWEEP_SEQ}, 0)`
/**
 * A worker as it stands (status, reason and end through `worker_states`, which applies a pending
 * sweep) with its lease: the hot copy in `leases` while it is live, the final one after (0009).
 */
const WITH_LEASE = `SELECT w.seq, w.worker_id, w.parent_id, w.depth, w.status, w.reason, w.lease_token_hash, w.resources,
  w.state_snapshot, w.key_id, w.issued_at, w.registered_at,
  coalesce(l.last_heartbeat_at, w.last_heartbeat_at) AS last_heartbeat_at,
  coalesce(l.lease_expires_at + ${OFFSET}, w.lease_expires_at) AS lease_expires_at,
  w.expires_at, w.last_spawn_at, w.ended_at
  FROM worker_states w LEFT JOIN leases l ON l.worker_id = w.worker_id`
/** Takes the hot lease back into the workers row of a worker that is ending. */
const FINAL_LEASE = `lease_expires_at = coalesce((SELECT l.lease_expires_at FROM leases l WHERE l.worker_id = workers.worker_id) + ${OFFSET}, lease_expires_at),
  last_heartbeat_at = coalesce((SELECT l.last_heartbeat_at FROM leases l WHERE l.worker_id = workers.worker_id), last_heartbeat_at)`

/**
 * `afterCommit` runs a callback once the enclosing transaction commits (at once outside one): the
 * counts by status are kept in memory that way, so a scrape never counts a million rows.
 */
export function createWorkerRepository(db: Db, afterCommit: (callback: () => void) => void = (callback) => callback()) {
  const insert = db.prepare(`
    INSERT INTO workers (worker_id, parent_id, depth, status, reason, lease_token_hash, resources, state_snapshot,
      key_id, issued_at, registered_at, lease_expires_at, expires_at, ended_at)
    VALUES (@worker_id, @parent_id, @depth, @status, @reason, @lease_token_hash, @resources, @state_snapshot,
      @key_id, @issued_at, @registered_at, @lease_expires_at, @expires_at, @ended_at)`)
  const get = db.prepare<[string], StoredWorker>(`${WITH_LEASE} WHERE w.worker_id = ?`)
  const node = db.prepare<[string], TreeNode>(`SELECT worker_id, parent_id, depth, status FROM worker_states WHERE worker_id = ?`)
  const countLive = db.prepare<[], { n: number }>(`SELECT count(*) AS n FROM workers WHERE ${LIVE_NOW}`)
  const countChildren = db.prepare<[string], { n: number }>(`SELECT count(*) AS n FROM workers WHERE parent_id = ?`)
  const setStatus = db.prepare(`UPDATE workers SET status = @status, reason = @reason WHERE worker_id = @worker_id`)
  const terminate = db.prepare(`
    UPDATE workers SET status = @status, reason = @reason, ended_at = @at, ${FINAL_LEASE}
    WHERE worker_id = @worker_id AND ${LIVE_NOW}`)
  // The kill switch (SPEC §2.6): who is live, and the sweep that kills them (migration 0010).
  const liveIds = db.prepare<[], string>(`SELECT worker_id FROM workers WHERE ${LIVE_NOW}`).pluck()
  const leaseIds = db.prepare<[], string>(`SELECT worker_id FROM leases`).pluck()
  const lastSeq = db.prepare<[], number | null>(`SELECT max(seq) FROM workers`).pluck()
  const startSweep = db.prepare(`INSERT INTO kill_sweep (id, through_seq, at, reason) VALUES (1, @through_seq, @at, @reason)`)
  const pendingSweep = db.prepare<[], { through_seq: number; at: number; reason: string }>(`SELECT through_seq, at, reason FROM kill_sweep`)
  const sweepSlice = db.prepare(`
    UPDATE workers SET status = 'killed', reason = @reason, ended_at = @at
    WHERE seq IN (SELECT seq FROM workers WHERE ${LIVE} AND seq <= @through_seq LIMIT @limit)`)
  const endSweep = db.prepare(`DELETE FROM kill_sweep`)
  // Only the narrow hot row: a worker that ended meanwhile has none, and keeps its final lease.
  const clearLeases = db.prepare(`DELETE FROM leases`)
  const renewLease = db.prepare(`
    UPDATE leases SET lease_expires_at = @lease_expires_at - ${OFFSET}, last_heartbeat_at = @last_heartbeat_at WHERE worker_id = @worker_id`)
  const tokenHash = db.prepare<[string], Buffer>(`SELECT lease_token_hash FROM workers WHERE worker_id = ?`).pluck()
  const setTokenHash = db.prepare(`UPDATE workers SET lease_token_hash = @hash WHERE worker_id = @worker_id`)
  const live = db.prepare<[], LiveLeaseRow>(`
    SELECT worker_id, status, lease_token_hash, lease_expires_at + ${OFFSET} AS lease_expires_at, expires_at, last_heartbeat_at FROM leases`)
  const recordSpawn = db.prepare(`UPDATE workers SET last_spawn_at = @at WHERE worker_id = @worker_id`)
  const dueLease = db.prepare<[number, number], { worker_id: string; parent_id: string | null }>(`
    SELECT l.worker_id, w.parent_id FROM leases l INDEXED BY leases_due JOIN workers w ON w.worker_id = l.worker_id
    WHERE l.lease_expires_at <= ? - ${OFFSET} ORDER BY l.lease_expires_at LIMIT ?`)
  const dueLifetime = db.prepare<[number, number], { worker_id: string; parent_id: string | null }>(`
    SELECT l.worker_id, w.parent_id FROM leases l INDEXED BY leases_lifetime JOIN workers w ON w.worker_id = l.worker_id
    WHERE l.expires_at IS NOT NULL AND l.expires_at <= ? ORDER BY l.expires_at LIMIT ?`)
  const liveDescendants = db.prepare<[string], { worker_id: string; parent_id: string | null }>(`
    WITH RECURSIVE tree(worker_id) AS (
      SELECT worker_id FROM workers WHERE parent_id = ?
      UNION ALL
      SELECT w.worker_id FROM workers w JOIN tree t ON w.parent_id = t.worker_id
    )
    SELECT w.worker_id, w.parent_id FROM worker_states w JOIN tree USING (worker_id) WHERE ${liveSql('w.status')}`)
  const descendants = db.prepare<[string, number], TreeNode>(`
    WITH RECURSIVE tree(worker_id, level) AS (
      SELECT worker_id, 1 FROM workers WHERE parent_id = ?
      UNION ALL
      SELECT w.worker_id, t.level + 1 FROM workers w JOIN tree t ON w.parent_id = t.worker_id
    )
    SELECT w.worker_id, w.parent_id, w.depth, w.status FROM tree JOIN worker_states w USING (worker_id)
    ORDER BY tree.level, w.seq LIMIT ?`)
  // One statement per combination of filters, prepared on first use and kept.
  const listStatements = new Map<string, ReturnType<typeof db.prepare<[WorkerFilter], StoredWorker>>>()
  const listStatement = (filter: WorkerFilter) => {
    const where = ['w.seq > @after_seq']
    if (filter.parent_id !== undefined) where.push('w.parent_id = @parent_id')
    if (filter.depth !== undefined) where.push('w.depth = @depth')
    const select = (...conditions: string[]) => `${WITH_LEASE} WHERE ${[...where, ...conditions].join(' AND ')}`
    // A status filter reads the stored column, so the (status, seq) index serves it; the rows of
    // a pending sweep are still live there and count as killed (one ordered branch per stored status).
    const status = filter.status
    const sql =
      status === undefined
        ? select()
        : status === 'killed'
          ? [select(`w.stored_status = 'killed'`), ...LIVE_STATUSES.map((live) => select(`w.stored_status = '${live}'`, `w.seq <= ${SWEEP_SEQ}`))].join(
              ' UNION ALL ',
            )
          : isLive(status)
            ? select('w.stored_status = @status', `w.seq > coalesce(${SWEEP_SEQ}, 0)`)
            : select('w.stored_status = @status')
    let statement = listStatements.get(sql)
    if (!statement) {
      statement = db.prepare<[WorkerFilter], StoredWorker>(`${sql} ORDER BY seq LIMIT @limit`)
      listStatements.set(sql, statement)
    }
    return statement
  }
  // The restart rule as two writes: the clock moves on by the downtime (every lease with it), and
  // the leases that would still end before the floor are raised to it (a range of leases_due).
  const moveClock = db.prepare(`UPDATE controller_state SET lease_offset = lease_offset + @downtime WHERE id = 1`)
  const raiseToFloor = db.prepare(`UPDATE leases SET lease_expires_at = @floor - ${OFFSET} WHERE lease_expires_at < @floor - ${OFFSET}`)
  const countLeases = db.prepare<[], number>(`SELECT count(*) FROM leases`).pluck()
  const liveStatus = db.prepare<[string], WorkerStatus>(`SELECT status FROM leases WHERE worker_id = ?`).pluck()

  // Workers by status as committed: counted once here, then moved by every write below.
  const counts = new Map<WorkerStatus, number>()
  for (const { status, n } of db.prepare<[], { status: WorkerStatus; n: number }>(`SELECT status, count(*) AS n FROM workers GROUP BY status`).all()) {
    counts.set(status, n)
  }
  // A sweep left pending by a crash: its rows count as killed already, and the reaper finishes it.
  let sweeping = pendingSweep.get() !== undefined
  if (sweeping) {
    const swept = db.prepare<[], { status: WorkerStatus; n: number }>(`
      SELECT status, count(*) AS n FROM workers WHERE ${LIVE} AND seq <= ${SWEEP_SEQ} GROUP BY status`)
    for (const { status, n } of swept.all()) {
      counts.set(status, (counts.get(status) ?? 0) - n)
      counts.set('killed', (counts.get('killed') ?? 0) + n)
    }
  }
  const move = (from: WorkerStatus | null, to: WorkerStatus, n: number) =>
    afterCommit(() => {
      if (from !== null) counts.set(from, (counts.get(from) ?? 0) - n)
      counts.set(to, (counts.get(to) ?? 0) + n)
    })

  return {
    insert(worker: NewWorker): void {
      insert.run({
        ...worker,
        ended_at: worker.ended_at ?? null,
        resources: JSON.stringify(worker.resources),
        state_snapshot: JSON.stringify(worker.state_snapshot),
      })
      move(null, worker.status, 1)
    },
    get(workerId: string): WorkerRecord | undefined {
      const row = get.get(workerId)
      return row && fromStored(row)
    },
    countLive(): number {
      return countLive.get()!.n
    },
    countChildren(workerId: string): number {
      return countChildren.get(workerId)!.n
    },
    /** Moves between live states (quarantine and release). */
    setLiveStatus(workerId: string, status: LiveStatus, reason: string | null): void {
      const from = liveStatus.get(workerId) ?? status
      setStatus.run({ worker_id: workerId, status, reason })
      if (from !== status) move(from, status, 1)
    },
    /** Moves a live worker to a terminal state; false when it was not live. */
    terminate(workerId: string, status: WorkerStatus, reason: string, at: number): boolean {
      const from = liveStatus.get(workerId) ?? 'active'
      const ended = terminate.run({ worker_id: workerId, status, reason, at }).changes === 1
      if (ended) move(from, status, 1)
      return ended
    },
    /**
     * Kills every live worker; the ids killed. What commits with it is the hot part: one sweep
     * row (every worker live now has a seq up to the last one), which `worker_states` and every
     * read here apply at once, and the lease rows, all at once (a worker's final lease is not
     * copied back). The cold workers rows follow in slices (`sweep`). A sweep still pending from
     * an earlier engagement is finished first, so one row describes the one pending.
     */
    killAllLive(reason: string, at: number): string[] {
      while (this.sweep(10_000) > 0);
      // The ids from the narrow lease table (one row per live worker, kept so by its triggers):
      // reading them from the workers rows costs a page per live worker where those rows are
      // spread over the table. The stored rows decide: a count of the status index (no row read)
      // must agree, or the ids are read from the rows after all.
      let killed = leaseIds.all()
      if (killed.length !== countLive.get()!.n) killed = liveIds.all()
      const throughSeq = lastSeq.get()
      if (killed.length > 0 && throughSeq !== null) startSweep.run({ through_seq: throughSeq, at, reason })
      clearLeases.run()
      afterCommit(() => {
        counts.set('active', 0)
        counts.set('quarantined', 0)
        counts.set('killed', (counts.get('killed') ?? 0) + killed.length)
        if (killed.length > 0) sweeping = true
      })
      return killed
    },
    /** Whether a kill switch sweep is still being written (known in memory: free to ask every tick). */
    sweepPending(): boolean {
      return sweeping
    },
    /**
     * Inside a transaction: writes up to `limit` rows of the pending sweep as killed; how many.
     * The sweep row goes with the last of them, so a crash at any point leaves it to finish.
     * `sweepPending` turns false only once a call finds the row gone (a slice whose commit
     * failed leaves it pending, to be tried again).
     */
    sweep(limit: number): number {
      const pending = pendingSweep.get()
      if (pending === undefined) {
        afterCommit(() => (sweeping = false))
        return 0
      }
      const written = sweepSlice.run({ ...pending, limit }).changes
      if (written < limit) endSweep.run()
      return written
    },
    /** Writes a lease renewal; a worker that ended meanwhile keeps its final lease. */
    renewLease(renewal: { worker_id: string; lease_expires_at: number; last_heartbeat_at: number | null }): void {
      renewLease.run(renewal)
    },
    tokenHash(workerId: string): Buffer | undefined {
      return tokenHash.get(workerId)
    },
    /** Replaces the worker's lease token (a repeated registration): the old one stops working. */
    setTokenHash(workerId: string, hash: Buffer): void {
      setTokenHash.run({ worker_id: workerId, hash })
    },
    live(): IterableIterator<LiveLeaseRow> {
      return live.iterate()
    },
    recordSpawn(workerId: string, at: number): void {
      recordSpawn.run({ worker_id: workerId, at })
    },
    dueLease(now: number, limit: number) {
      return dueLease.all(now, limit)
    },
    dueLifetime(now: number, limit: number) {
      return dueLifetime.all(now, limit)
    },
    liveDescendants(workerId: string) {
      return liveDescendants.all(workerId)
    },
    descendants(workerId: string, limit: number): TreeNode[] {
      return descendants.all(workerId, limit)
    },
    ancestors(worker: Pick<WorkerRecord, 'parent_id'>): TreeNode[] {
      const chain: TreeNode[] = []
      let parentId = worker.parent_id
      while (parentId !== null && chain.length < 1000) {
        const parent = node.get(parentId)
        if (!parent) break
        chain.unshift(parent)
        parentId = parent.parent_id
      }
      return chain
    },
    list(filter: WorkerFilter): WorkerRecord[] {
      return listStatement(filter).all(filter).map(fromStored)
    },
    /** After a restart: leases keep what they had left at the last tick, and at least `floor`. */
    shiftLeases(downtime: number, floor: number): number {
      moveClock.run({ downtime })
      raiseToFloor.run({ floor })
      return countLeases.get()!
    },
    /** As committed; kept in memory (see `counts`), so this costs nothing at any table size. */
    countByStatus(): Array<{ status: WorkerStatus; n: number }> {
      return [...counts].filter(([, n]) => n > 0).map(([status, n]) => ({ status, n }))
    },
  }
}

export type WorkerRepository = ReturnType<typeof createWorkerRepository>
