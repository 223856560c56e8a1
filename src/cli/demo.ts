// warden demo: replication under a contract, live. Starts a controller (or uses WARDEN_URL),
// launches the root worker as its own OS process, launches every child the controller approves,
// shows the lineage and the denials as they happen, pulls the kill switch, watches every process
// exit, verifies the audit chain and sums up. Bounded in time; every process it started is gone
// when it returns.
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { WardenClient, type ContractInput } from '../client/client.js'
import { abortableSleep } from '../client/retry.js'
import { isLive, type Contract, type Manifest } from '../schemas/index.js'
import { numberOption, stringOption, type Command } from './command.js'
import { EXIT, UsageError, type Context } from './context.js'
import type { DemoMessage } from './demo-worker.js'
import { eventLine, frame, lineageTree, summaryLines, contractLine, type DemoEvent, type DemoSummary, type DemoWorker } from './demo-view.js'
import { truncate } from './format.js'
import { runManagedDemo } from './demo-managed.js'
import { nodeCommand } from './launch.js'

/** Small enough to finish in seconds, and every kind of denial shows up. */
export const DEMO_CONTRACT: ContractInput = {
  max_depth: 2,
  max_replicas: 7,
  cooldown_seconds: 1,
  expiration_seconds: 300,
  heartbeat_timeout_seconds: 3,
  manifest_ttl_seconds: 15,
  default_resources: { cpu_limit: 0.25, memory_limit_mb: 128, network_policy: { allow_controller: true, allow_external: false } },
  max_resources: { cpu_limit: 1, memory_limit_mb: 512, network_policy: { allow_controller: true, allow_external: false } },
  stop_conditions: [
    {
      name: 'work_before_replication',
      description: 'a worker may replicate only after two units of work',
      expression: 'has(manifest.state_snapshot.parent_work_done) && manifest.state_snapshot.parent_work_done < 2',
    },
  ],
}

/** The demo contract for managed workers: leases and resources that fit a sandboxed runtime. */
export const MANAGED_DEMO_CONTRACT: ContractInput = {
  ...DEMO_CONTRACT,
  max_replicas: 5,
  heartbeat_timeout_seconds: 30,
  default_resources: { cpu_limit: 0.5, memory_limit_mb: 256, network_policy: { allow_controller: true, allow_external: false } },
}

const DENIAL_TYPES = new Set(['spawn_denied', 'manifest_denied', 'registration_rejected'])
const TICK_MS = 250
const POLL_MS = 500
/** With no approval, registration or launch for this long, replication is over. */
const QUIET_MS = 4_000

interface Controller {
  url: string
  token: string
  startedByDemo: boolean
  /** Where the sandboxes' work folders are (a controller the demo started), else null. */
  sandboxDir: string | null
  close(): Promise<void>
}

async function startController(): Promise<Controller> {
  const [{ loadConfig }, { start }] = await Promise.all([import('../config.js'), import('../server.js')])
  const dir = mkdtempSync(join(tmpdir(), 'warden-demo-'))
  const token = randomBytes(24).toString('base64url')
  const server = await start(
    loadConfig({
      WARDEN_HOST: '127.0.0.1',
      WARDEN_PORT: '0',
      WARDEN_DB: join(dir, 'warden.db'),
      WARDEN_OPERATOR_TOKEN: token,
      WARDEN_REAPER_INTERVAL_MS: '200',
      WARDEN_LOG_LEVEL: 'error',
    }),
  )
  return {
    url: server.address,
    token,
    startedByDemo: true,
    sandboxDir: join(dir, 'sandboxes'),
    async close() {
      await server.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

function describeDenial(message: Extract<DemoMessage, { type: 'denied' }>): string {
  if (message.code === 'stop_condition') return `stop_condition ${message.condition ?? ''}`.trim()
  if (message.code === 'cooldown_active') return `cooldown_active (retry in ${message.retry_after ?? '?'} s)`
  return message.code
}

export const demoCommands: Command[] = [
  {
    name: ['demo'],
    summary: 'Watch workers replicate under a contract as real processes, then pull the kill switch',
    details: [
      'Starts a throw-away controller (or uses --url / WARDEN_URL), issues a root manifest and launches',
      'the root as its own OS process running the client Worker; every approved spawn becomes another',
      'process. Workers do simulated work and ask to replicate until the contract stops them. Then the',
      'demo engages the kill switch, waits for every process to exit and verifies the audit chain.',
      '',
      'On a controller you name, the demo keeps its contract unless you pass --contract, and it leaves',
      'the kill switch ENGAGED at the end (it terminates every worker on that controller).',
      'Exit code 0 when every process exited after the kill switch and the audit chain verified.',
      '',
      'Where the controller can run sandboxes (GET /v1/sandbox-driver), the workers are managed: Warden',
      'launches them, and one ROGUE worker ignores its 410, forks, allocates past its memory limit and',
      'tries to reach the outside; the demo shows each attempt contained and the kill switch ending it.',
      'Elsewhere it says why and runs the workers as plain processes (also with --no-sandbox).',
    ],
    options: {
      contract: { type: 'string', value: 'FILE', description: 'contract JSON to apply (default: a small built-in demo contract)' },
      duration: { type: 'string', value: 'SECONDS', description: 'longest time to let workers replicate (default 45)' },
      settle: { type: 'string', value: 'SECONDS', description: 'how long to watch once every slot is taken (default 2)' },
      'work-ms': { type: 'string', value: 'MS', description: 'length of one unit of simulated work (default 300)' },
      'no-sandbox': { type: 'boolean', description: 'run the workers as plain processes even where sandboxes are available' },
    },
    async run(ctx) {
      return runDemo(ctx)
    },
  },
]

async function readContractOption(ctx: Context, external: boolean): Promise<ContractInput | null> {
  const path = stringOption(ctx.values, 'contract')
  if (path === undefined) return external ? null : DEMO_CONTRACT
  try {
    return JSON.parse(readFileSync(resolve(ctx.io.cwd, path), 'utf8')) as ContractInput
  } catch (error) {
    throw new UsageError(`--contract ${path}: ${(error as Error).message}`)
  }
}

async function runDemo(ctx: Context): Promise<number> {
  const started = Date.now()
  const elapsed = () => Date.now() - started
  const { style } = ctx
  const durationMs = (numberOption(ctx.values, 'duration') ?? 45) * 1000
  const settleMs = (numberOption(ctx.values, 'settle') ?? 2) * 1000
  const workMs = numberOption(ctx.values, 'work-ms') ?? 300
  if (!(durationMs > 0) || !(settleMs >= 0) || !(workMs > 0)) throw new UsageError('--duration, --settle and --work-ms must be positive')
  const external = typeof ctx.values.url === 'string' || Boolean(ctx.io.env.WARDEN_URL)
  const contractInput = await readContractOption(ctx, external)
  const signal = ctx.io.signal
  const liveView = ctx.io.isTTY && !ctx.json
  const say = (line: string) => {
    if (!ctx.json) ctx.out(line)
  }

  const workers = new Map<string, DemoWorker>()
  const processes = new Map<string, ChildProcess>()
  const logs = new Map<string, string[]>()
  const events: DemoEvent[] = []
  const cleanups: Array<() => Promise<void>> = []
  let killSwitchAt: number | null = null
  let lastGrowthAt = Date.now()
  let phase = 'replicating'
  let drawnLines = 0
  let url = ctx.url
  let contract: Contract | null = null

  const event = (kind: DemoEvent['kind'], worker: DemoWorker | null, text: string) => {
    const entry = { at: elapsed(), kind, worker, text }
    events.push(entry)
    if (!liveView) say(eventLine(entry, style))
  }
  const draw = () => {
    if (!liveView || contract === null) return
    const columns = ctx.io.columns ?? 120
    const lines = frame({ url, contract, elapsed: elapsed(), phase, workers: [...workers.values()], events, style, maxEvents: 10 }).map(
      (line) => truncate(line, columns - 1),
    )
    ctx.io.stdout((drawnLines > 0 ? `\x1b[${drawnLines}F\x1b[0J` : '') + lines.join('\n') + '\n')
    drawnLines = lines.length
  }

  const launch = (manifest: Manifest, serverUrl: string) => {
    const worker: DemoWorker = {
      worker_id: manifest.worker_id,
      parent_id: manifest.parent_id,
      depth: manifest.depth,
      pid: null,
      process: 'starting',
      status: null,
      reason: null,
      work_done: 0,
      children: 0,
      last_denial: null,
      stop_reason: null,
      failure: null,
      exit: null,
    }
    workers.set(worker.worker_id, worker)
    lastGrowthAt = Date.now()
    const { command, args } = nodeCommand('demo-worker')
    // A worker gets its manifest and the controller URL, never the operator's secrets.
    const { WARDEN_OPERATOR_TOKEN: _token, WARDEN_SIGNING_KEY: _key, ...env } = process.env
    const child = spawn(command, args, {
      env: { ...env, WARDEN_URL: serverUrl, WARDEN_MANIFEST: JSON.stringify(manifest), WARDEN_DEMO_WORK_MS: String(workMs) },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    })
    worker.pid = child.pid ?? null
    processes.set(worker.worker_id, child)
    const log: string[] = []
    logs.set(worker.worker_id, log)
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        log.push(line)
        if (log.length > 20) log.shift()
      })
    }
    child.on('message', (message: DemoMessage) => onMessage(worker, message, serverUrl))
    child.on('error', (error) => {
      worker.failure = `cannot start: ${error.message}`
      event('denied', worker, worker.failure)
    })
    child.on('exit', (code, exitSignal) => {
      worker.process = 'exited'
      worker.exit = { code, signal: exitSignal, after_kill_switch: killSwitchAt !== null, forced: worker.exit?.forced ?? false }
      const how = exitSignal ? `was killed by ${exitSignal}` : `exited with code ${code}`
      const why = worker.stop_reason ? `terminated (${worker.stop_reason}); ` : ''
      event('exit', worker, `${why}process ${worker.pid} ${how}`)
      if (code !== 0 && !exitSignal && !worker.failure) {
        worker.failure = 'crashed'
        for (const line of log.slice(-5)) event('denied', worker, `  ${line}`)
      }
    })
  }

  const onMessage = (worker: DemoWorker, message: DemoMessage, serverUrl: string) => {
    switch (message.type) {
      case 'registered':
        worker.process = 'running'
        worker.status ??= 'active'
        lastGrowthAt = Date.now()
        event('info', worker, `registered, process ${message.pid} at work`)
        break
      case 'work':
        worker.work_done = message.work_done
        break
      case 'spawn':
        worker.children += 1
        event('approved', worker, `spawn approved: child ${message.manifest.worker_id.slice(0, 8)} at depth ${message.manifest.depth}, launching it`)
        launch(message.manifest, serverUrl)
        break
      case 'denied':
        worker.last_denial = describeDenial(message)
        event('denied', worker, `spawn denied: ${worker.last_denial}`)
        break
      case 'state':
        if (worker.process !== 'exited') worker.process = message.state
        break
      case 'terminated':
        worker.stop_reason = message.reason
        break
      case 'failed':
        worker.failure = `registration refused: ${message.code}`
        event('denied', worker, `${worker.failure} (${message.detail})`)
        break
    }
  }

  const running = () => [...workers.values()].filter((worker) => worker.pid !== null && worker.process !== 'exited')

  let forced = 0
  try {
    const controller: Controller = external
      ? { url: ctx.url, token: ctx.token(), startedByDemo: false, sandboxDir: null, close: async () => {} }
      : await startController()
    cleanups.push(() => controller.close())
    url = controller.url
    const api = new WardenClient({ url, token: controller.token, retry: { retries: 3, maxRetryAfterMs: 0 }, circuitBreaker: false })
    cleanups.push(() => api.close())

    contract = contractInput ? await api.putContract(contractInput) : await api.getContract()
    const killSwitch = await api.getKillSwitch()
    if (killSwitch.engaged) {
      throw new UsageError(`the kill switch of ${url} is engaged; disengage it first (warden kill-switch disengage)`)
    }
    // Managed workers where this controller can run sandboxes (SPEC §5); plain processes otherwise.
    const driver = await api.sandboxDriver().catch(() => null)
    if (driver?.available && !ctx.values['no-sandbox']) {
      // A sandboxed worker starts slower under its cpu quota, and a runtime needs its memory:
      // the built-in contract gets room for both (a contract given with --contract is kept).
      if (contractInput === DEMO_CONTRACT) contract = await api.putContract(MANAGED_DEMO_CONTRACT)
      return await runManagedDemo(ctx, api, controller, { contract, durationMs, workMs, driver: `${driver.driver} (cgroup ${driver.cgroup})` })
    }
    if (!ctx.values['no-sandbox']) {
      say(style.yellow(`Sandboxes unavailable here (${driver?.reason ?? 'the controller does not say'}): the workers run as plain processes, and only obey.`))
    }
    const auditStart = (await api.verifyAudit()).records
    if (!liveView) {
      say(style.bold(`Warden demo · controller ${url}${controller.startedByDemo ? ' (started by the demo)' : ''}`))
      say(style.dim(contractLine(contract)))
      if (!controller.startedByDemo) say(style.yellow('At the end the demo engages the kill switch of this controller: every worker on it is terminated.'))
      say('')
    }

    const root = await api.issueManifest({ state_snapshot: { task: 'demo' } })
    event('info', null, `root manifest ${root.worker_id.slice(0, 8)} issued; launching the root worker process`)
    launch(root, url)

    // Grow until the contract stops it (every slot taken, or nobody gets anywhere), or time is up.
    let saturatedAt: number | null = null
    let lastPoll = 0
    let liveOnController = 0
    while (true) {
      if (Date.now() - lastPoll >= POLL_MS) {
        lastPoll = Date.now()
        liveOnController = 0
        for await (const summary of api.workers()) {
          if (isLive(summary.status)) liveOnController += 1
          const known = workers.get(summary.worker_id)
          if (known) {
            known.status = summary.status
            known.reason = summary.reason
          }
        }
      }
      draw()
      const now = Date.now()
      if (signal?.aborted) {
        event('info', null, 'interrupted')
        break
      }
      if (elapsed() >= durationMs) {
        event('info', null, `time limit of ${durationMs / 1000} s reached`)
        break
      }
      const starting = [...workers.values()].some((worker) => worker.process === 'starting')
      if (liveOnController >= contract.max_replicas && !starting) {
        if (saturatedAt === null) {
          saturatedAt = now
          phase = 'every slot taken'
          event('info', null, `all ${contract.max_replicas} slots of max_replicas are taken; watching the denials`)
        }
        if (now - saturatedAt >= settleMs) break
      } else if (!starting && now - lastGrowthAt >= QUIET_MS) {
        event('info', null, 'no worker has been allowed to replicate for a while')
        break
      }
      if (running().length === 0 && !starting) {
        event('info', null, 'no worker process is running')
        break
      }
      await abortableSleep(TICK_MS, signal).catch(() => {})
    }

    if (!liveView) {
      say('')
      say(style.bold('Lineage before the kill switch'))
      for (const line of lineageTree([...workers.values()], style)) say(`  ${line}`)
      say('')
    }

    // The kill switch: the controller terminates every worker in one transaction; each process
    // learns it from its next heartbeat (410 terminate) and exits on its own.
    phase = 'kill switch engaged'
    killSwitchAt = Date.now()
    const engaged = await api.engageKillSwitch('warden demo: pulling the kill switch')
    event('kill', null, `kill switch ENGAGED: ${engaged.terminated} workers terminated in one transaction; waiting for every process to exit`)
    const exitDeadline = Date.now() + contract.heartbeat_timeout_seconds * 1000 + 5_000
    while (running().length > 0 && Date.now() < exitDeadline) {
      draw()
      await abortableSleep(TICK_MS).catch(() => {})
    }
    for (const worker of running()) {
      forced += 1
      worker.exit = { code: null, signal: 'SIGKILL', after_kill_switch: true, forced: true }
      event('denied', worker, `process ${worker.pid} still running after the kill switch: killing it`)
      processes.get(worker.worker_id)?.kill('SIGKILL')
    }
    await waitForExits([...processes.values()], 5_000)

    // What the controller recorded.
    for await (const summary of api.workers()) {
      const known = workers.get(summary.worker_id)
      if (known) {
        known.status = summary.status
        known.reason = summary.reason
      }
    }
    const denials: Record<string, number> = {}
    for await (const record of api.auditRecords({ after_seq: auditStart })) {
      if (DENIAL_TYPES.has(record.type) && record.code) denials[record.code] = (denials[record.code] ?? 0) + 1
    }
    const audit = await api.verifyAudit()
    phase = 'done'
    draw()

    const all = [...workers.values()]
    const registered = all.filter((worker) => worker.status !== null)
    const byDepth: Record<string, number> = {}
    for (const worker of registered) byDepth[worker.depth] = (byDepth[worker.depth] ?? 0) + 1
    const launched = all.filter((worker) => worker.pid !== null)
    const exited = launched.filter((worker) => worker.exit !== null && !worker.exit.forced)
    const summary: DemoSummary = {
      controller: { url, started_by_demo: controller.startedByDemo },
      contract,
      registered: registered.length,
      workers_by_depth: byDepth,
      denials,
      processes: {
        started: launched.length,
        exited: exited.length,
        exited_after_kill_switch: exited.filter((worker) => worker.exit!.after_kill_switch).length,
        forced,
        still_running: running().length,
      },
      kill_switch: { engaged: true, terminated: engaged.terminated },
      audit,
      duration_ms: elapsed(),
      workers: all.map((worker) => ({
        worker_id: worker.worker_id,
        parent_id: worker.parent_id,
        depth: worker.depth,
        pid: worker.pid,
        status: worker.status,
        reason: worker.reason,
        work_done: worker.work_done,
        stop_reason: worker.stop_reason,
        failure: worker.failure,
        exit_code: worker.exit?.code ?? null,
        exit_signal: worker.exit?.signal ?? null,
      })),
    }

    if (ctx.json) ctx.printJson(summary)
    else {
      if (!liveView) {
        say('')
        say(style.bold('Lineage after the kill switch'))
        for (const line of lineageTree(all, style)) say(`  ${line}`)
      }
      say('')
      for (const line of summaryLines(summary, style)) say(line)
      if (!controller.startedByDemo) say(style.yellow(`The kill switch of ${url} stays engaged: \`warden kill-switch disengage\` admits workers again.`))
    }
    return audit.ok && forced === 0 && summary.processes.still_running === 0 ? EXIT.ok : EXIT.failed
  } finally {
    // Whatever happened above, no process this demo started outlives it.
    for (const child of processes.values()) {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) child.kill('SIGKILL')
    }
    await waitForExits([...processes.values()], 5_000)
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {})
  }
}

function waitForExits(children: ChildProcess[], timeoutMs: number): Promise<void> {
  const pending = children.filter((child) => child.exitCode === null && child.signalCode === null)
  if (pending.length === 0) return Promise.resolve()
  return new Promise((resolvePromise) => {
    const timer = setTimeout(resolvePromise, timeoutMs)
    let left = pending.length
    for (const child of pending) {
      child.once('exit', () => {
        left -= 1
        if (left === 0) {
          clearTimeout(timer)
          resolvePromise()
        }
      })
    }
  })
}
