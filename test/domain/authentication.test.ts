// SPEC §2.8: a worker acts only with the lease token issued to it at registration; the operator
// only with the operator token; tokens are kept as digests and compared in constant time.
import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { operatorAuthenticator } from '../../src/domain/authentication.js'
import { registerRoot, storeOf } from '../helpers/harness.js'
import { expectDomainError, wardenPerTest } from './support.js'

const setup = wardenPerTest()

describe('worker authentication', () => {
  it('accepts the lease token issued to that worker at registration', () => {
    const { warden } = setup()
    const { id, token } = registerRoot(warden)
    expect(warden.authentication.worker(id, token)).toEqual({ worker_id: id })
  })

  it("refuses a missing token, a wrong one, and another worker's own token with unauthorized", () => {
    const { warden } = setup()
    const a = registerRoot(warden)
    const b = registerRoot(warden)
    expectDomainError(() => warden.authentication.worker(a.id, undefined), 'unauthorized')
    expectDomainError(() => warden.authentication.worker(a.id, `${a.token}x`), 'unauthorized')
    expectDomainError(() => warden.authentication.worker(a.id, a.token.slice(0, -1)), 'unauthorized')
    expectDomainError(() => warden.authentication.worker(a.id, b.token), 'unauthorized')
  })

  it('answers unauthorized for a worker that never registered, as for a known one, so ids cannot be probed', () => {
    const { warden } = setup()
    const { token } = registerRoot(warden)
    const other = registerRoot(warden)
    const unknown = expectDomainError(() => warden.authentication.worker('0'.repeat(32), token), 'unauthorized')
    const known = expectDomainError(() => warden.authentication.worker(other.id, token), 'unauthorized')
    expect(unknown.message.replace('0'.repeat(32), 'ID')).toBe(known.message.replace(other.id, 'ID'))
  })

  it('still knows a terminated worker, so its heartbeat can be told to terminate', () => {
    const { warden } = setup()
    const { id, token } = registerRoot(warden)
    warden.transitions.kill(id, { cascade: true })
    expect(warden.authentication.worker(id, token)).toEqual({ worker_id: id })
    expectDomainError(() => warden.liveness.heartbeat(id), 'worker_terminated')
  })

  it('stores only the SHA-256 digest of a lease token, never the token', () => {
    const { warden } = setup()
    const { id, token } = registerRoot(warden)
    const row = storeOf(warden).db.prepare(`SELECT * FROM workers WHERE worker_id = ?`).get(id) as Record<string, unknown>
    expect(row.lease_token_hash).toEqual(createHash('sha256').update(token).digest())
    expect(JSON.stringify(Object.values(row).map(String))).not.toContain(token)
  })
})

describe('operator authentication', () => {
  const check = operatorAuthenticator('the-operator-token-0123456789abcdef')

  it('accepts the operator token', () => {
    expect(() => check('the-operator-token-0123456789abcdef')).not.toThrow()
  })

  it('refuses a missing, wrong, truncated or extended token with unauthorized', () => {
    for (const token of [undefined, '', 'nope', 'the-operator-token-0123456789abcde', 'the-operator-token-0123456789abcdef0']) {
      expectDomainError(() => check(token), 'unauthorized')
    }
  })
})
