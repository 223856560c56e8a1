// Warden as the benchmark runs it: the compiled server (what `npm start` runs) as a child
// process on 127.0.0.1, plus the client-side flows (registration, spawn cycles) over HTTP.
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { join, resolve } from 'node:path'
import { DEFAULT_CONTRACT } from '../../src/domain/contract.js'
import type { ContractInput } from '../../src/schemas/index.js'
import { Api } from './http.js'
import type { Credential } from './load.js'
import { freePort, startProcess, waitFor200, type Proc } from './proc.js'
import { percentile, Samples } from './stats.js'

export const ROOT = resolve(import.meta.dirname, '..', '..')

/** The contract the benchmark runs under: no quota, cooldown or lifetime in the way. */
export function benchContract(heartbeatTimeoutSeconds: number): ContractInput {
  return {
    ...DEFAULT_CONTRACT,
    max_replicas: 10_000_000,
    cooldown_seconds: 0,
    expiration_seconds: null,
    heartbeat_timeout_seconds: heartbeatTimeoutSeconds,
  }
}

export function newSecrets(): { operatorToken: string; signingKey: string } {
  return { operatorToken: randomBytes(24).toString('base64url'), signingKey: randomBytes(48).toString('base64url') }
}

/** Compiles src/ into dist/ exactly as `npm run build` (and so `npm start`) does. */
export function buildServer(): number {
  const started = performance.now()
  execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], {
    cwd: ROOT,
    stdio: 'inherit',
  })
  return performance.now() - started
}

export interface WardenServer {
  url: string
  proc: Proc
  api: Api
  operatorToken: string
  /** From spawning the process to GET /readyz answering 200, in ms. */
  readyMs: number
}

export interface WardenOptions {
  dbFile: string
  operatorToken: string
  signingKey: string
  contractFile?: string
  reaperIntervalMs?: number
  logLevel?: string
  /** Extra node flags, e.g. --cpu-prof. */
  nodeFlags?: string[]
}

export async function startWarden(options: WardenOptions): Promise<WardenServer> {
  const port = await freePort()
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    WARDEN_HOST: '127.0.0.1',
    WARDEN_PORT: String(port),
    WARDEN_DB: options.dbFile,
    WARDEN_OPERATOR_TOKEN: options.operatorToken,
    WARDEN_SIGNING_KEY: options.signingKey,
    WARDEN_LOG_LEVEL: options.logLevel ?? 'warn',
    WARDEN_REGISTER_RATE_LIMIT: '0',
    WARDEN_REAPER_INTERVAL_MS: String(options.reaperIntervalMs ?? 1000),
  }
  if (options.contractFile) env.WARDEN_CONTRACT = options.contractFile
  const url = `http://127.0.0.1:${port}`
  const started = performance.now()
  const proc = startProcess('warden', process.execPath, [...(options.nodeFlags ?? []), join(ROOT, 'dist', 'src', 'server.js')], { cwd: ROOT, env })
  const readyMs = await waitFor200(`${url}/readyz`, proc, started, 120_000, 2)
  return { url, proc, api: new Api(url, 64), operatorToken: options.operatorToken, readyMs }
}

export interface Registered extends Credential {
  /** The worker id. */
  id: string
  /** Its lease token, as the registration answered it. */
  token: string
}

/** Root manifest + registration for each of `count` workers, `concurrency` at a time. */
export async function registerWorkers(server: WardenServer, count: number, concurrency: number): Promise<{ workers: Registered[]; seconds: number }> {
  const workers: Registered[] = []
  let started = 0
  const t0 = performance.now()
  const loop = async () => {
    while (started < count) {
      started++
      const manifest = await server.api.expect<{ worker_id: string }>(201, 'POST', '/v1/manifests', { token: server.operatorToken })
      const registration = await server.api.expect<{ worker: { worker_id: string }; lease_token: string }>(201, 'POST', '/v1/workers', {
        body: manifest,
      })
      workers.push({ id: registration.worker.worker_id, token: registration.lease_token })
    }
  }
  await Promise.all(Array.from({ length: concurrency }, loop))
  return { workers, seconds: (performance.now() - t0) / 1000 }
}

export interface CycleResult {
  concurrency: number
  cycles: number
  seconds: number
  perSecond: number
  p50: number
  p99: number
  max: number
  failures: number
  firstFailure: string | null
}

/**
 * For `seconds`, `concurrency` loops each: a random live parent asks to spawn (its lease token),
 * then the child registers with the approved manifest. One cycle = both requests answered 201.
 */
export async function spawnCycles(server: WardenServer, parents: Registered[], seconds: number, concurrency: number): Promise<CycleResult> {
  const latencies = new Samples()
  let failures = 0
  let firstFailure: string | null = null
  const deadline = performance.now() + seconds * 1000
  const t0 = performance.now()
  const loop = async () => {
    while (performance.now() < deadline) {
      const parent = parents[Math.floor(Math.random() * parents.length)]!
      const started = performance.now()
      const spawn = await server.api.call('POST', `/v1/workers/${parent.id}/spawn`, { token: parent.token, body: { reason: 'bench: split the work' } })
      const register = spawn.status === 201 ? await server.api.call('POST', '/v1/workers', { body: spawn.body }) : null
      if (register?.status === 201) {
        latencies.push(performance.now() - started)
      } else {
        failures++
        firstFailure ??= JSON.stringify(register ?? spawn).slice(0, 300)
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, loop))
  const elapsed = (performance.now() - t0) / 1000
  const sorted = latencies.sorted()
  return {
    concurrency,
    cycles: sorted.length,
    seconds: elapsed,
    perSecond: sorted.length / elapsed,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1]! : NaN,
    failures,
    firstFailure,
  }
}

/** Parses warden_reaper_tick_seconds and the reaper counters out of one /metrics scrape. */
export interface ReaperSample {
  at: number
  count: number
  sum: number
  reaped: number
  buckets: Array<{ le: number; count: number }>
}

export async function scrapeReaper(server: WardenServer): Promise<ReaperSample> {
  const response = await server.api.call<string>('GET', '/metrics')
  if (response.status !== 200) throw new Error(`/metrics answered ${response.status}`)
  const text = response.body
  const value = (line: RegExp) => Number(line.exec(text)?.[1] ?? 0)
  const buckets = [...text.matchAll(/^warden_reaper_tick_seconds_bucket\{le="([^"]+)"\} (\S+)$/gm)].map((m) => ({
    le: m[1] === '+Inf' ? Infinity : Number(m[1]),
    count: Number(m[2]),
  }))
  return {
    at: performance.now(),
    count: value(/^warden_reaper_tick_seconds_count (\S+)$/m),
    sum: value(/^warden_reaper_tick_seconds_sum (\S+)$/m),
    reaped: value(/^warden_reaper_transitions_total\{kind="reaped"\} (\S+)$/m),
    buckets,
  }
}

/** The smallest histogram bound that every tick between two scrapes stayed under, in seconds. */
export function maxBound(before: ReaperSample, after: ReaperSample): number {
  const ticks = after.count - before.count
  for (const bucket of after.buckets) {
    const earlier = before.buckets.find((b) => b.le === bucket.le)?.count ?? 0
    if (bucket.count - earlier === ticks) return bucket.le
  }
  return Infinity
}

/**
 * Event-loop delay since the previous scrape (prom-client resets its monitorEventLoopDelay
 * histogram on every collect): scrape once before a run and once after it.
 */
export async function eventLoopDelay(server: WardenServer): Promise<{ p99Ms: number; maxMs: number }> {
  const response = await server.api.call<string>('GET', '/metrics')
  const read = (name: string) => Number(new RegExp(`^nodejs_eventloop_lag_${name}_seconds (\\S+)$`, 'm').exec(response.body)?.[1] ?? NaN) * 1000
  return { p99Ms: read('p99'), maxMs: read('max') }
}
