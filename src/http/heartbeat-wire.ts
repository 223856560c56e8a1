// The heartbeat is the request every live worker sends every few seconds, so its plainly valid
// form is checked and its answer written without zod. The zod schemas stay the contract (types,
// OpenAPI, every error message): whatever the quick check does not accept goes to zod, which
// answers exactly as before. test/http/heartbeat-wire.test.ts holds both to the same verdicts.
import type { FastifySchemaCompiler, FastifySerializerCompiler } from 'fastify'
import { LIMITS, type HeartbeatResponse } from '../schemas/index.js'

const WORKER_ID = /^[0-9a-f]{32}$/
const METRIC_NAME_CHARS = 64

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

/** `{id}` and nothing else, `id` a worker id: what WorkerParamsSchema accepts unchanged. */
export function isPlainWorkerParams(params: unknown): boolean {
  if (!isObject(params) || typeof params.id !== 'string' || !WORKER_ID.test(params.id)) return false
  for (const key in params) if (key !== 'id') return false
  return true
}

/** No body, or `{metrics?}` with at most 64 finite numbers under 1–64 character names. */
export function isPlainHeartbeatBody(body: unknown): boolean {
  if (body === undefined || body === null) return true
  if (!isObject(body)) return false
  for (const key in body) if (key !== 'metrics') return false
  const { metrics } = body
  if (metrics === undefined) return true
  if (!isObject(metrics)) return false
  let count = 0
  for (const name in metrics) {
    const value = metrics[name]
    if (++count > LIMITS.metrics || name.length < 1 || name.length > METRIC_NAME_CHARS) return false
    if (typeof value !== 'number' || !Number.isFinite(value)) return false
  }
  return true
}

/** The 200 answer, field by field (an allowlist, like the zod serializer it stands in for). */
export function serializeHeartbeat(answer: HeartbeatResponse): string {
  return (
    `{"directive":${JSON.stringify(answer.directive)},"lease_expires_at":${JSON.stringify(answer.lease_expires_at)},` +
    `"expires_at":${JSON.stringify(answer.expires_at)},"heartbeat_interval_seconds":${JSON.stringify(answer.heartbeat_interval_seconds)},` +
    `"heartbeat_timeout_seconds":${JSON.stringify(answer.heartbeat_timeout_seconds)}}`
  )
}

/**
 * Route-level compilers for the heartbeat: the quick path for plainly valid params, body and 200
 * answer; the app's own (zod) compilers for everything else.
 */
export function heartbeatCompilers(app: {
  validatorCompiler: FastifySchemaCompiler<unknown> | undefined
  serializerCompiler: FastifySerializerCompiler<unknown> | undefined
}) {
  const validators = app.validatorCompiler
  const serializers = app.serializerCompiler
  if (!validators || !serializers) throw new Error('the app sets its validator and serializer compilers before the routes')
  const validatorCompiler: FastifySchemaCompiler<unknown> = (route) => {
    const full = validators(route)
    const plain = route.httpPart === 'body' ? isPlainHeartbeatBody : route.httpPart === 'params' ? isPlainWorkerParams : null
    if (plain === null) return full
    return (data: unknown) => (plain(data) ? { value: data ?? undefined } : full(data))
  }
  const serializerCompiler: FastifySerializerCompiler<unknown> = (route) =>
    route.httpStatus === '200' ? (data: unknown) => serializeHeartbeat(data as HeartbeatResponse) : serializers(route)
  return { validatorCompiler, serializerCompiler }
}
