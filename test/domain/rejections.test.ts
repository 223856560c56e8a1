// SPEC §7: one registrations_rejected summary per minute and client address, with counts by code.
import { describe, expect, it } from 'vitest'
import { REJECTION_WINDOW_MS } from '../../src/domain/rejections.js'
import { DEFAULT_CONTRACT } from '../../src/domain/contract.js'
import { createSigner } from '../../src/domain/signing.js'
import { registerRoot } from '../helpers/harness.js'
import { auditRecords, expectDomainError, wardenPerTest } from './support.js'

describe('rejection summaries', () => {
  const fresh = wardenPerTest()

  it('counts per address and writes one summary per address once its minute is over', () => {
    const { warden, clock } = fresh()
    registerRoot(warden)
    const issued = warden.admission.issueRoot({})
    const foreign = createSigner(Buffer.alloc(32, 9)).sign({ ...issued, resources: DEFAULT_CONTRACT.default_resources })
    const badSignature = { ...issued, signature: 'f'.repeat(64) }
    for (let i = 0; i < 3; i++) expectDomainError(() => warden.admission.register(foreign, undefined, '10.0.0.1'), 'unknown_key')
    clock.advance(30_000)
    for (let i = 0; i < 2; i++) expectDomainError(() => warden.admission.register(badSignature, undefined, '10.0.0.1'), 'invalid_signature')
    expectDomainError(() => warden.admission.register(badSignature, undefined, '10.0.0.2'), 'invalid_signature')
    const records = auditRecords(warden).length

    clock.advance(REJECTION_WINDOW_MS - 30_001)
    expect(warden.summarizeRejections()).toBe(0)
    clock.advance(1)
    expect(warden.summarizeRejections()).toBe(1) // 10.0.0.1's minute is over; 10.0.0.2's is not
    clock.advance(30_000)
    expect(warden.summarizeRejections()).toBe(1)
    expect(warden.summarizeRejections()).toBe(0)

    const summaries = auditRecords(warden).slice(records)
    expect(summaries.map((record) => record.data)).toMatchObject([
      { client: '10.0.0.1', counts: { unknown_key: 3, invalid_signature: 2 }, total: 5 },
      { client: '10.0.0.2', counts: { invalid_signature: 1 }, total: 1 },
    ])
    for (const record of summaries) expect(record).toMatchObject({ type: 'registrations_rejected', actor: 'controller', worker_id: null })
  })
})
