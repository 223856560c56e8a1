// Route-level schema helpers shared by every resource.
import { z } from 'zod'
import { ProblemSchema, WorkerIdSchema } from '../schemas/index.js'

const descriptions: Record<number, string> = {
  400: 'Invalid request (problem `code` validation_failed)',
  401: 'Missing or wrong token',
  403: 'Policy denial or rejected manifest',
  404: 'Unknown worker',
  409: 'Manifest already used',
  410: 'Worker terminated: `directive` is terminate and `reason` says why',
  413: 'Body too large',
  415: 'Unsupported media type',
  429: 'Cooldown or rate limit; see Retry-After',
}

/** Problem responses for the given statuses, for the OpenAPI document and serialization. */
export function problems(...statuses: number[]): Record<number, z.ZodType> {
  return Object.fromEntries(statuses.map((status) => [status, ProblemSchema.describe(descriptions[status] ?? 'Error')]))
}

export const WorkerParamsSchema = z.strictObject({ id: WorkerIdSchema })

export const operatorSecurity = [{ operatorToken: [] }]
export const workerSecurity = [{ leaseToken: [] }]
