// Route-level schema helpers shared by every resource.
import { z } from 'zod'
import { statusByCode } from '../domain/errors.js'
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
  429: 'Cooldown or rate limit; see Retry-After',
  503: 'Service unavailable',
}

/** The codes a status can carry, for its description: e.g. 403 lists every denial. */
function codesOf(status: number): string {
  return Object.entries(statusByCode)
    .filter(([, s]) => s === status)
    .map(([code]) => `\`${code}\``)
    .join(', ')
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
