// Health, readiness and metrics: open, for probes and scrapers.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { ProblemSchema } from '../../schemas/index.js'
import type { Queries } from '../../domain/queries.js'
import type { Metrics } from '../metrics.js'
import { sendProblem } from '../plugins/errors.js'

export const systemRoutes: FastifyPluginAsyncZod<{ queries: Queries; metrics: Metrics }> = async (app, { queries, metrics }) => {
  app.get('/healthz', {
    schema: { operationId: 'health', tags: ['system'], summary: 'Process is up', response: { 200: z.object({ status: z.literal('ok') }).describe('The process is up') } },
    handler: async () => ({ status: 'ok' as const }),
  })

  app.get('/readyz', {
    schema: {
      operationId: 'ready',
      tags: ['system'],
      summary: 'Database open, migrated and writable',
      description: 'Answers 503 `storage_unavailable` while writes to the database fail (e.g. a full disk).',
      response: {
        200: z.object({ status: z.literal('ready') }).describe('The database is open, migrated and writable'),
        503: ProblemSchema.describe('Database closed or not migrated (`service_unavailable`), or writes failing (`storage_unavailable`)'),
      },
    },
    handler: async (request, reply) => {
      const readiness = queries.readiness()
      return readiness.ready ? { status: 'ready' as const } : sendProblem(reply, request, readiness.code, readiness.detail)
    },
  })

  app.get('/metrics', {
    schema: { operationId: 'metrics', tags: ['system'], summary: 'Prometheus text format',
      produces: ['text/plain'],
      response: { 200: { description: 'Metrics in the Prometheus text exposition format', content: { 'text/plain': { schema: z.string() } } } },
    },
    handler: async (_request, reply) => {
      reply.type(metrics.registry.contentType)
      return metrics.registry.metrics()
    },
  })
}
