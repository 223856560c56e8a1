// Health, readiness and metrics: open, for probes and scrapers.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { ProblemSchema, type SandboxDriverStatus } from '../../schemas/index.js'
import type { Queries } from '../../domain/queries.js'
import type { Metrics } from '../metrics.js'
import { sendProblem } from '../plugins/errors.js'

/** What /readyz says about sandboxes: which driver, and what this host does not enforce (never silently). */
const SandboxReadinessSchema = z.object({
  driver: z.enum(['process', 'none']),
  available: z.boolean().describe('false: POST /v1/sandboxes answers 503 sandbox_unavailable; external workers are served'),
  not_enforced: z.array(z.enum(['memory', 'cpu', 'pids', 'network', 'freeze', 'kill'])),
  reason: z.string().nullable(),
})

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
        200: z.object({ status: z.literal('ready'), sandbox: SandboxReadinessSchema }).describe('The database is open, migrated and writable; what the sandbox driver enforces'),
        503: ProblemSchema.describe('Database closed or not migrated (`service_unavailable`), or writes failing (`storage_unavailable`)'),
      },
    },
    handler: async (request, reply) => {
      const readiness = queries.readiness()
      if (!readiness.ready) return sendProblem(reply, request, readiness.code, readiness.detail)
      const status = queries.sandboxDriver()
      const notEnforced = (Object.keys(status.enforces) as Array<keyof SandboxDriverStatus['enforces']>).filter((what) => !status.enforces[what])
      return { status: 'ready' as const, sandbox: { driver: status.driver, available: status.available, not_enforced: notEnforced, reason: status.reason } }
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
