// SPEC §2.9: hash = sha256(prev_hash ‖ canonical record). Editing, removing or reordering any
// record breaks the chain at that record.
import { createHash } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import type { AuditRecord, AuditVerification } from '../schemas/index.js'
import type { AuditRepository } from '../store/audit.js'
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
 * Checks records one at a time, in storage order; the first one out of sequence, unlinked or
 * altered fails. The head recorded at the last append catches records removed from (or added
 * to) the tail. Fed in slices, it verifies a long chain without holding the event loop.
 */
export function createChainVerifier(head: { seq: number; hash: string }) {
  let expectedSeq = 1
  let prev = GENESIS_HASH
  let count = 0
  let failed: AuditVerification | null = null
  const headHash = () => (prev === GENESIS_HASH ? null : prev)
  return {
    /** False once the chain is broken (later records change nothing). */
    push(record: AuditRecord): boolean {
      if (failed) return false
      count++
      if (record.seq !== expectedSeq || record.prev_hash !== prev || recordHash(record) !== record.hash || record.seq > head.seq) {
        failed = { ok: false, records: count, head_hash: headHash(), first_invalid_seq: record.seq }
        return false
      }
      prev = record.hash
      expectedSeq++
      return true
    },
    result(): AuditVerification {
      if (failed) return failed
      if (count !== head.seq || (count > 0 && prev !== head.hash)) {
        return { ok: false, records: count, head_hash: count === 0 ? null : prev, first_invalid_seq: Math.min(count + 1, head.seq) }
      }
      return { ok: true, records: count, head_hash: count === 0 ? null : prev, first_invalid_seq: null }
    },
  }
}

/** Verifies a whole chain at once (tests, the CLI's offline check). */
export function verifyChain(records: Iterable<AuditRecord>, head: { seq: number; hash: string }): AuditVerification {
  const verifier = createChainVerifier(head)
  for (const record of records) if (!verifier.push(record)) break
  return verifier.result()
}

/** Records read per page of a sliced verification. */
const PAGE = 100

/**
 * Verifies the chain up to the head as it stands when created, a page at a time: `step(ms)` works
 * for about `ms` and says whether it is done. Records appended meanwhile are the next run's; one
 * already beyond the head at the start (added without moving it) fails the chain there.
 */
export function createAuditVerifier(store: { audit: Pick<AuditRepository, 'head' | 'page' | 'countAfter'> }, now: () => number = () => performance.now()) {
  const head = store.audit.head()
  const verifier = createChainVerifier(head)
  const beyondHead = store.audit.countAfter(head.seq)
  let after = 0
  let done = false
  return {
    step(ms: number): boolean {
      // At least one page per step, so every step makes progress.
      const until = now() + ms
      for (let first = true; !done && (first || now() < until); first = false) {
        const records = store.audit.page(after, head.seq, PAGE)
        for (const record of records) {
          if (!verifier.push(record)) {
            done = true
            break
          }
        }
        if (records.length < PAGE) done = true
        else after = records.at(-1)!.seq
      }
      return done
    },
    result(): AuditVerification {
      const result = verifier.result()
      if (result.ok && beyondHead > 0) return { ...result, ok: false, first_invalid_seq: head.seq + 1 }
      return result
    },
  }
}
