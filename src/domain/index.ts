// Wires the domain services over one store.
import type { Clock } from './clock.js'
import { createAdmission } from './admission.js'
import { createContractService } from './contract-service.js'
import type { DomainDeps } from './context.js'
import { LeaseBook } from './lease-book.js'
import { createLifecycle } from './lifecycle.js'
import { createReaper } from './reaper.js'
import { recordOnlyDriver, type SandboxDriver } from './sandbox.js'
import type { Signer } from './signing.js'
import { verifyChain } from './audit-chain.js'
import type { Store } from '../store/index.js'

export interface WardenOptions {
  store: Store
  clock: Clock
  signer: Signer
  /** Contract applied at start (WARDEN_CONTRACT); the stored one, or the defaults, otherwise. */
  contract?: unknown
  sandbox?: SandboxDriver
}

export function createWarden(options: WardenOptions) {
  const contracts = createContractService(options.store, options.clock, options.contract)
  const deps: DomainDeps = {
    store: options.store,
    clock: options.clock,
    signer: options.signer,
    contracts,
    sandbox: options.sandbox ?? recordOnlyDriver,
    leases: new LeaseBook(),
  }
  const lifecycle = createLifecycle(deps)
  const admission = createAdmission(deps, lifecycle)
  const reaper = createReaper(deps, lifecycle)
  return {
    ...deps,
    lifecycle,
    admission,
    reaper,
    verifyAudit: () => verifyChain(options.store.audit.iterate(), options.store.audit.head()),
  }
}

export type Warden = ReturnType<typeof createWarden>
