// Wires the domain over one store. What it returns is the domain's whole public face: the use
// cases (admission, transitions, kill switch, liveness, authentication, contract) and the
// queries. The store itself stays inside.
import type { Clock, LoopWatch } from './clock.js'
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
import { createQueries } from './queries.js'
import { createRejectionCounter } from './rejections.js'
import { DEFAULT_CEL_BUDGET_MS } from './stop-conditions.js'
import type { Store } from '../store/index.js'

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
  /** The lease book to keep (tests read it); a fresh one otherwise. */
  leases?: LeaseBook
  /** Stalls of the event loop, which lease time does not run through (SPEC §2.14). */
  loop?: LoopWatch
  /** WARDEN_CEL_BUDGET_MS. */
  celBudgetMs?: number
}

export function createWarden(options: WardenOptions) {
  const contracts = createContractService(options.store, options.clock, options.contract)
  const leases = options.leases ?? new LeaseBook(options.loop)
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
    celBudgetMs: options.celBudgetMs ?? DEFAULT_CEL_BUDGET_MS,
    rejections: createRejectionCounter(),
  }
  const transitions = createTransitions(deps)
  const killSwitch = createKillSwitch(deps)
  const admission = createAdmission(deps, transitions)
  return {
    contracts,
    admission,
    transitions: { deregister: transitions.deregister, quarantine: transitions.quarantine, release: transitions.release, kill: transitions.kill },
    killSwitch,
    liveness: createLiveness(deps, transitions),
    authentication: createAuthentication(deps),
    /** Managed workers (SPEC §5); `settled` resolves once enforcement on a worker's sandbox is done. */
    sandboxes: { ...createSandboxes({ ...deps, enforcer }, transitions, admission), settled: enforcer.settled },
    queries: createQueries(deps, transitions, killSwitch),
    idempotency: deps.idempotency,
    /** Writes the per-minute summaries of registrations refused for failing verification (every one with `all`, at close). */
    summarizeRejections: (all = false) => deps.rejections.summarize(options.store, options.clock.now(), all),
  }
}

export type Warden = ReturnType<typeof createWarden>
