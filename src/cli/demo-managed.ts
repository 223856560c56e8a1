// warden demo on a host that can run sandboxes (SPEC §5): the swarm runs as managed workers,
// launched by Warden, plus one rogue that ignores its 410, forks, allocates past its memory limit
// and tries to reach the outside. The demo shows each attempt contained, then the kill switch
// ending every sandbox — the rogue included — observed through the API (and /proc when local).
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { WardenClient } from '../client/client.js'
import { abortableSleep } from '../client/retry.js'
import type { AuditRecord, Contract, WorkerSummary } from '../schemas/index.js'
import { EXIT, type Context } from './context.js'
import { nodeCommand } from './launch.js'
import { usageText } from './sandbox.js'

export interface RogueReport {
  heartbeats: Record<string, number>
  escapee: string
  forks: { spawned: number; refused: string | null }
  memory: { allocator: string }
  network: Record<string, string>
}

export interface ManagedDemoSummary {
  managed: true
  controller: { url: string; started_by_demo: boolean }
  driver: string
  workers: number
  rogue: {
    worker_id: string
    memory_limit_mb: number
    report: RogueReport | null
    oom_audited: boolean
    pids_seen: number
    status: string | null
    reason: string | null
  }
  kill_switch: { terminated: number; all_ended_ms: number | null; still_running: number }
  audit: { ok: boolean; records: number }
  duration_ms: number
}

/** Enough for the runtime itself; the rogue's allocator goes past it. */
const ROGUE_MEMORY_MB = 160
const POLL_MS = 400

const program = (name: string, env: Record<string, string> = {}) => {
  const { command, args } = nodeCommand(name)
  return { command: [command, ...args], env }
}

export async function runManagedDemo(
  ctx: Context,
  api: WardenClient,
  controller: { url: string; startedByDemo: boolean; sandboxDir: string | null },
  options: { contract: Contract; durationMs: number; workMs: number; driver: string },
): Promise<number> {
  const started = Date.now()
  const elapsed = () => ((Date.now() - started) / 1000).toFixed(1).padStart(5)
  const { style } = ctx
  const say = (line: string) => {
    if (!ctx.json) ctx.out(line)
  }
  const signal = ctx.io.signal
  const auditStart = (await api.verifyAudit()).records
  let seq = auditStart

  say(style.bold(`Warden demo · controller ${controller.url}${controller.startedByDemo ? ' (started by the demo)' : ''} · managed workers`))
  say(style.dim(`sandbox driver: ${options.driver}; max_replicas ${options.contract.max_replicas}, max_depth ${options.contract.max_depth}`))
  say('')

  const tcp = new URL(controller.url.startsWith('http') ? controller.url : 'http://127.0.0.1:0')
  const rogue = await api.launchSandbox({
    program: program('demo-rogue', tcp.port ? { ROGUE_CONTROLLER_TCP: `${tcp.hostname}:${tcp.port}` } : {}),
    resources: {
      cpu_limit: Math.min(0.5, options.contract.max_resources.cpu_limit),
      memory_limit_mb: Math.min(ROGUE_MEMORY_MB, options.contract.max_resources.memory_limit_mb),
      network_policy: { allow_controller: true, allow_external: false },
    },
  })
  const rogueId = rogue.worker.worker_id
  say(style.red(`${elapsed()}s  ROGUE ${rogueId.slice(0, 8)} launched: ${rogue.worker.resources.memory_limit_mb} MB, no external network`))

  const root = await api.launchSandbox({
    program: program('demo-managed-worker', { DEMO_WORK_MS: String(options.workMs) }),
    state_snapshot: { task: 'demo' },
  })
  say(`${elapsed()}s  managed root ${root.worker.worker_id.slice(0, 8)} launched in its sandbox (pid ${root.worker.sandbox?.pid})`)
  const reportFile = controller.sandboxDir === null ? null : join(controller.sandboxDir, rogueId, 'report.json')
  const readReport = (): RogueReport | null => {
    if (reportFile === null || !existsSync(reportFile)) return null
    try {
      return JSON.parse(readFileSync(reportFile, 'utf8')) as RogueReport
    } catch {
      return null
    }
  }

  // Each parent's denial is shown once per code: the contract repeats itself, the demo need not.
  const shown = new Set<string>()
  const showAudit = async () => {
    for await (const record of api.auditRecords({ after_seq: seq })) {
      seq = record.seq
      if (record.type === 'spawn_denied') {
        const key = `${record.parent_id}:${record.code}`
        if (shown.has(key)) continue
        shown.add(key)
      }
      const line = auditLine(record, rogueId)
      if (line) say(`${elapsed()}s  ${line}`)
    }
  }

  // Let the swarm grow and the rogue try everything, until both are done or time is up.
  let rogueDone = false
  let pidsSeen = 0
  const deadline = Date.now() + options.durationMs
  while (Date.now() < deadline && !signal?.aborted) {
    await showAudit()
    const view = await api.getWorker(rogueId)
    pidsSeen = Math.max(pidsSeen, view.sandbox?.usage?.pids ?? 0)
    const report = readReport()
    const networkDone = report !== null && Object.values(report.network).every((result) => result !== 'trying')
    const done = report !== null ? networkDone && report.forks.refused !== null && report.memory.allocator !== 'running' : (view.sandbox?.usage?.oom_kills ?? 0) > 0
    if (done && !rogueDone) {
      rogueDone = true
      // A little longer for the swarm to fill its slots.
      if (deadline - Date.now() > 3_000) await abortableSleep(3_000, signal).catch(() => {})
      break
    }
    await abortableSleep(POLL_MS, signal).catch(() => {})
  }
  await showAudit()

  const rogueView = await api.getWorker(rogueId)
  const report = readReport()
  say('')
  say(style.bold('The rogue, contained'))
  say(`  ignores its answers     heartbeats so far: ${JSON.stringify(report?.heartbeats ?? {})}`)
  say(`  escapes its tree        ${report?.escapee ?? 'setsid escapee'}: still inside its sandbox (${rogueView.sandbox ? usageText(rogueView.sandbox.usage) : '-'})`)
  if (report) say(`  forks without end       ${report.forks.spawned} processes, then refused (${report.forks.refused ?? 'not yet'}): pids limit`)
  say(`  allocates past ${rogue.worker.resources.memory_limit_mb} MB   ${report ? `allocator ${report.memory.allocator}` : ''} (OOM kills in its cgroup: ${rogueView.sandbox?.usage?.oom_kills ?? '?'})`)
  if (report) for (const [target, result] of Object.entries(report.network)) say(`  reaches ${target.padEnd(15)} ${result === 'CONNECTED' ? style.red('CONNECTED') : `refused: ${result}`}`)
  say('')

  const managedLive = async (): Promise<WorkerSummary[]> => {
    const live: WorkerSummary[] = []
    for await (const worker of api.workers()) if (worker.managed && worker.sandbox && worker.sandbox.state !== 'ended') live.push(worker)
    return live
  }
  const before = await managedLive()
  const pids = before.map((worker) => worker.sandbox?.pid).filter((pid): pid is number => typeof pid === 'number')
  say(style.bold(`Kill switch: ${before.length} sandboxes running (the rogue's included)`))
  const engagedAt = performance.now()
  const engaged = await api.engageKillSwitch('warden demo: the rogue ignores its 410')
  let allEndedMs: number | null = null
  let stillRunning = before.length
  while (performance.now() - engagedAt < 10_000) {
    stillRunning = (await managedLive()).length
    const localLeft = controller.startedByDemo ? pids.filter((pid) => existsSync(`/proc/${pid}`)).length : 0
    if (stillRunning === 0 && localLeft === 0) {
      allEndedMs = performance.now() - engagedAt
      break
    }
    await abortableSleep(20).catch(() => {})
  }
  await showAudit()
  const after = await api.getWorker(rogueId)
  say(
    allEndedMs === null
      ? style.red(`${stillRunning} sandboxes still running 10 s after the kill switch`)
      : `${engaged.terminated} workers terminated in one transaction; every sandbox ended ${Math.round(allEndedMs)} ms later (the rogue: ${after.status}, sandbox ${after.sandbox?.state}, ${after.sandbox?.signal ?? ''})`,
  )
  const audit = await api.verifyAudit()
  say(`audit chain ${audit.ok ? 'verified' : style.red('BROKEN')} (${audit.records} records)`)

  let oomAudited = false
  for await (const record of api.auditRecords({ after_seq: auditStart, type: 'sandbox_oom', worker_id: rogueId })) oomAudited ||= record.type === 'sandbox_oom'
  const summary: ManagedDemoSummary = {
    managed: true,
    controller: { url: controller.url, started_by_demo: controller.startedByDemo },
    driver: options.driver,
    workers: before.length,
    rogue: {
      worker_id: rogueId,
      memory_limit_mb: rogue.worker.resources.memory_limit_mb,
      report,
      oom_audited: oomAudited,
      pids_seen: pidsSeen,
      status: after.status,
      reason: after.reason,
    },
    kill_switch: { terminated: engaged.terminated, all_ended_ms: allEndedMs === null ? null : Math.round(allEndedMs), still_running: stillRunning },
    audit: { ok: audit.ok, records: audit.records },
    duration_ms: Date.now() - started,
  }
  if (ctx.json) ctx.printJson(summary)
  else if (!controller.startedByDemo) say(style.yellow(`The kill switch of ${controller.url} stays engaged: \`warden kill-switch disengage\` admits workers again.`))
  return audit.ok && allEndedMs !== null ? EXIT.ok : EXIT.failed
}

function auditLine(record: AuditRecord, rogueId: string): string | null {
  const who = record.worker_id ? `${record.worker_id === rogueId ? 'ROGUE ' : ''}${record.worker_id.slice(0, 8)}` : ''
  switch (record.type) {
    case 'sandbox_launched':
      return `${who} sandbox running (pid ${String(record.data.pid)})`
    case 'spawn_approved':
      return `${record.parent_id?.slice(0, 8)} spawn approved: Warden launches child ${who} with the root's program`
    case 'spawn_denied':
      return `${record.parent_id?.slice(0, 8)} spawn denied: ${record.code}`
    case 'sandbox_oom':
      return `${who} OOM kill inside its sandbox (memory limit held)`
    case 'sandbox_exited':
      return `${who} sandbox ended (${[record.data.worker_status, record.data.reason, record.data.signal].filter(Boolean).join(', ')})`
    case 'kill_switch_engaged':
      return `KILL SWITCH ENGAGED: ${String(record.data.terminated)} workers terminated`
    default:
      return null
  }
}
