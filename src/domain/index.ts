// Wires the domain services over one store.
import type { Clock } from './clock.js'
import { createAdmission } from './admission.js'
import { createContractService } from './contract-service.js'
import type { DomainDeps } from './context.js'
import { createIdempotency } from './idempotency.js'
import { LeaseBook } from './lease-book.js'
import { createAuthentication } from './authentication.js'
import { createKillSwitch } from './kill-switch.js'
import { createLiveness } from './liveness.js'
import { createTransitions } from './transitions.js'
import { createSandboxEnforcer, noSandboxPort, type SandboxPort } from './sandbox.js'
import { createSandboxes } from './sandboxes.js'
import type { Signer } from './signing.js'
import { verifyChain } from './audit-chain.js'
import type { Store } from '../store/index.js'
import { LIVE_STATUSES, WorkerStatusSchema, type Summary, type WorkerStatus } from '../schemas/index.js'

export interface WardenOptions {
  store: Store
  clock: Clock
  signer: Signer
  /** Contract applied at start (WARDEN_CONTRACT); the stored one, or the defaults, otherwise. */
  contract?: unknown
  /** The sandbox driver, adapted; none: external workers only. */
  sandbox?: SandboxPort
  /** Failures of background work (driver calls); silent when omitted. */
  report?: (message: string, error: unknown) => void
}

export function createWarden(options: WardenOptions) {
  const contracts = createContractService(options.store, options.clock, options.contract)
  const leases = new LeaseBook()
  const report = options.report ?? (() => {})
  const enforcer = createSandboxEnforcer({
    store: options.store,
    clock: options.clock,
    contracts,
    leases,
    port: options.sandbox ?? noSandboxPort(),
    report,
  })
  const deps: DomainDeps = {
    store: options.store,
    clock: options.clock,
    signer: options.signer,
    contracts,
    sandbox: enforcer,
    leases,
    report,
    idempotency: createIdempotency(options.store, () => options.clock.now()),
  }
  const transitions = createTransitions(deps)
  const killSwitch = createKillSwitch(deps)
  const admission = createAdmission(deps, transitions)
  return {
    ...deps,
    admission,
    transitions,
    killSwitch,
    liveness: createLiveness(deps, transitions),
    authentication: createAuthentication(deps),
    /** Counts for dashboards: the quota in use (SPEC §2.1) and where the audit log stands. */
    summary: (): Summary => {
      const { store } = options
      const workers = Object.fromEntries(WorkerStatusSchema.options.map((status) => [status, 0])) as Record<WorkerStatus, number>
      for (const { status, n } of store.workers.countByStatus()) workers[status] = n
      const outstanding = store.manifests.countOutstanding(options.clock.now())
      const live = LIVE_STATUSES.reduce((sum, status) => sum + workers[status], 0)
      const contract = contracts.current()
      return {
        workers,
        outstanding_manifests: outstanding,
        slots_in_use: live + outstanding,
        max_replicas: contract.max_replicas,
        contract_version: contract.version,
        kill_switch: killSwitch.state(),
        audit_head_seq: store.audit.head().seq,
      }
    },
    sandboxes: createSandboxes({ ...deps, enforcer }, transitions, admission),
    verifyAudit: () => verifyChain(options.store.audit.iterate(), options.store.audit.head()),
  }
}

export type Warden = ReturnType<typeof createWarden>
