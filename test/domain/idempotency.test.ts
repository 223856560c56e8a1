// SPEC §3 Retries, the domain module: one decision per (caller, key), recorded in the decision's
// own transaction; repeats replay it (errors included); another body is 422; keys expire after
// 24 h and are swept in slices.
import { describe, expect, it } from 'vitest'
import { DomainError } from '../../src/domain/errors.js'
import { IDEMPOTENCY_WINDOW_MS, idempotencyScope, requestDigest } from '../../src/domain/idempotency.js'
import { operatorActor } from '../../src/domain/actors.js'
import { auditSeq, expectDomainError, wardenPerTest } from './support.js'
import { storeOf } from '../helpers/harness.js'

const fresh = wardenPerTest()

/** A decision that writes one audit record and answers a counter, so repeats are visible. */
function counter(t: ReturnType<typeof fresh>) {
  let decided = 0
  return {
    get decided() {
      return decided
    },
    decide: () => {
      decided += 1
      storeOf(t.warden).audit.append({ type: 'manifest_issued', actor: operatorActor, data: { n: decided } }, new Date(t.clock.now()).toISOString())
      return { n: decided }
    },
  }
}

const keyCount = (t: ReturnType<typeof fresh>) => storeOf(t.warden).idempotency.count()

describe('requestDigest', () => {
  it('is the same for the same body in any key order and differs by operation and body', () => {
    expect(requestDigest('spawn', { a: 1, b: { c: 2, d: 3 } })).toEqual(requestDigest('spawn', { b: { d: 3, c: 2 }, a: 1 }))
    expect(requestDigest('spawn', { a: 1 })).not.toEqual(requestDigest('issue', { a: 1 }))
    expect(requestDigest('spawn', { a: 1 })).not.toEqual(requestDigest('spawn', { a: 2 }))
    expect(requestDigest('issue', undefined)).toEqual(requestDigest('issue', null))
  })
})

describe('idempotency.once', () => {
  it('decides once per key: a repeat answers the first answer and records nothing new', () => {
    const t = fresh()
    const c = counter(t)
    const scope = idempotencyScope('operator', 'key-1', 'issue', { x: 1 })
    const first = t.warden.idempotency.once(scope, c.decide, { status: 201 })
    const head = auditSeq(t.warden)
    const again = t.warden.idempotency.once(scope, c.decide, { status: 201 })
    expect(first).toEqual({ value: { n: 1 }, replayed: false })
    expect(again).toEqual({ value: { n: 1 }, replayed: true })
    expect(c.decided).toBe(1)
    expect(auditSeq(t.warden)).toBe(head)
    expect(storeOf(t.warden).idempotency.get('operator', 'key-1')).toMatchObject({ status: 201, answer: '{"n":1}' })
  })

  it('without a key decides every time and records no key', () => {
    const t = fresh()
    const c = counter(t)
    t.warden.idempotency.once(undefined, c.decide, { status: 201 })
    t.warden.idempotency.once(undefined, c.decide, { status: 201 })
    expect(c.decided).toBe(2)
    expect(keyCount(t)).toBe(0)
  })

  it('refuses the same key with another body or operation with 422 idempotency_key_reused, deciding nothing', () => {
    const t = fresh()
    const c = counter(t)
    t.warden.idempotency.once(idempotencyScope('operator', 'k', 'issue', { x: 1 }), c.decide, { status: 201 })
    const head = auditSeq(t.warden)
    const error = expectDomainError(
      () => t.warden.idempotency.once(idempotencyScope('operator', 'k', 'issue', { x: 2 }), c.decide, { status: 201 }),
      'idempotency_key_reused',
    )
    expect(error.status).toBe(422)
    expectDomainError(() => t.warden.idempotency.once(idempotencyScope('operator', 'k', 'spawn', { x: 1 }), c.decide, { status: 201 }), 'idempotency_key_reused')
    expect(c.decided).toBe(1)
    expect(auditSeq(t.warden)).toBe(head)
  })

  it('keeps keys per caller: one key from two callers is two decisions', () => {
    const t = fresh()
    const c = counter(t)
    const a = t.warden.idempotency.once(idempotencyScope('worker:a', 'same', 'spawn', {}), c.decide, { status: 201 })
    const b = t.warden.idempotency.once(idempotencyScope('worker:b', 'same', 'spawn', {}), c.decide, { status: 201 })
    expect([a.value, b.value]).toEqual([{ n: 1 }, { n: 2 }])
    expect(keyCount(t)).toBe(2)
  })

  it('replays a refusal as the same problem (code, detail, extras) without a second audit record', () => {
    const t = fresh()
    let refusals = 0
    const refuse = () => {
      refusals += 1
      storeOf(t.warden).audit.append({ type: 'spawn_denied', actor: 'worker:a', code: 'cooldown_active', data: {} }, new Date(t.clock.now()).toISOString())
      return new DomainError('cooldown_active', 'wait', { retry_after: 3 })
    }
    const scope = idempotencyScope('worker:a', 'k', 'spawn', {})
    const first = expectDomainError(() => t.warden.idempotency.once(scope, refuse, { status: 201 }), 'cooldown_active')
    const head = auditSeq(t.warden)
    const again = expectDomainError(() => t.warden.idempotency.once(scope, refuse, { status: 201 }), 'cooldown_active')
    expect(refusals).toBe(1)
    expect(auditSeq(t.warden)).toBe(head)
    expect([again.message, again.extras, again.status]).toEqual([first.message, first.extras, 429])
    expect(storeOf(t.warden).idempotency.get('worker:a', 'k')!.status).toBe(429)
  })

  it('does not record a refusal the codec declines (an unverifiable manifest establishes no caller)', () => {
    const t = fresh()
    const scope = idempotencyScope('manifest:x', 'k', 'register', {})
    const refuse = () => new DomainError('invalid_signature', 'forged')
    expectDomainError(() => t.warden.idempotency.once(scope, refuse, { status: 201, recordError: (e) => e.code !== 'invalid_signature' }), 'invalid_signature')
    expect(keyCount(t)).toBe(0)
  })

  it('commits the key with the decision or not at all: a decision that throws leaves no key and no record', () => {
    const t = fresh()
    const head = auditSeq(t.warden)
    const scope = idempotencyScope('operator', 'k', 'issue', {})
    expect(() =>
      t.warden.idempotency.once(
        scope,
        () => {
          storeOf(t.warden).audit.append({ type: 'manifest_issued', actor: operatorActor, data: {} }, new Date(t.clock.now()).toISOString())
          throw new Error('disk on fire')
        },
        { status: 201 },
      ),
    ).toThrow('disk on fire')
    expect(keyCount(t)).toBe(0)
    expect(auditSeq(t.warden)).toBe(head)
    // The retry then decides for real.
    const c = counter(t)
    expect(t.warden.idempotency.once(scope, c.decide, { status: 201 }).replayed).toBe(false)
    expect(c.decided).toBe(1)
  })

  it('keeps what the codec keeps and rebuilds the repeat with its replay, inside the transaction', () => {
    const t = fresh()
    const codec = {
      status: 201,
      keep: (value: { secret: string; n: number }) => ({ n: value.n }),
      replay: (kept: unknown) => ({ ...(kept as { n: number }), secret: 'fresh' }),
    }
    const scope = idempotencyScope('manifest:x', 'k', 'register', {})
    t.warden.idempotency.once(scope, () => ({ secret: 'first', n: 7 }), codec)
    expect(storeOf(t.warden).idempotency.get('manifest:x', 'k')!.answer).toBe('{"n":7}')
    expect(t.warden.idempotency.once(scope, () => ({ secret: 'second', n: 8 }), codec)).toEqual({ value: { n: 7, secret: 'fresh' }, replayed: true })
  })

  it('answers the first answer for 24 h, then the key decides anew', () => {
    const t = fresh()
    const c = counter(t)
    const scope = idempotencyScope('operator', 'k', 'issue', {})
    t.warden.idempotency.once(scope, c.decide, { status: 201 })
    t.clock.advance(IDEMPOTENCY_WINDOW_MS - 1)
    expect(t.warden.idempotency.once(scope, c.decide, { status: 201 })).toEqual({ value: { n: 1 }, replayed: true })
    t.clock.advance(1)
    expect(t.warden.idempotency.once(scope, c.decide, { status: 201 })).toEqual({ value: { n: 2 }, replayed: false })
    expect(keyCount(t)).toBe(1)
  })

  it('sweeps expired keys in slices of at most `limit`, oldest first, and leaves live ones', () => {
    const t = fresh()
    for (let i = 0; i < 25; i++) {
      t.warden.idempotency.once(idempotencyScope('operator', `old-${i}`, 'issue', {}), () => ({}), { status: 201 })
      t.clock.advance(1)
    }
    t.clock.advance(IDEMPOTENCY_WINDOW_MS)
    t.warden.idempotency.once(idempotencyScope('operator', 'live', 'issue', {}), () => ({}), { status: 201 })
    expect(t.warden.idempotency.sweep(10)).toBe(10)
    expect(storeOf(t.warden).idempotency.get('operator', 'old-0')).toBeUndefined()
    expect(storeOf(t.warden).idempotency.get('operator', 'old-10')).toBeDefined()
    expect(t.warden.idempotency.sweep(10)).toBe(10)
    expect(t.warden.idempotency.sweep(10)).toBe(5)
    expect(t.warden.idempotency.sweep(10)).toBe(0)
    expect(storeOf(t.warden).idempotency.get('operator', 'live')).toBeDefined()
  })
})

describe('keyed manifests keep no bearer credential (SPEC §7)', () => {
  it('stores an issued or spawned manifest without its signature, and a replay answers the very same signed manifest', () => {
    const t = fresh()
    const root = t.warden.admission.issueRoot({}, 'root-key')
    const { worker: parent } = t.warden.admission.register(root)
    const child = t.warden.admission.spawn(parent, { reason: 'grow' }, 'spawn-key')
    for (const [caller, key, manifest] of [
      ['operator', 'root-key', root],
      [`worker:${parent.worker_id}`, 'spawn-key', child],
    ] as const) {
      const kept = storeOf(t.warden).idempotency.get(caller, key)
      expect(kept, `${caller} ${key}`).toBeDefined()
      expect(kept!.answer).not.toContain(manifest.signature)
      expect(JSON.parse(kept!.answer)).not.toHaveProperty('signature')
    }
    expect(t.warden.admission.issueRoot({}, 'root-key')).toEqual(root)
    expect(t.warden.admission.spawn(parent, { reason: 'grow' }, 'spawn-key')).toEqual(child)
    // The replayed manifest is authentic: it registers.
    expect(t.warden.admission.register(child).worker.worker_id).toBe(child.worker_id)
  })
})
