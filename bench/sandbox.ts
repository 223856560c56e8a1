// npx tsx bench/sandbox.ts [--n 100] [--batch 100] [--json]
//
// The process sandbox driver's own figures, as root on this host (bubblewrap + cgroups):
//   launch     launch() called → bubblewrap reports the sandbox's first process (namespaces and
//              cgroups in place), and → a node worker's first line of JS reaching the controller
//              socket, p50/p99 over n sandboxes
//   kill       kill() called → the cgroup is empty (every process gone, a setsid'ed one
//              included), p50/p99 over n sandboxes killed one at a time
//   batch      kill() of `batch` live sandboxes at once → the last of them empty
//   memory     per sandbox: PSS and RSS of every process in it (bubblewrap ×2 + the worker; PSS
//              shares the node binary's pages among all sandboxes, RSS counts them in each) and
//              the memory cgroup's own count, for a sh worker and a minimal node worker
// Every sandbox, cgroup and temp folder it makes is removed before it exits.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import type { LaunchSpec, SandboxDriver } from '../src/sandbox/driver.js'
import { createProcessDriver } from '../src/sandbox/process-driver.js'
import { percentile } from './lib/stats.js'

const { values: flags } = parseArgs({
  options: {
    n: { type: 'string', default: '100' },
    batch: { type: 'string', default: '100' },
    json: { type: 'boolean', default: false },
  },
})
const N = Number(flags.n)
const BATCH = Number(flags.batch)

const dir = mkdtempSync(join(tmpdir(), 'warden-bench-sbx-'))
const socketPath = join(dir, 'controller.sock')
const arrivals = new Map<string, number>()
const controller = net.createServer((socket) => {
  socket.once('data', (data) => {
    arrivals.set(data.toString().trim(), performance.now())
    socket.end()
  })
})
await new Promise<void>((resolve) => controller.listen(socketPath, resolve))

let driver: SandboxDriver | undefined
let seq = 0
const resources = { cpu_limit: 1, memory_limit_mb: 256, network_policy: { allow_controller: true, allow_external: false } }

function spec(command: string[]): LaunchSpec {
  const worker_id = `bench${process.pid}x${seq++}`
  return { worker_id, program: { command }, resources, env: { WARDEN_WORKER_ID: worker_id } }
}

const SH_WORKER = ['/bin/sh', '-c', 'setsid sleep 100000 & exec sleep 100000']
const NODE_HELLO = [
  process.execPath,
  '-e',
  "const s = require('net').connect(process.env.WARDEN_URL.slice(5), () => s.write(process.env.WARDEN_WORKER_ID + '\\n')); setInterval(() => {}, 1 << 30)",
]
const NODE_IDLE = [process.execPath, '-e', 'setInterval(() => {}, 1 << 30)']

const ms = (values: number[]) => {
  const sorted = Float64Array.from(values).sort()
  return { p50: round(percentile(sorted, 50)), p99: round(percentile(sorted, 99)), max: round(sorted[sorted.length - 1] ?? NaN), n: values.length }
}
const round = (value: number) => Math.round(value * 10) / 10

function cgroupProcs(pid: number): number[] {
  const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((l) => l.startsWith('0::'))
  if (line === undefined) return [pid]
  return readFileSync(`/sys/fs/cgroup/unified${line.slice(3)}/cgroup.procs`, 'utf8').split('\n').filter(Boolean).map(Number)
}

/** The sandbox's processes plus its outer bubblewrap (the init's parent, outside the cgroup). */
function sandboxProcs(pid: number): number[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
  return [ppid, ...cgroupProcs(pid)]
}

function pssKiB(pid: number): number {
  try {
    const match = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))
    return match ? Number(match[1]) : 0
  } catch {
    return 0
  }
}

function rssKiB(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match ? Number(match[1]) : 0
  } catch {
    return 0
  }
}

function alive(pids: readonly number[]): number[] {
  return pids.filter((pid) => {
    try {
      return !/\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
    } catch {
      return false
    }
  })
}

async function main() {
  const d = await createProcessDriver({ workRoot: join(dir, 'sandboxes'), controllerSocket: socketPath, pidsMax: 64, cgroupRoot: `warden-bench-${process.pid}` })
  driver = d
  const results: Record<string, unknown> = { host: d.status(), n: N }

  // launch → first process, and → the worker's JS reaching the controller
  const launchMs: number[] = []
  const helloMs: number[] = []
  for (let i = 0; i < N; i++) {
    const s = spec(NODE_HELLO)
    const t0 = performance.now()
    await d.launch(s)
    launchMs.push(performance.now() - t0)
    const deadline = Date.now() + 10_000
    while (!arrivals.has(s.worker_id) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1))
    helloMs.push((arrivals.get(s.worker_id) ?? NaN) - t0)
    await d.kill([s.worker_id])
  }
  results.launch_first_process_ms = ms(launchMs)
  results.launch_worker_reaches_controller_ms = ms(helloMs)

  // kill → last process gone, one at a time; each sandbox holds a setsid'ed escapee
  const killMs: number[] = []
  let leftovers = 0
  for (let i = 0; i < N; i++) {
    const s = spec(SH_WORKER)
    const { pid } = await d.launch(s)
    let procs: number[] = []
    const deadline = Date.now() + 5000
    while ((procs = sandboxProcs(pid)).length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1))
    const t0 = performance.now()
    await d.kill([s.worker_id])
    killMs.push(performance.now() - t0)
    leftovers += alive(procs).length
  }
  results.kill_last_process_gone_ms = ms(killMs)
  results.kill_leftover_processes = leftovers

  // BATCH live sandboxes killed at once
  const batch: { id: string; procs: number[] }[] = []
  const t1 = performance.now()
  for (let i = 0; i < BATCH; i++) {
    const s = spec(SH_WORKER)
    const { pid } = await d.launch(s)
    batch.push({ id: s.worker_id, procs: [pid] })
  }
  const launchAllMs = performance.now() - t1
  await new Promise((r) => setTimeout(r, 300))
  for (const b of batch) b.procs = sandboxProcs(b.procs[0] as number)
  const t2 = performance.now()
  await d.kill(batch.map((b) => b.id))
  results.batch = {
    sandboxes: BATCH,
    processes: batch.reduce((sum, b) => sum + b.procs.length, 0),
    launch_all_sequential_ms: round(launchAllMs),
    kill_all_last_process_gone_ms: round(performance.now() - t2),
    leftover_processes: batch.reduce((sum, b) => sum + alive(b.procs).length, 0),
  }

  // memory per sandbox
  const memory: Record<string, unknown> = {}
  for (const [name, command] of [['sh', SH_WORKER], ['node', NODE_IDLE]] as const) {
    const ids: { id: string; pid: number }[] = []
    for (let i = 0; i < 20; i++) {
      const s = spec([...command])
      ids.push({ id: s.worker_id, pid: (await d.launch(s)).pid })
    }
    await new Promise((r) => setTimeout(r, 1000))
    const pss = ids.map(({ pid }) => sandboxProcs(pid).reduce((sum, p) => sum + pssKiB(p), 0))
    const rss = ids.map(({ pid }) => sandboxProcs(pid).reduce((sum, p) => sum + rssKiB(p), 0))
    const cgroupBytes = ids.map(({ id }) => d.usage(id)?.memory_bytes ?? NaN)
    const processes = ids.map(({ pid }) => sandboxProcs(pid).length)
    memory[name] = {
      sandboxes: ids.length,
      processes_each: processes[0],
      pss_mib_mean: round(pss.reduce((a, b) => a + b, 0) / pss.length / 1024),
      rss_mib_mean: round(rss.reduce((a, b) => a + b, 0) / rss.length / 1024),
      cgroup_mib_mean: round(cgroupBytes.reduce((a, b) => a + b, 0) / cgroupBytes.length / 1024 / 1024),
    }
    await d.kill(ids.map((x) => x.id))
  }
  results.memory_per_sandbox = memory
  return results
}

try {
  const results = await main()
  if (flags.json) console.log(JSON.stringify(results, null, 2))
  else {
    for (const [key, value] of Object.entries(results)) console.log(`${key.padEnd(38)} ${JSON.stringify(value)}`)
  }
} finally {
  await driver?.shutdown()
  controller.close()
  rmSync(dir, { recursive: true, force: true })
  const left = readdirSync('/sys/fs/cgroup/unified').filter((name) => name.startsWith(`warden-bench-${process.pid}`))
  if (left.length > 0) console.error(`cgroups left behind: ${left.join(', ')}`)
}
