// Rows to wire views. Views are allowlists: a token hash never leaves the store.
import type { LineageNode, Resources, StateSnapshot, WorkerSummary, WorkerView } from '../schemas/index.js'
import type { WorkerRow } from '../store/workers.js'
import { iso, isoOrNull } from './clock.js'
import type { SandboxInfo } from './sandbox.js'

export function workerSummary(row: WorkerRow, sandbox: SandboxInfo): WorkerSummary {
  return {
    worker_id: row.worker_id,
    parent_id: row.parent_id,
    depth: row.depth,
    status: row.status,
    reason: row.reason,
    resources: JSON.parse(row.resources) as Resources,
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

export function workerView(row: WorkerRow, childrenCount: number, sandbox: SandboxInfo): WorkerView {
  return {
    ...workerSummary(row, sandbox),
    state_snapshot: JSON.parse(row.state_snapshot) as StateSnapshot,
    children_count: childrenCount,
  }
}

export const lineageNode = (row: Pick<WorkerRow, 'worker_id' | 'parent_id' | 'depth' | 'status'>, sandbox: SandboxInfo): LineageNode => ({
  worker_id: row.worker_id,
  parent_id: row.parent_id,
  depth: row.depth,
  status: row.status,
  managed: sandbox.managed,
  sandbox: sandbox.sandbox,
})
