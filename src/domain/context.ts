// What the domain services share: the store, the clock, the signer, the current contract.
import type { Store } from '../store/index.js'
import type { RejectionCounter } from './rejections.js'
import type { Clock } from './clock.js'
import type { Idempotency } from './idempotency.js'
import type { LeaseBook } from './lease-book.js'
import type { ContractService } from './contract-service.js'
import type { SandboxEnforcer } from './sandbox.js'
import type { Signer } from './signing.js'

export interface DomainDeps {
  store: Store
  clock: Clock
  signer: Signer
  contracts: ContractService
  /** Carries committed decisions out on managed workers' sandboxes. */
  sandbox: SandboxEnforcer
  /** Leases of the live workers; renewals reach the database within a second. */
  leases: LeaseBook
  /** Keyed requests decide once (SPEC §3 Retries). */
  idempotency: Idempotency
  /** Registrations refused for failing verification, counted instead of audited one by one (SPEC §7). */
  rejections: RejectionCounter
  /** Where failures of background work (driver calls) are reported. */
  report?: (message: string, error: unknown) => void
  /** The most one stop-condition evaluation may take before it fails closed (WARDEN_CEL_BUDGET_MS). */
  celBudgetMs: number
}
