// The replication contract: defaults, validation beyond the schema (cross-field rules and CEL
// compilation), and the compiled form admission uses.
import { ContractInputSchema, type Contract, type ContractInput } from '../schemas/index.js'
import { describeIssues } from '../schemas/issues.js'
import { DomainError } from './errors.js'
import { exceeds } from './resources.js'
import { compileCondition, type CompiledCondition } from './stop-conditions.js'

export const DEFAULT_CONTRACT: ContractInput = {
  max_depth: 3,
  max_replicas: 20,
  cooldown_seconds: 5,
  expiration_seconds: 3600,
  heartbeat_timeout_seconds: 30,
  manifest_ttl_seconds: 300,
  default_resources: { cpu_limit: 0.5, memory_limit_mb: 256, network_policy: { allow_controller: true, allow_external: false } },
  max_resources: { cpu_limit: 2, memory_limit_mb: 2048, network_policy: { allow_controller: true, allow_external: false } },
  stop_conditions: [],
}

export interface CompiledContract extends Contract {
  compiled_conditions: CompiledCondition[]
}

/** Validates raw input (from HTTP, a file or the database) into a contract ready to enforce. */
export function parseContractInput(raw: unknown): { input: ContractInput; conditions: CompiledCondition[] } {
  const parsed = ContractInputSchema.safeParse(raw, { reportInput: true })
  if (!parsed.success) throw new DomainError('invalid_contract', describeIssues(parsed.error.issues))
  const input = parsed.data

  const tooBig = exceeds(input.default_resources, input.max_resources)
  if (tooBig) throw new DomainError('invalid_contract', `default_resources must fit within max_resources: ${tooBig}`)

  const seen = new Set<string>()
  const conditions: CompiledCondition[] = []
  input.stop_conditions.forEach((condition, index) => {
    if (seen.has(condition.name)) {
      throw new DomainError('invalid_contract', `stop_conditions.${index}.name ${JSON.stringify(condition.name)} is used twice`)
    }
    seen.add(condition.name)
    const compiled = compileCondition(condition)
    if (typeof compiled === 'string') {
      throw new DomainError('invalid_contract', `stop_conditions.${index}.expression ${compiled}`)
    }
    conditions.push(compiled)
  })
  return { input, conditions }
}

export function compileContract(input: ContractInput, version: number, updatedAt: string): CompiledContract {
  const { conditions } = parseContractInput(input)
  return { ...input, version, updated_at: updatedAt, compiled_conditions: conditions }
}

/** The contract as the wire and stop conditions see it (no compiled programs). */
export function contractView(contract: CompiledContract): Contract {
  const { compiled_conditions: _omit, ...view } = contract
  return view
}

export const heartbeatIntervalSeconds = (contract: Pick<Contract, 'heartbeat_timeout_seconds'>): number =>
  Math.round((contract.heartbeat_timeout_seconds / 3) * 1000) / 1000

