// Small helpers shared by the domain tests: error assertions, contract edits, audit reads, temp files.
import { afterEach, expect } from 'vitest'
import { createTestWarden, type TestWarden, storeOf } from '../helpers/harness.js'
import type { Warden } from '../../src/domain/index.js'
import { DomainError, type ErrorCode } from '../../src/domain/errors.js'
import type { AuditRecord, AuditType, ContractInput, TerminationReason } from '../../src/schemas/index.js'
import type { WorkerRecord } from '../../src/store/workers.js'

/** Runs `fn`, asserts it throws a DomainError with `code`, and returns that error. */
export function expectDomainError(fn: () => unknown, code: ErrorCode): DomainError {
  let thrown: unknown
  try {
    fn()
  } catch (error) {
    thrown = error
  }
  expect(thrown, `expected a DomainError ${code}`).toBeInstanceOf(DomainError)
  const error = thrown as DomainError
  expect(error.code, error.message).toBe(code)
  return error
}

/** The current contract input (without version and updated_at). */
export function contractInput(warden: Warden): ContractInput {
  const { version: _version, updated_at: _updatedAt, ...input } = warden.contracts.view()
  return input
}

/** Replaces the contract with the current one plus `patch`. */
export function updateContract(warden: Warden, patch: Partial<ContractInput>) {
  return warden.contracts.replace({ ...contractInput(warden), ...patch })
}

export function auditRecords(warden: Warden, type?: AuditType): AuditRecord[] {
  const all = [...storeOf(warden).audit.iterate()]
  return type === undefined ? all : all.filter((record) => record.type === type)
}

export function lastAudit(warden: Warden): AuditRecord {
  const all = auditRecords(warden)
  return all[all.length - 1]!
}

/** The highest audit seq so far (0 when empty). */
export function auditSeq(warden: Warden): number {
  return auditRecords(warden).length
}

/** Records appended after `seq`. */
export function auditSince(warden: Warden, seq: number): AuditRecord[] {
  return auditRecords(warden).filter((record) => record.seq > seq)
}

export function worker(warden: Warden, id: string): WorkerRecord {
  // Heartbeats renew leases in memory; write them back so the row shows what the book holds.
  warden.liveness.flushAllLeases()
  const row = storeOf(warden).workers.get(id)
  expect(row, `worker ${id} exists`).toBeDefined()
  return row!
}

export function manifestStatus(warden: Warden, id: string): string | undefined {
  return storeOf(warden).manifests.get(id)?.status
}

export function tableCount(warden: Warden, table: 'workers' | 'manifests' | 'audit' | 'sandboxes'): number {
  return (storeOf(warden).db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n
}

export { tempDbFile } from '../helpers/fixtures.js'

export const SECOND = 1000

/** Registers an afterEach that closes them, and returns a factory of fresh test wardens. */
export function wardenPerTest(defaults: Partial<ContractInput> = {}): (overrides?: Partial<ContractInput>) => TestWarden {
  const open: TestWarden[] = []
  afterEach(() => {
    for (const t of open.splice(0)) t.close()
  })
  return (overrides = {}) => {
    const t = createTestWarden({ ...defaults, ...overrides })
    open.push(t)
    return t
  }
}

/**
 * Every way a worker ends, for a test warden with heartbeat_timeout_seconds 30 and
 * expiration_seconds 40 (the expired case heartbeats once, so it is not reaped first).
 */
export const WAYS_TO_END: ReadonlyArray<[TerminationReason, (t: TestWarden, id: string) => void]> = [
  ['kill_switch', (t) => void t.warden.killSwitch.engage('drill')],
  ['killed', (t, id) => void t.warden.transitions.kill(id, { reason: 'operator said so', cascade: true })],
  [
    'reaped',
    (t) => {
      t.clock.advance(30 * SECOND)
      t.warden.liveness.tick()
    },
  ],
  [
    'expired',
    (t, id) => {
      t.clock.advance(25 * SECOND)
      t.warden.liveness.heartbeat(id)
      t.clock.advance(15 * SECOND)
      t.warden.liveness.tick()
    },
  ],
  ['deregistered', (t, id) => void t.warden.transitions.deregister(id, 'done')],
]
