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

export function createSandboxRepository(db: Db) {
  const launch = db.prepare(`INSERT INTO sandboxes (worker_id, driver, resources, launched_at) VALUES (?, ?, ?, ?)`)
  const get = db.prepare<[string], SandboxRow>(`
    SELECT s.worker_id, s.driver, s.resources, s.launched_at,
      CASE WHEN w.status IN ('active', 'quarantined') THEN 'running' ELSE 'stopped' END AS status,
      w.ended_at AS stopped_at,
      CASE WHEN w.status IN ('active', 'quarantined') THEN NULL ELSE w.reason END AS stop_reason
    FROM sandboxes s JOIN workers w USING (worker_id) WHERE s.worker_id = ?`)
  return {
    launch: (workerId: string, driver: string, resources: string, at: number): void => void launch.run(workerId, driver, resources, at),
    /** The record with its status: running while the worker lives, stopped (when, why) once it ends. */
    get: (workerId: string): SandboxRow | undefined => get.get(workerId),
  }
}

export interface SandboxRow {
  worker_id: string
  driver: string
  resources: string
  status: 'running' | 'stopped'
  launched_at: number
  stopped_at: number | null
  stop_reason: string | null
}
