// Worker state transitions (SPEC §1 worker states, §2.6 kill switch, §2.7 liveness):
// heartbeat, shutdown, quarantine, release, kill, the kill switch, and the lazy settling of a
// worker whose lease or lifetime ran out before the reaper got to it.
import type {
  AuditType,
  HeartbeatResponse,
  KillSwitchState,
  TerminationReason,
  WorkerStatus,
  WorkerView,
} from '../schemas/index.js'
import type { WorkerRow } from '../store/workers.js'
import { iso, isoOrNull } from './clock.js'
import { heartbeatIntervalSeconds } from './contract.js'
import type { Lease } from './lease-book.js'
import { controllerActor, operatorActor, workerActor, type DomainDeps } from './context.js'
import { DomainError } from './errors.js'
import { tokenMatches } from './tokens.js'
import { workerView } from './views.js'

type TerminalStatus = Exclude<WorkerStatus, 'active' | 'quarantined'>

const auditTypeFor: Record<TerminalStatus, AuditType> = {
  deregistered: 'worker_deregistered',
  killed: 'worker_killed',
  reaped: 'worker_reaped',
  expired: 'worker_expired',
}

export const isLive = (status: WorkerStatus): boolean => status === 'active' || status === 'quarantined'

/** The reason a heartbeat's 410 carries. */
export function terminationReason(row: Pick<WorkerRow, 'status' | 'reason'>): TerminationReason {
  if (row.status === 'killed') return row.reason === 'kill_switch' ? 'kill_switch' : 'killed'
  return row.status as TerminationReason
}

export function terminatedError(row: WorkerRow): DomainError {
  const reason = terminationReason(row)
  return new DomainError('worker_terminated', `worker ${row.worker_id} is ${row.status} (${row.reason ?? reason})`, {
    directive: 'terminate',
    reason,
    worker_status: row.status,
  })
}

export function createLifecycle(deps: DomainDeps) {
  const { store, clock, contracts, sandbox, leases } = deps

  /**
   * Inside a transaction: ends a live worker, stops its sandbox record, voids the manifests it
   * had issued that are still outstanding (they could never register), and audits all of it.
   */
  function terminate(row: WorkerRow, status: TerminalStatus, reason: string, actor: string, now: number): WorkerRow {
    if (!store.workers.terminate(row.worker_id, status, reason, now)) return store.workers.get(row.worker_id)!
    store.afterCommit(() => leases.remove(row.worker_id))
    const at = iso(now)
    store.audit.append(
      { type: auditTypeFor[status], actor, worker_id: row.worker_id, parent_id: row.parent_id, code: status, data: { reason } },
      at,
    )
    for (const child of store.manifests.outstandingOf(row.worker_id)) {
      store.manifests.close(child.worker_id, 'voided')
      store.audit.append(
        {
          type: 'manifest_expired',
          actor: controllerActor,
          worker_id: child.worker_id,
          parent_id: row.worker_id,
          code: 'parent_not_active',
          data: { reason: `parent ${row.worker_id} is ${status}` },
        },
        at,
      )
    }
    return { ...row, status, reason, ended_at: now }
  }

  /** Inside a transaction: applies a lease or lifetime that ran out before the reaper saw it. */
  function settle(row: WorkerRow, now: number): WorkerRow {
    if (!isLive(row.status)) return row
    const leaseExpiresAt = leases.get(row.worker_id)?.leaseExpiresAt ?? row.lease_expires_at
    if (leaseExpiresAt <= now) return terminate(row, 'reaped', 'heartbeat timeout', controllerActor, now)
    if (row.expires_at !== null && row.expires_at <= now) return terminate(row, 'expired', 'lifetime over', controllerActor, now)
    return row
  }

  function requireWorker(workerId: string): WorkerRow {
    const row = store.workers.get(workerId)
    if (!row) throw new DomainError('worker_not_found', `no worker ${workerId}`)
    return row
  }

  /** Runs `fn` in a transaction; a DomainError it returns was audited there and is thrown after commit. */
  function decide<T>(fn: () => T | DomainError): T {
    const result = store.transaction(fn)
    if (result instanceof DomainError) throw result
    return result
  }

  /** The stored row with the lease as the book has it (the database may lag by a flush). */
  const withLease = (row: WorkerRow): WorkerRow => {
    const lease = leases.get(row.worker_id)
    return lease && isLive(row.status)
      ? { ...row, lease_expires_at: lease.leaseExpiresAt, last_heartbeat_at: lease.lastHeartbeatAt }
      : row
  }

  const view = (row: WorkerRow): WorkerView => workerView(withLease(row), store.workers.countChildren(row.worker_id))

  const killSwitchState = (): KillSwitchState => {
    const row = store.killSwitch.get()
    return { engaged: row.engaged === 1, engaged_at: isoOrNull(row.engaged_at), reason: row.reason }
  }

  return {
    terminate,
    settle,
    decide,
    view,
    requireWorker,

    /** SPEC §2.8: the lease token issued to *this* worker, compared in constant time. */
    authenticate(workerId: string, token: string | undefined): { worker_id: string } {
      if (token === undefined) throw new DomainError('unauthorized', `the lease token of worker ${workerId} is required`)
      const tokenHash = leases.get(workerId)?.tokenHash ?? store.workers.tokenHash(workerId)
      if (tokenHash === undefined) throw new DomainError('worker_not_found', `no worker ${workerId}`)
      if (!tokenMatches(token, tokenHash)) {
        throw new DomainError('unauthorized', `a valid lease token of worker ${workerId} is required`)
      }
      return { worker_id: workerId }
    },

    /**
     * The hot path: a live worker inside its lease and lifetime renews in memory only (the kill
     * switch, every kill and every reap remove the lease from the book in the transaction's
     * commit). Anything else goes through the database.
     */
    heartbeat(workerId: string): HeartbeatResponse {
      const now = clock.now()
      const contract = contracts.current()
      const renew = (lease: Lease): HeartbeatResponse => {
        const leaseExpiresAt = now + contract.heartbeat_timeout_seconds * 1000
        leases.renew(lease, workerId, leaseExpiresAt, now)
        return {
          directive: lease.status === 'quarantined' ? 'suspend' : 'continue',
          lease_expires_at: iso(leaseExpiresAt),
          expires_at: isoOrNull(lease.expiresAt),
          heartbeat_interval_seconds: heartbeatIntervalSeconds(contract),
          heartbeat_timeout_seconds: contract.heartbeat_timeout_seconds,
        }
      }
      const lease = leases.get(workerId)
      if (lease && lease.leaseExpiresAt > now && (lease.expiresAt === null || lease.expiresAt > now)) return renew(lease)

      const row = decide<WorkerRow>(() => {
        let current = settle(requireWorker(workerId), now)
        if (isLive(current.status) && store.killSwitch.get().engaged === 1) {
          current = terminate(current, 'killed', 'kill_switch', controllerActor, now)
        }
        return isLive(current.status) ? current : terminatedError(current)
      })
      // Live, yet not in the book: put it back rather than fail the worker.
      leases.add(row)
      return renew(leases.get(workerId)!)
    },

    /** Graceful shutdown by the worker itself; repeating it answers the same view. */
    deregister(workerId: string, reason: string | undefined): WorkerView {
      const row = store.transaction(() => {
        const current = requireWorker(workerId)
        if (!isLive(current.status)) return current
        return terminate(current, 'deregistered', reason ?? 'deregistered', workerActor(workerId), clock.now())
      })
      if (row.status === 'deregistered') sandbox.stop([workerId], row.reason ?? 'deregistered')
      return view(row)
    },

    quarantine(workerId: string, reason: string): WorkerView {
      return decide(() => {
        const row = settle(requireWorker(workerId), clock.now())
        if (!isLive(row.status)) return terminatedError(row)
        if (row.status === 'quarantined') return view(row)
        store.workers.setLiveStatus(workerId, 'quarantined', reason)
        store.afterCommit(() => leases.setStatus(workerId, 'quarantined'))
        store.audit.append(
          { type: 'worker_quarantined', actor: operatorActor, worker_id: workerId, parent_id: row.parent_id, data: { reason } },
          iso(clock.now()),
        )
        return view({ ...row, status: 'quarantined', reason })
      })
    },

    release(workerId: string): WorkerView {
      return decide(() => {
        const row = settle(requireWorker(workerId), clock.now())
        if (!isLive(row.status)) return terminatedError(row)
        if (row.status === 'active') return view(row)
        store.workers.setLiveStatus(workerId, 'active', null)
        store.afterCommit(() => leases.setStatus(workerId, 'active'))
        store.audit.append(
          { type: 'worker_released', actor: operatorActor, worker_id: workerId, parent_id: row.parent_id, data: {} },
          iso(clock.now()),
        )
        return view({ ...row, status: 'active', reason: null })
      })
    },

    /** Kills a worker and, unless `cascade` is false, every live descendant. */
    kill(workerId: string, options: { reason?: string | undefined; cascade: boolean }): { worker: WorkerView; killed: string[] } {
      const reason = options.reason ?? 'killed'
      const result = store.transaction(() => {
        const now = clock.now()
        const killed: string[] = []
        let row = requireWorker(workerId)
        if (isLive(row.status)) {
          row = terminate(row, 'killed', reason, operatorActor, now)
          killed.push(workerId)
        }
        if (options.cascade) {
          for (const descendant of store.workers.liveDescendants(workerId)) {
            const descendantRow = store.workers.get(descendant.worker_id)!
            terminate(descendantRow, 'killed', `ancestor ${workerId} killed: ${reason}`, operatorActor, now)
            killed.push(descendant.worker_id)
          }
        }
        return { worker: view(row), killed }
      }, { critical: true })
      if (result.killed.length > 0) sandbox.stop(result.killed, reason)
      return result
    },

    killSwitchState,

    /** SPEC §2.6: every live worker is terminated in the same transaction that engages it. */
    engageKillSwitch(reason: string | undefined): KillSwitchState & { terminated: number; manifests_voided: number } {
      const result = store.transaction(() => {
        if (store.killSwitch.get().engaged === 1) return { terminated: 0, manifests_voided: 0 }
        const now = clock.now()
        const why = reason ?? null
        store.killSwitch.set({ engaged: 1, engaged_at: now, reason: why })
        const killed = store.workers.killAllLive('kill_switch', now)
        store.afterCommit(() => leases.clear())
        const manifestsVoided = store.manifests.voidAll()
        // One record names every worker it terminated, so the chain proves who was stopped.
        store.audit.append(
          {
            type: 'kill_switch_engaged',
            actor: operatorActor,
            code: 'kill_switch',
            data: { reason: why, terminated: killed.length, worker_ids: killed, manifests_voided: manifestsVoided },
          },
          iso(now),
        )
        return { terminated: killed.length, manifests_voided: manifestsVoided }
      }, { critical: true })
      if (result.terminated > 0) sandbox.stop('all', 'kill_switch')
      return { ...killSwitchState(), ...result }
    },

    disengageKillSwitch(): KillSwitchState {
      store.transaction(() => {
        const current = store.killSwitch.get()
        if (current.engaged === 0) return
        const now = clock.now()
        store.killSwitch.set({ engaged: 0, engaged_at: null, reason: null })
        store.audit.append(
          { type: 'kill_switch_disengaged', actor: operatorActor, data: { engaged_at: isoOrNull(current.engaged_at), reason: current.reason } },
          iso(now),
        )
      })
      return killSwitchState()
    },
  }
}

export type Lifecycle = ReturnType<typeof createLifecycle>
