import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import type { Warden } from '../../domain/index.js'
import { KillSwitchEngagedSchema, KillSwitchSchema, OptionalReasonBodySchema } from '../../schemas/index.js'
import { operatorSecurity, problems } from '../schemas.js'

export const killSwitchRoutes: FastifyPluginAsyncZod<{ warden: Warden }> = async (app, { warden }) => {
  app.addHook('onRequest', app.requireOperator)
  const tags = ['kill-switch']

  app.get('/v1/kill-switch', {
    schema: {
      operationId: 'getKillSwitch',
      tags,
      summary: 'Whether the kill switch is engaged, since when and why',
      security: operatorSecurity,
      response: { 200: KillSwitchSchema.describe('The kill switch state'), ...problems(401) },
    },
    handler: async () => warden.killSwitch.state(),
  })

  app.post('/v1/kill-switch', {
    schema: {
      operationId: 'engageKillSwitch',
      tags,
      summary: 'Engage: terminate every live worker and refuse all admission until disengaged',
      description: 'The body is optional. Engaging twice is harmless (terminated is then 0).',
      security: operatorSecurity,
      body: OptionalReasonBodySchema.optional(),
      response: { 200: KillSwitchEngagedSchema.describe('Engaged; `terminated` counts the workers this request ended'), ...problems(400, 401, 413, 415) },
    },
    handler: async (request) => warden.killSwitch.engage(request.body?.reason),
  })

  app.delete('/v1/kill-switch', {
    schema: {
      operationId: 'disengageKillSwitch',
      tags,
      summary: 'Disengage: admission resumes; terminated workers stay terminated',
      security: operatorSecurity,
      response: { 200: KillSwitchSchema.describe('Disengaged'), ...problems(401) },
    },
    handler: async () => warden.killSwitch.disengage(),
  })
}
