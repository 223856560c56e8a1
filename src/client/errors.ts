// One error class for everything the client reports: a problem document from the controller
// (its `code`, status and extras), or a failure that never got an answer (status 0).
import type { z } from 'zod'
import type { ErrorCode } from '../schemas/error-codes.js'
import type { ProblemSchema, TerminationReason } from '../schemas/index.js'

export type Problem = z.output<typeof ProblemSchema>

/** Failures with no HTTP answer, or that the client decides on its own. */
export type ClientErrorCode =
  | 'connection_failed'
  | 'timeout'
  | 'aborted'
  | 'circuit_open'
  | 'unexpected_response'
  | 'worker_suspended'
  | 'lease_lost'

export type WardenErrorCode = ErrorCode | ClientErrorCode

/** Why a worker stopped: the controller's termination reasons, or `lease_lost` when it could not be reached. */
export type StopReason = TerminationReason | 'lease_lost'

/** The denials of SPEC §3 a spawn or registration can meet: policy, never retried. */
export const DENIAL_CODES = [
  'kill_switch_engaged',
  'quota_exceeded',
  'cooldown_active',
  'depth_exceeded',
  'parent_quarantined',
  'parent_not_active',
  'stop_condition',
  'resources_exceed_parent',
  'resources_exceed_contract',
  'invalid_signature',
  'unknown_key',
  'manifest_already_used',
  'manifest_expired',
  'worker_expired',
  'worker_terminated',
] as const satisfies readonly ErrorCode[]
export type DenialCode = (typeof DENIAL_CODES)[number]

export interface WardenErrorInit {
  status: number
  detail: string
  method?: string | undefined
  path?: string | undefined
  problem?: Problem | undefined
  /** Seconds, from the Retry-After header or the problem's `retry_after`. */
  retry_after?: number | undefined
  /** True when the request surely never reached the controller (connection refused, circuit open). */
  not_sent?: boolean | undefined
  /** Why the worker is gone, when the client decides it locally. */
  reason?: StopReason | undefined
  cause?: unknown
}

export class WardenError extends Error {
  readonly code: WardenErrorCode
  /** HTTP status, or 0 when no answer came back. */
  readonly status: number
  readonly method: string | undefined
  readonly path: string | undefined
  /** The problem document as the controller sent it (absent for status 0). */
  readonly problem: Problem | undefined
  /** The stop condition that triggered (`stop_condition`). */
  readonly condition: string | undefined
  /** Seconds to wait before asking again (429 `cooldown_active`, `rate_limited`; `circuit_open`). */
  readonly retry_after: number | undefined
  /** Why a worker is gone (410 `worker_terminated`): kill_switch, killed, reaped, expired, deregistered. */
  readonly reason: StopReason | undefined
  readonly notSent: boolean
  readonly #detail: string

  constructor(code: WardenErrorCode, init: WardenErrorInit) {
    const where = init.method && init.path ? ` (${init.method} ${init.path})` : ''
    super(`${code}${init.status ? ` ${init.status}` : ''}: ${init.detail}${where}`, init.cause === undefined ? {} : { cause: init.cause })
    this.name = 'WardenError'
    this.code = code
    this.status = init.status
    this.method = init.method
    this.path = init.path
    this.problem = init.problem
    const condition = init.problem?.condition
    this.condition = typeof condition === 'string' ? condition : undefined
    const retryAfter = init.retry_after ?? init.problem?.retry_after
    this.retry_after = typeof retryAfter === 'number' && Number.isFinite(retryAfter) ? retryAfter : undefined
    const reason = init.reason ?? init.problem?.reason
    this.reason = typeof reason === 'string' ? (reason as StopReason) : undefined
    this.notSent = init.not_sent ?? false
    this.#detail = init.detail
  }

  /** The problem's `detail`, or the transport failure's description (without the code the message starts with). */
  get detail(): string {
    return this.problem?.detail ?? this.#detail
  }

  /** A policy decision of the controller (SPEC §3 denial codes and 410): asking again as-is will not help. */
  get isDenial(): boolean {
    return (DENIAL_CODES as readonly string[]).includes(this.code)
  }
}

export const isWardenError = (error: unknown): error is WardenError => error instanceof WardenError
