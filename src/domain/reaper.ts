// SPEC §2.7 liveness: the reaper reaps silent workers, expires workers past their lifetime and
// voids manifests past their TTL; lease time does not run while the controller is down.
import { iso } from './clock.js'
import { heartbeatIntervalSeconds } from './contract.js'
import { controllerActor, type DomainDeps } from './context.js'
import type { Lifecycle } from './lifecycle.js'

export interface TickResult {
  reaped: number
  expired: number
  manifests_expired: number
}

/** Rows handled per transaction, so one tick never holds the event loop for long. */
const BATCH = 2000

export function createReaper(deps: DomainDeps, lifecycle: Lifecycle) {
  const { store, clock, contracts, sandbox } = deps

  return {
    /**
     * Called once at start, before serving: each live worker keeps the lease it had left at the
     * controller's last tick, and at least one heartbeat interval. Audited as controller_started.
     */
    resume(details: Record<string, unknown> = {}): { downtime_ms: number; leases_resumed: number } {
      return store.transaction(() => {
        const now = clock.now()
        const lastTick = store.controllerState.lastTickAt()
        const downtime = lastTick === null ? 0 : Math.max(0, now - lastTick)
        const floor = now + heartbeatIntervalSeconds(contracts.current()) * 1000
        const resumed = lastTick === null ? 0 : store.workers.shiftLeases(downtime, floor)
        store.controllerState.tick(now)
        store.audit.append(
          { type: 'controller_started', actor: controllerActor, data: { ...details, downtime_ms: downtime, leases_resumed: resumed } },
          iso(now),
        )
        return { downtime_ms: downtime, leases_resumed: resumed }
      })
    },

    tick(): TickResult {
      const result: TickResult = { reaped: 0, expired: 0, manifests_expired: 0 }
      const ended: string[] = []
      for (;;) {
        const done = store.transaction(() => {
          const now = clock.now()
          store.controllerState.tick(now)
          let handled = 0
          for (const due of store.workers.dueLease(now, BATCH)) {
            lifecycle.terminate(store.workers.get(due.worker_id)!, 'reaped', 'heartbeat timeout', controllerActor, now)
            ended.push(due.worker_id)
            result.reaped++
            handled++
          }
          for (const due of store.workers.dueLifetime(now, BATCH)) {
            lifecycle.terminate(store.workers.get(due.worker_id)!, 'expired', 'lifetime over', controllerActor, now)
            ended.push(due.worker_id)
            result.expired++
            handled++
          }
          for (const due of store.manifests.due(now, BATCH)) {
            store.manifests.close(due.worker_id, 'expired')
            store.audit.append(
              { type: 'manifest_expired', actor: controllerActor, worker_id: due.worker_id, parent_id: due.parent_id, code: 'manifest_expired', data: {} },
              iso(now),
            )
            result.manifests_expired++
            handled++
          }
          return handled < BATCH
        })
        if (done) break
      }
      if (ended.length > 0) sandbox.stop(ended, 'reaper')
      return result
    },
  }
}

export type Reaper = ReturnType<typeof createReaper>
