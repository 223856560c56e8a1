// Managed workers (SPEC §5): launch a managed root; what this host's sandbox driver enforces.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import type { Warden } from '../../domain/index.js'
import { SandboxDriverStatusSchema, SandboxLaunchRequestSchema, SandboxLaunchResponseSchema } from '../../schemas/index.js'
import { IdempotencyHeadersSchema, operatorSecurity, problems } from '../schemas.js'

export const sandboxRoutes: FastifyPluginAsyncZod<{ warden: Warden }> = async (app, { warden }) => {
  app.addHook('onRequest', app.requireOperator)
  const tags = ['sandboxes']

  app.post('/v1/sandboxes', {
    schema: {
      operationId: 'launchSandbox',
      tags,
      summary: 'Launch a managed root worker: issue, register and start its sandbox in one decision',
      description:
        'The program runs in a sandbox of its own with WARDEN_URL, WARDEN_WORKER_ID, WARDEN_LEASE_TOKEN and WARDEN_MANIFEST in its environment. ' +
        'The answer comes once the sandbox runs (or its launch failed: the worker is then `exited`).',
      security: operatorSecurity,
      headers: IdempotencyHeadersSchema,
      body: SandboxLaunchRequestSchema,
      response: {
        201: SandboxLaunchResponseSchema.describe('Launched: the worker (managed, with its sandbox) and the manifest it runs with'),
        ...problems(400, 401, 403, 413, 415, 422, 503),
      },
    },
    handler: async (request, reply) => {
      const launch = warden.sandboxes.launchRoot(request.body, request.headers['idempotency-key'])
      await launch.launched
      return reply.code(201).send({ worker: warden.queries.worker(launch.manifest.worker_id), manifest: launch.manifest })
    },
  })

  app.get('/v1/sandbox-driver', {
    schema: {
      operationId: 'getSandboxDriver',
      tags,
      summary: 'The sandbox driver of this host and what it enforces',
      security: operatorSecurity,
      response: { 200: SandboxDriverStatusSchema.describe('The driver, whether it can run, and what it enforces'), ...problems(401) },
    },
    handler: async () => warden.queries.sandboxDriver(),
  })
}
