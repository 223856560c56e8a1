import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { ContractInputSchema, ContractSchema } from '../../schemas/index.js'
import type { Warden } from '../../domain/index.js'
import { operatorSecurity, problems } from '../schemas.js'

export const contractRoutes: FastifyPluginAsyncZod<{ warden: Warden }> = async (app, { warden }) => {
  app.addHook('onRequest', app.requireOperator)

  app.get('/v1/contract', {
    schema: {
      operationId: 'getContract',
      tags: ['contract'],
      summary: 'The current replication contract',
      security: operatorSecurity,
      response: { 200: ContractSchema.describe('The current contract and its version'), ...problems(401) },
    },
    handler: async () => warden.contracts.view(),
  })

  app.put('/v1/contract', {
    schema: {
      operationId: 'putContract',
      tags: ['contract'],
      summary: 'Replace the contract (validated, audited, version + 1)',
      security: operatorSecurity,
      body: ContractInputSchema,
      response: { 200: ContractSchema.describe('The new contract, version + 1'), ...problems(400, 401, 413, 415) },
    },
    handler: async (request) => warden.contracts.replace(request.body),
  })
}
