// The heartbeat lease of every live worker, in memory. SPEC §2.10 lets lease renewals lag the
// database by up to a second, so a heartbeat touches only this book; a flusher writes renewed
// leases back in small batches. Everything else about a worker is written through at once.
import { isLive, type LiveStatus } from '../schemas/index.js'
import type { LiveLeaseRow } from '../store/workers.js'
import { noStalls, type LoopWatch } from './clock.js'

export interface Lease {
  tokenHash: Buffer
  status: LiveStatus
  leaseExpiresAt: number
  expiresAt: number | null
  lastHeartbeatAt: number | null
}

export interface LeaseRenewal {
  worker_id: string
  lease_expires_at: number
  last_heartbeat_at: number | null
}

export class LeaseBook {
  private readonly leases = new Map<string, Lease>()
  private readonly dirty = new Set<string>()
  /** The pending renewals of the round being written, in key order, and how far it got. */
  private round: string[] = []
  private roundNext = 0

  /** Every read first moves the leases on by any stall of the loop since the last read. */
  constructor(private readonly loop: LoopWatch = noStalls) {}

  /** Total stall time leases were moved on by, for the log and tests. */
  stalledMs = 0

  private catchUp(): void {
    const stall = this.loop.takeStall()
    if (stall <= 0) return
    this.stalledMs += stall
    for (const [workerId, lease] of this.leases) {
      lease.leaseExpiresAt += stall
      this.dirty.add(workerId)
    }
  }

  /** Live workers: the book holds exactly the active and quarantined ones. */
  get size(): number {
    return this.leases.size
  }

  get pending(): number {
    return this.dirty.size
  }

  get(workerId: string): Lease | undefined {
    this.catchUp()
    return this.leases.get(workerId)
  }

  add(row: LiveLeaseRow): void {
    if (!isLive(row.status)) return
    this.leases.set(row.worker_id, {
      tokenHash: row.lease_token_hash,
      status: row.status,
      leaseExpiresAt: row.lease_expires_at,
      expiresAt: row.expires_at,
      lastHeartbeatAt: row.last_heartbeat_at,
    })
  }

  remove(workerId: string): void {
    this.leases.delete(workerId)
    this.dirty.delete(workerId)
  }

  clear(): void {
    this.leases.clear()
    this.dirty.clear()
    this.round = []
    this.roundNext = 0
  }

  setStatus(workerId: string, status: Lease['status']): void {
    const lease = this.leases.get(workerId)
    if (lease) lease.status = status
  }

  renew(lease: Lease, workerId: string, leaseExpiresAt: number, at: number): void {
    lease.leaseExpiresAt = leaseExpiresAt
    lease.lastHeartbeatAt = at
    this.dirty.add(workerId)
  }

  /** Renewals taken but not written (the write failed): pending again, unless the worker left the book. */
  markPending(workerIds: string[]): void {
    for (const workerId of workerIds) if (this.leases.has(workerId)) this.dirty.add(workerId)
    this.roundNext = this.round.length // the next take starts a new round, with these in it
  }

  /**
   * The renewals not yet written, in worker_id order, each removed from the pending set as it is
   * handed out: a flush takes as many as its budget allows and the next one goes on from there.
   * Key order makes a short slice touch a narrow range of the lease table's pages; in arrival
   * order renewals land all over the table, and every commit, however few rows it wrote, rewrote
   * most of its pages. A round is the pending set as it began, sorted once (~2 ms at 10,000);
   * a lease renewed again after its turn in the round waits for the next round.
   */
  *takeRenewals(): Generator<LeaseRenewal, void, undefined> {
    if (this.roundNext >= this.round.length) {
      this.round = [...this.dirty].sort()
      this.roundNext = 0
    }
    while (this.roundNext < this.round.length) {
      const workerId = this.round[this.roundNext++]!
      if (!this.dirty.delete(workerId)) continue
      const lease = this.leases.get(workerId)
      if (lease) yield { worker_id: workerId, lease_expires_at: lease.leaseExpiresAt, last_heartbeat_at: lease.lastHeartbeatAt }
    }
  }
}
