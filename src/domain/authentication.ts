// SPEC §2.8: operator endpoints need the operator token; a worker's endpoints need the lease
// token issued to *that* worker at registration, so no worker can act for another. Tokens are
// stored only as SHA-256 digests and compared in constant time.
import type { DomainDeps } from './context.js'
import { DomainError } from './errors.js'
import { generateToken, hashToken, tokenMatches } from './tokens.js'

/** Compared against when the worker does not exist, so an unknown id costs and answers the same as a wrong token. */
const NO_WORKER_HASH = hashToken(generateToken())

export function createAuthentication(deps: Pick<DomainDeps, 'store' | 'leases'>) {
  const { store, leases } = deps
  return {
    /**
     * The worker `workerId`, when `token` is its lease token. A wrong token answers unauthorized
     * alike for a known and an unknown id, so no caller learns which ids exist (SPEC §2.8).
     */
    worker(workerId: string, token: string | undefined): { worker_id: string } {
      const refused = () => new DomainError('unauthorized', `a valid lease token of worker ${workerId} is required`)
      if (token === undefined) throw refused()
      const tokenHash = leases.get(workerId)?.tokenHash ?? store.workers.tokenHash(workerId)
      if (!tokenMatches(token, tokenHash ?? NO_WORKER_HASH) || tokenHash === undefined) throw refused()
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
