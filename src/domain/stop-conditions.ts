// Stop conditions: named CEL expressions over {manifest, active_count, contract, parent}.
// True means stop. Compile errors refuse the contract; evaluation errors fail closed, and so does
// an evaluation that runs past its time budget (SPEC §7): every node of the expression checks the
// budget as it is evaluated, so a comprehension over a big list stops within the budget.
import { performance } from 'node:perf_hooks'
import { Environment } from '@marcbachmann/cel-js'
import type { StopCondition } from '../schemas/index.js'

/** Static limits, refused when the contract is set: what the budget would only cut short later. */
export const CEL_LIMITS = {
  /** Comprehensions (all, exists, exists_one, map, filter) inside one another. */
  comprehensionNesting: 2,
  /** Elements of a list literal (the range a comprehension over a literal can have). */
  listElements: 64,
  /** Product of the literal list sizes of nested comprehensions. */
  literalIterations: 10_000,
} as const

/** Default of WARDEN_CEL_BUDGET_MS. */
export const DEFAULT_CEL_BUDGET_MS = 10

class BudgetExceeded extends Error {
  constructor(readonly budgetMs: number) {
    super(`evaluation exceeded its budget of ${budgetMs} ms`)
    this.name = 'BudgetExceeded'
  }
}

/** The evaluation running now (evaluation is synchronous: one at a time). */
let running: { deadline: number; budgetMs: number; calls: number; exceeded: BudgetExceeded | null } | null = null

/** Node evaluations between two reads of the clock: the clock costs more than a node. */
const CLOCK_EVERY = 32

function charge(): void {
  const budget = running
  if (budget === null) return
  // Once over, every remaining node throws the same error at once (loops that absorb errors,
  // like all() and exists(), then run out in a few microseconds).
  if (budget.exceeded) throw budget.exceeded
  if (++budget.calls % CLOCK_EVERY !== 0) return
  if (performance.now() > budget.deadline) {
    budget.exceeded = new BudgetExceeded(budget.budgetMs)
    throw budget.exceeded
  }
}

interface CelNode {
  op: string
  args: unknown
  meta: { alternate?: CelNode; macro?: { args?: unknown }; evaluate?: Evaluate }
  evaluate: Evaluate
}
type Evaluate = (ev: unknown, ast: CelNode, ctx: unknown) => unknown

const isNode = (value: unknown): value is CelNode =>
  value !== null && typeof value === 'object' && 'op' in value && 'meta' in value && typeof (value as CelNode).evaluate === 'function'

/** Every node of a parsed expression, macro expansions (comprehensions) included, with its comprehension nesting. */
function walk(root: CelNode, visit: (node: CelNode, nesting: number) => void): void {
  const seen = new Set<unknown>()
  const stack: Array<{ value: unknown; nesting: number }> = [{ value: root, nesting: 0 }]
  while (stack.length > 0) {
    const { value, nesting } = stack.pop()!
    if (value === null || typeof value !== 'object' || seen.has(value)) continue
    seen.add(value)
    if (isNode(value)) {
      const inner = value.op === 'comprehension' ? nesting + 1 : nesting
      visit(value, inner)
      const { alternate, macro } = value.meta
      const args = value.args as Record<string, unknown> | unknown[] | null
      // A macro call (all, map, …) evaluates as its expansion, which holds its arguments.
      if (alternate) stack.push({ value: alternate, nesting })
      else if (macro) stack.push({ value: macro.args, nesting })
      else if (value.op === 'comprehension' && args && !Array.isArray(args)) {
        // The range is evaluated once, outside the loop; init and step run inside it.
        stack.push({ value: args.iterable, nesting })
        stack.push({ value: args.init, nesting: inner })
        stack.push({ value: args.step, nesting: inner })
      } else {
        stack.push({ value: args, nesting })
      }
    } else if (Array.isArray(value)) {
      for (const item of value) stack.push({ value: item, nesting })
    }
  }
}

/** The node's own evaluation, as cel-js resolves it on first use (alternate, macro or operator). */
function ownEvaluate(node: CelNode): Evaluate {
  const { alternate, macro, evaluate } = node.meta
  if (alternate) return (ev, _ast, ctx) => alternate.evaluate(ev, alternate, ctx)
  if (macro) return (ev, _ast, ctx) => (macro as unknown as { evaluate: Evaluate }).evaluate(ev, macro as unknown as CelNode, ctx)
  return evaluate!
}

/** Makes every node charge the running budget before it evaluates. */
function meter(root: CelNode): void {
  walk(root, (node) => {
    let inner: Evaluate | null = null
    node.evaluate = function metered(ev, ast, ctx) {
      charge()
      inner ??= ownEvaluate(node)
      return inner.call(node, ev, ast, ctx)
    }
  })
}

/** What can be refused before any evaluation: deep comprehension nesting and big literal ranges. */
function staticProblem(root: CelNode): string | null {
  let deepest = 0
  let problem: string | null = null
  walk(root, (node, nesting) => {
    deepest = Math.max(deepest, nesting)
    // A regular expression can backtrack for minutes inside one call, where no budget can stop it.
    if ((node.op === 'call' || node.op === 'rcall') && Array.isArray(node.args) && node.args[0] === 'matches') {
      problem ??= 'may not use matches(): a regular expression cannot be bounded in time'
    }
    if (node.op === 'list' && Array.isArray(node.args) && node.args.length > CEL_LIMITS.listElements) {
      problem ??= `has a list of ${node.args.length} elements; at most ${CEL_LIMITS.listElements}`
    }
  })
  if (deepest > CEL_LIMITS.comprehensionNesting) {
    return `nests comprehensions ${deepest} deep; at most ${CEL_LIMITS.comprehensionNesting} (all, exists, exists_one, map, filter)`
  }
  if (problem) return problem
  const iterations = literalIterations(root)
  if (iterations > CEL_LIMITS.literalIterations) {
    return `iterates ${iterations} times over list literals; at most ${CEL_LIMITS.literalIterations}`
  }
  return null
}

/** The largest product of literal range sizes along one chain of nested comprehensions. */
function literalIterations(node: unknown, seen = new Set<unknown>()): number {
  if (node === null || typeof node !== 'object' || seen.has(node)) return 1
  seen.add(node)
  if (Array.isArray(node)) return Math.max(1, ...node.map((item) => literalIterations(item, seen)))
  if (!isNode(node)) return 1
  const { alternate, macro } = node.meta
  const args = node.args as Record<string, unknown> | unknown[] | null
  let own = 1
  let children: unknown[] = []
  if (node.op === 'comprehension' && args && !Array.isArray(args)) {
    const range = args.iterable
    const size = isNode(range) && range.op === 'list' && Array.isArray(range.args) ? range.args.length : 1
    own = size * literalIterations(args.step, seen)
    children = [range, args.init]
  } else {
    children = [args]
  }
  if (alternate) children = [alternate]
  else if (macro) children = [macro.args]
  return Math.max(own, ...children.map((child) => literalIterations(child, seen)))
}

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
  const ast = (parsed as unknown as { ast: CelNode }).ast
  const problem = staticProblem(ast)
  if (problem) return problem
  meter(ast)
  return { ...condition, program: parsed as unknown as Program }
}

/**
 * Evaluates the conditions in order, each within `budgetMs`. The first that is true, fails, or
 * runs out of budget triggers (fail closed), with the reason as its error.
 */
export function evaluateConditions(
  conditions: readonly CompiledCondition[],
  context: StopContext,
  budgetMs: number = DEFAULT_CEL_BUDGET_MS,
): StopVerdict {
  if (conditions.length === 0) return { triggered: false }
  const input = toCel(context) as Record<string, unknown>
  for (const condition of conditions) {
    const budget = { deadline: performance.now() + budgetMs, budgetMs, calls: 0, exceeded: null as BudgetExceeded | null }
    running = budget
    try {
      const result = condition.program(input)
      // A comprehension that swallowed the budget's error (CEL's error absorption) still fails closed.
      if (budget.exceeded) return { triggered: true, condition: condition.name, error: budget.exceeded.message }
      if (result === true) return { triggered: true, condition: condition.name, error: null }
      if (result !== false) {
        return { triggered: true, condition: condition.name, error: `evaluated to a non-bool (${typeof result})` }
      }
    } catch (error) {
      return { triggered: true, condition: condition.name, error: budget.exceeded ? budget.exceeded.message : firstLine(error) }
    } finally {
      running = null
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
