// Retries (exponential backoff, full jitter, Retry-After) and the circuit breaker: the policy on
// its own, status by status against a scripted HTTP server, and across a real Warden server that
// is stopped and started again mid-run.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { WardenClient, type RetryEvent } from '../../src/client/client.js'
import { CircuitBreaker, type CircuitState } from '../../src/client/circuit-breaker.js'
import { WardenError } from '../../src/client/errors.js'
import { backoffDelay, DEFAULT_RETRY, parseRetryAfter, retryDelay } from '../../src/client/retry.js'
import type { ServerProcess } from '../helpers/server.js'
import { OPERATOR_TOKEN, operatorClient, realServer, rejection, restart, stopServer } from './support.js'

describe('retry policy', () => {
  const options = { ...DEFAULT_RETRY, retries: 5, baseDelayMs: 100, maxDelayMs: 1_000 }

  it('draws full jitter below an exponentially growing, capped ceiling', () => {
    expect(backoffDelay(0, options, () => 0)).toBe(0)
    expect(backoffDelay(0, options, () => 0.999)).toBe(99)
    expect(backoffDelay(2, options, () => 0.999)).toBe(399)
    expect(backoffDelay(10, options, () => 0.999)).toBe(999)
    expect(backoffDelay(3, options, () => 0.5)).toBe(400)
  })

  const error = (code: WardenError['code'], status: number, extra: { retry_after?: number; not_sent?: boolean } = {}) =>
    new WardenError(code, { status, detail: 'x', ...extra })
  const half = () => 0.5

  it('retries a request that never left, whatever it is, and an uncertain failure only when idempotent', () => {
    expect(retryDelay(error('connection_failed', 0, { not_sent: true }), 0, false, options, half)).toBe(50)
    expect(retryDelay(error('connection_failed', 0), 0, true, options, half)).toBe(50)
    expect(retryDelay(error('connection_failed', 0), 0, false, options, half)).toBeNull()
    expect(retryDelay(error('timeout', 0), 1, true, options, half)).toBe(100)
    expect(retryDelay(error('timeout', 0), 1, false, options, half)).toBeNull()
    expect(retryDelay(error('service_unavailable', 503), 0, false, options, half)).toBe(50)
    expect(retryDelay(error('internal_error', 502), 0, true, options, half)).toBe(50)
    expect(retryDelay(error('internal_error', 504), 0, false, options, half)).toBeNull()
  })

  it('waits out Retry-After on 429 up to maxRetryAfterMs', () => {
    expect(retryDelay(error('cooldown_active', 429, { retry_after: 2 }), 0, false, options, () => 0)).toBe(2_000)
    expect(retryDelay(error('rate_limited', 429, { retry_after: 3 }), 0, false, options, () => 0)).toBe(3_000)
    expect(retryDelay(error('cooldown_active', 429, { retry_after: 60 }), 0, false, options, () => 0)).toBeNull()
    expect(retryDelay(error('cooldown_active', 429, { retry_after: 1 }), 0, false, { ...options, maxRetryAfterMs: 0 }, () => 0)).toBeNull()
  })

  it('never retries policy denials, client errors, an open circuit, or past the last attempt', () => {
    const final: Array<[WardenError['code'], number]> = [
      ['validation_failed', 400],
      ['unauthorized', 401],
      ['quota_exceeded', 403],
      ['stop_condition', 403],
      ['kill_switch_engaged', 403],
      ['worker_not_found', 404],
      ['manifest_already_used', 409],
      ['worker_terminated', 410],
      ['internal_error', 500],
    ]
    for (const [code, status] of final) expect(retryDelay(error(code, status), 0, true, options, half), code).toBeNull()
    expect(retryDelay(error('circuit_open', 0, { not_sent: true }), 0, true, options, half)).toBeNull()
    expect(retryDelay(error('connection_failed', 0, { not_sent: true }), 5, true, options, half)).toBeNull()
  })

  it('parses Retry-After as seconds or as an HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z')
    expect(parseRetryAfter('7', now)).toBe(7)
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5)
    expect(parseRetryAfter(undefined, now)).toBeUndefined()
    expect(parseRetryAfter('soon', now)).toBeUndefined()
  })
})

describe('circuit breaker', () => {
  it('opens after the threshold, half-opens after the cooldown with one probe, and closes or re-opens on its outcome', () => {
    let now = 0
    const changes: string[] = []
    const breaker = new CircuitBreaker({ failureThreshold: 3, cooldownMs: 1_000, now: () => now, onStateChange: (to, from) => changes.push(`${from}>${to}`) })
    breaker.recordFailure()
    breaker.recordFailure()
    breaker.recordSuccess()
    breaker.recordFailure()
    breaker.recordFailure()
    expect(breaker.state).toBe('closed')
    breaker.recordFailure()
    expect(breaker.state).toBe('open')
    expect(breaker.tryAcquire()).toBe(false)
    now = 999
    expect(breaker.remainingCooldownMs).toBe(1)
    now = 1_000
    expect(breaker.tryAcquire()).toBe(true)
    expect(breaker.state).toBe('half_open')
    expect(breaker.tryAcquire()).toBe(false)
    breaker.recordFailure()
    expect(breaker.state).toBe('open')
    now = 2_000
    expect(breaker.tryAcquire()).toBe(true)
    breaker.recordSuccess()
    expect(breaker.state).toBe('closed')
    expect(changes).toEqual(['closed>open', 'open>half_open', 'half_open>open', 'open>half_open', 'half_open>closed'])
  })
})

describe('statuses from a scripted HTTP server', () => {
  let stub: Server | undefined
  afterEach(async () => {
    await new Promise((resolve) => (stub ? stub.close(resolve) : resolve(undefined)))
    stub = undefined
  })

  /** Answers each request with the next scripted [status, headers]; the last one repeats. */
  async function scripted(
    answers: Array<[number, Record<string, string>?]>,
  ): Promise<{ url: string; hits: () => number; keys: Array<string | undefined> }> {
    let hits = 0
    const keys: Array<string | undefined> = []
    stub = createServer((request, response) => {
      const [status, headers = {}] = answers[Math.min(hits, answers.length - 1)]!
      hits += 1
      keys.push(request.headers['idempotency-key'] as string | undefined)
      request.resume()
      const ok = status < 300
      response.writeHead(status, { 'content-type': ok ? 'application/json' : 'application/problem+json', ...headers })
      response.end(JSON.stringify(ok ? { engaged: false, engaged_at: null, reason: null } : { type: 'about:blank', title: 'x', status, code: status === 429 ? 'rate_limited' : 'service_unavailable', detail: 'scripted' }))
    })
    await new Promise<void>((resolve) => stub!.listen(0, '127.0.0.1', resolve))
    return { url: `http://127.0.0.1:${(stub.address() as AddressInfo).port}`, hits: () => hits, keys }
  }

  function client(url: string, delays: number[]) {
    return new WardenClient({
      url,
      token: OPERATOR_TOKEN,
      retry: { retries: 3, baseDelayMs: 100, maxDelayMs: 1_000, maxRetryAfterMs: 5_000 },
      circuitBreaker: false,
      random: () => 0.5,
      sleep: async (ms) => void delays.push(ms),
    })
  }

  it('retries 503, 502 and 504 for an idempotent request with growing backoff, then succeeds', async () => {
    const { url, hits } = await scripted([[503], [502], [504], [200]])
    const delays: number[] = []
    const api = client(url, delays)
    expect(await api.getKillSwitch()).toMatchObject({ engaged: false })
    expect(hits()).toBe(4)
    expect(delays).toEqual([50, 100, 200])
    await api.close()
  })

  it('repeats a spawn after 502, 503 and 504 with the one Idempotency-Key of that call; the next call has a fresh key', async () => {
    const lease = { worker_id: 'a'.repeat(32), lease_token: 't' }
    const gateway = await scripted([[502], [503], [504], [200]])
    const api = client(gateway.url, [])
    await api.spawn(lease, { reason: 'x' })
    expect(gateway.hits()).toBe(4)
    const [key] = gateway.keys
    expect(key).toMatch(/^[\x21-\x7e]{1,128}$/)
    expect(gateway.keys).toEqual([key, key, key, key])
    await api.spawn(lease, { reason: 'x' })
    expect(gateway.keys[4]).not.toBe(key)
    await api.close()
  })

  it('sends a key on register and issueManifest, none on reads, and the caller\'s own key when given', async () => {
    const gateway = await scripted([[200]])
    const api = client(gateway.url, [])
    await api.issueManifest()
    await api.issueManifest({}, { idempotencyKey: 'my-own-key-1' })
    await api.getKillSwitch()
    expect(gateway.keys[0]).toEqual(expect.any(String))
    expect(gateway.keys.slice(1)).toEqual(['my-own-key-1', undefined])
    await expect(api.issueManifest({}, { idempotencyKey: 'has space' })).rejects.toThrow(TypeError)
    await expect(api.issueManifest({}, { idempotencyKey: 'x'.repeat(129) })).rejects.toThrow(TypeError)
    await api.close()
  })

  it('asks again after a 429 with a new key (the 429 was the answer recorded under the first), but surfaces it for a caller\'s own key', async () => {
    const lease = { worker_id: 'a'.repeat(32), lease_token: 't' }
    const limited = await scripted([[429, { 'retry-after': '1' }], [200]])
    const api = client(limited.url, [])
    await api.spawn(lease, { reason: 'x' })
    expect(limited.hits()).toBe(2)
    expect(limited.keys[0]).not.toBe(limited.keys[1])
    await api.close()
    await new Promise((resolve) => stub!.close(resolve))

    const again = await scripted([[429, { 'retry-after': '1' }], [200]])
    const own = client(again.url, [])
    expect(await rejection(own.spawn(lease, { reason: 'x' }, { idempotencyKey: 'mine' }))).toMatchObject({ status: 429 })
    expect(again.keys).toEqual(['mine'])
    await own.close()
  })

  it('honours Retry-After on 429, and gives up when it is longer than maxRetryAfterMs', async () => {
    const { url, hits } = await scripted([[429, { 'retry-after': '2' }], [200]])
    const delays: number[] = []
    const api = client(url, delays)
    await api.getKillSwitch()
    expect(hits()).toBe(2)
    expect(delays[0]).toBeGreaterThanOrEqual(2_000)
    expect(delays[0]).toBeLessThan(2_100)
    await api.close()
    await new Promise((resolve) => stub!.close(resolve))

    const long = await scripted([[429, { 'retry-after': '60' }], [200]])
    const patient = client(long.url, [])
    const error = await rejection(patient.getKillSwitch())
    expect(error).toMatchObject({ code: 'rate_limited', status: 429, retry_after: 60 })
    expect(long.hits()).toBe(1)
    await patient.close()
  })
})

describe('across a real server stopped and restarted mid-run', () => {
  let server: ServerProcess | undefined
  afterEach(async () => {
    await stopServer(server)
    server = undefined
  })

  it('retries connection failures with backoff until the controller is back, for safe and unsafe requests', async () => {
    server = await realServer()
    const retried: RetryEvent[] = []
    const api = operatorClient(server.url, {
      retry: { retries: 100, baseDelayMs: 20, maxDelayMs: 200 },
      circuitBreaker: false,
      onRetry: (event) => retried.push(event),
    })
    await api.getKillSwitch()
    await server.kill('SIGKILL')

    const read = api.getKillSwitch()
    const issue = api.issueManifest()
    await new Promise((resolve) => setTimeout(resolve, 300))
    server = await restart(server)

    expect((await read).engaged).toBe(false)
    const manifest = await issue
    expect(manifest.depth).toBe(0)
    expect(retried.length).toBeGreaterThan(2)
    expect(retried.every((event) => event.error.code === 'connection_failed')).toBe(true)
    // A refused connection never carried the POST: it was safe to send again, and it arrived once.
    expect(retried.some((event) => event.method === 'POST' && event.error.notSent)).toBe(true)
    const issued = await api.listAudit({ type: 'manifest_issued' })
    expect(issued.items.filter((record) => record.worker_id === manifest.worker_id)).toHaveLength(1)
    await api.close()
  })

  it('opens the circuit while the controller is down, fails fast, probes after the cooldown and closes once it is back', async () => {
    server = await realServer()
    let now = 0
    const states: string[] = []
    const api = operatorClient(server.url, {
      retry: false,
      circuitBreaker: { failureThreshold: 3, cooldownMs: 1_000, onStateChange: (to: CircuitState, from: CircuitState) => states.push(`${from}>${to}`) },
      now: () => now,
    })
    await api.getKillSwitch()
    await server.kill('SIGKILL')

    for (let i = 0; i < 3; i++) expect(await rejection(api.getKillSwitch())).toMatchObject({ code: 'connection_failed', status: 0 })
    expect(api.circuitState).toBe('open')
    const fast = await rejection(api.getKillSwitch())
    expect(fast).toMatchObject({ code: 'circuit_open', retry_after: 1 })

    now += 1_000
    expect(await rejection(api.getKillSwitch())).toMatchObject({ code: 'connection_failed' })
    expect(api.circuitState).toBe('open')

    server = await restart(server)
    expect(await rejection(api.getKillSwitch())).toMatchObject({ code: 'circuit_open' })
    now += 1_000
    expect((await api.getKillSwitch()).engaged).toBe(false)
    expect(api.circuitState).toBe('closed')
    expect(states).toEqual(['closed>open', 'open>half_open', 'half_open>open', 'open>half_open', 'half_open>closed'])
    await api.close()
  })

  it('a circuit opened inside one call stops its retries, and the call reports the real cause, not circuit_open', async () => {
    server = await realServer()
    let retries = 0
    const api = operatorClient(server.url, {
      retry: { retries: 10, baseDelayMs: 1, maxDelayMs: 2 },
      circuitBreaker: { failureThreshold: 2, cooldownMs: 60_000 },
      onRetry: () => retries++,
    })
    await server.kill('SIGKILL')
    const error = await rejection(api.getKillSwitch())
    expect(error.code).toBe('connection_failed')
    expect(error.message).toMatch(/ECONNREFUSED/)
    expect(api.circuitState).toBe('open')
    expect(retries).toBe(2)
    // A later call fails fast, and still says why the circuit opened.
    const fast = await rejection(api.getKillSwitch())
    expect(fast.code).toBe('circuit_open')
    expect(fast.detail).toMatch(/ECONNREFUSED/)
    await api.close()
  })
})
