import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import type { Warden } from '../../domain/index.js'
import { SummarySchema } from '../../schemas/index.js'
import { operatorSecurity, problems } from '../schemas.js'

export const summaryRoutes: FastifyPluginAsyncZod<{ warden: Warden }> = async (app, { warden }) => {
  app.addHook('onRequest', app.requireOperator)

  app.get('/v1/summary', {
    schema: {
      operationId: 'getSummary',
      tags: ['workers'],
      summary: 'Workers by status, quota in use, kill switch and audit head, in one answer',
      description: 'What a dashboard shows first; `audit_head_seq` is where to start `GET /v1/events` to miss nothing after it.',
      security: operatorSecurity,
      response: { 200: SummarySchema.describe('Counts, quota in use, kill switch and audit head'), ...problems(401) },
    },
    handler: async () => warden.queries.summary(),
  })
}
