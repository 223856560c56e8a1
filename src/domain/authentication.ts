// SPEC §2.8: operator endpoints need the operator token; a worker's endpoints need the lease
// token issued to *that* worker at registration, so no worker can act for another. Tokens are
// stored only as SHA-256 digests and compared in constant time.
import type { DomainDeps } from './context.js'
import { DomainError } from './errors.js'
import { hashToken, tokenMatches } from './tokens.js'

export function createAuthentication(deps: Pick<DomainDeps, 'store' | 'leases'>) {
  const { store, leases } = deps
  return {
    /** The worker `workerId`, when `token` is its lease token; throws unauthorized or worker_not_found. */
    worker(workerId: string, token: string | undefined): { worker_id: string } {
      if (token === undefined) throw new DomainError('unauthorized', `the lease token of worker ${workerId} is required`)
      const tokenHash = leases.get(workerId)?.tokenHash ?? store.workers.tokenHash(workerId)
      if (tokenHash === undefined) throw new DomainError('worker_not_found', `no worker ${workerId}`)
      if (!tokenMatches(token, tokenHash)) {
        throw new DomainError('unauthorized', `a valid lease token of worker ${workerId} is required`)
      }
      return { worker_id: workerId }
    },
  }
}

/** Checks a presented bearer token against the operator token, of which only the digest is kept. */
export function operatorAuthenticator(operatorToken: string): (token: string | undefined) => void {
  const operatorHash = hashToken(operatorToken)
  return (token) => {
    if (token === undefined || !tokenMatches(token, operatorHash)) {
      throw new DomainError('unauthorized', 'this endpoint needs the operator token: Authorization: Bearer <token>')
    }
  }
}

export type Authentication = ReturnType<typeof createAuthentication>
