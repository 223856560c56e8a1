// Health, readiness and metrics: open, for probes and scrapers.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { isMigrated, type Db } from '../../store/db.js'
import type { Metrics } from '../metrics.js'
import { sendProblem } from '../plugins/errors.js'

export const systemRoutes: FastifyPluginAsyncZod<{ db: Db; metrics: Metrics }> = async (app, { db, metrics }) => {
  app.get('/healthz', {
    schema: { operationId: 'health', tags: ['system'], summary: 'Process is up', response: { 200: z.object({ status: z.literal('ok') }) } },
    handler: async () => ({ status: 'ok' as const }),
  })

  app.get('/readyz', {
    schema: {
      operationId: 'ready',
      tags: ['system'],
      summary: 'Database open and migrated',
      response: { 200: z.object({ status: z.literal('ready') }) },
    },
    handler: async (request, reply) => {
      if (!db.open || !isMigrated(db)) return sendProblem(reply, request, 'service_unavailable', 'database is not open or not migrated')
      return { status: 'ready' as const }
    },
  })

  app.get('/metrics', {
    schema: { operationId: 'metrics', tags: ['system'], summary: 'Prometheus text format', produces: ['text/plain'] },
    handler: async (_request, reply) => {
      reply.type(metrics.registry.contentType)
      return metrics.registry.metrics()
    },
  })
}
