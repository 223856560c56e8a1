// SPEC §3 Retries: a keyed request decides once. The key's record (caller, key, digest of the
// request, the status and answer) is looked up and written inside the transaction of the decision
// itself, so the two commit together or not at all. The process is single-threaded and a decision
// runs synchronously, so lookup, decision and record cannot interleave with another request:
// parallel requests with one key see exactly one decision, and every other one replays it (no
// "in flight" state exists to report).
import { createHash } from 'node:crypto'
import canonicalize from 'canonicalize'
import type { Store } from '../store/index.js'
import type { Manifest, UnsignedManifest } from '../schemas/index.js'
import { DomainError, type ErrorCode, type ProblemExtras } from './errors.js'

/** How long a key answers with its first answer. */
export const IDEMPOTENCY_WINDOW_MS = 24 * 60 * 60 * 1000

/** The Idempotency-Key of one request, scoped to who sent it and what they asked. */
export interface IdempotencyScope {
  /** Keys are per caller: the operator, one worker, or the holder of one manifest. */
  caller: string
  key: string
  /** requestDigest() of the operation and its body. */
  digest: Buffer
}

/**
 * SHA-256 of the operation's name and the RFC 8785 canonical JSON of its (validated) body: the
 * same request sent twice, in any key order, has one digest; the same key used for another
 * operation or another body does not match.
 */
export function requestDigest(operation: string, body: unknown): Buffer {
  return createHash('sha256')
    .update(operation)
    .update('\n')
    .update(canonicalize(body ?? null) ?? 'null')
    .digest()
}

export function idempotencyScope(caller: string, key: string | undefined, operation: string, body: unknown): IdempotencyScope | undefined {
  return key === undefined ? undefined : { caller, key, digest: requestDigest(operation, body) }
}

/** A recorded failure, replayed as the same problem. */
interface StoredProblem {
  code: ErrorCode
  detail: string
  extras: ProblemExtras
}

export interface Once<T> {
  value: T
  /** True when this answer is the replay of an earlier decision: nothing was decided now. */
  replayed: boolean
}

export interface OnceCodec<T> {
  /** The status an approval answers (201 for every keyed endpoint today). */
  status: number
  /** What of an approval is kept (e.g. without a lease token). Default: all of it. */
  keep?: (value: T) => unknown
  /** Rebuilds the answer of a repeat from what was kept, inside the transaction (default: as kept). */
  replay?: (kept: unknown) => T
  /** A refusal that is not the caller's decision to keep (e.g. an unverifiable manifest): not recorded. */
  recordError?: (error: DomainError) => boolean
}

/**
 * What a keyed answer keeps of a manifest: everything but its signature, a bearer credential
 * that is never stored in the clear (SPEC §7). A replay signs it again (Signer.signAgain).
 */
export function keptManifest(manifest: Manifest): UnsignedManifest {
  const { signature: _signature, ...unsigned } = manifest
  return unsigned
}

export function createIdempotency(store: Store, now: () => number) {
  /** Inside a transaction: the recorded answer of `scope`, or undefined; 422 for another body. */
  function lookup(scope: IdempotencyScope, at: number): { status: number; answer: unknown } | DomainError | undefined {
    const row = store.idempotency.get(scope.caller, scope.key)
    if (!row || row.created_at <= at - IDEMPOTENCY_WINDOW_MS) return undefined
    if (!row.body_digest.equals(scope.digest)) {
      return new DomainError(
        'idempotency_key_reused',
        `Idempotency-Key ${JSON.stringify(scope.key)} was already used for a different request; send a fresh key for a new request`,
      )
    }
    return { status: row.status, answer: JSON.parse(row.answer) as unknown }
  }

  return {
    /**
     * Runs `decide` in one transaction, at most once per key: without a scope it simply decides;
     * with one, a repeat answers what the first answered (its error included) and decides nothing.
     * A DomainError that `decide` returns is committed with its record and then thrown; one it
     * throws rolls everything back, key included (nothing was decided).
     */
    once<T>(scope: IdempotencyScope | undefined, decide: () => T | DomainError, codec: OnceCodec<T>): Once<T> {
      const outcome = store.transaction((): { result: T | DomainError; replayed: boolean } => {
        const at = now()
        if (scope !== undefined) {
          const prior = lookup(scope, at)
          if (prior instanceof DomainError) return { result: prior, replayed: false }
          if (prior !== undefined) {
            if (prior.status >= 400) {
              const problem = prior.answer as StoredProblem
              return { result: new DomainError(problem.code, problem.detail, problem.extras), replayed: true }
            }
            return { result: codec.replay ? codec.replay(prior.answer) : (prior.answer as T), replayed: true }
          }
        }
        const result = decide()
        if (scope !== undefined) {
          if (result instanceof DomainError) {
            if (codec.recordError?.(result) ?? true) {
              const problem: StoredProblem = { code: result.code, detail: result.message, extras: result.extras }
              store.idempotency.put({ ...row(scope, at), status: result.status, answer: JSON.stringify(problem) })
            }
          } else {
            const kept = codec.keep ? codec.keep(result) : result
            store.idempotency.put({ ...row(scope, at), status: codec.status, answer: JSON.stringify(kept) })
          }
        }
        return { result, replayed: false }
      })
      if (outcome.result instanceof DomainError) throw outcome.result
      return { value: outcome.result, replayed: outcome.replayed }
    },

    /**
     * Deletes up to `limit` keys past their window; how many. Losing a sweep in a crash is
     * harmless (a lookup ignores an expired key), so it commits without waiting for the disk.
     */
    sweep(limit: number): number {
      return store.lazyTransaction(() => store.idempotency.sweep(now() - IDEMPOTENCY_WINDOW_MS, limit))
    },
  }
}

const row = (scope: IdempotencyScope, at: number) => ({ caller: scope.caller, key: scope.key, body_digest: scope.digest, created_at: at })

export type Idempotency = ReturnType<typeof createIdempotency>
