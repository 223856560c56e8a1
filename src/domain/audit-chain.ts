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

/**
 * Walks records in storage order; the first one out of sequence, unlinked or altered fails. The
 * head recorded at the last append catches records removed from (or added to) the tail.
 */
export function verifyChain(records: Iterable<AuditRecord>, head: { seq: number; hash: string }): AuditVerification {
  let expectedSeq = 1
  let prev = GENESIS_HASH
  let count = 0
  for (const record of records) {
    count++
    if (record.seq !== expectedSeq || record.prev_hash !== prev || recordHash(record) !== record.hash) {
      return { ok: false, records: count, head_hash: prev === GENESIS_HASH ? null : prev, first_invalid_seq: record.seq }
    }
    if (record.seq > head.seq) {
      return { ok: false, records: count, head_hash: prev === GENESIS_HASH ? null : prev, first_invalid_seq: record.seq }
    }
    prev = record.hash
    expectedSeq++
  }
  if (count !== head.seq || (count > 0 && prev !== head.hash)) {
    return { ok: false, records: count, head_hash: count === 0 ? null : prev, first_invalid_seq: Math.min(count + 1, head.seq) }
  }
  return { ok: true, records: count, head_hash: count === 0 ? null : prev, first_invalid_seq: null }
}
