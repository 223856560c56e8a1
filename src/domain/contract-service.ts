// The current contract: loaded at start, replaced (validated, audited, version+1) by operators.
import type { Contract } from '../schemas/index.js'
import type { Store } from '../store/index.js'
import { iso, type Clock } from './clock.js'
import { compileContract, contractView, DEFAULT_CONTRACT, parseContractInput, type CompiledContract } from './contract.js'
import { operatorActor } from './actors.js'

export interface ContractService {
  current(): CompiledContract
  view(): Contract
  replace(raw: unknown, actor?: string): Contract
}

/**
 * Loads the stored contract, or stores `initial` (or the defaults) as version 1. When `initial`
 * is given and differs from what is stored, it is applied as a new version at start.
 */
export function createContractService(store: Store, clock: Clock, initial?: unknown): ContractService {
  let current: CompiledContract

  const apply = (raw: unknown, actor: string): Contract => {
    const { input } = parseContractInput(raw)
    const now = clock.now()
    const version = (store.contracts.current()?.version ?? 0) + 1
    const next = compileContract(input, version, iso(now))
    store.transaction(() => {
      store.contracts.insert(version, input, now, actor)
      store.audit.append({ type: 'contract_updated', actor, data: { version, contract: input } }, iso(now))
    })
    current = next
    return contractView(next)
  }

  const stored = store.contracts.current()
  if (stored) {
    current = compileContract(parseContractInput(stored.input).input, stored.version, iso(stored.updated_at))
    if (initial !== undefined) {
      const { input } = parseContractInput(initial)
      if (JSON.stringify(input) !== JSON.stringify(parseContractInput(stored.input).input)) apply(input, 'config')
    }
  } else {
    apply(initial ?? DEFAULT_CONTRACT, 'config')
  }

  return {
    current: () => current,
    view: () => contractView(current),
    replace: (raw, actor = operatorActor) => apply(raw, actor),
  }
}
