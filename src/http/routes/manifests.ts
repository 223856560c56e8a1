import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import type { Warden } from '../../domain/index.js'
import { ManifestSchema, RootManifestRequestSchema } from '../../schemas/index.js'
import { IdempotencyHeadersSchema, operatorSecurity, problems } from '../schemas.js'

export const manifestRoutes: FastifyPluginAsyncZod<{ warden: Warden }> = async (app, { warden }) => {
  app.post('/v1/manifests', {
    onRequest: app.requireOperator,
    schema: {
      operationId: 'issueRootManifest',
      tags: ['manifests'],
      summary: 'Issue a root manifest (depth 0)',
      description: 'The body is optional; an empty one uses the contract default resources and an empty state snapshot.',
      security: operatorSecurity,
      headers: IdempotencyHeadersSchema,
      body: RootManifestRequestSchema.optional(),
      response: { 201: ManifestSchema.describe('The signed root manifest; register it within manifest_ttl_seconds'), ...problems(400, 401, 403, 413, 415, 422) },
    },
    handler: async (request, reply) =>
      reply.code(201).send(warden.admission.issueRoot(request.body ?? {}, request.headers['idempotency-key'])),
  })
}
