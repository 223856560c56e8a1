// The HTTP side of SPEC §2.8: reads the bearer token and hands it to domain/authentication.ts.
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import fp from 'fastify-plugin'
import { operatorAuthenticator, type Authentication } from '../../domain/authentication.js'

declare module 'fastify' {
  interface FastifyInstance {
    requireOperator: AuthHook
    requireWorker: AuthHook
  }
  interface FastifyRequest {
    /** The worker whose lease token authenticated this request. */
    worker: { worker_id: string } | null
  }
}

/**
 * An onRequest hook in callback style: it runs on every authenticated request, and an async hook
 * costs a promise and a microtask turn each time. A throw is caught by Fastify and answered.
 */
type AuthHook = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void

export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  if (typeof header !== 'string') return undefined
  const match = /^Bearer +([\x21-\x7e]{1,512})$/i.exec(header.trim())
  return match?.[1]
}

export interface AuthOptions {
  operatorToken: string
  authentication: Authentication
}

export const authPlugin = fp(async function auth(app: FastifyInstance, options: AuthOptions) {
  const checkOperator = operatorAuthenticator(options.operatorToken)
  app.decorateRequest('worker', null)

  const requireOperator: AuthHook = (request, _reply, done) => {
    checkOperator(bearerToken(request))
    done()
  }
  const requireWorker: AuthHook = (request, _reply, done) => {
    const { id } = request.params as { id: string }
    request.worker = options.authentication.worker(id, bearerToken(request))
    done()
  }
  app.decorate('requireOperator', requireOperator)
  app.decorate('requireWorker', requireWorker)
})
