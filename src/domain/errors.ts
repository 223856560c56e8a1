// Every failure the domain can report, with the one HTTP status each maps to.
// Adding a code without a status fails the type check.

import type { ErrorCode } from '../schemas/error-codes.js'

export type { ErrorCode }

export const statusByCode: Record<ErrorCode, number> = {
  validation_failed: 400,
  invalid_contract: 400,
  unauthorized: 401,
  kill_switch_engaged: 403,
  quota_exceeded: 403,
  depth_exceeded: 403,
  parent_quarantined: 403,
  parent_not_active: 403,
  stop_condition: 403,
  resources_exceed_parent: 403,
  resources_exceed_contract: 403,
  invalid_signature: 403,
  unknown_key: 403,
  manifest_expired: 403,
  worker_expired: 403,
  not_found: 404,
  worker_not_found: 404,
  method_not_allowed: 405,
  manifest_already_used: 409,
  worker_terminated: 410,
  idempotency_key_reused: 422,
  payload_too_large: 413,
  unsupported_media_type: 415,
  cooldown_active: 429,
  rate_limited: 429,
  internal_error: 500,
  service_unavailable: 503,
  storage_unavailable: 503,
  sandbox_unavailable: 503,
}

export const titleByStatus: Record<number, string> = {
  400: 'Bad request',
  401: 'Unauthorized',
  403: 'Replication denied',
  404: 'Not found',
  405: 'Method not allowed',
  409: 'Conflict',
  410: 'Worker terminated',
  413: 'Payload too large',
  415: 'Unsupported media type',
  422: 'Unprocessable content',
  429: 'Too many requests',
  500: 'Internal server error',
  503: 'Service unavailable',
}

/** Extra members of the problem document, e.g. `condition` or `retry_after`. */
export type ProblemExtras = Record<string, string | number | boolean | null | string[]>

export class DomainError extends Error {
  readonly code: ErrorCode
  readonly extras: ProblemExtras

  constructor(code: ErrorCode, detail: string, extras: ProblemExtras = {}) {
    super(detail)
    this.name = 'DomainError'
    this.code = code
    this.extras = extras
  }

  get status(): number {
    return statusByCode[this.code]
  }
}
