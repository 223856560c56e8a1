// npx tsx bench/managed.ts [--n 100] [--batch 100] [--json]
//
// Managed workers through the API of a real controller (WARDEN_SANDBOX=process), as root:
//   launch   POST /v1/sandboxes sent → its 201 (issued, registered and the sandbox's first
//            process running), p50/p99 over n launches
//   kill     POST /v1/workers/{id}/kill sent → the last process of the sandbox gone from /proc
//            (a node worker with a setsid'ed escapee), p50/p99 over n sandboxes
//   switch   POST /v1/kill-switch with `batch` live sandboxes → the last process of all gone
// Every process, cgroup and folder it makes is removed before it exits.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { percentile } from './lib/stats.js'

const { values: flags } = parseArgs({ options: { n: { type: 'string', default: '100' }, batch: { type: 'string', default: '100' }, json: { type: 'boolean', default: false } } })
const N = Number(flags.n)
const BATCH = Number(flags.batch)
const ROOT = resolve(import.meta.dirname, '..')
const dir = mkdtempSync(join(tmpdir(), 'warden-bench-managed-'))
const cgroupRoot = `warden-bench-${process.pid}-${randomBytes(3).toString('hex')}`
const token = randomBytes(24).toString('base64url')
const marker = `m${randomBytes(8).toString('hex')}`
// A worker that does what an agent does: heartbeats over the socket, and hides a setsid'ed escapee.
const workerFile = join(ROOT, 'bench', 'results', `.managed-worker-${process.pid}.mjs`)
writeFileSync(
  workerFile,
  `import { spawn } from 'node:child_process'
spawn('/bin/sh', ['-c', "setsid sh -c 'while :; do sleep 1; done' &"], { stdio: 'ignore', detached: true }).unref()
setInterval(() => {}, 1 << 30)
`,
)

const markedPids = (): Set<number> => {
  const pids = new Set<number>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'utf8').includes(`BENCH_MARKER=${marker}\0`)) pids.add(Number(entry))
    } catch {
      // gone
    }
  }
  return pids
}
/** The pids of one sandbox: its worker's environment names it. */
const pidsOf = (id: string, among: Set<number>): number[] =>
  [...among].filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/environ`, 'utf8').includes(`WARDEN_WORKER_ID=${id}\0`) || readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(id)
    } catch {
      return false
    }
  })
const alive = (pid: number) => {
  try {
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ')
  } catch {
    return false
  }
}
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 2))
}

const server = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'server.ts')], {
  cwd: ROOT,
  env: {
    PATH: process.env.PATH ?? '',
    WARDEN_PORT: '0',
    WARDEN_DB: join(dir, 'warden.db'),
    WARDEN_OPERATOR_TOKEN: token,
    WARDEN_SANDBOX: 'process',
    WARDEN_SANDBOX_CGROUP: cgroupRoot,
    WARDEN_LOG_LEVEL: 'info',
    WARDEN_REGISTER_RATE_LIMIT: '0',
  },
  stdio: ['ignore', 'pipe', 'ignore'],
})
const url = await new Promise<string>((resolveUrl) =>
  createInterface({ input: server.stdout! }).on('line', (line) => {
    const match = /Warden listening on (http:\/\/[^;]+);/.exec(line)
    if (match) resolveUrl(match[1]!)
  }),
)
const api = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  return { status: res.status, body: (await res.json()) as any } // eslint-disable-line @typescript-eslint/no-explicit-any
}
await api('PUT', '/v1/contract', { ...(await api('GET', '/v1/contract')).body, version: undefined, updated_at: undefined, max_replicas: BATCH + 10, heartbeat_timeout_seconds: 600 })
const program = { command: [process.execPath, workerFile], env: { BENCH_MARKER: marker } }
const resources = { cpu_limit: 0.2, memory_limit_mb: 64, network_policy: { allow_controller: true, allow_external: false } }

async function launch(): Promise<{ id: string; ms: number }> {
  const t0 = performance.now()
  const res = await api('POST', '/v1/sandboxes', { program, resources })
  if (res.status !== 201 || res.body.worker.sandbox.state !== 'running') throw new Error(`launch: ${res.status} ${JSON.stringify(res.body)}`)
  return { id: res.body.worker.worker_id, ms: performance.now() - t0 }
}

const sorted = (values: number[]) => [...values].sort((a, b) => a - b)
const launchMs: number[] = []
const killMs: number[] = []
try {
  for (let i = 0; i < N; i++) {
    const { id, ms } = await launch()
    launchMs.push(ms)
    let pids: number[] = []
    await until(() => (pids = pidsOf(id, markedPids())).length >= 3) // worker, sh, escapee
    const t0 = performance.now()
    await api('POST', `/v1/workers/${id}/kill`)
    await until(() => !pids.some(alive) && pidsOf(id, markedPids()).length === 0)
    killMs.push(performance.now() - t0)
  }
  for (let i = 0; i < BATCH; i++) await launch()
  await until(() => markedPids().size >= BATCH * 3)
  const before = markedPids()
  const t0 = performance.now()
  const engaged = await api('POST', '/v1/kill-switch')
  const answered = performance.now() - t0
  await until(() => ![...before].some(alive))
  const switchMs = performance.now() - t0
  const result = {
    n: N,
    launch_ms: { p50: percentile(sorted(launchMs), 50), p99: percentile(sorted(launchMs), 99) },
    kill_to_last_process_gone_ms: { p50: percentile(sorted(killMs), 50), p99: percentile(sorted(killMs), 99), max: Math.max(...killMs) },
    kill_switch: { sandboxes: BATCH, terminated: engaged.body.terminated, answered_ms: answered, last_process_gone_ms: switchMs, processes: before.size },
  }
  if (flags.json) console.log(JSON.stringify(result))
  else console.log(JSON.stringify(result, null, 2))
} finally {
  server.kill('SIGTERM')
  await new Promise((r) => server.once('exit', r))
  for (const pid of markedPids()) process.kill(pid, 'SIGKILL')
  rmSync(workerFile, { force: true })
  rmSync(dir, { recursive: true, force: true })
  for (const base of readdirSync('/sys/fs/cgroup')) {
    try {
      rmdirSync(`/sys/fs/cgroup/${base}/${cgroupRoot}`)
    } catch {
      // none there, or cleaned by the server
    }
  }
}
