// SQL for the kill_switch table: one row, engaged or not (SPEC §2.6 survives restarts).
import type { Db } from './db.js'

export interface KillSwitchRow {
  engaged: 0 | 1
  engaged_at: number | null
  reason: string | null
}

export function createKillSwitchRepository(db: Db) {
  const get = db.prepare<[], KillSwitchRow>(`SELECT engaged, engaged_at, reason FROM kill_switch WHERE id = 1`)
  const set = db.prepare(`UPDATE kill_switch SET engaged = @engaged, engaged_at = @engaged_at, reason = @reason WHERE id = 1`)
  return {
    get: (): KillSwitchRow => get.get()!,
    set: (row: KillSwitchRow): void => void set.run(row),
  }
}
