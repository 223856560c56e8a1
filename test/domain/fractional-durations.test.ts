// SPEC §7: any contract Warden accepts (fractional or large durations) leaves every stored time a
// whole millisecond and makes no use case fail with anything but a domain error (never a 5xx).
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { DEFAULT_CONTRACT, durationsMs } from '../../src/domain/contract.js'
import { DomainError } from '../../src/domain/errors.js'
import { createTestWarden, storeOf } from '../helpers/harness.js'

const duration = (max: number, min = 0.000_001) => fc.double({ min, max, noNaN: true, noDefaultInfinity: true })

const contracts = fc.record({
  cooldown_seconds: fc.oneof(fc.constant(0), duration(31_536_000)),
  expiration_seconds: fc.oneof(fc.constant(null), duration(31_536_000 * 10)),
  heartbeat_timeout_seconds: duration(86_400),
  manifest_ttl_seconds: duration(86_400 * 7),
})

/** Runs `step`; a DomainError (a 4xx/410 answer) is fine, anything else fails the property. */
function answer(step: () => unknown): void {
  try {
    step()
  } catch (error) {
    if (!(error instanceof DomainError) || error.status >= 500) throw error
  }
}

describe('fractional and large durations (SPEC §7)', () => {
  it('rounds each duration once to whole milliseconds (a positive one to at least 1 ms)', () => {
    expect(durationsMs({ cooldown_seconds: 0.0004, expiration_seconds: 10.0007, heartbeat_timeout_seconds: 30.0001, manifest_ttl_seconds: 0.0000001 })).toEqual({
      cooldown: 0,
      expiration: 10_001,
      heartbeat_timeout: 30_000,
      heartbeat_interval: 10_000,
      manifest_ttl: 1,
    })
  })

  it('issues, registers, heartbeats, spawns, flushes and reaps under any accepted contract, storing whole milliseconds', () => {
    fc.assert(
      fc.property(contracts, fc.integer({ min: 0, max: 10 * 86_400_000 }), (durations, later) => {
        const t = createTestWarden({ ...DEFAULT_CONTRACT, ...durations, max_replicas: 10 })
        try {
          const { warden, clock } = t
          let root: { worker_id: string } | null = null
          let token = ''
          answer(() => {
            const manifest = warden.admission.issueRoot({})
            token = warden.admission.register(manifest).lease_token
            root = manifest
          })
          if (root !== null) {
            const id = (root as { worker_id: string }).worker_id
            expect(token).not.toBe('')
            answer(() => warden.liveness.heartbeat(id))
            answer(() => warden.admission.register(warden.admission.spawn({ worker_id: id }, { reason: 'property' })))
          }
          warden.liveness.flushAllLeases()
          clock.advance(later)
          answer(() => warden.liveness.tick())
          if (root !== null) answer(() => warden.liveness.heartbeat((root as { worker_id: string }).worker_id))
          warden.liveness.flushAllLeases()

          const db = storeOf(warden).db
          const times = [
            ...db.prepare(`SELECT lease_expires_at AS v FROM workers UNION ALL SELECT expires_at FROM workers UNION ALL SELECT last_heartbeat_at FROM workers`).pluck().all(),
            ...db.prepare(`SELECT expires_at FROM manifests UNION ALL SELECT issued_at FROM manifests`).pluck().all(),
          ]
          for (const value of times) if (value !== null) expect(Number.isInteger(value), String(value)).toBe(true)
        } finally {
          t.close()
        }
      }),
      { numRuns: 150 },
    )
  })
})
