// Worker states (SPEC §1): the moves between them and what every move records. `decide` binds
// a decision to its audit record in one transaction; `terminate` ends a live worker for good;
// `settle` applies a lease or lifetime that ran out before the reaper saw it (§2.7). The
// operator's and the worker's own moves (quarantine, release, kill, deregister) are built on them.
import { isLive, type AuditType, type KillResult, type LiveStatus, type TerminalStatus, type TerminationReason, type WorkerView } from '../schemas/index.js'
import type { WorkerRecord } from '../store/workers.js'
import { iso } from './clock.js'
import { controllerActor, operatorActor, workerActor } from './actors.js'
import { type DomainDeps } from './context.js'
import { DomainError } from './errors.js'
import { workerView } from './views.js'


const auditTypeFor: Record<TerminalStatus, AuditType> = {
  deregistered: 'worker_deregistered',
  killed: 'worker_killed',
  reaped: 'worker_reaped',
  expired: 'worker_expired',
  exited: 'sandbox_exited',
}


/** The reason a heartbeat's 410 carries. */
export function terminationReason(row: Pick<WorkerRecord, 'status' | 'reason'>): TerminationReason {
  if (row.status === 'killed') return row.reason === 'kill_switch' ? 'kill_switch' : 'killed'
  return row.status as TerminationReason
}

export function terminatedError(row: WorkerRecord): DomainError {
  const reason = terminationReason(row)
  return new DomainError('worker_terminated', `worker ${row.worker_id} is ${row.status} (${row.reason ?? reason})`, {
    directive: 'terminate',
    reason,
    worker_status: row.status,
  })
}

export function createTransitions(deps: DomainDeps) {
  const { store, clock, sandbox, leases } = deps

  /**
   * Inside a transaction: ends a live worker, voids the manifests it had issued that are still
   * outstanding (they could never register), and audits all of it.
   */
  function terminate(
    row: WorkerRecord,
    status: TerminalStatus,
    reason: string,
    actor: string,
    now: number,
    data: Record<string, unknown> = {},
  ): WorkerRecord {
    if (!store.workers.terminate(row.worker_id, status, reason, now)) return store.workers.get(row.worker_id)!
    store.afterCommit(() => leases.remove(row.worker_id))
    // SPEC §2.12: once the end commits, a managed worker's processes are killed, whoever ended it.
    store.afterCommit(() => sandbox.stop([row.worker_id], reason))
    const at = iso(now)
    store.audit.append(
      { type: auditTypeFor[status], actor, worker_id: row.worker_id, parent_id: row.parent_id, code: status, data: { reason, ...data } },
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
  function settle(row: WorkerRecord, now: number): WorkerRecord {
    if (!isLive(row.status)) return row
    const leaseExpiresAt = leases.get(row.worker_id)?.leaseExpiresAt ?? row.lease_expires_at
    if (leaseExpiresAt <= now) return terminate(row, 'reaped', 'heartbeat timeout', controllerActor, now)
    if (row.expires_at !== null && row.expires_at <= now) return terminate(row, 'expired', 'lifetime over', controllerActor, now)
    return row
  }

  function requireWorker(workerId: string): WorkerRecord {
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
  const withLease = (row: WorkerRecord): WorkerRecord => {
    const lease = leases.get(row.worker_id)
    return lease && isLive(row.status)
      ? { ...row, lease_expires_at: lease.leaseExpiresAt, last_heartbeat_at: lease.lastHeartbeatAt }
      : row
  }

  const view = (row: WorkerRecord): WorkerView =>
    workerView(withLease(row), store.workers.countChildren(row.worker_id), sandbox.describe(row.worker_id))

  /** Quarantine and release: moves between the two live states. */
  function setLiveStatus(workerId: string, status: LiveStatus, reason: string | null): WorkerView {
    return decide(() => {
      const now = clock.now()
      const row = settle(requireWorker(workerId), now)
      if (!isLive(row.status)) return terminatedError(row)
      if (row.status === status) return view(row)
      store.workers.setLiveStatus(workerId, status, reason)
      store.afterCommit(() => leases.setStatus(workerId, status))
      // Quarantine freezes a managed worker's processes; release thaws them (SPEC §5).
      store.afterCommit(() => (status === 'quarantined' ? sandbox.freeze(workerId) : sandbox.thaw(workerId)))
      store.audit.append(
        {
          type: status === 'quarantined' ? 'worker_quarantined' : 'worker_released',
          actor: operatorActor,
          worker_id: workerId,
          parent_id: row.parent_id,
          data: reason === null ? {} : { reason },
        },
        iso(now),
      )
      return view({ ...row, status, reason })
    })
  }

  return {
    decide,
    terminate,
    settle,
    requireWorker,
    view,

    /** Graceful shutdown by the worker itself; repeating it answers the same view. */
    deregister(workerId: string, reason: string | undefined): WorkerView {
      const row = store.transaction(() => {
        const current = requireWorker(workerId)
        if (!isLive(current.status)) return current
        return terminate(current, 'deregistered', reason ?? 'deregistered', workerActor(workerId), clock.now())
      })
      return view(row)
    },

    /** Alive, suspended, may not spawn. */
    quarantine(workerId: string, reason: string): WorkerView {
      return setLiveStatus(workerId, 'quarantined', reason)
    },

    release(workerId: string): WorkerView {
      return setLiveStatus(workerId, 'active', null)
    },

    /** Kills a worker and, unless `cascade` is false, every live descendant. */
    kill(workerId: string, options: { reason?: string | undefined; cascade: boolean }): KillResult {
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
      return result
    },
  }
}

export type Transitions = ReturnType<typeof createTransitions>
