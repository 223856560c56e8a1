// GET /metrics as a Prometheus server and stock dashboards read it.
import { Histogram, Registry, type Metric } from 'prom-client'
import { afterEach, describe, expect, it } from 'vitest'
import { RequestDurations } from '../../src/http/metrics.js'
import { WorkerStatusSchema } from '../../src/schemas/index.js'
import { createTestApp, registerRoot, storeOf, type TestApp } from '../helpers/harness.js'

/** The value of one series (`name{labels}`), or undefined when it is absent. */
function series(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `))
  return line === undefined ? undefined : Number(line.slice(name.length + 1))
}

describe('GET /metrics', () => {
  let t: TestApp | undefined
  afterEach(() => t?.close())
  const scrape = async () => {
    const res = await t!.app.inject({ method: 'GET', url: '/metrics' })
    expect(res.statusCode).toBe(200)
    return res.body
  }

  it('uses the standard process_* and nodejs_* names, not prefixed ones', async () => {
    t = await createTestApp()
    const text = await scrape()
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds']) {
      expect(text).toMatch(new RegExp(`^# TYPE ${name} `, 'm'))
    }
    expect(text).not.toMatch(/warden_process_|process_process_/)
  })

  it('exports every worker status, 0 included, before and after the kill switch', async () => {
    t = await createTestApp()
    let text = await scrape()
    for (const status of WorkerStatusSchema.options) expect(series(text, `warden_workers{status="${status}"}`), status).toBe(0)

    registerRoot(t.warden)
    registerRoot(t.warden)
    text = await scrape()
    expect(series(text, 'warden_workers{status="active"}')).toBe(2)
    await t.app.inject({ method: 'POST', url: '/v1/kill-switch', headers: t.op })
    text = await scrape()
    expect(series(text, 'warden_workers{status="active"}')).toBe(0)
    expect(series(text, 'warden_workers{status="killed"}')).toBe(2)
    for (const status of WorkerStatusSchema.options) expect(series(text, `warden_workers{status="${status}"}`), status).toBeTypeOf('number')
  })

  it('gauges outstanding manifests, quota slots in use of max_replicas, and the audit head seq', async () => {
    t = await createTestApp({ max_replicas: 7 })
    registerRoot(t.warden)
    t.warden.admission.issueRoot({})
    t.warden.admission.issueRoot({})
    const text = await scrape()
    expect(series(text, 'warden_manifests_outstanding')).toBe(2)
    expect(series(text, 'warden_quota_slots_in_use')).toBe(3)
    expect(series(text, 'warden_quota_max_replicas')).toBe(7)
    const head = storeOf(t.warden).audit.head().seq
    expect(head).toBeGreaterThan(3)
    expect(series(text, 'warden_audit_head_seq')).toBe(head)
    expect(series(text, 'warden_kill_switch_engaged')).toBe(0)
  })
})

describe('the request duration histogram', () => {
  it('exposes exactly what prom-client’s Histogram would for the same observations, as text and as JSON', async () => {
    const bounds = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]
    const ours = new Registry()
    const theirs = new Registry()
    const fast = new RequestDurations('warden_http_request_duration_seconds', 'HTTP request latency by route and status', bounds)
    ours.registerMetric(fast as unknown as Metric)
    const reference = new Histogram({
      name: 'warden_http_request_duration_seconds',
      help: 'HTTP request latency by route and status',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: bounds,
      registers: [theirs],
    })
    const observations: Array<[string, string, number, number]> = [
      ['POST', '/v1/workers/:id/heartbeat', 200, 0.0004],
      ['POST', '/v1/workers/:id/heartbeat', 200, 0.001], // on a bound: counted in it
      ['POST', '/v1/workers/:id/heartbeat', 200, 0.0031],
      ['POST', '/v1/workers/:id/heartbeat', 410, 0.02],
      ['GET', '/v1/workers', 200, 3.5], // above every bound: only +Inf
      ['GET', 'unmatched', 404, 0],
    ]
    for (const [method, route, status, seconds] of observations) {
      fast.observe(method, route, status, seconds)
      reference.observe({ method, route, status: String(status) }, seconds)
    }
    expect(await ours.metrics()).toBe(await theirs.metrics())
    expect(await ours.getMetricsAsJSON()).toEqual(await theirs.getMetricsAsJSON())
    fast.reset()
    reference.reset()
    expect(await ours.metrics()).toBe(await theirs.metrics())
  })
})
