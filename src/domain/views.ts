// Rows to wire views. Views are allowlists: a token hash never leaves the store.
import type { LineageNode, WorkerSummary, WorkerView } from '../schemas/index.js'
import type { WorkerRecord } from '../store/workers.js'
import { iso, isoOrNull } from './clock.js'
import type { SandboxInfo } from './sandbox.js'

export function workerSummary(row: WorkerRecord, sandbox: SandboxInfo): WorkerSummary {
  return {
    worker_id: row.worker_id,
    parent_id: row.parent_id,
    depth: row.depth,
    status: row.status,
    reason: row.reason,
    resources: row.resources,
    key_id: row.key_id,
    issued_at: iso(row.issued_at),
    registered_at: iso(row.registered_at),
    last_heartbeat_at: isoOrNull(row.last_heartbeat_at),
    lease_expires_at: iso(row.lease_expires_at),
    expires_at: isoOrNull(row.expires_at),
    ended_at: isoOrNull(row.ended_at),
    managed: sandbox.managed,
    sandbox: sandbox.sandbox,
  }
}

export function workerView(row: WorkerRecord, childrenCount: number, sandbox: SandboxInfo): WorkerView {
  return {
    ...workerSummary(row, sandbox),
    state_snapshot: row.state_snapshot,
    children_count: childrenCount,
  }
}

export const lineageNode = (row: Pick<WorkerRecord, 'worker_id' | 'parent_id' | 'depth' | 'status'>, sandbox: SandboxInfo): LineageNode => ({
  worker_id: row.worker_id,
  parent_id: row.parent_id,
  depth: row.depth,
  status: row.status,
  managed: sandbox.managed,
  sandbox: sandbox.sandbox,
})
