// Every problem `code` the controller can answer. The one list types DomainError, the problem
// document's `code` (an enum in the OpenAPI document) and the client's errors; the status of
// each lives in domain/errors.ts (statusByCode), which fails the type check when one is missing.
import { z } from 'zod'

export const ErrorCodeSchema = z
  .enum([
    'validation_failed',
    'unauthorized',
    'not_found',
    'worker_not_found',
    'worker_terminated',
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
    'idempotency_key_reused',
    'manifest_expired',
    'worker_expired',
    'invalid_contract',
    'payload_too_large',
    'unsupported_media_type',
    'method_not_allowed',
    'rate_limited',
    'service_unavailable',
    'storage_unavailable',
    'sandbox_unavailable',
    'internal_error',
  ])
  .meta({ id: 'ErrorCode', description: 'Stable machine code of a problem document', examples: ['quota_exceeded'] })
export type ErrorCode = z.infer<typeof ErrorCodeSchema>
