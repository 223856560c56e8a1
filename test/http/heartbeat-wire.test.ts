// The heartbeat's quick path (src/http/heartbeat-wire.ts) may only stand in for zod where zod
// would say the same: it accepts nothing zod refuses, and what it writes is what zod would write.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { serializerCompiler } from 'fastify-type-provider-zod'
import { isPlainHeartbeatBody, isPlainWorkerParams, serializeHeartbeat } from '../../src/http/heartbeat-wire.js'
import { WorkerParamsSchema } from '../../src/http/schemas.js'
import { HeartbeatRequestSchema, HeartbeatResponseSchema, LIMITS, type HeartbeatResponse } from '../../src/schemas/index.js'

const zodAccepts = (schema: { safeParse(v: unknown): { success: boolean } }, value: unknown) => schema.safeParse(value).success

const metricName = fc.oneof(fc.string({ minLength: 0, maxLength: 70 }), fc.constantFrom('', 'cpu', 'x'.repeat(64), 'x'.repeat(65), 'constructor'))
const metricValue = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(NaN, Infinity, -Infinity, '1', null, true, [], {}),
)
const metrics = fc.oneof(
  fc.dictionary(metricName, metricValue, { maxKeys: 4 }),
  fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.integer(), { minKeys: LIMITS.metrics - 1, maxKeys: LIMITS.metrics + 2 }),
  fc.constantFrom(null, [], 'x', 3, [1, 2]),
)
const body = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.record({ metrics }, { requiredKeys: [] }),
  fc.record({ metrics, extra: fc.integer() }, { requiredKeys: ['extra'] }),
  fc.jsonValue({ maxDepth: 2 }),
)

describe('heartbeat quick path', () => {
  it('accepts a body only when zod accepts it', () => {
    fc.assert(
      fc.property(body, (value) => {
        if (isPlainHeartbeatBody(value)) expect(zodAccepts(HeartbeatRequestSchema.optional(), value ?? undefined)).toBe(true)
      }),
      { numRuns: 3000 },
    )
  })

  it('accepts the bodies workers send (so the quick path is the one taken)', () => {
    for (const value of [undefined, null, {}, { metrics: {} }, { metrics: { cpu: 0.42, queue_depth: 3 } }]) expect(isPlainHeartbeatBody(value)).toBe(true)
    const full = Object.fromEntries(Array.from({ length: LIMITS.metrics }, (_, i) => [`m${i}`, i]))
    expect(isPlainHeartbeatBody({ metrics: full })).toBe(true)
    expect(isPlainHeartbeatBody({ metrics: { ...full, one_more: 1 } })).toBe(false)
    expect(isPlainHeartbeatBody({ metrics: { cpu: '1' } })).toBe(false)
    expect(isPlainHeartbeatBody({ metrics: { '': 1 } })).toBe(false)
    expect(isPlainHeartbeatBody({ other: 1 })).toBe(false)
    expect(isPlainHeartbeatBody([])).toBe(false)
  })

  it('accepts params only when zod accepts them', () => {
    const id = fc.oneof(fc.string({ unit: fc.constantFrom(...'0123456789abcdefA'), minLength: 31, maxLength: 33 }), fc.string(), fc.constantFrom('A'.repeat(32), 'a'.repeat(32)))
    const params = fc.oneof(fc.record({ id }), fc.record({ id, other: fc.string() }), fc.jsonValue({ maxDepth: 1 }))
    fc.assert(
      fc.property(params, (value) => {
        expect(isPlainWorkerParams(value)).toBe(zodAccepts(WorkerParamsSchema, value))
      }),
      { numRuns: 3000 },
    )
  })

  it('writes the answer exactly as the zod serializer does', () => {
    const zodSerialize = serializerCompiler({ schema: HeartbeatResponseSchema, method: 'POST', url: '/v1/workers/:id/heartbeat', httpStatus: '200' } as never) as (
      data: unknown,
    ) => string
    const timestamp = fc.date({ min: new Date('2000-01-01'), max: new Date('2200-01-01'), noInvalidDate: true }).map((d) => d.toISOString())
    const answer: fc.Arbitrary<HeartbeatResponse> = fc.record({
      directive: fc.constantFrom('continue', 'suspend', 'terminate'),
      lease_expires_at: timestamp,
      expires_at: fc.option(timestamp, { nil: null }),
      heartbeat_interval_seconds: fc.oneof(fc.integer({ min: 0, max: 1e6 }), fc.double({ min: 0.001, max: 1e6, noNaN: true })),
      heartbeat_timeout_seconds: fc.oneof(fc.integer({ min: 1, max: 1e6 }), fc.double({ min: 0.001, max: 1e6, noNaN: true })),
    })
    fc.assert(
      fc.property(answer, (value) => {
        expect(serializeHeartbeat(value)).toBe(zodSerialize(value))
      }),
      { numRuns: 2000 },
    )
  })
})
