// One autocannon run: N keep-alive connections, pipelining 1, each connection owning a random
// share of the credentials (a worker id and its lease token, or an etcd lease id) and cycling
// through them; every response body is checked. Latency is recorded per response at sub-ms
// resolution (autocannon's own histogram rounds to whole milliseconds).
import autocannon from 'autocannon'
import { cpuSeconds } from './proc.js'
import { percentile, Samples, shuffle } from './stats.js'

export interface Credential {
  id: string
  token: string
}

export interface LoadSpec<C extends Credential = Credential> {
  label: string
  url: string
  /** The server's PID, to account its CPU time over the run. */
  pid: number
  connections: number
  durationS: number
  items: C[]
  request(item: C): { path: string; headers: Record<string, string>; body?: string }
  /** True when this is the expected answer for that credential. */
  check(item: C, status: number, body: string): boolean
}

export interface LoadResult {
  label: string
  responses: number
  durationS: number
  rps: number
  p50: number
  p99: number
  p999: number
  max: number
  mean: number
  /** Connection errors and timeouts. */
  errors: number
  /** Responses whose status or body was not the expected answer. */
  bad: number
  firstBad: string | null
  /** CPU used over the run, in cores (1 = one core busy the whole time). */
  serverCores: number
  generatorCores: number
}

export async function runLoad<C extends Credential>(spec: LoadSpec<C>): Promise<LoadResult> {
  const buckets: C[][] = Array.from({ length: spec.connections }, () => [])
  shuffle([...spec.items]).forEach((item, index) => buckets[index % spec.connections]!.push(item))
  if (buckets.some((bucket) => bucket.length === 0)) throw new Error(`${spec.label}: fewer credentials than connections`)

  const latencies = new Samples()
  let bad = 0
  let firstBad: string | null = null
  let nextBucket = 0

  const serverCpu0 = cpuSeconds(spec.pid)
  const generatorCpu0 = process.cpuUsage()
  const started = performance.now()

  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: spec.url,
        connections: spec.connections,
        pipelining: 1,
        duration: spec.durationS,
        timeout: 10,
        setupClient(client) {
          const bucket = buckets[nextBucket++ % buckets.length]!
          const prepared = bucket.map((item) => ({ item, ...spec.request(item) }))
          let cursor = 0
          // Responses come back in request order on a connection (pipelining 1).
          const inFlight: C[] = []
          client.setRequests([
            {
              method: 'POST',
              setupRequest(request) {
                const next = prepared[cursor++ % prepared.length]!
                inFlight.push(next.item)
                return { ...request, path: next.path, headers: next.headers, body: next.body ?? '' }
              },
              onResponse(status, body) {
                const item = inFlight.shift()
                if (item === undefined || !spec.check(item, status, body)) {
                  bad++
                  firstBad ??= `${status} ${body.slice(0, 300)}`
                }
              },
            },
          ])
        },
      },
      (error, done) => (error ? reject(error) : resolve(done)),
    )
    instance.on('response', (_client, _status, _bytes, ms) => latencies.push(ms))
  })

  const elapsed = (performance.now() - started) / 1000
  const generatorCpu = process.cpuUsage(generatorCpu0)
  const serverCores = (cpuSeconds(spec.pid) - serverCpu0) / elapsed
  const sorted = latencies.sorted()
  let sum = 0
  for (const value of sorted) sum += value
  return {
    label: spec.label,
    responses: sorted.length,
    durationS: result.duration,
    rps: sorted.length / result.duration,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    p999: percentile(sorted, 99.9),
    max: sorted.length > 0 ? sorted[sorted.length - 1]! : NaN,
    mean: sorted.length > 0 ? sum / sorted.length : NaN,
    errors: result.errors + result.timeouts,
    bad,
    firstBad,
    serverCores,
    generatorCores: (generatorCpu.user + generatorCpu.system) / 1e6 / elapsed,
  }
}
