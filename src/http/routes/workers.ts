import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import type { Warden } from '../../domain/index.js'
import { LINEAGE_LIMIT } from '../../domain/queries.js'
import {
  HeartbeatRequestSchema,
  HeartbeatResponseSchema,
  KillRequestSchema,
  KillResultSchema,
  LineageSchema,
  ManifestSchema,
  ReasonBodySchema,
  RegistrationResponseSchema,
  SpawnRequestSchema,
  WorkerListQuerySchema,
  WorkerListSchema,
  WorkerViewSchema,
  LIMITS,
} from '../../schemas/index.js'
import { heartbeatCompilers } from '../heartbeat-wire.js'
import type { Metrics } from '../metrics.js'
import { IdempotencyHeadersSchema, operatorSecurity, problems, WorkerParamsSchema, workerSecurity } from '../schemas.js'

/** The worker-facing side: register, heartbeat, spawn, shut down. */
export const workerSelfRoutes: FastifyPluginAsyncZod<{ warden: Warden; metrics: Metrics; registerRateLimit: number }> = async (
  app,
  { warden, metrics, registerRateLimit },
) => {
  const tags = ['workers']

  app.post('/v1/workers', {
    config: registerRateLimit > 0 ? { rateLimit: { max: registerRateLimit, timeWindow: 60_000 } } : {},
    schema: {
      operationId: 'registerWorker',
      tags,
      summary: 'Register with a signed manifest (the manifest is the credential)',
      description:
        'With an Idempotency-Key, a repeat answers the first registration with a fresh lease_token and revokes the one answered before. Keys are scoped to the manifest (its worker_id), the only credential of this open endpoint.',
      headers: IdempotencyHeadersSchema,
      body: ManifestSchema,
      response: { 201: RegistrationResponseSchema.describe('Registered: the worker view and its lease token (shown once)'), ...problems(400, 403, 409, 413, 415, 422, 429) },
    },
    handler: async (request, reply) => reply.code(201).send(warden.admission.register(request.body, request.headers['idempotency-key'], request.ip)),
  })

  app.post('/v1/workers/:id/heartbeat', {
    onRequest: app.requireWorker,
    schema: {
      operationId: 'heartbeat',
      tags,
      summary: 'Renew the lease; the answer is a directive',
      security: workerSecurity,
      params: WorkerParamsSchema,
      body: HeartbeatRequestSchema.optional(),
      response: { 200: HeartbeatResponseSchema.describe('Lease renewed; `directive` says what to do'), ...problems(400, 401, 404, 410, 413, 415) },
    },
    ...heartbeatCompilers(app),
    // Counted once: answers here, a terminated worker's 410 when its error is thrown.
    onError: (_request, _reply, error, done) => {
      if ((error as { code?: unknown }).code === 'worker_terminated') metrics.heartbeat('terminate')
      done()
    },
    handler: async (request) => {
      const answer = warden.liveness.heartbeat(request.params.id)
      metrics.heartbeat(answer.directive)
      return answer
    },
  })

  app.post('/v1/workers/:id/spawn', {
    onRequest: app.requireWorker,
    schema: {
      operationId: 'spawn',
      tags,
      summary: 'Ask to replicate; an approval is the child manifest',
      description:
        "A managed worker's approved child is registered and launched by Warden in a sandbox of its own, running its root's program; the manifest answered is already used.",
      security: workerSecurity,
      params: WorkerParamsSchema,
      headers: IdempotencyHeadersSchema,
      body: SpawnRequestSchema,
      response: {
        201: ManifestSchema.describe('Approved: the signed child manifest (for a managed parent, already registered and launched)'),
        ...problems(400, 401, 403, 404, 410, 413, 415, 422, 429, 503),
      },
    },
    handler: async (request, reply) => {
      const { manifest, launched } = warden.sandboxes.spawn(request.worker!, request.body, request.headers['idempotency-key'])
      if (launched) await launched
      return reply.code(201).send(manifest)
    },
  })

  app.delete('/v1/workers/:id', {
    onRequest: app.requireWorker,
    schema: {
      operationId: 'deregisterWorker',
      tags,
      summary: 'Graceful shutdown; repeating it is harmless',
      security: workerSecurity,
      params: WorkerParamsSchema,
      querystring: z.strictObject({ reason: z.string().trim().min(1).max(LIMITS.reasonChars).optional() }),
      response: { 200: WorkerViewSchema.describe('The worker, deregistered'), ...problems(400, 401, 404) },
    },
    handler: async (request) => warden.transitions.deregister(request.params.id, request.query.reason),
  })
}

/** The operator side: read, quarantine, release, kill. */
export const workerAdminRoutes: FastifyPluginAsyncZod<{ warden: Warden }> = async (app, { warden }) => {
  app.addHook('onRequest', app.requireOperator)
  const tags = ['workers']
  const security = operatorSecurity

  app.get('/v1/workers', {
    schema: {
      operationId: 'listWorkers',
      tags,
      summary: 'List workers in registration order',
      security,
      querystring: WorkerListQuerySchema,
      response: { 200: WorkerListSchema.describe('One page of workers; pass `next_cursor` as `cursor` for the next'), ...problems(400, 401) },
    },
    handler: async (request) => warden.queries.workers(request.query),
  })

  app.get('/v1/workers/:id', {
    schema: {
      operationId: 'getWorker',
      tags,
      summary: 'One worker: manifest fields, status, reason, timestamps, children count',
      security,
      params: WorkerParamsSchema,
      response: { 200: WorkerViewSchema.describe('The worker'), ...problems(400, 401, 404) },
    },
    handler: async (request) => warden.queries.worker(request.params.id),
  })

  app.get('/v1/workers/:id/lineage', {
    schema: {
      operationId: 'getLineage',
      tags,
      summary: `Ancestors (root first) and up to ${LINEAGE_LIMIT} descendants`,
      security,
      params: WorkerParamsSchema,
      response: { 200: LineageSchema.describe('Ancestors and descendants'), ...problems(400, 401, 404) },
    },
    handler: async (request) => warden.queries.lineage(request.params.id),
  })

  app.post('/v1/workers/:id/quarantine', {
    schema: {
      operationId: 'quarantineWorker',
      tags,
      summary: 'Quarantine: alive, suspended, may not spawn',
      security,
      params: WorkerParamsSchema,
      body: ReasonBodySchema,
      response: { 200: WorkerViewSchema.describe('The worker, quarantined'), ...problems(400, 401, 404, 410, 413, 415) },
    },
    handler: async (request) => warden.transitions.quarantine(request.params.id, request.body.reason),
  })

  app.delete('/v1/workers/:id/quarantine', {
    schema: {
      operationId: 'releaseWorker',
      tags,
      summary: 'Release from quarantine',
      security,
      params: WorkerParamsSchema,
      response: { 200: WorkerViewSchema.describe('The worker, active again'), ...problems(400, 401, 404, 410) },
    },
    handler: async (request) => warden.transitions.release(request.params.id),
  })

  app.post('/v1/workers/:id/kill', {
    schema: {
      operationId: 'killWorker',
      tags,
      summary: 'Kill a worker and (cascade, the default) its live descendants',
      security,
      params: WorkerParamsSchema,
      body: KillRequestSchema.optional(),
      response: { 200: KillResultSchema.describe('The worker, killed, and every worker this request ended'), ...problems(400, 401, 404, 413, 415) },
    },
    handler: async (request) => {
      const body = request.body ?? { cascade: true }
      return warden.transitions.kill(request.params.id, { reason: body.reason, cascade: body.cascade })
    },
  })
}
