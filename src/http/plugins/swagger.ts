// The OpenAPI 3.1 document (from the zod schemas) and Swagger UI at /docs.
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod'

export const swaggerPlugin = fp(async function docs(app: FastifyInstance, options: { version: string }) {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Warden',
        version: options.version,
        description:
          'Control plane for self-replicating AI workers: signed manifests, heartbeat leases, a replication contract, ' +
          'a kill switch and a hash-chained audit log. Errors are RFC 9457 problem documents with a stable `code`.',
      },
      tags: [
        { name: 'workers', description: 'Registration, heartbeats, spawning, and operator control of workers' },
        { name: 'manifests', description: 'Root manifests' },
        { name: 'contract', description: 'The replication contract' },
        { name: 'kill-switch', description: 'Stop everything' },
        { name: 'audit', description: 'The hash-chained decision log' },
        { name: 'system', description: 'Health, readiness, metrics' },
      ],
      components: {
        securitySchemes: {
          operatorToken: { type: 'http', scheme: 'bearer', description: 'The operator token (WARDEN_OPERATOR_TOKEN or the operator-token file)' },
          leaseToken: { type: 'http', scheme: 'bearer', description: 'The lease token returned to this worker at registration' },
        },
      },
    },
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
})
