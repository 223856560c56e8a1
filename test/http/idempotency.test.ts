// SPEC §3 Retries through the routes: the Idempotency-Key header on root issuance, registration
// and spawn — validated, scoped per caller, replayed with the first status, 422 for another body,
// and a repeated registration that rotates the lease token.
import { afterEach, describe, expect, it } from 'vitest'
import { createTestApp, OPERATOR_TOKEN, registerRoot, type TestApp, storeOf } from '../helpers/harness.js'
import { auditCount, bearer, call, dbSnapshot, expectProblem } from './support.js'

const open: TestApp[] = []
afterEach(() => {
  for (const t of open.splice(0)) t.close()
})
async function fresh(overrides: Parameters<typeof createTestApp>[0] = {}): Promise<TestApp> {
  const t = await createTestApp(overrides)
  open.push(t)
  return t
}

const op = bearer(OPERATOR_TOKEN)
const keyed = (key: string, headers: Record<string, string> = {}) => ({ ...headers, 'idempotency-key': key })
const count = (t: TestApp, sql: string) => (storeOf(t.warden).db.prepare(sql).get() as { n: number }).n

describe('Idempotency-Key header', () => {
  it.each([
    ['empty', ''],
    ['129 characters', 'k'.repeat(129)],
    ['a space', 'two words'],
    ['a non-ASCII character', 'clé'],
    ['a control character', 'a\tb'],
  ])('is refused with 400 validation_failed naming the header when it has %s, deciding nothing', async (_what, key) => {
    const t = await fresh()
    const before = dbSnapshot(storeOf(t.warden).db)
    const res = await t.app.inject(call('POST', '/v1/manifests', { headers: keyed(key, op), body: {} }))
    const problem = expectProblem(res, 400, 'validation_failed')
    expect(problem.errors).toEqual(['headers.idempotency-key'])
    expect(dbSnapshot(storeOf(t.warden).db)).toEqual(before)
  })

  it('accepts 1 and 128 visible ASCII characters', async () => {
    const t = await fresh()
    for (const key of ['!', '~'.repeat(128), 'aZ09-_.:/+=@']) {
      const res = await t.app.inject(call('POST', '/v1/manifests', { headers: keyed(key, op), body: {} }))
      expect(res.statusCode, res.body).toBe(201)
    }
  })
})

describe('POST /v1/manifests with a key', () => {
  it('answers a repeat with the first manifest and 201, issuing nothing new; another body is 422', async () => {
    const t = await fresh()
    const request = call('POST', '/v1/manifests', { headers: keyed('root-1', op), body: { state_snapshot: { a: 1 } } })
    const first = await t.app.inject(request)
    const audit = auditCount(storeOf(t.warden).db)
    const again = await t.app.inject(request)
    expect(first.statusCode).toBe(201)
    expect(again.statusCode).toBe(201)
    expect(again.json()).toEqual(first.json())
    expect(auditCount(storeOf(t.warden).db)).toBe(audit)
    expect(count(t, `SELECT count(*) AS n FROM manifests`)).toBe(1)

    const other = await t.app.inject(call('POST', '/v1/manifests', { headers: keyed('root-1', op), body: { state_snapshot: { a: 2 } } }))
    expectProblem(other, 422, 'idempotency_key_reused')
    expect(auditCount(storeOf(t.warden).db)).toBe(audit)
    expect(count(t, `SELECT count(*) AS n FROM manifests`)).toBe(1)
  })

  it('without a key issues a new manifest every time', async () => {
    const t = await fresh()
    await t.app.inject(call('POST', '/v1/manifests', { headers: op, body: {} }))
    await t.app.inject(call('POST', '/v1/manifests', { headers: op, body: {} }))
    expect(count(t, `SELECT count(*) AS n FROM manifests`)).toBe(2)
    expect(storeOf(t.warden).idempotency.count()).toBe(0)
  })

  it('replays a denial with its status and problem code, without a second audit record', async () => {
    const t = await fresh({ max_replicas: 1 })
    registerRoot(t.warden)
    const request = call('POST', '/v1/manifests', { headers: keyed('full', op), body: {} })
    expectProblem(await t.app.inject(request), 403, 'quota_exceeded')
    const audit = auditCount(storeOf(t.warden).db)
    // The quota frees up, yet the key answers what it first answered.
    t.warden.killSwitch.engage('drill')
    t.warden.killSwitch.disengage()
    const after = auditCount(storeOf(t.warden).db)
    expectProblem(await t.app.inject(request), 403, 'quota_exceeded')
    expect(auditCount(storeOf(t.warden).db)).toBe(after)
    expect(after).toBe(audit + 2)
  })
})

describe('POST /v1/workers/{id}/spawn with a key', () => {
  it('answers a repeat with the first child manifest: one approval, one manifest, one slot, one cooldown', async () => {
    const t = await fresh({ cooldown_seconds: 60 })
    const parent = registerRoot(t.warden)
    const request = call('POST', `/v1/workers/${parent.id}/spawn`, { headers: keyed('spawn-1', bearer(parent.token)), body: { reason: 'grow' } })
    const first = await t.app.inject(request)
    expect(first.statusCode, first.body).toBe(201)
    const audit = auditCount(storeOf(t.warden).db)
    const again = await t.app.inject(request)
    expect(again.statusCode, again.body).toBe(201)
    expect(again.json()).toEqual(first.json())
    expect(auditCount(storeOf(t.warden).db)).toBe(audit)
    expect(count(t, `SELECT count(*) AS n FROM audit WHERE type = 'spawn_approved'`)).toBe(1)
    expect(count(t, `SELECT count(*) AS n FROM manifests WHERE parent_id IS NOT NULL`)).toBe(1)
    // A new key is a new decision: the cooldown the one approval started refuses it.
    const next = await t.app.inject(call('POST', `/v1/workers/${parent.id}/spawn`, { headers: keyed('spawn-2', bearer(parent.token)), body: { reason: 'grow' } }))
    expectProblem(next, 429, 'cooldown_active')
  })

  it('replays a cooldown denial as 429 with Retry-After', async () => {
    const t = await fresh({ cooldown_seconds: 60 })
    const parent = registerRoot(t.warden)
    t.warden.admission.spawn({ worker_id: parent.id }, { reason: 'first' })
    const request = call('POST', `/v1/workers/${parent.id}/spawn`, { headers: keyed('k', bearer(parent.token)), body: { reason: 'grow' } })
    const first = await t.app.inject(request)
    expectProblem(first, 429, 'cooldown_active')
    const again = await t.app.inject(request)
    expectProblem(again, 429, 'cooldown_active')
    expect(again.headers['retry-after']).toBe(first.headers['retry-after'])
  })

  it('keeps keys per caller: two workers, or the operator and a worker, never share a key', async () => {
    const t = await fresh()
    const a = registerRoot(t.warden)
    const b = registerRoot(t.warden)
    const spawnA = await t.app.inject(call('POST', `/v1/workers/${a.id}/spawn`, { headers: keyed('shared', bearer(a.token)), body: { reason: 'x' } }))
    const spawnB = await t.app.inject(call('POST', `/v1/workers/${b.id}/spawn`, { headers: keyed('shared', bearer(b.token)), body: { reason: 'x' } }))
    const issued = await t.app.inject(call('POST', '/v1/manifests', { headers: keyed('shared', op), body: {} }))
    expect([spawnA.statusCode, spawnB.statusCode, issued.statusCode]).toEqual([201, 201, 201])
    const ids = [spawnA, spawnB, issued].map((res) => res.json<{ worker_id: string }>().worker_id)
    expect(new Set(ids).size).toBe(3)
    expect(spawnA.json()).toMatchObject({ parent_id: a.id })
    expect(spawnB.json()).toMatchObject({ parent_id: b.id })
  })

  it('needs the worker token before anything: a wrong token is 401 and records no key', async () => {
    const t = await fresh()
    const parent = registerRoot(t.warden)
    const res = await t.app.inject(call('POST', `/v1/workers/${parent.id}/spawn`, { headers: keyed('k', bearer('wrong')), body: { reason: 'x' } }))
    expectProblem(res, 401, 'unauthorized')
    expect(storeOf(t.warden).idempotency.count()).toBe(0)
  })
})

describe('POST /v1/workers (registration) with a key', () => {
  it('answers a repeat with the same worker and a fresh lease token; the first token stops working at once', async () => {
    const t = await fresh()
    const manifest = t.warden.admission.issueRoot({})
    const request = call('POST', '/v1/workers', { headers: keyed('reg-1'), body: manifest })
    const first = await t.app.inject(request)
    expect(first.statusCode, first.body).toBe(201)
    const audit = auditCount(storeOf(t.warden).db)
    const again = await t.app.inject(request)
    expect(again.statusCode, again.body).toBe(201)
    const [one, two] = [first.json<{ lease_token: string }>(), again.json<{ lease_token: string }>()]
    expect(two.lease_token).not.toBe(one.lease_token)
    const { lease_token: _a, ...firstRest } = one
    const { lease_token: _b, ...againRest } = two
    expect(againRest).toEqual(firstRest)
    expect(auditCount(storeOf(t.warden).db)).toBe(audit)
    expect(count(t, `SELECT count(*) AS n FROM workers`)).toBe(1)

    const beat = (token: string) => t.app.inject(call('POST', `/v1/workers/${manifest.worker_id}/heartbeat`, { headers: bearer(token) }))
    expectProblem(await beat(one.lease_token), 401, 'unauthorized')
    expect((await beat(two.lease_token)).statusCode).toBe(200)
    // Never stored in the clear: neither the key's answer nor the worker row holds a token.
    const stored = storeOf(t.warden).idempotency.get(`manifest:${manifest.worker_id}`, 'reg-1')!
    expect(stored.answer).not.toContain(one.lease_token)
    expect(stored.answer).not.toContain('lease_token')
  })

  it('without a key a repeat is 409 manifest_already_used, as before', async () => {
    const t = await fresh()
    const manifest = t.warden.admission.issueRoot({})
    expect((await t.app.inject(call('POST', '/v1/workers', { body: manifest }))).statusCode).toBe(201)
    expectProblem(await t.app.inject(call('POST', '/v1/workers', { body: manifest })), 409, 'manifest_already_used')
  })

  it('records nothing for a manifest that fails verification (it establishes no caller)', async () => {
    const t = await fresh()
    const manifest = t.warden.admission.issueRoot({})
    const forged = { ...manifest, depth: 1 }
    expectProblem(await t.app.inject(call('POST', '/v1/workers', { headers: keyed('k'), body: forged })), 403, 'invalid_signature')
    expect(storeOf(t.warden).idempotency.count()).toBe(0)
    // The real manifest with that key then registers.
    expect((await t.app.inject(call('POST', '/v1/workers', { headers: keyed('k'), body: manifest }))).statusCode).toBe(201)
  })

  it('refuses the key with another manifest of the same worker_id with 422', async () => {
    const t = await fresh()
    const manifest = t.warden.admission.issueRoot({})
    await t.app.inject(call('POST', '/v1/workers', { headers: keyed('k'), body: manifest }))
    const reordered = { ...manifest, signature: manifest.signature.replace(/^./, (c) => (c === '0' ? '1' : '0')) }
    expectProblem(await t.app.inject(call('POST', '/v1/workers', { headers: keyed('k'), body: reordered })), 422, 'idempotency_key_reused')
  })
})
