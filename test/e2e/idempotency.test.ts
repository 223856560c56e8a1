// SPEC §3 Retries over real HTTP against a real server process: an answer lost after the decision
// committed (the connection cut once the request was written; the process SIGKILLed between commit
// and reply) is retried with the same Idempotency-Key and the contract sees exactly one decision.
// Parallel requests with one key make one decision; another body is 422; keys are per caller.
import { afterEach, describe, expect, it } from 'vitest'
import { WardenClient, type RetryEvent } from '../../src/client/client.js'
import type { WardenError } from '../../src/client/errors.js'
import { Worker } from '../../src/client/worker.js'
import type { AuditRecord, Manifest } from '../../src/schemas/index.js'
import { startCutProxy, type CutProxy } from '../helpers/cut-proxy.js'
import { auditLog, outcome, registerRoot } from '../helpers/calls.js'
import { contract, range, waitFor } from '../helpers/fixtures.js'
import { rawRequest } from '../helpers/raw-http.js'
import { createServerTracker, type Running } from '../helpers/server.js'

const servers = createServerTracker()
const closing: Array<{ close(): Promise<unknown> }> = []
afterEach(async () => {
  // Servers first: a client's close() waits for its requests, and a killed server ends them.
  await servers.cleanup()
  await Promise.allSettled(closing.splice(0).map((thing) => thing.close()))
})

/** A server with room for exactly `max_replicas` slots, no cooldown unless asked. */
async function serverWith(overrides: Parameters<typeof contract>[0] = {}, env: Record<string, string> = {}): Promise<Running> {
  const running = await servers.start({ env })
  await running.client.putContract(contract({ cooldown_seconds: 0, heartbeat_timeout_seconds: 600, ...overrides }))
  return running
}

/** The project's client, through `url`, recording its retries. */
function client(url: string, token: string, retries: RetryEvent[] = []): WardenClient {
  const api = new WardenClient({
    url,
    token,
    circuitBreaker: false,
    retry: { retries: 5, baseDelayMs: 20, maxDelayMs: 100 },
    onRetry: (event) => retries.push(event),
  })
  closing.push(api)
  return api
}

async function proxyTo(running: Running): Promise<CutProxy> {
  const proxy = await startCutProxy(running.server.url)
  closing.push(proxy)
  return proxy
}

function audit(running: Running, type: NonNullable<AuditRecord['type']>): Promise<AuditRecord[]> {
  return auditLog(running.client, { type })
}

/** Issues root manifests until the quota refuses: how many slots were still free. */
async function freeSlots(op: WardenClient): Promise<number> {
  for (let n = 0; ; n++) {
    try {
      await op.issueManifest()
    } catch (error) {
      expect((error as WardenError).code).toBe('quota_exceeded')
      return n
    }
  }
}

describe('an answer lost after the decision committed is retried with the same key', () => {
  it('spawn: the connection cut after the request is written → one approval, one manifest, one audit record, one slot', async () => {
    const running = await serverWith({ max_replicas: 4 })
    const op = client(running.server.url, running.server.operatorToken)
    const parent = await op.register(await op.issueManifest())
    const lease = { worker_id: parent.worker.worker_id, lease_token: parent.lease_token }

    const proxy = await proxyTo(running)
    const retries: RetryEvent[] = []
    const worker = client(proxy.url, 'unused', retries)
    proxy.cutNext(1)
    const child = await worker.spawn(lease, { reason: 'grow' })

    expect(proxy.lost).toHaveLength(1)
    expect(proxy.lost[0]).toMatchObject({ status: 201, body: { worker_id: child.worker_id } })
    expect(proxy.lost[0]!.body).toEqual(child)
    expect(retries).toHaveLength(1)
    expect(retries[0]!.error.code).toBe('connection_failed')
    const approvals = await audit(running, 'spawn_approved')
    expect(approvals.map((record) => record.worker_id)).toEqual([child.worker_id])
    // Slots: parent + one child manifest of 4; two more roots fit, not three.
    expect(await freeSlots(op)).toBe(2)
    // The one manifest registers.
    expect((await op.register(child)).worker.parent_id).toBe(lease.worker_id)
  })

  it('registration (the Worker runtime): the retried answer\'s token works, the first one does not', async () => {
    const running = await serverWith({ max_replicas: 3, heartbeat_timeout_seconds: 3 })
    const op = client(running.server.url, running.server.operatorToken)
    const manifest = await op.issueManifest()
    const proxy = await proxyTo(running)
    proxy.cutNext(1)
    const worker = await Worker.start(manifest, { url: proxy.url, clientOptions: { retry: { retries: 5, baseDelayMs: 20, maxDelayMs: 100 } } })
    closing.push({ close: () => worker.shutdown('test over') })

    expect(proxy.lost).toHaveLength(1)
    const first = proxy.lost[0]!.body as { lease_token: string; worker: { worker_id: string } }
    expect(proxy.lost[0]!.status).toBe(201)
    expect(first.worker.worker_id).toBe(manifest.worker_id)
    expect(worker.lease.lease_token).not.toBe(first.lease_token)
    expect((await audit(running, 'worker_registered')).map((record) => record.worker_id)).toEqual([manifest.worker_id])

    const beat = (token: string) => op.heartbeat({ worker_id: manifest.worker_id, lease_token: token }, undefined, { retry: false })
    expect(await beat(first.lease_token).catch((error: WardenError) => error.code)).toBe('unauthorized')
    expect((await beat(worker.lease.lease_token)).directive).toBe('continue')
    // The worker keeps its lease with the token it holds.
    await waitFor('a heartbeat of the worker', async () => (await op.getWorker(manifest.worker_id)).last_heartbeat_at ?? undefined, 5_000)
    expect(worker.state).toBe('running')
    expect(await freeSlots(op)).toBe(2)
  })

  it('root issuance: one manifest, one manifest_issued record, one slot', async () => {
    const running = await serverWith({ max_replicas: 3 })
    const proxy = await proxyTo(running)
    const retries: RetryEvent[] = []
    const op = client(proxy.url, running.server.operatorToken, retries)
    proxy.cutNext(2)
    const manifest = await op.issueManifest({ state_snapshot: { task: 'one' } })

    expect(proxy.lost.map((answer) => answer.body)).toEqual([manifest, manifest])
    expect(retries).toHaveLength(2)
    expect((await audit(running, 'manifest_issued')).map((record) => record.worker_id)).toEqual([manifest.worker_id])
    expect(await freeSlots(client(running.server.url, running.server.operatorToken))).toBe(2)
  })

  it('SIGKILL between commit and reply: after the restart the retry answers the committed spawn and registration', async () => {
    // Replies to keyed requests are held back a minute after their decision commits.
    const slow = await serverWith({ max_replicas: 5 }, { WARDEN_TEST_REPLY_DELAY_MS: '60000' })
    // Unkeyed requests are not held back, and WardenClient always sends a key: the setup is raw.
    const operator = { token: slow.server.operatorToken, body: {} }
    const root = (await rawRequest(slow.server.url, 'POST', '/v1/manifests', operator)).body as Manifest
    const parent = await rawRequest(slow.server.url, 'POST', '/v1/workers', { body: root })
    const lease = { worker_id: root.worker_id, lease_token: parent.body.lease_token as string }
    const unregistered = (await rawRequest(slow.server.url, 'POST', '/v1/manifests', operator)).body as Manifest

    const op = client(slow.server.url, slow.server.operatorToken)
    const once = { retry: false as const, timeoutMs: 120_000 }
    const spawning = op.spawn(lease, { reason: 'grow' }, { ...once, idempotencyKey: 'spawn-before-crash' })
    const registering = op.register(unregistered, { ...once, idempotencyKey: 'register-before-crash' })
    const failed = Promise.allSettled([spawning, registering])
    const approved = await waitFor('the spawn to commit', async () => (await audit(slow, 'spawn_approved'))[0], 10_000)
    await waitFor('the registration to commit', async () => (await audit(slow, 'worker_registered')).find((r) => r.worker_id === unregistered.worker_id), 10_000)
    await slow.server.kill('SIGKILL')
    const outcomes = await failed
    expect(outcomes.map((outcome) => outcome.status === 'rejected' && (outcome.reason as WardenError).code)).toEqual(['connection_failed', 'connection_failed'])

    const again = await servers.start({ dbFile: slow.server.dbFile })
    const op2 = client(again.server.url, again.server.operatorToken)
    const child = await op2.spawn(lease, { reason: 'grow' }, { idempotencyKey: 'spawn-before-crash' })
    expect(child.worker_id).toBe(approved.worker_id)
    const registration = await op2.register(unregistered, { idempotencyKey: 'register-before-crash' })
    expect(registration.worker.worker_id).toBe(unregistered.worker_id)
    expect((await op2.heartbeat({ worker_id: unregistered.worker_id, lease_token: registration.lease_token })).directive).toBe('continue')
    expect((await audit(again, 'spawn_approved')).map((record) => record.worker_id)).toEqual([approved.worker_id])
    expect((await audit(again, 'worker_registered')).filter((r) => r.worker_id === unregistered.worker_id)).toHaveLength(1)
  })
})

describe('one key, many requests at once', () => {
  it('50 parallel spawns with one key make one decision; every answer is that decision (no in-flight state: the lookup, decision and record run in one synchronous transaction)', async () => {
    const running = await serverWith({ max_replicas: 100, cooldown_seconds: 60 })
    const { client: api } = running
    const root = await registerRoot(api)
    const answers = await Promise.all(range(50).map(() => api.spawn(root, { reason: 'race' }, { idempotencyKey: 'one-key' })))
    expect(new Set(answers.map((answer) => answer.worker_id)).size).toBe(1)
    expect((await audit(running, 'spawn_approved')).map((record) => record.worker_id)).toEqual([answers[0]!.worker_id])
    expect(await audit(running, 'spawn_denied')).toEqual([])
  })

  it('50 parallel registrations with one key register once; exactly one of the 50 tokens works (each repeat revoked the one before)', async () => {
    const running = await serverWith({ max_replicas: 100 })
    const { client: api } = running
    const manifest = await api.issueManifest()
    const answers = await Promise.all(range(50).map(() => api.register(manifest, { idempotencyKey: 'one-key' })))
    expect(new Set(answers.map((answer) => answer.worker.worker_id))).toEqual(new Set([manifest.worker_id]))
    const tokens = answers.map((answer) => answer.lease_token)
    expect(new Set(tokens).size).toBe(50)
    const beats = await Promise.all(tokens.map((lease_token) => outcome(api.heartbeat({ worker_id: manifest.worker_id, lease_token }))))
    expect(beats.filter((beat) => beat.ok)).toHaveLength(1)
    expect(beats.filter((beat) => beat.status === 401)).toHaveLength(49)
    expect((await audit(running, 'worker_registered')).map((record) => record.worker_id)).toEqual([manifest.worker_id])
    expect(await audit(running, 'registration_rejected')).toEqual([])
  })

  it('50 parallel root issuances with one key issue one manifest', async () => {
    const running = await serverWith({ max_replicas: 100 })
    const answers = await Promise.all(range(50).map(() => running.client.issueManifest({ state_snapshot: { n: 1 } }, { idempotencyKey: 'one-key' })))
    expect(new Set(answers.map((answer) => answer.worker_id)).size).toBe(1)
    expect(await audit(running, 'manifest_issued')).toHaveLength(1)
  })
})

describe('keys over the wire', () => {
  it('the same key with another body is 422 idempotency_key_reused and decides nothing; keys are per caller', async () => {
    const running = await serverWith({ max_replicas: 100 })
    const { client: api } = running
    const key = { idempotencyKey: 'shared-key' }
    const a = await registerRoot(api)
    const b = await registerRoot(api)
    const spawnA = await api.spawn(a, { reason: 'x' }, key)
    const reused = await outcome(api.spawn(a, { reason: 'y' }, key))
    expect(reused.status).toBe(422)
    expect(reused.error?.problem).toMatchObject({ code: 'idempotency_key_reused', status: 422 })
    // Raw once more, for the media type the client does not surface.
    const again = await rawRequest(running.server.url, 'POST', `/v1/workers/${a.worker_id}/spawn`, {
      token: a.lease_token,
      body: { reason: 'z' },
      headers: { 'idempotency-key': key.idempotencyKey },
    })
    expect(again.status).toBe(422)
    expect(again.headers['content-type']).toMatch(/^application\/problem\+json/)
    // Worker b and the operator use the very same key for their own first decisions.
    const spawnB = await api.spawn(b, { reason: 'x' }, key)
    const issued = await api.issueManifest({}, key)
    expect(new Set([spawnA.worker_id, spawnB.worker_id, issued.worker_id]).size).toBe(3)
    expect(await audit(running, 'spawn_approved')).toHaveLength(2)
  })
})
