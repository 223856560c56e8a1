// buildApp wires the HTTP edge over the domain. It never listens: server.ts and tests do.
import { randomUUID } from 'node:crypto'
import rateLimit from '@fastify/rate-limit'
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import sjson from 'secure-json-parse'
import { serializerCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod'
import type { z } from 'zod'
import { DomainError } from './domain/errors.js'
import type { Warden } from './domain/index.js'
import { createMetrics, type Metrics } from './http/metrics.js'
import { authPlugin } from './http/plugins/auth.js'
import { lazyChildLogger } from './http/request-logger.js'
import { errorsPlugin, RequestValidationError, sendProblem } from './http/plugins/errors.js'
import { consoleRoutes } from './http/plugins/console.js'
import { swaggerPlugin } from './http/plugins/swagger.js'
import { auditRoutes } from './http/routes/audit.js'
import { contractRoutes } from './http/routes/contract.js'
import { createEventHub, type EventHub, type EventHubOptions } from './events/hub.js'
import { eventRoutes } from './http/routes/events.js'
import { summaryRoutes } from './http/routes/summary.js'
import { killSwitchRoutes } from './http/routes/kill-switch.js'
import { manifestRoutes } from './http/routes/manifests.js'
import { sandboxRoutes } from './http/routes/sandboxes.js'
import { systemRoutes } from './http/routes/system.js'
import { workerAdminRoutes, workerSelfRoutes } from './http/routes/workers.js'
import { LIMITS } from './schemas/index.js'
import pkg from '../package.json' with { type: 'json' }

export interface AppOptions {
  warden: Warden
  operatorToken: string
  metrics?: Metrics
  /** A pino logger; none (silent) when omitted. */
  logger?: FastifyBaseLogger
  /** Registrations per minute per client address; 0 or undefined: no limit. */
  registerRateLimit?: number
  /** The event stream's keep-alive interval and stall limit (tests shorten them). */
  events?: Omit<EventHubOptions, 'source'>
  /** Socket limits; Node's defaults when omitted (tests using inject need none). */
  server?: ServerLimits
}

/** How long a client may take and how many sockets it may hold (SPEC §7: slow sockets cannot hold resources). */
export interface ServerLimits {
  /** From connection to the end of the request headers. */
  headersTimeoutMs: number
  /** From connection to the end of the whole request, body included. */
  requestTimeoutMs: number
  /** An idle keep-alive socket between requests. */
  keepAliveTimeoutMs: number
  /** Open sockets; beyond it new ones are closed at once. */
  maxConnections: number
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The audit event stream's fan-out (its stats feed benchmarks and tests). */
    events: EventHub
  }
}


const partNames: Record<string, string> = { body: '', querystring: 'query', params: 'path', headers: 'headers' }

function invalidBody(message: string): Error {
  return Object.assign(new Error(message), { statusCode: 400, code: 'FST_ERR_CTP_INVALID_JSON_BODY' })
}

/**
 * Whether `text` has at most `limit` opening brackets: a value nested `limit` deep needs one more,
 * so such a body (every heartbeat's) needs no walk. Brackets inside strings only count extra.
 */
export function fewBrackets(text: string, limit: number): boolean {
  let open = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if ((c === 0x7b || c === 0x5b) && ++open > limit) return false
  }
  return true
}

/** The path of the first value nested deeper than `limit`, found without recursion. */
export function nestedBeyond(root: object, limit: number): string | null {
  const stack: Array<{ value: unknown; depth: number; path: string }> = [{ value: root, depth: 0, path: 'body' }]
  while (stack.length > 0) {
    const { value, depth, path } = stack.pop()!
    if (value === null || typeof value !== 'object') continue
    if (depth >= limit) return path
    for (const [key, child] of Object.entries(value)) stack.push({ value: child, depth: depth + 1, path: `${path}.${key}` })
  }
  return null
}

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const { warden } = options
  const metrics = options.metrics ?? createMetrics()
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger, childLoggerFactory: lazyChildLogger } : { logger: false }),
    bodyLimit: LIMITS.bodyBytes,
    ...(options.server
      ? {
          requestTimeout: options.server.requestTimeoutMs,
          keepAliveTimeout: options.server.keepAliveTimeoutMs,
          http: {
            headersTimeout: Math.min(options.server.headersTimeoutMs, options.server.requestTimeoutMs),
            // Node checks both timeouts on this interval (30 s by default): a slow socket lived that much longer.
            connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(options.server.headersTimeoutMs / 4))),
          },
        }
      : {}),
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    routerOptions: { maxParamLength: 128 },
    // Malformed URLs and over-long path parameters get a problem document like everything else.
    frameworkErrors: (error, request, reply) => {
      reply.header('x-request-id', request.id)
      return sendProblem(reply, request, 'validation_failed', error.message)
    },
  }).withTypeProvider<ZodTypeProvider>()

  // Fastify hands a missing body to validation as null; optional bodies treat it as absent.
  app.setValidatorCompiler(({ schema, httpPart }) => (data) => {
    const input = httpPart === 'body' && data === null ? undefined : data
    const result = (schema as z.ZodType).safeParse(input, { reportInput: true })
    if (result.success) return { value: result.data }
    return { error: new RequestValidationError(result.error.issues, partNames[httpPart ?? 'body'] ?? '') }
  })
  app.setSerializerCompiler(serializerCompiler)

  // An empty body is accepted with or without a JSON content type (Swagger UI and curl send both).
  // JSON is the only body type: text/plain is refused with 415 like any other.
  app.removeContentTypeParser('text/plain')
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = (body as string).trim()
    if (text === '') return done(null, undefined)
    let value: unknown
    try {
      value = sjson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' })
    } catch (error) {
      return done(invalidBody(`body is not valid JSON: ${(error as Error).message}`), undefined)
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return done(invalidBody('body must be a JSON object'), undefined)
    const tooDeep = fewBrackets(text, LIMITS.jsonDepth) ? null : nestedBeyond(value, LIMITS.jsonDepth)
    if (tooDeep !== null) return done(invalidBody(`${tooDeep} is nested deeper than ${LIMITS.jsonDepth} levels`), undefined)
    done(null, value)
  })

  if (options.server) app.server.maxConnections = options.server.maxConnections

  // Callback-style hooks: they run on every request, and an async one costs a promise each time.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    done()
  })

  app.addHook('onResponse', (request, reply, done) => {
    metrics.httpRequest(request.method, request.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000)
    done()
  })

  metrics.observeState(warden.queries.summary)
  metrics.observeSandboxes(() => warden.sandboxes.usageByState())

  await app.register(errorsPlugin)
  await app.register(authPlugin, { operatorToken: options.operatorToken, authentication: warden.authentication })
  await app.register(swaggerPlugin, { version: pkg.version })
  await app.register(systemRoutes, { queries: warden.queries, metrics })
  await app.register(contractRoutes, { warden })
  await app.register(manifestRoutes, { warden })
  await app.register(rateLimit, {
    global: false,
    errorResponseBuilder: (_request, context) =>
      new DomainError('rate_limited', `too many registrations from this address; retry in ${context.after}`, {
        retry_after: Math.max(1, Math.ceil(context.ttl / 1000)),
      }),
  })
  await app.register(workerSelfRoutes, { warden, metrics, registerRateLimit: options.registerRateLimit ?? 0 })
  await app.register(workerAdminRoutes, { warden })
  await app.register(killSwitchRoutes, { warden })
  await app.register(auditRoutes, { warden })
  await app.register(summaryRoutes, { warden })
  await app.register(sandboxRoutes, { warden })

  const hub = createEventHub({ ...options.events, source: warden.queries.auditFeed })
  // Streams never end by themselves: end them first so close() is not held open.
  app.addHook('preClose', async () => hub.close())
  app.decorate('events', hub)
  await app.register(eventRoutes, { hub })
  await app.register(consoleRoutes, {})
  return app
}
