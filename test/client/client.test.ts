// WardenClient against a real listening server: every endpoint, and every denial as one error
// class carrying the problem code, status and extras. Denials are never retried.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { WardenClient } from '../../src/client/client.js'
import { WardenError } from '../../src/client/errors.js'
import type { RetryEvent } from '../../src/client/client.js'
import type { ServerProcess } from '../helpers/server.js'
import { contract, operatorClient, realServer, rejection, resetWorkers, stopServer } from './support.js'

let server: ServerProcess
let op: WardenClient
const retries: RetryEvent[] = []

beforeAll(async () => {
  server = await realServer()
  op = operatorClient(server.url, { retry: { retries: 5, baseDelayMs: 1, maxDelayMs: 5 }, onRetry: (event) => retries.push(event) })
})
afterAll(async () => {
  await op?.close()
  await stopServer(server)
})
beforeEach(async () => {
  retries.length = 0
  await op.putContract(contract())
  await resetWorkers(op)
})
afterEach(() => {
  // Policy answers are final: none of the calls in this suite may have been retried.
  expect(retries).toEqual([])
})

async function root(request: Parameters<WardenClient['issueManifest']>[0] = {}) {
  const manifest = await op.issueManifest(request)
  const registration = await op.register(manifest)
  return { manifest, registration, lease: { worker_id: manifest.worker_id, lease_token: registration.lease_token } }
}

describe('WardenClient endpoints', () => {
  it('answers health and readiness, and reads and replaces the contract', async () => {
    expect(await op.health()).toEqual({ status: 'ok' })
    expect(await op.ready()).toMatchObject({ status: 'ready' })
    expect(await op.metrics()).toContain('# HELP')
    const before = await op.getContract()
    const after = await op.putContract(contract({ max_depth: 5 }))
    expect(after.version).toBe(before.version + 1)
    expect(after.max_depth).toBe(5)
    expect(await op.getContract()).toEqual(after)
  })

  it('issues, registers, heartbeats, spawns a registered child, reads lineage and deregisters', async () => {
    const parent = await root({ state_snapshot: { goal: 'demo' } })
    expect(parent.registration.worker).toMatchObject({ worker_id: parent.manifest.worker_id, depth: 0, status: 'active' })
    expect(parent.registration.heartbeat_interval_seconds).toBeCloseTo(parent.registration.heartbeat_timeout_seconds / 3, 3)

    const beat = await op.heartbeat(parent.lease, { metrics: { tasks: 3 } })
    expect(beat.directive).toBe('continue')
    expect(Date.parse(beat.lease_expires_at)).toBeGreaterThan(Date.now())

    const childManifest = await op.spawn(parent.lease, { reason: 'split', state_snapshot: { part: 1 } })
    expect(childManifest).toMatchObject({ parent_id: parent.lease.worker_id, depth: 1, state_snapshot: { part: 1 } })
    const child = await op.register(childManifest)
    expect(child.worker.depth).toBe(1)

    const view = await op.getWorker(parent.lease.worker_id)
    expect(view.children_count).toBe(1)
    const lineage = await op.getLineage(child.worker.worker_id)
    expect(lineage.ancestors.map((node) => node.worker_id)).toEqual([parent.lease.worker_id])

    const page = await op.listWorkers({ status: 'active', limit: 1 })
    expect(page.items).toHaveLength(1)
    expect(page.next_cursor).not.toBeNull()
    const all = []
    for await (const worker of op.workers({ status: 'active' })) all.push(worker.worker_id)
    expect(all.sort()).toEqual([parent.lease.worker_id, child.worker.worker_id].sort())

    const gone = await op.deregister(parent.lease, 'finished')
    expect(gone).toMatchObject({ status: 'deregistered', reason: 'finished' })
    expect((await op.deregister(parent.lease, 'again')).status).toBe('deregistered')
  })

  it('quarantines, releases and kills with and without cascade', async () => {
    const parent = await root()
    const child = await op.register(await op.spawn(parent.lease, { reason: 'x' }))

    expect((await op.quarantine(parent.lease.worker_id, 'inspect')).status).toBe('quarantined')
    expect((await op.heartbeat(parent.lease)).directive).toBe('suspend')
    expect((await op.release(parent.lease.worker_id)).status).toBe('active')

    const alone = await op.kill(parent.lease.worker_id, { cascade: false, reason: 'only the parent' })
    expect(alone.killed).toEqual([parent.lease.worker_id])
    expect((await op.getWorker(child.worker.worker_id)).status).toBe('active')

    const other = await root()
    const grandchild = await op.register(await op.spawn(other.lease, { reason: 'y' }))
    const cascade = await op.kill(other.lease.worker_id)
    expect(cascade.killed.sort()).toEqual([other.lease.worker_id, grandchild.worker.worker_id].sort())
  })

  it('engages and disengages the kill switch; a terminated worker hears 410 terminate', async () => {
    const worker = await root()
    const engaged = await op.engageKillSwitch('drill')
    expect(engaged).toMatchObject({ engaged: true, reason: 'drill', terminated: 1 })
    expect((await op.getKillSwitch()).engaged).toBe(true)

    const gone = await rejection(op.heartbeat(worker.lease))
    expect(gone).toBeInstanceOf(WardenError)
    expect(gone).toMatchObject({ code: 'worker_terminated', status: 410, reason: 'kill_switch' })
    expect(gone.problem?.directive).toBe('terminate')

    expect(await rejection(op.issueManifest())).toMatchObject({ code: 'kill_switch_engaged', status: 403 })
    expect((await op.disengageKillSwitch()).engaged).toBe(false)
  })

  it('pages through the audit log and verifies its chain', async () => {
    await root()
    const page = await op.listAudit({ limit: 2 })
    expect(page.items).toHaveLength(2)
    expect(page.next_after_seq).toBe(page.items[1]!.seq)
    let count = 0
    let last = 0
    for await (const record of op.auditRecords()) {
      expect(record.seq).toBeGreaterThan(last)
      last = record.seq
      count += 1
    }
    const verification = await op.verifyAudit()
    expect(verification).toMatchObject({ ok: true, records: count, first_invalid_seq: null })
    const registered = await op.listAudit({ type: 'worker_registered' })
    expect(registered.items.every((record) => record.type === 'worker_registered')).toBe(true)
  })
})

describe('denials surface as WardenError with code, status and extras, and are not retried', () => {
  it('quota_exceeded (403)', async () => {
    await op.putContract(contract({ max_replicas: 2 }))
    const parent = await root()
    await op.spawn(parent.lease, { reason: 'one' })
    const error = await rejection(op.spawn(parent.lease, { reason: 'two' }))
    expect(error).toMatchObject({ code: 'quota_exceeded', status: 403, isDenial: true })
    expect(error.detail).toContain('max_replicas 2')
  })

  it('cooldown_active (429) carries retry_after and is returned at once when the wait is over the limit', async () => {
    await op.putContract(contract({ cooldown_seconds: 60 }))
    const parent = await root()
    await op.spawn(parent.lease, { reason: 'one' })
    const error = await rejection(op.spawn(parent.lease, { reason: 'two' }))
    expect(error).toMatchObject({ code: 'cooldown_active', status: 429 })
    expect(error.retry_after).toBeGreaterThanOrEqual(59)
    expect(error.retry_after).toBeLessThanOrEqual(60)
  })

  it('depth_exceeded (403)', async () => {
    await op.putContract(contract({ max_depth: 0 }))
    const parent = await root()
    expect(await rejection(op.spawn(parent.lease, { reason: 'deeper' }))).toMatchObject({ code: 'depth_exceeded', status: 403 })
  })

  it('parent_quarantined (403)', async () => {
    const parent = await root()
    await op.quarantine(parent.lease.worker_id, 'hold')
    expect(await rejection(op.spawn(parent.lease, { reason: 'x' }))).toMatchObject({ code: 'parent_quarantined', status: 403 })
  })

  it('stop_condition (403) names the condition', async () => {
    await op.putContract(
      contract({ stop_conditions: [{ name: 'no_grandchildren', description: '', expression: 'manifest.depth >= 1' }] }),
    )
    const parent = await root()
    const error = await rejection(op.spawn(parent.lease, { reason: 'x' }))
    expect(error).toMatchObject({ code: 'stop_condition', status: 403, condition: 'no_grandchildren' })
  })

  it('resources_exceed_parent and resources_exceed_contract (403)', async () => {
    const parent = await root()
    const bigger = { cpu_limit: 1, memory_limit_mb: 256 }
    expect(await rejection(op.spawn(parent.lease, { reason: 'x', resources: bigger }))).toMatchObject({
      code: 'resources_exceed_parent',
      status: 403,
    })
    expect(await rejection(op.issueManifest({ resources: { cpu_limit: 64, memory_limit_mb: 256 } }))).toMatchObject({
      code: 'resources_exceed_contract',
      status: 403,
    })
  })

  it('invalid_signature, unknown_key (403) and manifest_already_used (409)', async () => {
    const manifest = await op.issueManifest()
    const flipped = manifest.signature.startsWith('0') ? '1' + manifest.signature.slice(1) : '0' + manifest.signature.slice(1)
    expect(await rejection(op.register({ ...manifest, signature: flipped }))).toMatchObject({ code: 'invalid_signature', status: 403 })
    expect(await rejection(op.register({ ...manifest, depth: 1 }))).toMatchObject({ code: 'invalid_signature' })
    expect(await rejection(op.register({ ...manifest, key_id: 'k1-0000000000000000' }))).toMatchObject({ code: 'unknown_key', status: 403 })
    await op.register(manifest)
    expect(await rejection(op.register(manifest))).toMatchObject({ code: 'manifest_already_used', status: 409 })
  })

  // Expiry by TTL is proven to the millisecond with a manual clock in test/domain/admission-rules.test.ts;
  // here the client only has to surface the code, so the manifest is voided instead of waited out.
  it('manifest_expired (403) for a manifest no longer valid', async () => {
    const manifest = await op.issueManifest()
    await op.engageKillSwitch('void outstanding manifests')
    await op.disengageKillSwitch()
    expect(await rejection(op.register(manifest))).toMatchObject({ code: 'manifest_expired', status: 403 })
  })

  it('worker_terminated (410) with the reason, for heartbeat and spawn', async () => {
    const worker = await root()
    await op.kill(worker.lease.worker_id, { reason: 'enough' })
    expect(await rejection(op.heartbeat(worker.lease))).toMatchObject({ code: 'worker_terminated', status: 410, reason: 'killed' })
    expect(await rejection(op.spawn(worker.lease, { reason: 'x' }))).toMatchObject({ code: 'worker_terminated', status: 410 })
  })

  it('unauthorized (401), worker_not_found (404), validation_failed and invalid_contract (400)', async () => {
    const worker = await root()
    const other = await root()
    // One worker's token does not act for another.
    expect(await rejection(op.heartbeat({ worker_id: other.lease.worker_id, lease_token: worker.lease.lease_token }))).toMatchObject({
      code: 'unauthorized',
      status: 401,
    })
    const anonymous = operatorClient(server.url, { token: 'wrong-token-0123456789', retry: false })
    expect(await rejection(anonymous.getContract())).toMatchObject({ code: 'unauthorized', status: 401 })
    await anonymous.close()
    expect(await rejection(op.getWorker('0'.repeat(32)))).toMatchObject({ code: 'worker_not_found', status: 404 })
    const invalid = await rejection(op.spawn(worker.lease, { reason: '' }))
    expect(invalid).toMatchObject({ code: 'validation_failed', status: 400 })
    expect(invalid.problem?.errors).toEqual(['reason'])
    const schema = await rejection(op.putContract(contract({ max_depth: -1 })))
    expect(schema).toMatchObject({ code: 'validation_failed', status: 400 })
    expect(schema.detail).toContain('max_depth must be >= 0, got -1')
    const cel = contract({ stop_conditions: [{ name: 'broken', description: '', expression: 'active_count >=' }] })
    expect(await rejection(op.putContract(cel))).toMatchObject({ code: 'invalid_contract', status: 400 })
  })
})

describe('parent_not_active', () => {
  // A parent whose lease runs out before its child registers: test/domain/admission-rules.test.ts
  // and admission.test.ts, with a manual clock. Here the parent is killed, which ends it at once.
  it('refuses a child whose parent is no longer live (403)', async () => {
    const parent = await root()
    const childManifest = await op.spawn(parent.lease, { reason: 'x' })
    await op.kill(parent.lease.worker_id, { cascade: false })
    expect(await rejection(op.register(childManifest))).toMatchObject({ code: 'parent_not_active', status: 403 })
  })
})
