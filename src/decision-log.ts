// One log line per audited decision (kill switch, kill, quarantine, reap, spawn, denial, ...),
// written after its transaction commits, so the log never shows a decision that rolled back.
// A failing read (a closed database at shutdown) loses log lines, never a decision.
// The audit log stays the record; these lines are for the operator reading the process output.
import type { Logger } from 'pino'
import type { AuditRecord } from './schemas/index.js'
import type { Store } from './store/index.js'

const PAGE = 500
const WARN = new Set(['kill_switch_engaged', 'registration_rejected'])

/** The record's data made log-sized: scalars as they are, long lists as a count. */
function brief(data: AuditRecord['data']): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(data)) {
    if (value === null || typeof value !== 'object') out[key] = value
    else if (Array.isArray(value)) {
      if (value.length <= 5 && value.every((v) => v === null || typeof v !== 'object')) out[key] = value
      else out[`${key}_count`] = value.length
    }
  }
  return out
}

export function logDecisions(store: Store, log: Pick<Logger, 'info' | 'warn'>): () => void {
  let last = store.audit.head().seq
  let head = last
  let scheduled = false
  // Written in slices off the committing call's stack: a reap of thousands never holds the loop.
  const drain = () => {
    scheduled = false
    let records: ReturnType<Store['audit']['after']>
    try {
      records = store.audit.after(last, PAGE)
    } catch {
      return // the database closed under us (shutdown) or failed: the audit log still has them
    }
    for (const record of records) {
      const line = {
        decision: record.type,
        seq: record.seq,
        actor: record.actor,
        ...(record.worker_id ? { worker_id: record.worker_id } : {}),
        ...(record.parent_id ? { parent_id: record.parent_id } : {}),
        ...(record.code ? { code: record.code } : {}),
        ...brief(record.data),
      }
      const message = record.type.replaceAll('_', ' ')
      if (WARN.has(record.type)) log.warn(line, message)
      else log.info(line, message)
    }
    if (records.length > 0) last = records.at(-1)!.seq
    if (records.length > 0 && last < head) schedule()
  }
  const schedule = () => {
    if (scheduled) return
    scheduled = true
    setImmediate(drain)
  }
  return store.onAuditCommitted((seq) => {
    head = seq
    schedule()
  })
}
