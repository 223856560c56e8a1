// Replays audit records in seq order and counts the quota slots of SPEC §2.1 after each one:
// live workers plus outstanding manifests still inside their TTL. Incremental, so a test can feed
// it page after page while a storm runs and check the bound at every committed step.
import type { AuditRecord } from '../../src/schemas/index.js'

/** Rejections that leave the manifest as it was (it was never outstanding, or stays so). */
const NON_CLOSING_REJECTIONS = new Set(['invalid_signature', 'unknown_key', 'manifest_already_used'])

export interface SlotReplay {
  /** Applies `records` (in seq order, continuing the previous call); returns the highest count seen. */
  apply(records: readonly AuditRecord[]): number
  readonly occupied: number
  readonly live: number
  /** Ids of the live workers, in registration order. */
  liveIds(): string[]
  readonly outstanding: number
  readonly max: number
  readonly lastSeq: number
  /** The seq and count of the first record after which the count exceeded `limit`, if any. */
  firstAbove(limit: number): { seq: number; occupied: number } | undefined
}

export function createSlotReplay(): SlotReplay {
  const outstanding = new Map<string, number>() // worker_id -> expires_at (ms)
  const live = new Set<string>()
  const history: Array<{ seq: number; occupied: number }> = []
  let max = 0
  let lastSeq = 0

  const occupied = () => outstanding.size + live.size

  function step(record: AuditRecord): void {
    if (record.seq !== lastSeq + 1) throw new Error(`audit replay expected seq ${lastSeq + 1}, got ${record.seq}`)
    lastSeq = record.seq
    // A manifest past its TTL holds no slot even before the reaper records manifest_expired.
    const at = Date.parse(record.at)
    for (const [id, expiresAt] of outstanding) if (expiresAt <= at) outstanding.delete(id)

    const id = record.worker_id
    switch (record.type) {
      case 'manifest_issued':
      case 'spawn_approved':
        outstanding.set(id!, Date.parse(String(record.data.expires_at)))
        break
      case 'worker_registered':
        outstanding.delete(id!)
        live.add(id!)
        break
      case 'manifest_expired':
        outstanding.delete(id!)
        break
      case 'registration_rejected':
        if (!NON_CLOSING_REJECTIONS.has(record.code ?? '')) outstanding.delete(id!)
        break
      case 'worker_deregistered':
      case 'worker_killed':
      case 'worker_reaped':
      case 'worker_expired':
        live.delete(id!)
        break
      case 'kill_switch_engaged':
        live.clear()
        outstanding.clear()
        break
      default:
        break
    }
    const now = occupied()
    history.push({ seq: record.seq, occupied: now })
    if (now > max) max = now
  }

  return {
    apply(records) {
      for (const record of records) step(record)
      return max
    },
    get occupied() {
      return occupied()
    },
    get live() {
      return live.size
    },
    liveIds() {
      return [...live]
    },
    get outstanding() {
      return outstanding.size
    },
    get max() {
      return max
    },
    get lastSeq() {
      return lastSeq
    },
    firstAbove(limit) {
      return history.find((entry) => entry.occupied > limit)
    },
  }
}
