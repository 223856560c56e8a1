// Route-level schema helpers shared by every resource.
import { z } from 'zod'
import { statusByCode, titleByStatus } from '../domain/errors.js'
import { EXAMPLES } from '../schemas/examples.js'
import { ProblemSchema, WorkerIdSchema } from '../schemas/index.js'

const descriptions: Record<number, string> = {
  400: 'Invalid request; `errors` names the failing fields',
  401: 'No operator or lease token, or one that was rejected',
  403: 'Policy denial or rejected manifest',
  404: 'Unknown worker',
  409: 'Manifest already used',
  410: 'Worker terminated: `directive` is terminate and `reason` says why',
  413: 'Body too large',
  415: 'Unsupported media type (send JSON, or no body)',
  422: 'Idempotency-Key already used with a different request (problem `code` idempotency_key_reused)',
  429: 'Cooldown or rate limit; see Retry-After',
  503: 'Service unavailable',
}

const exampleDetails: Record<string, string> = {
  validation_failed: 'max_depth must be >= 0, got -1',
  unauthorized: 'the operator token was rejected',
  worker_not_found: 'no worker 3f9c2a7e5b8d4c1fa0e6d2b9c7f41a58',
  not_found: 'no route GET /v1/nothing',
  manifest_already_used: 'this manifest has already registered a worker',
  worker_terminated: 'worker 3f9c2a7e5b8d4c1fa0e6d2b9c7f41a58 is killed',
  payload_too_large: 'Request body is too large',
  unsupported_media_type: 'Unsupported Media Type: text/plain',
  cooldown_active: 'parent spawned 2.1 s ago; cooldown_seconds is 5',
  service_unavailable: 'database is not open or not migrated',
}

/** The codes a status can carry, for its description: e.g. 403 lists every denial. */
function codesOf(status: number): string {
  return Object.entries(statusByCode)
    .filter(([, s]) => s === status)
    .map(([code]) => `\`${code}\``)
    .join(', ')
}

/** A problem document as this status sends it, with its first code. */
export function problemExample(status: number, path: string) {
  const code = Object.entries(statusByCode).find(([, s]) => s === status)?.[0] ?? 'internal_error'
  return {
    ...EXAMPLES.problem,
    status,
    title: titleByStatus[status] ?? 'Error',
    code,
    detail: exampleDetails[code] ?? EXAMPLES.problem.detail,
    instance: path.replace('{id}', EXAMPLES.workerId),
  }
}

/** Problem responses for the given statuses, for the OpenAPI document and serialization. */
export function problems(...statuses: number[]): Record<number, z.ZodType> {
  return Object.fromEntries(
    statuses.map((status) => [status, ProblemSchema.describe(`${descriptions[status] ?? 'Error'} (code ${codesOf(status)})`)]),
  )
}

export const WorkerParamsSchema = z.strictObject({ id: WorkerIdSchema })

export const operatorSecurity = [{ operatorToken: [] }]
export const workerSecurity = [{ leaseToken: [] }]

/**
 * SPEC §3 Retries: the optional Idempotency-Key of POST /v1/manifests, /v1/workers,
 * /v1/workers/{id}/spawn and /v1/sandboxes. Other headers pass through untouched.
 */
export const IdempotencyHeadersSchema = z.looseObject({
  'idempotency-key': z
    .string()
    .regex(/^[\x21-\x7e]{1,128}$/, 'must be 1–128 visible ASCII characters')
    .optional()
    .describe(
      'Makes this request safe to retry: a repeat with the same key and body from the same caller within 24 h answers what the first answered (status included) and decides nothing new; the same key with another body is refused with 422 idempotency_key_reused',
    ),
})
