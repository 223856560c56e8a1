// Prometheus metrics on a registry of their own (one per app, so tests never share counters).
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type Metric } from 'prom-client'
import type { AuditEntry } from '../store/index.js'
import type { TickResult } from '../domain/liveness.js'
import type { Summary } from '../schemas/index.js'

/** One sandbox state's count and summed usage. */
export interface SandboxStateUsage {
  state: string
  sandboxes: number
  cpu_seconds: number
  memory_bytes: number
  pids: number
  oom_kills: number
}

/** One label set's observations: counts per bucket (not cumulative; the last is above every bound). */
interface Series {
  labels: { method: string; route: string; status: string }
  counts: number[]
  sum: number
  count: number
}

/**
 * A histogram by method, route and status, exposed exactly as prom-client's Histogram is (same
 * text, same JSON), for the one observation every request makes: prom-client's observe builds
 * and sorts a label key and checks every label on each call, several µs of a heartbeat's CPU
 * (issue #12). Here a request finds its series by one string key and adds to a bucket.
 */
export class RequestDurations {
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  private readonly series = new Map<string, Series>()

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
  ) {}

  observe(method: string, route: string, status: number, seconds: number): void {
    if (!Number.isFinite(seconds)) return
    const key = `${method} ${status} ${route}`
    let series = this.series.get(key)
    if (series === undefined) {
      series = { labels: { method, route, status: String(status) }, counts: new Array<number>(this.bounds.length + 1).fill(0), sum: 0, count: 0 }
      this.series.set(key, series)
    }
    let bucket = 0
    while (bucket < this.bounds.length && seconds > this.bounds[bucket]!) bucket++
    series.counts[bucket]!++
    series.sum += seconds
    series.count++
  }

  /** prom-client's text format reads this: bucket labels apart from the shared ones. */
  getForPromString() {
    const values: Array<{ labels: Record<string, string | number>; sharedLabels: Record<string, string>; value: number; metricName: string; exemplar?: null }> = []
    for (const { labels, counts, sum, count } of this.series.values()) {
      let cumulative = 0
      this.bounds.forEach((le, i) => {
        cumulative += counts[i]!
        values.push({ labels: { le }, sharedLabels: labels, value: cumulative, metricName: `${this.name}_bucket`, exemplar: null })
      })
      values.push({ labels: { le: '+Inf' }, sharedLabels: labels, value: count, metricName: `${this.name}_bucket`, exemplar: null })
      values.push({ labels: {}, sharedLabels: labels, value: sum, metricName: `${this.name}_sum` })
      values.push({ labels: {}, sharedLabels: labels, value: count, metricName: `${this.name}_count` })
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator }
  }

  /** JSON (and cluster aggregation) reads this: every label on each value. */
  get() {
    const data = this.getForPromString()
    return { ...data, values: data.values.map(({ labels, sharedLabels, ...rest }) => ({ ...rest, labels: { ...sharedLabels, ...labels } })) }
  }

  reset(): void {
    this.series.clear()
  }
}

export function createMetrics() {
  const registry = new Registry()
  // The standard names (process_cpu_seconds_total, nodejs_heap_size_used_bytes, ...) that stock
  // dashboards and alerts look for.
  collectDefaultMetrics({ register: registry })

  const decisions = new Counter({
    name: 'warden_decisions_total',
    help: 'Audited decisions by audit type and code',
    labelNames: ['type', 'code'] as const,
    registers: [registry],
  })
  // Heartbeats are counted in plain numbers (the hot path) and handed to the counter at scrape time.
  const heartbeatCounts = new Map<string, number>()
  new Counter({
    name: 'warden_heartbeats_total',
    help: 'Heartbeats answered, by directive',
    labelNames: ['directive'] as const,
    registers: [registry],
    collect() {
      this.reset()
      for (const [directive, n] of heartbeatCounts) this.inc({ directive }, n)
    },
  })
  const reaperRuns = new Counter({ name: 'warden_reaper_runs_total', help: 'Reaper ticks', registers: [registry] })
  const reaperDuration = new Histogram({
    name: 'warden_reaper_tick_seconds',
    help: 'Duration of one reaper tick',
    buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1],
    registers: [registry],
  })
  const reaped = new Counter({
    name: 'warden_reaper_transitions_total',
    help: 'Workers reaped or expired and manifests voided by the reaper',
    labelNames: ['kind'] as const,
    registers: [registry],
  })
  const httpDuration = new RequestDurations(
    'warden_http_request_duration_seconds',
    'HTTP request latency by route and status',
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
  )
  registry.registerMetric(httpDuration as unknown as Metric)

  return {
    registry,
    auditRecorded(entry: AuditEntry): void {
      decisions.inc({ type: entry.type, code: entry.code ?? '' })
    },
    heartbeat(directive: string): void {
      heartbeatCounts.set(directive, (heartbeatCounts.get(directive) ?? 0) + 1)
    },
    reaperTick(seconds: number, result: TickResult): void {
      reaperRuns.inc()
      reaperDuration.observe(seconds)
      if (result.reaped) reaped.inc({ kind: 'reaped' }, result.reaped)
      if (result.expired) reaped.inc({ kind: 'expired' }, result.expired)
      if (result.manifests_expired) reaped.inc({ kind: 'manifest_expired' }, result.manifests_expired)
    },
    httpRequest(method: string, route: string, status: number, seconds: number): void {
      httpDuration.observe(method, route, status, seconds)
    },
    /** The longest block of the event loop between two scrapes (SPEC §2.14: none should pass 50 ms). */
    observeLoop(takeLongestBlock: () => { wallMs: number; cpuMs: number }): void {
      new Gauge({
        name: 'warden_event_loop_longest_block_seconds',
        help: 'Longest time the event loop was blocked since the previous scrape: wall (including time the OS did not run the process) and cpu (the process busy)',
        labelNames: ['measure'] as const,
        registers: [registry],
        collect() {
          const { wallMs, cpuMs } = takeLongestBlock()
          this.set({ measure: 'wall' }, wallMs / 1000)
          this.set({ measure: 'cpu' }, cpuMs / 1000)
        },
      })
    },
    /**
     * Gauges read at scrape time from the source of truth. One summary per scrape: prom-client
     * calls every collect() in the same tick, so the first reads it and the rest reuse it.
     */
    observeState(summary: () => Summary): void {
      let snapshot: Summary | undefined
      const read = (): Summary => {
        if (snapshot === undefined) {
          snapshot = summary()
          queueMicrotask(() => (snapshot = undefined))
        }
        return snapshot
      }
      const gauge = (name: string, help: string, value: (s: Summary) => number) =>
        new Gauge({
          name,
          help,
          registers: [registry],
          collect() {
            this.set(value(read()))
          },
        })
      new Gauge({
        name: 'warden_workers',
        help: 'Workers by status (every status, 0 included)',
        labelNames: ['status'] as const,
        registers: [registry],
        collect() {
          for (const [status, n] of Object.entries(read().workers)) this.set({ status }, n)
        },
      })
      gauge('warden_kill_switch_engaged', '1 while the kill switch is engaged', (s) => (s.kill_switch.engaged ? 1 : 0))
      gauge('warden_manifests_outstanding', 'Issued manifests not yet registered nor expired (each holds a quota slot)', (s) => s.outstanding_manifests)
      gauge('warden_quota_slots_in_use', 'Live workers plus outstanding manifests, counted against max_replicas', (s) => s.slots_in_use)
      gauge('warden_quota_max_replicas', 'max_replicas of the current contract', (s) => s.max_replicas)
      gauge('warden_contract_version', 'Version of the current contract', (s) => s.contract_version)
      gauge('warden_audit_head_seq', 'seq of the newest audit record', (s) => s.audit_head_seq)
    },
    /**
     * Live sandboxes and their summed usage by sandbox state (SPEC §5), read at scrape time.
     * Labelled by state only: a label per worker id would grow without bound.
     */
    observeSandboxes(usageByState: () => SandboxStateUsage[]): void {
      const STATES = ['starting', 'running', 'frozen'] as const
      let snapshot: Map<string, SandboxStateUsage> | undefined
      const read = () => {
        if (snapshot === undefined) {
          snapshot = new Map(usageByState().map((entry) => [entry.state, entry]))
          queueMicrotask(() => (snapshot = undefined))
        }
        return snapshot
      }
      const perState = (name: string, help: string, value: (entry: SandboxStateUsage) => number) =>
        new Gauge({
          name,
          help,
          labelNames: ['state'] as const,
          registers: [registry],
          collect() {
            const current = read()
            for (const state of STATES) this.set({ state }, current.has(state) ? value(current.get(state)!) : 0)
          },
        })
      perState('warden_sandboxes', 'Live managed sandboxes by state', (e) => e.sandboxes)
      perState('warden_sandbox_cpu_seconds', 'CPU time used by the live sandboxes, summed by state', (e) => e.cpu_seconds)
      perState('warden_sandbox_memory_bytes', 'Memory in use by the live sandboxes, summed by state', (e) => e.memory_bytes)
      perState('warden_sandbox_pids', 'Processes and threads in the live sandboxes, summed by state', (e) => e.pids)
      perState('warden_sandbox_oom_kills', 'OOM kills inside the live sandboxes, summed by state', (e) => e.oom_kills)
    },
  }
}

export type Metrics = ReturnType<typeof createMetrics>
