// Wires the domain services over one store.
import type { Clock } from './clock.js'
import { createAdmission } from './admission.js'
import { createContractService } from './contract-service.js'
import type { DomainDeps } from './context.js'
import { LeaseBook } from './lease-book.js'
import { createAuthentication } from './authentication.js'
import { createKillSwitch } from './kill-switch.js'
import { createLiveness } from './liveness.js'
import { createTransitions } from './transitions.js'
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
  const transitions = createTransitions(deps)
  return {
    ...deps,
    admission: createAdmission(deps, transitions),
    transitions,
    killSwitch: createKillSwitch(deps),
    liveness: createLiveness(deps, transitions),
    authentication: createAuthentication(deps),
    verifyAudit: () => verifyChain(options.store.audit.iterate(), options.store.audit.head()),
  }
}

export type Warden = ReturnType<typeof createWarden>
