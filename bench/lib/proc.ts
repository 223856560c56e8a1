// Child processes of the benchmark: started on 127.0.0.1, remembered, and stopped by their own
// PID only (never by name or process group). Also: free ports, RSS and CPU time from /proc.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'

export interface Proc {
  name: string
  pid: number
  child: ChildProcess
  /** The last lines it printed (stdout and stderr), for error messages. */
  lines: string[]
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  alive(): boolean
}

const running = new Set<Proc>()

export function startProcess(name: string, command: string, args: string[], options: SpawnOptions = {}): Proc {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] })
  if (child.pid === undefined) throw new Error(`${name}: could not start ${command}`)
  const lines: string[] = []
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => {
      lines.push(line)
      if (lines.length > 200) lines.shift()
    })
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.once('exit', (code, signal) => done({ code, signal })),
  )
  const proc: Proc = {
    name,
    pid: child.pid,
    child,
    lines,
    exited,
    alive: () => child.exitCode === null && child.signalCode === null,
  }
  running.add(proc)
  void exited.then(() => running.delete(proc))
  return proc
}

/** Signals the process by its PID, then SIGKILL if it has not exited within `graceMs`. */
export async function stopProcess(proc: Proc, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
  if (!proc.alive()) return
  process.kill(proc.pid, signal)
  const timedOut = await Promise.race([proc.exited.then(() => false), sleep(graceMs).then(() => true)])
  if (timedOut && proc.alive()) {
    process.kill(proc.pid, 'SIGKILL')
    await proc.exited
  }
}

/** Last resort on exit: SIGKILL whatever we started that is still running, each by its PID. */
export function killAllStartedSync(): void {
  for (const proc of running) {
    if (proc.alive()) {
      try {
        process.kill(proc.pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

/** Polls `url` until it answers 200; the milliseconds from `since` (performance.now()) to then. */
export async function waitFor200(url: string, proc: Proc, since: number, timeoutMs = 60_000, everyMs = 5): Promise<number> {
  for (;;) {
    if (!proc.alive()) throw new Error(`${proc.name} exited before ${url} answered:\n${proc.lines.join('\n')}`)
    try {
      const response = await request(url, { headersTimeout: 2000, bodyTimeout: 2000 })
      await response.body.dump()
      if (response.statusCode === 200) return performance.now() - since
    } catch {
      // not listening yet
    }
    if (performance.now() - since > timeoutMs) {
      throw new Error(`${proc.name}: ${url} did not answer 200 within ${timeoutMs} ms:\n${proc.lines.join('\n')}`)
    }
    await sleep(everyMs)
  }
}

/** VmRSS and VmHWM (peak) of a process, in MiB. */
export function memoryMiB(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN)
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 }
}

/** User + system CPU seconds a process (all its threads) has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // Fields after the command name (which may contain spaces) start at field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const ticks = Number(fields[11]) + Number(fields[12])
  return ticks / 100 // USER_HZ is 100 on Linux
}
