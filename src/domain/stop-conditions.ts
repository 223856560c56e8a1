// Stop conditions: named CEL expressions over {manifest, active_count, contract, parent}.
// True means stop. Compile errors refuse the contract; evaluation errors fail closed.
import { Environment } from '@marcbachmann/cel-js'
import type { StopCondition } from '../schemas/index.js'

const environment = new Environment({
  limits: { maxAstNodes: 500, maxDepth: 32, maxListElements: 256, maxMapEntries: 256, maxCallArguments: 16 },
})
  .registerVariable('manifest', 'map')
  .registerVariable('active_count', 'int')
  .registerVariable('contract', 'map')
  .registerVariable('parent', 'dyn')

type Program = (context: Record<string, unknown>) => unknown

export interface CompiledCondition extends StopCondition {
  program: Program
}

/** What a stop condition sees. Integer fields are CEL ints; everything else is as in JSON. */
export interface StopContext {
  manifest: Record<string, unknown>
  active_count: number
  contract: Record<string, unknown>
  parent: Record<string, unknown> | null
}

export type StopVerdict =
  | { triggered: false }
  | { triggered: true; condition: string; error: string | null }

/** Returns the message of the first problem, or the compiled program. */
export function compileCondition(condition: StopCondition): CompiledCondition | string {
  let parsed
  try {
    parsed = environment.parse(condition.expression)
  } catch (error) {
    return `does not parse: ${firstLine(error)}`
  }
  const checked = parsed.check()
  if (!checked.valid) return `does not type-check: ${firstLine(checked.error)}`
  if (checked.type !== 'bool' && checked.type !== 'dyn') return `must be a bool expression, got ${checked.type}`
  return { ...condition, program: parsed as unknown as Program }
}

export function evaluateConditions(conditions: readonly CompiledCondition[], context: StopContext): StopVerdict {
  if (conditions.length === 0) return { triggered: false }
  const input = toCel(context) as Record<string, unknown>
  for (const condition of conditions) {
    try {
      const result = condition.program(input)
      if (result === true) return { triggered: true, condition: condition.name, error: null }
      if (result !== false) {
        return { triggered: true, condition: condition.name, error: `evaluated to a non-bool (${typeof result})` }
      }
    } catch (error) {
      return { triggered: true, condition: condition.name, error: firstLine(error) }
    }
  }
  return { triggered: false }
}

// CEL distinguishes int from double. Whole numbers in the controller's own fields become ints so
// `active_count >= 5` and `memory_limit_mb * 2` read naturally; a state snapshot is free-form JSON,
// whose numbers CEL treats as doubles (as protobuf Struct does).
const INT_FIELDS = new Set([
  'active_count',
  'depth',
  'memory_limit_mb',
  'max_depth',
  'max_replicas',
  'children_count',
  'version',
])

function toCel(value: unknown, key = '', inSnapshot = false): unknown {
  if (typeof value === 'number') {
    return !inSnapshot && INT_FIELDS.has(key) && Number.isInteger(value) ? BigInt(value) : value
  }
  if (Array.isArray(value)) return value.map((item) => toCel(item, '', inSnapshot))
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = toCel(v, k, inSnapshot || k === 'state_snapshot')
    return out
  }
  return value
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error)
  return message.split('\n')[0] ?? message
}
