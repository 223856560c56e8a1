// SPEC §1 contract: invalid contracts are refused naming the field (`max_depth must be >= 0, got -1`);
// a valid change is version + 1, audited, and in force at once.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../src/domain/clock.js'
import { DEFAULT_CONTRACT, parseContractInput } from '../../src/domain/contract.js'
import { DomainError } from '../../src/domain/errors.js'
import type { StopCondition } from '../../src/schemas/index.js'
import { createTestWarden, registerRoot } from '../helpers/harness.js'
import { auditRecords, expectDomainError, lastAudit, SECOND, tempDbFile, updateContract, wardenPerTest } from './support.js'

const setup = wardenPerTest()

const base = (): Record<string, unknown> => structuredClone(DEFAULT_CONTRACT) as unknown as Record<string, unknown>

/** The contract with `path` (dotted) set to `value`. */
function withValue(path: string, value: unknown): Record<string, unknown> {
  const contract = base()
  const keys = path.split('.')
  const parent = keys.slice(0, -1).reduce<Record<string, unknown>>((node, k) => node[k] as Record<string, unknown>, contract)
  parent[keys[keys.length - 1]!] = value
  return contract
}

function refusal(raw: unknown): DomainError {
  return expectDomainError(() => parseContractInput(raw), 'invalid_contract')
}

const condition = (name: string, expression: string): StopCondition => ({ name, description: '', expression })

describe('invalid contracts are refused with the field named', () => {
  it('says `max_depth must be >= 0, got -1`', () => {
    expect(refusal(withValue('max_depth', -1)).message).toBe('max_depth must be >= 0, got -1')
  })

  it('refuses through the contract service with 400 and keeps the current version', () => {
    const { warden } = setup()
    const before = warden.contracts.view()
    const records = auditRecords(warden, 'contract_updated').length
    const error = expectDomainError(() => warden.contracts.replace(withValue('max_replicas', 0)), 'invalid_contract')
    expect(error.status).toBe(400)
    expect(error.message).toBe('max_replicas must be >= 1, got 0')
    expect(warden.contracts.view()).toEqual(before)
    expect(auditRecords(warden, 'contract_updated')).toHaveLength(records)
  })

  // Each numeric field with the bound SPEC §1 gives it, and whether it must be an integer.
  const numeric: Array<{ field: string; op: '>=' | '>'; bound: number; int: boolean }> = [
    { field: 'max_depth', op: '>=', bound: 0, int: true },
    { field: 'max_replicas', op: '>=', bound: 1, int: true },
    { field: 'cooldown_seconds', op: '>=', bound: 0, int: false },
    { field: 'expiration_seconds', op: '>', bound: 0, int: false },
    { field: 'heartbeat_timeout_seconds', op: '>', bound: 0, int: false },
    { field: 'manifest_ttl_seconds', op: '>', bound: 0, int: false },
    { field: 'default_resources.cpu_limit', op: '>', bound: 0, int: false },
    { field: 'default_resources.memory_limit_mb', op: '>', bound: 0, int: true },
    { field: 'max_resources.cpu_limit', op: '>', bound: 0, int: false },
    { field: 'max_resources.memory_limit_mb', op: '>', bound: 0, int: true },
  ]

  for (const { field, op, bound, int } of numeric) {
    it(`refuses any ${field} ${op === '>=' ? '<' : '<='} ${bound} with "${field} must be ${op} ${bound}, got <value>"`, () => {
      const below = int
        ? fc.integer({ min: -1_000_000_000, max: op === '>=' ? bound - 1 : bound })
        : fc.double({ min: -1e12, max: op === '>=' ? bound - Number.EPSILON : bound, noNaN: true }).filter((v) => !Object.is(v, -0) || op === '>')
      fc.assert(
        fc.property(below, (value) => {
          fc.pre(op === '>' || value < bound)
          expect(refusal(withValue(field, value)).message).toBe(`${field} must be ${op} ${bound}, got ${JSON.stringify(value)}`)
        }),
        { numRuns: 60 },
      )
    })

    it(`refuses a ${field} of the wrong type${int ? ' or not a whole number' : ''}, naming the field`, () => {
      const wrong = fc.oneof(
        fc.string().map((s) => s as unknown),
        fc.boolean(),
        fc.constant(null),
        fc.array(fc.integer(), { maxLength: 2 }),
        fc.dictionary(fc.string({ maxLength: 3 }), fc.integer(), { maxKeys: 2 }),
        ...(int ? [fc.double({ min: 1.0001, max: 1e6, noNaN: true }).filter((v) => !Number.isInteger(v))] : []),
      )
      fc.assert(
        fc.property(wrong, (value) => {
          // null is a valid expiration_seconds (no lifetime).
          fc.pre(!(field === 'expiration_seconds' && value === null))
          expect(refusal(withValue(field, value)).message).toMatch(new RegExp(`^${field.replace(/\./g, '\\.')} must be`))
        }),
        { numRuns: 40 },
      )
    })
  }

  it('accepts expiration_seconds null (no lifetime) and a cooldown of 0', () => {
    expect(parseContractInput({ ...base(), expiration_seconds: null, cooldown_seconds: 0 }).input).toMatchObject({ expiration_seconds: null, cooldown_seconds: 0 })
  })

  it('names a missing field and an unknown field', () => {
    const missing = base()
    delete missing.heartbeat_timeout_seconds
    expect(refusal(missing).message).toBe('heartbeat_timeout_seconds is required')
    expect(refusal({ ...base(), max_children: 3 }).message).toMatch(/unknown field max_children/)
  })

  it('names every invalid field at once', () => {
    const message = refusal({ ...base(), max_depth: -1, max_replicas: 0 }).message
    expect(message).toContain('max_depth must be >= 0, got -1')
    expect(message).toContain('max_replicas must be >= 1, got 0')
  })
})

describe('resources in the contract', () => {
  const resources = (cpu_limit: number, memory_limit_mb: number, allow_external = false) => ({
    cpu_limit,
    memory_limit_mb,
    network_policy: { allow_controller: true, allow_external },
  })

  it('requires default_resources to fit within max_resources, naming what does not fit', () => {
    const max = resources(2, 2048)
    expect(refusal({ ...base(), default_resources: resources(3, 256), max_resources: max }).message).toBe(
      'default_resources must fit within max_resources: cpu_limit 3 > 2',
    )
    expect(refusal({ ...base(), default_resources: resources(1, 4096), max_resources: max }).message).toMatch(
      /^default_resources must fit within max_resources: memory_limit_mb/,
    )
    expect(refusal({ ...base(), default_resources: resources(1, 256, true), max_resources: max }).message).toMatch(
      /^default_resources must fit within max_resources: allow_external/,
    )
    expect(parseContractInput({ ...base(), default_resources: max, max_resources: max }).input.default_resources).toEqual(max)
  })

  it('fills in the default network policy of a resources object', () => {
    const { input } = parseContractInput({ ...base(), default_resources: { cpu_limit: 1, memory_limit_mb: 128 } })
    expect(input.default_resources.network_policy).toEqual({ allow_controller: true, allow_external: false })
  })
})

describe('stop conditions in the contract', () => {
  it('refuses two conditions with the same name', () => {
    const message = refusal({ ...base(), stop_conditions: [condition('cap', 'active_count > 3'), condition('cap', 'active_count > 4')] }).message
    expect(message).toBe('stop_conditions.1.name "cap" is used twice')
  })

  it('accepts 32 conditions and refuses 33', () => {
    const many = (n: number) => Array.from({ length: n }, (_, i) => condition(`c${i}`, `active_count > ${i + 100}`))
    expect(parseContractInput({ ...base(), stop_conditions: many(32) }).conditions).toHaveLength(32)
    expect(refusal({ ...base(), stop_conditions: many(33) }).message).toMatch(/^stop_conditions must have at most 32 items/)
  })

  it('refuses an expression that does not parse, naming the condition', () => {
    const message = refusal({ ...base(), stop_conditions: [condition('ok', 'true'), condition('bad', 'active_count >')] }).message
    expect(message).toMatch(/^stop_conditions\.1\.expression does not parse/)
  })

  it('refuses an expression that does not type-check (unknown variable)', () => {
    expect(refusal({ ...base(), stop_conditions: [condition('bad', 'workers_alive > 3')] }).message).toMatch(
      /^stop_conditions\.0\.expression does not type-check: .*workers_alive/,
    )
  })

  it('refuses an expression that is not a bool', () => {
    expect(refusal({ ...base(), stop_conditions: [condition('bad', 'active_count + 1')] }).message).toMatch(
      /^stop_conditions\.0\.expression must be a bool expression/,
    )
  })

  it('refuses a badly named condition and an empty expression', () => {
    expect(refusal({ ...base(), stop_conditions: [condition('has space', 'true')] }).message).toMatch(/^stop_conditions\.0\.name/)
    expect(refusal({ ...base(), stop_conditions: [condition('empty', '')] }).message).toMatch(/^stop_conditions\.0\.expression/)
  })

  it('accepts the examples of the SPEC', () => {
    const { conditions } = parseContractInput({
      ...base(),
      stop_conditions: [
        condition('crowd', 'active_count >= 5'),
        condition('memory', 'manifest.resources.memory_limit_mb * (active_count + 1) > 2048'),
      ],
    })
    expect(conditions.map((c) => c.name)).toEqual(['crowd', 'memory'])
  })
})

describe('changing the contract', () => {
  it('bumps the version by 1, audits contract_updated and applies at once', () => {
    const { warden, clock } = setup()
    expect(warden.contracts.view().version).toBe(1)
    registerRoot(warden)
    clock.advance(SECOND)

    const next = updateContract(warden, { max_replicas: 1 })
    expect(next).toMatchObject({ version: 2, max_replicas: 1, updated_at: new Date(clock.now()).toISOString() })
    expect(warden.contracts.view()).toEqual(next)
    expect(lastAudit(warden)).toMatchObject({ type: 'contract_updated', actor: 'operator', data: { version: 2, contract: { max_replicas: 1 } } })
    expectDomainError(() => warden.admission.issueRoot({}), 'quota_exceeded')

    expect(updateContract(warden, { max_replicas: 2 }).version).toBe(3)
    expect(warden.admission.issueRoot({}).depth).toBe(0)
    expect(auditRecords(warden, 'contract_updated').map((r) => r.data.version)).toEqual([1, 2, 3])
    expect(warden.queries.verifyAudit().ok).toBe(true)
  })

  it('keeps the stored contract across a restart and applies a changed start-up contract as a new version', () => {
    const { file, cleanup } = tempDbFile()
    const clock = new ManualClock()
    try {
      const first = createTestWarden({ max_depth: 2 }, file, clock)
      updateContract(first.warden, { max_replicas: 7 })
      first.close()

      // Started with exactly what is stored: nothing to apply.
      const second = createTestWarden({ max_depth: 2, max_replicas: 7 }, file, clock)
      expect(second.warden.contracts.view()).toMatchObject({ version: 2, max_replicas: 7, max_depth: 2 })
      const updates = auditRecords(second.warden, 'contract_updated').length
      second.close()

      // Started with a different contract: it replaces the stored one as the next version.
      const third = createTestWarden({ max_depth: 1 }, file, clock)
      expect(third.warden.contracts.view()).toMatchObject({ version: 3, max_depth: 1, max_replicas: DEFAULT_CONTRACT.max_replicas })
      const records = auditRecords(third.warden, 'contract_updated')
      expect(records).toHaveLength(updates + 1)
      expect(records[records.length - 1]).toMatchObject({ actor: 'config', data: { version: 3 } })
      third.close()
    } finally {
      cleanup()
    }
  })
})
