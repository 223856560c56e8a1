// GET /metrics as a Prometheus server and stock dashboards read it.
import { afterEach, describe, expect, it } from 'vitest'
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
