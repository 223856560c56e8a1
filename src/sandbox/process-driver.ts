// The `process` driver (Linux): bubblewrap for namespaces and the filesystem view, cgroups for
// limits, freeze and kill (SPEC §5, §2.12–2.13). The plans (argv, cgroup files) are pure and live
// in bwrap-plan.ts and cgroup-plan.ts; this file is the thin fs/process edge that carries them out.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { bwrapArgv, exitFromStatus, exposedPaths, sandboxEnv } from './bwrap-plan.js'
import {
  controllerDirs,
  enforcement,
  parseCgroupMounts,
  planCgroup,
  readKeyed,
  subtreeControlWrites,
  type CgroupHost,
  type CgroupPlan,
  type Enforcement,
} from './cgroup-plan.js'
import {
  SandboxUnavailableError,
  type DriverStatus,
  type LaunchSpec,
  type SandboxDriver,
  type SandboxExit,
  type SandboxUsage,
} from './driver.js'

export interface DriverLog {
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
}

export interface ProcessDriverOptions {
  /** Host folder holding one work folder per sandbox (`<workRoot>/<worker_id>`). */
  workRoot: string
  /** Host path of the controller's Unix socket, bind-mounted into every sandbox. */
  controllerSocket: string
  /** Processes and threads per sandbox. */
  pidsMax: number
  log?: DriverLog
  /** Top folder of Warden's cgroups in each hierarchy (default "warden"). */
  cgroupRoot?: string
  /** Host folders hidden inside every sandbox (e.g. the controller's data folder). */
  hidePaths?: readonly string[]
  /** bubblewrap's path (default: found on PATH). */
  bwrap?: string
  /** Use the v1 hierarchies only, even where cgroup2 is mounted (runs the v1 path on a hybrid host). */
  ignoreCgroup2?: boolean
}

const STATUS_FD = 3
const BLOCK_FD = 4
const WORKER_ID = /^[A-Za-z0-9_-]{1,64}$/
/** 9 → 'SIGKILL', … */
const SIGNAL_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(os.constants.signals).map(([name, number]) => [number, name]),
)
const silentLog: DriverLog = { info: () => {}, warn: () => {} }

/** The folder Warden runs from (its package.json's), from src/sandbox or dist/src/sandbox. */
function installRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir)
  return fs.realpathSync(dir)
}

function hostKind(target: string): 'file' | 'dir' | null {
  try {
    return fs.statSync(target).isDirectory() ? 'dir' : 'file'
  } catch {
    return null
  }
}

interface Sandbox {
  workerId: string
  plan: CgroupPlan
  child: ChildProcess
  pid: number | null
  /** Its processes when a kill was ordered: the kill is done when each is gone from /proc too
   * (a task leaves its cgroup a moment before it finishes exiting). */
  killed: number[]
  /** A kill arrived before the sandbox's init joined its cgroups: it never starts the program. */
  killRequested: boolean
  /** Resolves once its last process is gone, its cgroups removed and onExit reported. */
  ended: Promise<void>
}

export async function createProcessDriver(options: ProcessDriverOptions): Promise<SandboxDriver> {
  const log = options.log ?? silentLog
  const problems: string[] = []
  if (process.platform !== 'linux') problems.push(`this host runs ${process.platform}, not Linux`)
  if (process.getuid?.() !== 0) {
    problems.push('the controller does not run as root (the process driver needs root to create namespaces and cgroups)')
  }
  const bwrap = options.bwrap !== undefined ? (isExecutable(options.bwrap) ? options.bwrap : null) : findOnPath('bwrap')
  if (bwrap === null) problems.push(`bubblewrap is not installed (${options.bwrap ?? 'bwrap'} not found; apt-get install bubblewrap)`)
  if (problems.length > 0 || bwrap === null) throw new SandboxUnavailableError(problems.join('; '))

  const parsed = parseCgroupMounts(readText('/proc/self/mountinfo') ?? '', readText('/proc/self/cgroup') ?? '')
  const mounts = options.ignoreCgroup2 ? { ...parsed, unified: null } : parsed
  const unifiedControllers =
    mounts.unified === null ? [] : (readText(`${mounts.unified}/cgroup.controllers`) ?? '').trim().split(/\s+/).filter(Boolean)
  let host: CgroupHost = { ...mounts, unifiedControllers, swapAccounting: false }
  const names = { top: options.cgroupRoot ?? 'warden', controller: controllerName(process.pid) }
  if (host.unified === null && Object.keys(host.v1).length === 0) {
    throw new SandboxUnavailableError('no cgroup hierarchy is mounted (mount cgroup2 at /sys/fs/cgroup)')
  }

  await sweepStale(host, names.top, names.controller, log)

  // v2 parents must hand their controllers down; a refusal drops that controller (and says so).
  for (const write of subtreeControlWrites(host, names)) {
    fs.mkdirSync(path.dirname(write.file), { recursive: true })
    try {
      fs.writeFileSync(write.file, write.value)
    } catch (error) {
      log.warn({ file: write.file, err: String(error) }, 'cgroup v2 controllers not delegated')
      host = { ...host, unifiedControllers: [] }
      break
    }
  }
  const dirs = controllerDirs(host, names)
  try {
    for (const dir of dirs) fs.mkdirSync(dir, { recursive: true })
  } catch (error) {
    throw new SandboxUnavailableError(`cannot create cgroups (${String(error)}): run as root or delegate a cgroup`)
  }
  const e = enforcement(host)
  const memoryDir = e.source.memory === 'v2' ? host.unified : e.source.memory === 'v1' ? host.v1.memory : undefined
  const controllerDir = (base: string | undefined) => `${base}/${names.top}/${names.controller}`
  host.swapAccounting =
    e.source.memory === 'v2' ? fs.existsSync(`${controllerDir(memoryDir ?? undefined)}/memory.swap.max`)
    : e.source.memory === 'v1' ? fs.existsSync(`${controllerDir(memoryDir ?? undefined)}/memory.memsw.limit_in_bytes`)
    : false

  fs.mkdirSync(options.workRoot, { recursive: true, mode: 0o700 })
  const workRoot = fs.realpathSync(options.workRoot)
  const hidePaths = [workRoot, ...(options.hidePaths ?? [])].filter(isDirectory)
  const probeError = probeBwrap(bwrap)
  if (probeError !== null) {
    await removeDirs(dirs)
    throw new SandboxUnavailableError(`bubblewrap cannot create the sandbox namespaces here: ${probeError}`)
  }

  const status = describe(enforcement(host))
  log.info({ sandbox_driver: status }, status.reason === null ? 'process sandbox driver ready' : `process sandbox driver ready; ${status.reason}`)

  const sandboxes = new Map<string, Sandbox>()
  const listeners: Array<(exit: SandboxExit) => void> = []
  let closed = false

  function launch(spec: LaunchSpec): Promise<{ pid: number; started_at: number }> {
    if (closed) return Promise.reject(new SandboxUnavailableError('the sandbox driver has shut down'))
    const workerId = spec.worker_id
    if (!WORKER_ID.test(workerId)) return Promise.reject(new Error(`invalid worker id for a sandbox: ${workerId}`))
    if (sandboxes.has(workerId)) return Promise.reject(new Error(`sandbox ${workerId} is already running`))
    const allowController = spec.resources.network_policy.allow_controller
    if (allowController && !fs.existsSync(options.controllerSocket)) {
      return Promise.reject(new Error(`controller socket ${options.controllerSocket} does not exist`))
    }

    if (spec.program.command.length === 0) return Promise.reject(new Error('a sandbox needs a command'))

    const workDir = path.join(workRoot, workerId)
    let plan: CgroupPlan
    try {
      plan = planCgroup(host, { ...names, worker: workerId }, spec.resources, options.pidsMax)
    } catch (error) {
      return Promise.reject(error)
    }
    let logFd: number
    try {
      fs.mkdirSync(workDir, { recursive: true, mode: 0o700 })
      for (const dir of plan.dirs) fs.mkdirSync(dir)
      for (const write of plan.limits) fs.writeFileSync(write.file, write.value)
      logFd = fs.openSync(path.join(workRoot, `${workerId}.log`), 'a', 0o600)
    } catch (error) {
      void removeDirs(plan.dirs)
      return Promise.reject(new Error(`cannot prepare sandbox ${workerId}: ${String(error)}`))
    }

    const argv = bwrapArgv({
      bwrap: bwrap as string,
      workDir,
      controllerSocket: allowController ? options.controllerSocket : null,
      allowExternal: spec.resources.network_policy.allow_external,
      hidePaths,
      exposePaths: exposedPaths(spec.program.command, installRoot(), hostKind),
      command: spec.program.command,
      statusFd: STATUS_FD,
      blockFd: BLOCK_FD,
    })
    let child: ChildProcess
    try {
      child = spawn(argv[0] as string, argv.slice(1), {
        env: sandboxEnv(spec, workDir),
        stdio: ['ignore', logFd, logFd, 'pipe', 'pipe'],
      })
    } catch (error) {
      // e.g. a NUL byte in an argument or a variable: nothing started
      void removeDirs(plan.dirs)
      return Promise.reject(new Error(`cannot start sandbox ${workerId}: ${String(error)}`))
    } finally {
      fs.closeSync(logFd)
    }

    return new Promise((resolve, reject) => {
      let started = false
      let failure: string | null = null
      const sandbox: Sandbox = {
        workerId,
        plan,
        child,
        pid: null,
        killed: [],
        killRequested: false,
        ended: new Promise<void>((resolveEnded) => {
          const finish = (code: number | null, signal: NodeJS.Signals | null) => {
            void reap(sandbox, code, signal).finally(resolveEnded)
          }
          child.once('exit', finish)
          child.once('error', (error) => {
            if (!started) reject(error)
            // 'exit' may never follow an 'error' (spawn failed): end here.
            if (child.exitCode === null && child.signalCode === null && child.pid === undefined) finish(null, null)
          })
        }),
      }
      sandboxes.set(workerId, sandbox)

      // The init waits on the block fd: it joins the cgroups first, then the program may start.
      const admit = (pid: number) => {
        try {
          if (sandbox.killRequested) throw new Error('killed while starting')
          for (const file of plan.join) fs.writeFileSync(file, String(pid))
        } catch (error) {
          failure = `could not join its cgroups: ${String(error)}`
          signal(pid)
          return
        }
        const block = child.stdio[BLOCK_FD] as NodeJS.WritableStream | null
        block?.end('1')
        started = true
        sandbox.pid = pid
        resolve({ pid, started_at: Date.now() })
      }

      let buffered = ''
      child.stdio[STATUS_FD]?.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('utf8')
        let newline: number
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, newline)
          buffered = buffered.slice(newline + 1)
          const pid = parseChildPid(line)
          if (pid !== null && !started && failure === null) admit(pid)
        }
      })
      child.stdio[BLOCK_FD]?.on('error', () => {
        // the sandbox died before it read its go-ahead; 'exit' reports it
      })
      child.once('exit', () => {
        if (started) return
        reject(new Error(`sandbox ${workerId} did not start: ${failure ?? tail(path.join(workRoot, `${workerId}.log`))}`))
      })
    })
  }

  async function reap(sandbox: Sandbox, code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    try {
      // bubblewrap's exit takes the PID namespace down; the cgroup is the word on "all gone".
      if (!(await waitEmpty(sandbox.plan, 1000))) await killUntilEmpty(sandbox.plan)
      await until(() => sandbox.killed.every(isGone), 1000)
      const oomKills = readOomKills(sandbox.plan)
      await removeDirs(sandbox.plan.dirs)
      sandboxes.delete(sandbox.workerId)
      const exit: SandboxExit = {
        worker_id: sandbox.workerId,
        ...exitFromStatus(code, signal, SIGNAL_NAMES),
        oom: oomKills > 0,
      }
      for (const listener of listeners) {
        try {
          listener(exit)
        } catch (error) {
          log.warn({ worker_id: sandbox.workerId, err: String(error) }, 'sandbox exit listener failed')
        }
      }
    } catch (error) {
      sandboxes.delete(sandbox.workerId)
      log.warn({ worker_id: sandbox.workerId, err: String(error) }, 'sandbox cleanup failed')
    }
  }

  async function kill(workerIds: readonly string[]): Promise<void> {
    const targets = workerIds.map((id) => sandboxes.get(id)).filter((s): s is Sandbox => s !== undefined)
    for (const sandbox of targets) {
      sandbox.killRequested = true
      sandbox.killed = members(sandbox.plan.members)
      killCgroup(sandbox.plan)
    }
    // cgroup.kill catches a fork racing the kill; signals do not, so they are repeated until empty.
    await Promise.all(
      targets.map(async (sandbox) => {
        if (sandbox.plan.kill.mode === 'signal') await killUntilEmpty(sandbox.plan)
        await sandbox.ended
      }),
    )
  }

  async function setFrozen(workerId: string, frozen: boolean): Promise<void> {
    const sandbox = sandboxes.get(workerId)
    if (sandbox === undefined) throw new Error(`no running sandbox ${workerId}`)
    const freeze = sandbox.plan.freeze
    if (freeze === null) throw new Error('freezing is not enforced on this host (no cgroup2 mount, no v1 freezer)')
    let reached: boolean
    if (freeze.mode === 'v2') {
      fs.writeFileSync(freeze.file, frozen ? '1' : '0')
      reached = await until(() => readKeyed(readText(freeze.events) ?? '', 'frozen') === (frozen ? 1 : 0), 2000)
    } else {
      fs.writeFileSync(freeze.file, frozen ? 'FROZEN' : 'THAWED')
      reached = await until(() => (readText(freeze.file) ?? '').trim() === (frozen ? 'FROZEN' : 'THAWED'), 2000)
    }
    // Gone meanwhile is not a failure to freeze: its exit is reported as usual.
    if (!reached && sandboxes.has(workerId)) {
      throw new Error(`sandbox ${workerId} did not ${frozen ? 'freeze' : 'thaw'} within 2 s`)
    }
  }

  function usage(workerId: string): SandboxUsage | null {
    const sandbox = sandboxes.get(workerId)
    if (sandbox === undefined) return null
    return readUsage(sandbox.plan)
  }

  async function shutdown(): Promise<void> {
    closed = true
    await kill([...sandboxes.keys()])
    await removeDirs(dirs.filter((dir) => dir.endsWith(`/${names.controller}`)))
    // Other controllers may share the top folder: removing it only succeeds when it is empty.
    await removeDirs(dirs.filter((dir) => dir.endsWith(`/${names.top}`)))
  }

  return {
    name: 'process',
    status: () => status,
    launch,
    kill,
    freeze: (workerId) => setFrozen(workerId, true),
    thaw: (workerId) => setFrozen(workerId, false),
    usage,
    onExit: (listener) => {
      listeners.push(listener)
    },
    shutdown,
  }
}

/** What this host enforces, and in words what it does not. */
export function describe(e: Enforcement): DriverStatus {
  const missing: string[] = []
  if (e.source.memory === null) missing.push('memory (no memory controller in cgroup v2 or v1)')
  else if (!e.swap) missing.push('swap (no swap accounting: a sandbox may swap past its memory limit)')
  if (e.source.cpu === null) missing.push('cpu (no cpu controller in cgroup v2 or v1)')
  if (e.source.pids === null) missing.push('pids (no pids controller in cgroup v2 or v1)')
  if (e.freeze === null) missing.push('freeze (no cgroup2 mount and no v1 freezer)')
  return {
    driver: 'process',
    available: true,
    reason: missing.length === 0 ? null : `not enforced on this host: ${missing.join('; ')}`,
    cgroup: e.layout,
    enforces: {
      memory: e.source.memory !== null,
      cpu: e.source.cpu !== null,
      pids: e.source.pids !== null,
      network: true,
      freeze: e.freeze !== null,
      kill: e.kill !== null,
    },
  }
}

function killCgroup(plan: CgroupPlan): void {
  if (plan.kill.mode === 'v2') {
    try {
      fs.writeFileSync(plan.kill.file, '1')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    }
    return
  }
  // v1: freeze so nothing forks between listing and killing, SIGKILL every task, thaw so they die.
  const freezer = plan.freeze?.mode === 'v1' ? plan.freeze.file : null
  try {
    if (freezer !== null) fs.writeFileSync(freezer, 'FROZEN')
    for (const pid of members(plan.members)) signal(pid)
  } finally {
    if (freezer !== null) {
      try {
        fs.writeFileSync(freezer, 'THAWED')
      } catch {
        // the cgroup is already gone
      }
    }
  }
}

function signal(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL')
  } catch {
    // already gone
  }
}

async function killUntilEmpty(plan: CgroupPlan): Promise<boolean> {
  return until(() => {
    if (members(plan.members).length === 0) return true
    killCgroup(plan)
    return false
  }, 5000)
}

async function waitEmpty(plan: CgroupPlan, timeoutMs: number): Promise<boolean> {
  return until(() => {
    const list = readText(plan.members)
    return list === null || list.trim() === ''
  }, timeoutMs)
}

/** Polls `done` with a short, growing interval; false when the timeout passed first. */
async function until(done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  let delay = 1
  for (;;) {
    if (done()) return true
    if (Date.now() >= deadline) return false
    await new Promise((resolve) => setTimeout(resolve, delay))
    delay = Math.min(delay * 2, 20)
  }
}

function readUsage(plan: CgroupPlan): SandboxUsage | null {
  const cpu = plan.usage.cpu
  let cpuSeconds = 0
  if (cpu !== null) {
    const text = readText(cpu.file)
    if (text === null) return null
    cpuSeconds =
      cpu.format === 'cpu.stat' ? (readKeyed(text, 'usage_usec') ?? 0) / 1e6 : Number(text.trim()) / 1e9
  }
  const number = (file: string | null) => (file === null ? 0 : Number((readText(file) ?? '0').trim()) || 0)
  return {
    cpu_seconds: cpuSeconds,
    memory_bytes: number(plan.usage.memory),
    memory_peak_bytes: number(plan.usage.peak),
    pids: plan.usage.pids !== null ? number(plan.usage.pids) : members(plan.members).length,
    oom_kills: readOomKills(plan),
  }
}

function readOomKills(plan: CgroupPlan): number {
  if (plan.usage.oom === null) return 0
  return readKeyed(readText(plan.usage.oom) ?? '', 'oom_kill') ?? 0
}

function members(procsFile: string): number[] {
  return (readText(procsFile) ?? '').split('\n').filter(Boolean).map(Number)
}

/**
 * Removes cgroup folders deepest first. A folder whose last task is still being released answers
 * EBUSY for a moment: it is retried on a timer (never a blocking wait), then left for the sweep.
 */
async function removeDirs(dirs: readonly string[]): Promise<void> {
  for (const dir of [...dirs].reverse()) {
    await until(() => {
      try {
        fs.rmdirSync(dir)
        return true
      } catch (error) {
        return (error as NodeJS.ErrnoException).code !== 'EBUSY'
      }
    }, 500)
  }
}

/**
 * Removes the cgroups of controllers that are no longer alive, killing what is left in them
 * first (a controller that was SIGKILLed never cleaned up). Folders of live controllers stay.
 */
async function sweepStale(host: CgroupHost, top: string, own: string, log: DriverLog): Promise<void> {
  const bases = [host.unified, ...Object.values(host.v1)].filter((b): b is string => b !== null && b !== undefined)
  const unique = [...new Set(bases)]
  const stale: string[] = []
  for (const base of unique) {
    let entries: string[]
    try {
      entries = fs.readdirSync(`${base}/${top}`)
    } catch {
      continue
    }
    for (const entry of entries) {
      if (entry === own || isAlive(entry)) continue
      const dir = `${base}/${top}/${entry}`
      if (isDirectory(dir)) stale.push(dir)
    }
  }
  if (stale.length === 0) return
  log.warn({ cgroups: stale }, 'removing sandbox cgroups left by a controller that is gone')
  for (const controllerDir of stale) {
    let leaves: string[] = []
    try {
      leaves = fs.readdirSync(controllerDir).map((name) => `${controllerDir}/${name}`).filter(isDirectory)
    } catch {
      continue
    }
    for (const leaf of leaves) {
      const killFile = `${leaf}/cgroup.kill`
      const procs = `${leaf}/cgroup.procs`
      const freezer = `${leaf}/freezer.state`
      await until(() => {
        if (members(procs).length === 0) return true
        if (fs.existsSync(killFile)) fs.writeFileSync(killFile, '1')
        else for (const pid of members(procs)) signal(pid)
        if (fs.existsSync(freezer)) fs.writeFileSync(freezer, 'THAWED')
        return false
      }, 2000)
    }
    await removeDirs([controllerDir, ...leaves])
  }
}

/**
 * Kills what is left in the cgroups of controllers that are gone and removes them, under every
 * top folder whose name starts with `prefix` in this process's cgroups; empty top folders go too.
 * A driver does this for its own top folder when it starts; a test run does it when it ends.
 */
export async function sweepDeadControllers(prefix = 'warden', log: DriverLog = silentLog): Promise<void> {
  const host: CgroupHost = {
    ...parseCgroupMounts(readText('/proc/self/mountinfo') ?? '', readText('/proc/self/cgroup') ?? ''),
    unifiedControllers: [],
    swapAccounting: false,
  }
  const bases = [...new Set([host.unified, ...Object.values(host.v1)])].filter((b): b is string => typeof b === 'string')
  const tops = new Set<string>()
  for (const base of bases) {
    let names: string[] = []
    try {
      names = fs.readdirSync(base)
    } catch {
      continue
    }
    for (const name of names) if (name.startsWith(prefix) && isDirectory(`${base}/${name}`)) tops.add(name)
  }
  for (const top of tops) {
    await sweepStale(host, top, '', log)
    // Fails (and is left) while a live controller still has its folder there.
    for (const base of bases) {
      try {
        fs.rmdirSync(`${base}/${top}`)
      } catch {
        // busy, not empty or absent
      }
    }
  }
}

let instances = 0

/** "<pid>-<start time>-<n>": a reused pid is not mistaken for a live controller; n tells apart
 * two drivers of one process (tests). */
function controllerName(pid: number): string {
  return `${pid}-${startTime(pid) ?? 0}-${instances++}`
}

/** The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat); null once
 * it is gone or a zombie (a SIGKILLed controller not yet reaped by its parent is dead). */
function startTime(pid: number): string | null {
  const stat = readText(`/proc/${pid}/stat`)
  if (stat === null) return null
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  if (fields[0] === 'Z' || fields[0] === 'X') return null
  return fields[19] ?? null
}

/** Gone, or a zombie: it no longer runs and holds nothing but its pid until reaped. */
function isGone(pid: number): boolean {
  const stat = readText(`/proc/${pid}/stat`)
  if (stat === null) return true
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
  return state === 'Z' || state === 'X'
}

function isAlive(controller: string): boolean {
  const match = /^(\d+)-(\d+)-\d+$/.exec(controller)
  if (!match) return false
  return startTime(Number(match[1])) === match[2]
}

function probeBwrap(bwrap: string): string | null {
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-probe-'))
  try {
    const argv = bwrapArgv({
      bwrap,
      workDir,
      controllerSocket: null,
      allowExternal: false,
      hidePaths: [],
      exposePaths: [],
      command: ['/bin/true'],
      statusFd: 1,
      blockFd: null,
    })
    const result = spawnSync(argv[0] as string, argv.slice(1), { encoding: 'utf8', timeout: 10_000 })
    if (result.error) return String(result.error)
    if (result.status !== 0) return (result.stderr || `exit ${result.status}`).trim()
    return null
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true })
  }
}

function parseChildPid(line: string): number | null {
  try {
    const value = JSON.parse(line) as { 'child-pid'?: unknown }
    return typeof value['child-pid'] === 'number' ? value['child-pid'] : null
  } catch {
    return null
  }
}

function findOnPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const candidate = path.join(dir || '.', name)
    if (isExecutable(candidate)) return candidate
  }
  return null
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK)
    return fs.statSync(file).isFile()
  } catch {
    return false
  }
}

function readText(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8')
  } catch {
    return null
  }
}

function isDirectory(dir: string): boolean {
  try {
    return fs.statSync(dir).isDirectory()
  } catch {
    return false
  }
}

function tail(file: string): string {
  const text = readText(file) ?? ''
  return text.slice(-500).trim() || 'no output'
}
