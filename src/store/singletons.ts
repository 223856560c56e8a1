// SQL for the single-row tables: kill switch, controller state, and the contract history.
import type { ContractInput } from '../schemas/index.js'
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

export function createControllerStateRepository(db: Db) {
  const get = db.prepare<[], { last_tick_at: number | null }>(`SELECT last_tick_at FROM controller_state WHERE id = 1`)
  const tick = db.prepare(`UPDATE controller_state SET last_tick_at = ? WHERE id = 1`)
  return {
    lastTickAt: (): number | null => get.get()!.last_tick_at,
    tick: (at: number): void => void tick.run(at),
  }
}

export function createContractRepository(db: Db) {
  const current = db.prepare<[], { version: number; body: string; updated_at: number }>(
    `SELECT version, body, updated_at FROM contracts ORDER BY version DESC LIMIT 1`,
  )
  const insert = db.prepare(`INSERT INTO contracts (version, body, updated_at, actor) VALUES (?, ?, ?, ?)`)
  return {
    current(): { version: number; input: unknown; updated_at: number } | undefined {
      const row = current.get()
      return row && { version: row.version, input: JSON.parse(row.body), updated_at: row.updated_at }
    },
    insert(version: number, input: ContractInput, at: number, actor: string): void {
      insert.run(version, JSON.stringify(input), at, actor)
    },
  }
}
