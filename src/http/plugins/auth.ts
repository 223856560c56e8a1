// The HTTP side of SPEC §2.8: reads the bearer token and hands it to domain/authentication.ts.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { operatorAuthenticator, type Authentication } from '../../domain/authentication.js'

declare module 'fastify' {
  interface FastifyInstance {
    requireOperator: (request: FastifyRequest) => Promise<void>
    requireWorker: (request: FastifyRequest) => Promise<void>
  }
  interface FastifyRequest {
    /** The worker whose lease token authenticated this request. */
    worker: { worker_id: string } | null
  }
}

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

  app.decorate('requireOperator', async (request: FastifyRequest) => {
    checkOperator(bearerToken(request))
  })

  app.decorate('requireWorker', async (request: FastifyRequest) => {
    const { id } = request.params as { id: string }
    request.worker = options.authentication.worker(id, bearerToken(request))
  })
})
