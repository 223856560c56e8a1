// Which failures are worth another attempt, and how long to wait: exponential backoff with full
// jitter for transient failures, the controller's Retry-After for 429, never a policy denial.
import type { WardenError } from './errors.js'

export interface RetryOptions {
  /** Attempts after the first one. 0 turns retries off. */
  retries: number
  /** Backoff cap of the first retry; doubles on each one (full jitter: a uniform draw below it). */
  baseDelayMs: number
  /** Upper bound of one backoff wait. */
  maxDelayMs: number
  /**
   * A 429 is retried after its Retry-After only when that is at most this long; a longer one
   * (or 0 here) surfaces at once, so a caller can decide for itself.
   */
  maxRetryAfterMs: number
}

export const DEFAULT_RETRY: RetryOptions = {
  retries: 4,
  baseDelayMs: 100,
  maxDelayMs: 5_000,
  maxRetryAfterMs: 10_000,
}

/** Full jitter: a uniform draw in [0, min(max, base * 2^attempt)). `attempt` counts from 0. */
export function backoffDelay(attempt: number, options: Pick<RetryOptions, 'baseDelayMs' | 'maxDelayMs'>, random: () => number): number {
  const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** attempt)
  return Math.floor(random() * ceiling)
}

/**
 * Whether `error` on attempt `attempt` (0 = the first) deserves another try, and after how long.
 *
 * - A request that surely never reached the controller (connection refused) is retried, whatever it is.
 * - 503 means the controller did nothing; it is retried too.
 * - A failure after the request may have arrived (reset, timeout, 502, 504) is retried only for a
 *   request safe to repeat: idempotent by nature, or sent with an Idempotency-Key (spawn,
 *   registration, root issuance, sandbox launch), which the controller answers once per key.
 * - 429 waits Retry-After (bounded by `maxRetryAfterMs`).
 * - Everything else (400, 401, 403, 404, 409, 410, an open circuit) surfaces at once.
 */
export function retryDelay(
  error: WardenError,
  attempt: number,
  idempotent: boolean,
  options: RetryOptions,
  random: () => number,
): number | null {
  if (attempt >= options.retries) return null
  const backoff = () => backoffDelay(attempt, options, random)
  switch (error.code) {
    case 'connection_failed':
      return error.notSent || idempotent ? backoff() : null
    case 'timeout':
      return idempotent ? backoff() : null
    default:
      break
  }
  if (error.status === 429) {
    const waitMs = (error.retry_after ?? 1) * 1000
    if (waitMs > options.maxRetryAfterMs) return null
    // A little jitter on top, so workers released by one Retry-After do not arrive together.
    return waitMs + Math.floor(random() * Math.min(options.baseDelayMs, 1000))
  }
  if (error.status === 503) return backoff()
  if ((error.status === 502 || error.status === 504) && idempotent) return backoff()
  return null
}

/** Parses a Retry-After header: delta seconds or an HTTP date. */
export function parseRetryAfter(value: string | string[] | undefined, now: number): number | undefined {
  const text = Array.isArray(value) ? value[0] : value
  if (text === undefined || text.trim() === '') return undefined
  if (/^\d+$/.test(text.trim())) return Number(text.trim())
  const at = Date.parse(text)
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000))
}

/** A sleep that ends early (rejecting) when `signal` aborts. */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = () => {
      clearTimeout(timer)
      reject(signal?.reason)
    }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
