// SPEC §2.8: operator endpoints need the operator token; a worker's endpoints need the lease
// token issued to that worker. Tokens are compared as SHA-256 digests in constant time.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { DomainError } from '../../domain/errors.js'
import type { Lifecycle } from '../../domain/lifecycle.js'
import { hashToken, tokenMatches } from '../../domain/tokens.js'

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
  lifecycle: Lifecycle
}

export const authPlugin = fp(async function auth(app: FastifyInstance, options: AuthOptions) {
  const operatorHash = hashToken(options.operatorToken)
  app.decorateRequest('worker', null)

  app.decorate('requireOperator', async (request: FastifyRequest) => {
    const token = bearerToken(request)
    if (token === undefined || !tokenMatches(token, operatorHash)) {
      throw new DomainError('unauthorized', 'this endpoint needs the operator token: Authorization: Bearer <token>')
    }
  })

  app.decorate('requireWorker', async (request: FastifyRequest) => {
    const { id } = request.params as { id: string }
    request.worker = options.lifecycle.authenticate(id, bearerToken(request))
  })
})
