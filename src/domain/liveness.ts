// SPEC §2.7 liveness: a heartbeat renews the lease in the lease book (lease-book.ts); the reaper
// reaps silent workers, expires workers past their lifetime and voids manifests past their TTL;
// lease time does not run while the controller is down. A lease or lifetime that ran out
// before the reaper saw it is settled by the next decision that reads the worker (transitions.ts).
import { isLive, type HeartbeatResponse } from '../schemas/index.js'
import type { WorkerRecord } from '../store/workers.js'
import { iso, isoOrNull } from './clock.js'
import { heartbeatIntervalSeconds } from './contract.js'
import { controllerActor } from './actors.js'
import { type DomainDeps } from './context.js'
import type { Lease } from './lease-book.js'
import { terminatedError, type Transitions } from './transitions.js'

export interface TickResult {
  reaped: number
  expired: number
  manifests_expired: number
}

/**
 * Rows handled per transaction, so one tick never holds the event loop for long: a reap costs
 * ~0.1–0.2 ms on a busy 2-core machine (terminate, audit append, hash), so 100 stay well inside
 * SPEC §2.14's 50 ms (the benchmark measures the slowest slice).
 */
const BATCH = 100
/**
 * Workers rows a slice of the kill switch's sweep brings up to date (a row rewrite and its status
 * index, ~10 µs each: ~5 ms a slice; 60 ms was seen for 1,000 on a machine with a load of 9).
 */
const SWEEP_BATCH = 500

/** Renewals written between two looks at a flush's budget. */
const FLUSH_CHECK_EVERY = 64

export function createLiveness(deps: DomainDeps, transitions: Transitions) {
  const { store, clock, contracts, sandbox, leases, signer } = deps

  /** Writes the book's lease of these workers now, so the database stops offering them as due. */
  function writeBack(workerIds: string[]): void {
    store.lazyTransaction(() => {
      for (const workerId of workerIds) {
        const lease = leases.get(workerId)
        if (lease?.lastHeartbeatAt != null) {
          store.workers.renewLease({ worker_id: workerId, lease_expires_at: lease.leaseExpiresAt, last_heartbeat_at: lease.lastHeartbeatAt })
        }
      }
    })
  }

  /**
   * Writes up to `max` pending lease renewals in one transaction, in worker_id order (the lease
   * book's round); how many it wrote. `enough` is asked every few rows: once it says so, the rest
   * stay pending for the next call, which goes on from there. A commit rewrites every page it
   * touched; in key order a short commit touches only its own range of the table, so `enough` (a
   * time budget) can keep each one short on the event loop (SPEC §2.14) at no extra cost.
   */
  function flushLeases(max = 500, enough: () => boolean = () => false): number {
    if (leases.pending === 0) return 0
    const pending = leases.takeRenewals()
    const taken: string[] = []
    try {
      store.lazyTransaction(() => {
        while (taken.length < max && !(taken.length > 0 && taken.length % FLUSH_CHECK_EVERY === 0 && enough())) {
          const next = pending.next()
          if (next.done) break
          taken.push(next.value.worker_id)
          store.workers.renewLease(next.value)
        }
      })
    } catch (error) {
      // Not written: they stay pending for the next flush (a full disk is retried, not fatal).
      leases.markPending(taken)
      throw error
    }
    return taken.length
  }

  /** What every heartbeat under the current contract answers alike, worked out once. */
  let answered = { contract: null as ReturnType<typeof contracts.current> | null, intervalSeconds: 0, leaseMs: NaN, leaseIso: '' }

  const liveness = {
    /**
     * The hot path: a live worker inside its lease and lifetime renews in memory only (the kill
     * switch, every kill and every reap remove the lease from the book in the transaction's
     * commit). Anything else goes through the database.
     */
    heartbeat(workerId: string): HeartbeatResponse {
      const now = clock.now()
      const contract = contracts.current()
      if (contract !== answered.contract) answered = { contract, intervalSeconds: heartbeatIntervalSeconds(contract), leaseMs: NaN, leaseIso: '' }
      const renew = (lease: Lease): HeartbeatResponse => {
        const leaseExpiresAt = now + contract.ms.heartbeat_timeout
        leases.renew(lease, workerId, leaseExpiresAt, now)
        // Every heartbeat within one millisecond is answered the same lease end.
        if (leaseExpiresAt !== answered.leaseMs) {
          answered.leaseMs = leaseExpiresAt
          answered.leaseIso = iso(leaseExpiresAt)
        }
        return {
          directive: lease.status === 'quarantined' ? 'suspend' : 'continue',
          lease_expires_at: answered.leaseIso,
          expires_at: isoOrNull(lease.expiresAt),
          heartbeat_interval_seconds: answered.intervalSeconds,
          heartbeat_timeout_seconds: contract.heartbeat_timeout_seconds,
        }
      }
      const lease = leases.get(workerId)
      if (lease && lease.leaseExpiresAt > now && (lease.expiresAt === null || lease.expiresAt > now)) return renew(lease)

      const row = transitions.decide<WorkerRecord>(() => {
        let current = transitions.settle(transitions.requireWorker(workerId), now)
        if (isLive(current.status) && store.killSwitch.get().engaged === 1) {
          current = transitions.terminate(current, 'killed', 'kill_switch', controllerActor, now)
        }
        return isLive(current.status) ? current : terminatedError(current)
      })
      // Live, yet not in the book: put it back rather than fail the worker.
      leases.add(row)
      return renew(leases.get(workerId)!)
    },

    flushLeases,

    /** Everything pending, e.g. before a graceful close. */
    flushAllLeases(): void {
      while (flushLeases(5000) > 0);
    },

    /**
     * Called once at start, before serving: each live worker keeps the lease it had left at the
     * controller's last tick, and at least one heartbeat interval. Audited as controller_started.
     */
    resume(details: Record<string, unknown> = {}): { downtime_ms: number; leases_resumed: number } {
      return store.transaction(() => {
        const now = clock.now()
        const lastTick = store.controllerState.lastTickAt()
        const downtime = lastTick === null ? 0 : Math.max(0, now - lastTick)
        const floor = now + contracts.current().ms.heartbeat_interval
        const resumed = lastTick === null ? 0 : store.workers.shiftLeases(downtime, floor)
        store.controllerState.tick(now)
        // After a signing-key change, a manifest signed with a key no longer held can never
        // register: it must not hold a quota slot until its TTL either.
        for (const manifest of store.manifests.outstandingKeys()) {
          if (manifest.key_id !== null && signer.holds(manifest.key_id)) continue
          store.manifests.close(manifest.worker_id, 'voided')
          store.audit.append(
            {
              type: 'manifest_expired',
              actor: controllerActor,
              worker_id: manifest.worker_id,
              parent_id: manifest.parent_id,
              code: 'unknown_key',
              data: { reason: `signed with key ${manifest.key_id}, which this controller no longer holds`, key_id: manifest.key_id },
            },
            iso(now),
          )
        }
        store.audit.append(
          { type: 'controller_started', actor: controllerActor, data: { ...details, downtime_ms: downtime, leases_resumed: resumed } },
          iso(now),
        )
        store.afterCommit(() => {
          leases.clear()
          for (const row of store.workers.live()) leases.add(row)
        })
        return { downtime_ms: downtime, leases_resumed: resumed }
      }, { critical: true })
    },

    /** One tick, to the end: every due lease, lifetime and manifest (tests, and small reaps). */
    tick(): TickResult {
      const total: TickResult = { reaped: 0, expired: 0, manifests_expired: 0 }
      for (;;) {
        const { more, ...slice } = liveness.tickSlice()
        total.reaped += slice.reaped
        total.expired += slice.expired
        total.manifests_expired += slice.manifests_expired
        if (!more) return total
      }
    },

    /**
     * One batch of a tick, so a large reap is sliced over turns of the loop (SPEC §2.14); `more`
     * when a batch was full and the caller should run the next one soon.
     */
    tickSlice(): TickResult & { more: boolean } {
      const result: TickResult = { reaped: 0, expired: 0, manifests_expired: 0 }
      // The rows of workers the kill switch killed are written a slice per turn (every read sees
      // them killed already). Nothing else is live meanwhile but what registered after a
      // disengagement seconds ago, so reaping waits for the few turns this takes.
      // A slice lost in a crash costs nothing: the sweep row goes with the last one, so a lost
      // tail of slices leaves it pending, and the next start writes them again.
      if (store.workers.sweepPending()) {
        store.lazyTransaction(() => store.workers.sweep(SWEEP_BATCH))
        if (store.workers.sweepPending()) return { ...result, more: true }
      }
      const now = clock.now()
      // A frozen managed worker cannot heartbeat: Warden holds its lease (SPEC §5).
      sandbox.holdLeases(now)
      // The database may hold a lease older than the book's (renewals are flushed lazily): a
      // candidate whose book lease is still running is written back instead of reaped.
      const dueLeases = store.workers.dueLease(now, BATCH)
      const reap = dueLeases.filter((due) => (leases.get(due.worker_id)?.leaseExpiresAt ?? 0) <= now)
      const renewed = dueLeases.filter((due) => (leases.get(due.worker_id)?.leaseExpiresAt ?? 0) > now).map((due) => due.worker_id)
      if (renewed.length > 0) writeBack(renewed)
      const dueLifetimes = store.workers.dueLifetime(now, BATCH)
      const dueManifests = store.manifests.due(now, BATCH)

      const more = [dueLeases, dueLifetimes, dueManifests].some((due) => due.length === BATCH)
      if (reap.length + dueLifetimes.length + dueManifests.length === 0) {
        store.lazyTransaction(() => store.controllerState.tick(now))
        return { ...result, more }
      }

      const ended: string[] = []
      store.transaction(() => {
        store.controllerState.tick(now)
        for (const due of reap) {
          const row = store.workers.get(due.worker_id)!
          if (transitions.terminate(row, 'reaped', 'heartbeat timeout', controllerActor, now).status === 'reaped') {
            ended.push(due.worker_id)
            result.reaped++
          }
        }
        for (const due of dueLifetimes) {
          const row = store.workers.get(due.worker_id)!
          if (transitions.terminate(row, 'expired', 'lifetime over', controllerActor, now).status === 'expired') {
            ended.push(due.worker_id)
            result.expired++
          }
        }
        for (const due of dueManifests) {
          store.manifests.close(due.worker_id, 'expired')
          store.audit.append(
            { type: 'manifest_expired', actor: controllerActor, worker_id: due.worker_id, parent_id: due.parent_id, code: 'manifest_expired', data: {} },
            iso(now),
          )
          result.manifests_expired++
        }
      })
      return { ...result, more }
    },
  }
  return liveness
}

export type Liveness = ReturnType<typeof createLiveness>
