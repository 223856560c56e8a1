// SQL for the sandboxes table: one row per registered worker; for a managed worker (SPEC §5) the
// real record of its sandbox — the program it runs, its state and how its processes ended.
import type { SandboxState } from '../schemas/index.js'
import type { Db } from './db.js'
import { liveSql } from './workers.js'

const LIVE_W = liveSql('w.status')

export interface SandboxRow {
  worker_id: string
  driver: string
  resources: string
  launched_at: number
  managed: 0 | 1
  /** JSON {command, env}: the program of the worker's root. */
  program: string | null
  state: SandboxState | null
  pid: number | null
  started_at: number | null
  ended_at: number | null
  exit_code: number | null
  signal: string | null
  /** Derived from the worker: running while it lives, stopped (when, why) once it ends. */
  status: 'running' | 'stopped'
  stopped_at: number | null
  stop_reason: string | null
}

const OPEN = `s.managed = 1 AND s.state IS NOT 'ended'`

export function createSandboxRepository(db: Db) {
  const launch = db.prepare(`INSERT INTO sandboxes (worker_id, driver, resources, launched_at) VALUES (?, ?, ?, ?)`)
  const get = db.prepare<[string], SandboxRow>(`
    SELECT s.worker_id, s.driver, s.resources, s.launched_at, s.managed, s.program, s.state, s.pid, s.started_at,
      s.ended_at, s.exit_code, s.signal,
      CASE WHEN ${LIVE_W} THEN 'running' ELSE 'stopped' END AS status,
      w.ended_at AS stopped_at,
      CASE WHEN ${LIVE_W} THEN NULL ELSE w.reason END AS stop_reason
    FROM sandboxes s JOIN worker_states w USING (worker_id) WHERE s.worker_id = ?`)
  const manage = db.prepare(`
    UPDATE sandboxes SET managed = 1, driver = @driver, program = @program, state = 'starting' WHERE worker_id = @worker_id`)
  const started = db.prepare(`
    UPDATE sandboxes SET pid = @pid, started_at = @started_at,
      state = CASE WHEN state = 'starting' THEN 'running' ELSE state END
    WHERE worker_id = @worker_id AND managed = 1 AND pid IS NULL`)
  const setState = db.prepare(`
    UPDATE sandboxes SET state = @to WHERE worker_id = @worker_id AND managed = 1 AND state = @from`)
  const end = db.prepare(`
    UPDATE sandboxes SET state = 'ended', ended_at = @at, exit_code = @exit_code, signal = @signal
    WHERE worker_id = @worker_id AND managed = 1 AND state IS NOT 'ended'`)
  const open = db.prepare<[], { worker_id: string; state: SandboxState; status: string }>(`
    SELECT s.worker_id, s.state, w.status FROM sandboxes s INDEXED BY sandboxes_managed_open JOIN worker_states w USING (worker_id)
    WHERE ${OPEN}`)

  return {
    /** Every registration gets a row; `driver` names who runs it ('external' when its owner does). */
    launch: (workerId: string, driver: string, resources: string, at: number): void => void launch.run(workerId, driver, resources, at),
    get: (workerId: string): SandboxRow | undefined => get.get(workerId),
    /** Marks a just-registered worker as managed: Warden launches `program` for it. */
    manage: (workerId: string, driver: string, program: string): void => void manage.run({ worker_id: workerId, driver, program }),
    /** The first process runs; false when it was already recorded. */
    started: (workerId: string, pid: number, startedAt: number): boolean =>
      started.run({ worker_id: workerId, pid, started_at: startedAt }).changes === 1,
    /** running <-> frozen; false when the sandbox was not in `from`. */
    transition: (workerId: string, from: SandboxState, to: SandboxState): boolean =>
      setState.run({ worker_id: workerId, from, to }).changes === 1,
    /** Its last process ended; false when it had already ended. */
    end: (workerId: string, at: number, exitCode: number | null, signal: string | null): boolean =>
      end.run({ worker_id: workerId, at, exit_code: exitCode, signal }).changes === 1,
    /** Managed sandboxes not yet ended, with their worker's status. */
    open: () => open.all(),
  }
}

export type SandboxRepository = ReturnType<typeof createSandboxRepository>
