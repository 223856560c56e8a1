// The OpenAPI 3.1 document (from the zod schemas) and Swagger UI at /docs.
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { problemExample } from '../schemas.js'

const OPTIONAL_BODY = 'x-warden-optional-body'
const SCHEMAS = '#/components/schemas/'

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
type Operation = { [OPTIONAL_BODY]?: boolean; requestBody?: { required?: boolean }; responses?: Record<string, { content?: Record<string, unknown> }> }

/**
 * Per route: the zod provider's transform, plus a mark on routes whose body is optional
 * (`schema.body.optional()`). @fastify/swagger always writes `requestBody.required: true`, and
 * Swagger UI then refuses to send an empty body; the mark lets the document say `false`.
 */
const transform: typeof jsonSchemaTransform = (document) => {
  const body = document.schema?.body
  const optional = body instanceof z.ZodOptional
  const result = jsonSchemaTransform(optional ? { ...document, schema: { ...document.schema, body: body.unwrap() } } : document)
  if (optional) (result.schema as Record<string, unknown>)[OPTIONAL_BODY] = true
  return result
}

/**
 * Rewrites `$ref`s to `XInput` components as refs to `X`, and drops the ±2^53 bounds zod puts on
 * every `z.int()`: they say nothing and Swagger UI showed them as sample values.
 */
function tidy(value: Json): Json {
  if (Array.isArray(value)) return value.map(tidy)
  if (value === null || typeof value !== 'object') return value
  const out: { [key: string]: Json } = {}
  for (const [key, child] of Object.entries(value)) {
    if ((key === 'minimum' && child === Number.MIN_SAFE_INTEGER) || (key === 'maximum' && child === Number.MAX_SAFE_INTEGER)) continue
    out[key] = key === '$ref' && typeof child === 'string' && child.startsWith(SCHEMAS) ? child.replace(/Input$/, '') : tidy(child)
  }
  return out
}

/**
 * The whole document: one component per wire shape. The zod provider emits each schema twice,
 * as read (`XInput`: fields with defaults optional) and as written (`X`); requests and responses
 * share one vocabulary here, so the document keeps the request form under the plain name (a
 * field with a default is simply optional, its `default` shown). Optional bodies get
 * `required: false`, problem answers the `application/problem+json` type they are sent with.
 */
const transformObject: typeof jsonSchemaTransformObject = (document) => {
  const object = jsonSchemaTransformObject(document) as unknown as {
    components: { schemas: Record<string, Json> }
    paths: Record<string, Record<string, Operation>>
  }
  const schemas: Record<string, Json> = {}
  for (const [name, schema] of Object.entries(object.components.schemas)) {
    if (name.endsWith('Input')) continue
    schemas[name] = object.components.schemas[`${name}Input`] ?? schema
  }
  for (const [path, methods] of Object.entries(object.paths)) {
    for (const operation of Object.values(methods)) {
      if (operation[OPTIONAL_BODY]) {
        delete operation[OPTIONAL_BODY]
        if (operation.requestBody) operation.requestBody.required = false
      }
      for (const [status, response] of Object.entries(operation.responses ?? {})) {
        const json = response.content?.['application/json']
        if (Number(status) >= 400 && json) response.content = { 'application/problem+json': { ...json, example: problemExample(Number(status), path) } }
      }
    }
  }
  return tidy({ ...object, components: { ...object.components, schemas } } as unknown as Json) as unknown as ReturnType<
    typeof jsonSchemaTransformObject
  >
}

export const swaggerPlugin = fp(async function docs(app: FastifyInstance, options: { version: string }) {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Warden',
        version: options.version,
        description:
          'Control plane for self-replicating AI workers: signed manifests, heartbeat leases, a replication contract, ' +
          'a kill switch and a hash-chained audit log. Errors are RFC 9457 problem documents with a stable `code`.\n\n' +
          'Operator endpoints take `Authorization: Bearer <operator token>` (Authorize, `operatorToken`); a worker\'s ' +
          'endpoints take the lease token it received at registration (`leaseToken`).',
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
    transform,
    transformObject,
  })
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    theme: { title: 'Warden API' },
    // BaseLayout: no top bar (Swagger's logo and a URL box showing /docs/json); the title and
    // description of the document head the page.
    uiConfig: { layout: 'BaseLayout', docExpansion: 'list', deepLinking: true, tryItOutEnabled: true },
  })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
})
