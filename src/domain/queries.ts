// What dashboards, operators and the event stream read: worker pages, one worker, lineage,
// audit pages and the chain's verification, the gauges a scrape reads, readiness. Reads only.
import {
  LIVE_STATUSES,
  WorkerStatusSchema,
  type AuditPage,
  type AuditQuery,
  type AuditRecord,
  type AuditVerification,
  type Lineage,
  type SandboxDriverStatus,
  type Summary,
  type WorkerList,
  type WorkerListQuery,
  type WorkerStatus,
  type WorkerView,
} from '../schemas/index.js'
import { isMigrated } from '../store/db.js'
import { createAuditVerifier, verifyChain } from './audit-chain.js'
import type { DomainDeps } from './context.js'
import type { KillSwitch } from './kill-switch.js'
import type { Transitions } from './transitions.js'
import { lineageNode, workerSummary } from './views.js'

/** Descendants a lineage answer carries at most. */
export const LINEAGE_LIMIT = 10_000

export type Readiness = { ready: true } | { ready: false; code: 'service_unavailable' | 'storage_unavailable'; detail: string }

export function createQueries(
  deps: Pick<DomainDeps, 'store' | 'clock' | 'contracts' | 'sandbox'>,
  transitions: Pick<Transitions, 'requireWorker' | 'view'>,
  killSwitch: Pick<KillSwitch, 'state'>,
) {
  const { store, clock, contracts, sandbox } = deps
  const node = (row: Parameters<typeof lineageNode>[0]) => lineageNode(row, sandbox.describe(row.worker_id))
  return {
    /** Counts for dashboards and the metrics gauges: the quota in use (SPEC §2.1), where the audit log stands. */
    summary(): Summary {
      const workers = Object.fromEntries(WorkerStatusSchema.options.map((status) => [status, 0])) as Record<WorkerStatus, number>
      for (const { status, n } of store.workers.countByStatus()) workers[status] = n
      const outstanding = store.manifests.countOutstanding(clock.now())
      const live = LIVE_STATUSES.reduce((sum, status) => sum + workers[status], 0)
      const contract = contracts.current()
      return {
        workers,
        outstanding_manifests: outstanding,
        slots_in_use: live + outstanding,
        max_replicas: contract.max_replicas,
        contract_version: contract.version,
        kill_switch: killSwitch.state(),
        audit_head_seq: store.audit.head().seq,
      }
    },

    worker(workerId: string): WorkerView {
      return transitions.view(transitions.requireWorker(workerId))
    },

    /** A page in registration order; `next_cursor` is null on the last page. */
    workers(query: WorkerListQuery): WorkerList {
      const { cursor, ...filter } = query
      const rows = store.workers.list({ ...filter, after_seq: cursor === undefined ? 0 : Number(cursor) })
      const last = rows.at(-1)
      const items = rows.map((row) => workerSummary(row, sandbox.describe(row.worker_id)))
      return { items, next_cursor: rows.length === filter.limit && last ? String(last.seq) : null }
    },

    /** Ancestors root first, and up to LINEAGE_LIMIT descendants breadth first. */
    lineage(workerId: string): Lineage {
      const row = transitions.requireWorker(workerId)
      const descendants = store.workers.descendants(row.worker_id, LINEAGE_LIMIT + 1)
      return {
        worker_id: row.worker_id,
        ancestors: store.workers.ancestors(row).map(node),
        descendants: descendants.slice(0, LINEAGE_LIMIT).map(node),
        truncated: descendants.length > LINEAGE_LIMIT,
      }
    },

    audit(query: AuditQuery): AuditPage {
      const items = store.audit.list(query)
      const last = items.length === query.limit ? (items.at(-1)?.seq ?? null) : null
      const desc = query.order === 'desc'
      return { items, next_after_seq: desc ? null : last, next_before_seq: desc ? last : null }
    },

    verifyAudit(): AuditVerification {
      return verifyChain(store.audit.iterate(), store.audit.head())
    },

    /** The chain up to the head as it is now, verified in steps the caller spreads over turns of the loop (SPEC §2.14). */
    auditVerifier() {
      return createAuditVerifier(store)
    },

    /** The audit log as the event stream reads it: slices after a seq, the head, commit notices. */
    auditFeed: {
      after: (seq: number, limit: number): AuditRecord[] => store.audit.after(seq, limit),
      headSeq: (): number => store.audit.head().seq,
      onCommitted: (listener: (seq: number) => void): (() => void) => store.onAuditCommitted(listener),
    },

    /** The sandbox driver of this host and what it enforces (SPEC §5). */
    sandboxDriver(): SandboxDriverStatus {
      return sandbox.port.status()
    },

    readiness(): Readiness {
      if (!store.db.open || !isMigrated(store.db)) return { ready: false, code: 'service_unavailable', detail: 'database is not open or not migrated' }
      const failure = store.health.failure
      if (failure !== null) return { ready: false, code: 'storage_unavailable', detail: `database writes are failing: ${failure}` }
      return { ready: true }
    },
  }
}

export type Queries = ReturnType<typeof createQueries>
