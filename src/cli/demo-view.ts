// What the demo shows: the live lineage tree (each worker's controller status and process), the
// events as they happen, and the closing summary. Pure functions of the demo state.
import { isLive, type AuditVerification, type Contract, type WorkerStatus } from '../schemas/index.js'
import { shortId, tree, type Style } from './format.js'

export interface DemoWorker {
  worker_id: string
  parent_id: string | null
  depth: number
  pid: number | null
  /** The process as the demo sees it. */
  process: 'starting' | 'running' | 'suspended' | 'unreachable' | 'exited'
  /** The worker as the controller sees it (null until it registers). */
  status: WorkerStatus | null
  reason: string | null
  work_done: number
  children: number
  last_denial: string | null
  stop_reason: string | null
  failure: string | null
  exit: { code: number | null; signal: string | null; after_kill_switch: boolean; forced: boolean } | null
}

export type DemoEventKind = 'info' | 'approved' | 'denied' | 'exit' | 'kill'

export interface DemoEvent {
  at: number
  kind: DemoEventKind
  worker: DemoWorker | null
  text: string
}

export interface DemoSummary {
  controller: { url: string; started_by_demo: boolean }
  contract: Contract
  registered: number
  workers_by_depth: Record<string, number>
  denials: Record<string, number>
  processes: { started: number; exited: number; exited_after_kill_switch: number; forced: number; still_running: number }
  kill_switch: { engaged: boolean; terminated: number } | null
  audit: AuditVerification
  duration_ms: number
  workers: Array<
    Pick<DemoWorker, 'worker_id' | 'parent_id' | 'depth' | 'pid' | 'status' | 'reason' | 'work_done' | 'stop_reason' | 'failure'> & {
      exit_code: number | null
      exit_signal: string | null
    }
  >
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`

export function contractLine(contract: Contract): string {
  const stops = contract.stop_conditions.map((condition) => condition.name).join(', ') || 'none'
  return (
    `contract v${contract.version}: max_depth ${contract.max_depth}, max_replicas ${contract.max_replicas}, ` +
    `cooldown ${contract.cooldown_seconds} s, heartbeat timeout ${contract.heartbeat_timeout_seconds} s, stop conditions: ${stops}`
  )
}

export function workerLabel(worker: DemoWorker, style: Style): string {
  const alive = worker.process !== 'exited'
  const dot = alive ? (worker.process === 'starting' ? style.yellow('◌') : style.green('●')) : style.dim('○')
  const status = worker.status
    ? style.status(worker.status) + (worker.status !== 'active' && worker.reason ? style.dim(` (${worker.reason})`) : '')
    : style.dim('not registered')
  const processText = (() => {
    if (worker.pid === null) return 'launching'
    if (worker.exit) {
      const how = worker.exit.signal ? `killed by ${worker.exit.signal}` : `exited ${worker.exit.code}`
      return `pid ${worker.pid} ${how}${worker.exit.forced ? style.red(' (forced)') : ''}`
    }
    return `pid ${worker.pid} ${worker.process === 'running' ? 'working' : worker.process}`
  })()
  const parts = [
    `${dot} ${style.bold(shortId(worker.worker_id))}`,
    style.dim(`d${worker.depth}`),
    status,
    processText,
    `work ${worker.work_done}`,
    `children ${worker.children}`,
  ]
  if (worker.last_denial && alive) parts.push(style.dim(`last denial: ${worker.last_denial}`))
  if (worker.failure) parts.push(style.red(worker.failure))
  return parts.join(style.dim(' · '))
}

export function lineageTree(workers: readonly DemoWorker[], style: Style): string[] {
  return tree(
    workers.map((worker) => ({ ...worker, id: worker.worker_id })),
    (worker) => workerLabel(worker, style),
  )
}

export function eventLine(event: DemoEvent, style: Style): string {
  const who = event.worker ? `${shortId(event.worker.worker_id)} d${event.worker.depth}` : 'demo'
  const colour = { info: (text: string) => text, approved: style.green, denied: style.red, exit: style.dim, kill: style.yellow }[event.kind]
  return `${style.dim(`+${seconds(event.at).padStart(6)}`)}  ${who.padEnd(11)}  ${colour(event.text)}`
}

/** One frame of the live view (terminals): header, tree, the latest events. */
export function frame(options: {
  url: string
  contract: Contract
  elapsed: number
  phase: string
  workers: readonly DemoWorker[]
  events: readonly DemoEvent[]
  style: Style
  maxEvents: number
}): string[] {
  const { style, workers } = options
  const live = workers.filter((worker) => isLive(worker.status)).length
  const processes = workers.filter((worker) => worker.pid !== null && worker.process !== 'exited').length
  const denials = options.events.filter((event) => event.kind === 'denied').length
  return [
    `${style.bold('Warden demo')} · ${options.url} · ${seconds(options.elapsed)} · ${style.bold(options.phase)}`,
    style.dim(contractLine(options.contract)),
    `${workers.length} workers (${live} live on the controller) · ${processes} processes running · ${denials} denials`,
    '',
    ...lineageTree(workers, style).map((line) => `  ${line}`),
    '',
    style.bold('Latest events'),
    ...options.events.slice(-options.maxEvents).map((event) => `  ${eventLine(event, style)}`),
  ]
}

export function summaryLines(summary: DemoSummary, style: Style): string[] {
  const byDepth = Object.entries(summary.workers_by_depth)
    .sort(([a], [b]) => Number(a) - Number(b))
    .map(([depth, count]) => `depth ${depth}: ${count}`)
    .join(', ')
  const denials =
    Object.entries(summary.denials)
      .sort(([, a], [, b]) => b - a)
      .map(([code, count]) => `${code} ${count}`)
      .join(', ') || 'none'
  const { processes, audit } = summary
  const processText =
    `${processes.started} started, ${processes.exited} exited` +
    (summary.kill_switch ? ` (${processes.exited_after_kill_switch} after the kill switch)` : '') +
    (processes.forced ? style.red(`, ${processes.forced} had to be killed`) : '') +
    (processes.still_running ? style.red(`, ${processes.still_running} STILL RUNNING`) : '')
  const auditText = audit.ok
    ? style.green(`verified`) + ` (${audit.records} records, head ${audit.head_hash?.slice(0, 16) ?? '-'}…)`
    : style.red(`BROKEN at seq ${audit.first_invalid_seq}`)
  const rows: [string, string][] = [
    ['workers', `${summary.registered} registered (max_replicas ${summary.contract.max_replicas}, max_depth ${summary.contract.max_depth})`],
    ['by depth', byDepth || 'none'],
    ['denials', denials],
    ['kill switch', summary.kill_switch ? `engaged, ${summary.kill_switch.terminated} workers terminated` : 'not engaged'],
    ['processes', processText],
    ['audit chain', auditText],
    ['took', seconds(summary.duration_ms)],
  ]
  return [style.bold('Summary'), ...rows.map(([key, value]) => `  ${key.padEnd(12)} ${value}`)]
}
