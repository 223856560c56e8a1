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
  /**
   * The durations in whole milliseconds, rounded once here (SPEC §7: durations may be fractional
   * seconds; every timestamp Warden stores is an integer). Everything that computes a time uses these.
   */
  ms: DurationsMs
}

export interface DurationsMs {
  cooldown: number
  expiration: number | null
  heartbeat_timeout: number
  heartbeat_interval: number
  manifest_ttl: number
}

/** Seconds (possibly fractional) to whole milliseconds; a positive duration is at least 1 ms. */
export function toMs(seconds: number, positive = true): number {
  const ms = Math.round(seconds * 1000)
  return positive ? Math.max(1, ms) : Math.max(0, ms)
}

export function durationsMs(contract: Pick<Contract, 'cooldown_seconds' | 'expiration_seconds' | 'heartbeat_timeout_seconds' | 'manifest_ttl_seconds'>): DurationsMs {
  const heartbeatTimeout = toMs(contract.heartbeat_timeout_seconds)
  return {
    cooldown: toMs(contract.cooldown_seconds, false),
    expiration: contract.expiration_seconds === null ? null : toMs(contract.expiration_seconds),
    heartbeat_timeout: heartbeatTimeout,
    heartbeat_interval: Math.max(1, Math.round(heartbeatTimeout / 3)),
    manifest_ttl: toMs(contract.manifest_ttl_seconds),
  }
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
  return { ...input, version, updated_at: updatedAt, compiled_conditions: conditions, ms: durationsMs(input) }
}

/** The contract as the wire and stop conditions see it (no compiled programs). */
export function contractView(contract: CompiledContract): Contract {
  const { compiled_conditions: _omit, ms: _ms, ...view } = contract
  return view
}

export const heartbeatIntervalSeconds = (contract: Pick<Contract, 'heartbeat_timeout_seconds'>): number =>
  durationsMs({ cooldown_seconds: 0, expiration_seconds: null, manifest_ttl_seconds: 1, ...contract }).heartbeat_interval / 1000

