// Looking at sandboxed processes from outside, the way an operator would: /proc and the cgroup
// files, never the driver's own bookkeeping.
import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'

export function newMarker(): string {
  return `m${randomBytes(8).toString('hex')}`
}

function read(file: string): string | null {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return null
  }
}

/** Every live process whose environment carries HOSTILE_MARKER=<marker>. */
export function markedPids(marker: string): number[] {
  const needle = `HOSTILE_MARKER=${marker}\0`
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const environ = read(`/proc/${entry}/environ`)
    if (environ === null || !environ.includes(needle)) continue
    // A zombie has released everything; it is not "a process of the sandbox left running".
    if (stat(Number(entry))?.state === 'Z') continue
    pids.push(Number(entry))
  }
  return pids
}

/** SIGKILLs every live process carrying the marker: a test's cleanup of what it started. */
export function killMarked(marker: string): void {
  for (const pid of markedPids(marker)) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // gone meanwhile
    }
  }
}

/**
 * The marked processes inside the sandbox: all but the outer bubblewrap, the driver's direct
 * child, which stays in the controller's cgroup to reap the sandbox's init.
 */
export function sandboxPids(marker: string): number[] {
  return markedPids(marker).filter((pid) => stat(pid)?.ppid !== process.pid)
}

/**
 * The hostile program's escapees: `sh -c <loop> hostile-escapee`, setsid'ed out of its tree, so
 * each leads a session of its own. (The sh that starts one is a session leader too and mentions
 * 'hostile-escapee' in its script, but exits at once: only the last argument tells them apart.)
 */
export function escapees(marker: string): number[] {
  return markedPids(marker).filter((pid) => {
    const argv = (read(`/proc/${pid}/cmdline`) ?? '').split('\0').filter(Boolean)
    return argv[argv.length - 1] === 'hostile-escapee' && stat(pid)?.session === pid
  })
}

export interface ProcStat {
  state: string
  ppid: number
  session: number
  /** utime + stime, clock ticks */
  cpuTicks: number
  threads: number
}

export function stat(pid: number): ProcStat | null {
  const text = read(`/proc/${pid}/stat`)
  if (text === null) return null
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ')
  // f[0] is field 3 (state): field n is f[n - 3].
  return {
    state: f[0] ?? '?',
    ppid: Number(f[1]),
    session: Number(f[3]),
    cpuTicks: Number(f[11]) + Number(f[12]),
    threads: Number(f[17]),
  }
}

export function cmdline(pid: number): string {
  return (read(`/proc/${pid}/cmdline`) ?? '').replaceAll('\0', ' ').trim()
}

/** Total CPU ticks of these processes (those that ended meanwhile count 0). */
export function cpuTicks(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + (stat(pid)?.cpuTicks ?? 0), 0)
}

/** The cgroup folder of a process in one hierarchy ('' for cgroup2), from /proc/<pid>/cgroup. */
export function cgroupOf(pid: number, controller: string): string | null {
  for (const line of (read(`/proc/${pid}/cgroup`) ?? '').split('\n')) {
    const [, controllers, path] = line.split(':')
    if (controllers === undefined || path === undefined) continue
    if (controller === '' ? controllers === '' : controllers.split(',').includes(controller)) {
      return controller === '' ? `/sys/fs/cgroup/unified${path}` : `/sys/fs/cgroup/${controller}${path}`
    }
  }
  return null
}

export function readNumber(file: string): number {
  return Number((read(file) ?? 'NaN').trim())
}

export function readKey(file: string, key: string): number {
  for (const line of (read(file) ?? '').split('\n')) {
    const [k, v] = line.split(' ')
    if (k === key) return Number(v)
  }
  return NaN
}
