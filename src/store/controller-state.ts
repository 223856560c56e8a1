// SQL for the controller_state table: one row, when the controller last ticked (SPEC §2.7 restart rule).
import type { Db } from './db.js'

export function createControllerStateRepository(db: Db) {
  const get = db.prepare<[], { last_tick_at: number | null }>(`SELECT last_tick_at FROM controller_state WHERE id = 1`)
  const tick = db.prepare(`UPDATE controller_state SET last_tick_at = ? WHERE id = 1`)
  return {
    lastTickAt: (): number | null => get.get()!.last_tick_at,
    tick: (at: number): void => void tick.run(at),
  }
}
