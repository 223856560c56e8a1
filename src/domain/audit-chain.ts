// SPEC §2.9: hash = sha256(prev_hash ‖ canonical record). Editing, removing or reordering any
// record breaks the chain at that record.
import { createHash } from 'node:crypto'
import type { AuditRecord, AuditVerification } from '../schemas/index.js'
import { canonicalJson } from './signing.js'

export const GENESIS_HASH = '0'.repeat(64)

export type UnhashedRecord = Omit<AuditRecord, 'hash'>

export function recordHash(record: UnhashedRecord): string {
  const { seq, at, type, actor, worker_id, parent_id, code, data, prev_hash } = record
  return createHash('sha256')
    .update(prev_hash)
    .update(canonicalJson({ seq, at, type, actor, worker_id, parent_id, code, data, prev_hash }))
    .digest('hex')
}

/** Walks records in storage order; the first one out of sequence, unlinked or altered fails. */
export function verifyChain(records: Iterable<AuditRecord>): AuditVerification {
  let expectedSeq = 1
  let prev = GENESIS_HASH
  let count = 0
  for (const record of records) {
    count++
    if (record.seq !== expectedSeq || record.prev_hash !== prev || recordHash(record) !== record.hash) {
      return { ok: false, records: count, head_hash: prev === GENESIS_HASH ? null : prev, first_invalid_seq: record.seq }
    }
    prev = record.hash
    expectedSeq++
  }
  return { ok: true, records: count, head_hash: count === 0 ? null : prev, first_invalid_seq: null }
}
