import { setImmediate } from 'node:timers/promises'
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import type { Warden } from '../../domain/index.js'
import { AuditPageSchema, AuditQuerySchema, AuditVerificationSchema } from '../../schemas/index.js'
import { operatorSecurity, problems } from '../schemas.js'

const VERIFY_SLICE_MS = 20

export const auditRoutes: FastifyPluginAsyncZod<{ warden: Warden }> = async (app, { warden }) => {
  app.addHook('onRequest', app.requireOperator)

  app.get('/v1/audit', {
    schema: {
      operationId: 'listAudit',
      tags: ['audit'],
      summary: 'Audit records, oldest first, or newest first with order=desc',
      description:
        '`worker_id` matches records about the worker or naming it as parent. Page oldest first with `after_seq`, ' +
        'newest first (`order=desc`, e.g. the last 5 decisions) with `before_seq`.',
      security: operatorSecurity,
      querystring: AuditQuerySchema,
      response: { 200: AuditPageSchema.describe('One page of audit records'), ...problems(400, 401) },
    },
    handler: async (request) => warden.queries.audit(request.query),
  })

  app.get('/v1/audit/verify', {
    schema: {
      operationId: 'verifyAudit',
      tags: ['audit'],
      summary: 'Recompute the hash chain',
      security: operatorSecurity,
      response: { 200: AuditVerificationSchema.describe('The verification result; `first_invalid_seq` names the first broken record'), ...problems(401) },
    },
    // Sliced: no turn of the loop verifies for more than a slice, so heartbeats are answered
    // meanwhile however long the chain (SPEC §2.14).
    handler: async () => {
      const verifier = warden.queries.auditVerifier()
      while (!verifier.step(VERIFY_SLICE_MS)) await setImmediate()
      return verifier.result()
    },
  })
}
