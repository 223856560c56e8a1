// warden workers ls|get|kill, warden quarantine, warden release
import { WardenError } from '../client/errors.js'
import { isLive, WorkerStatusSchema, type WorkerSummary, type WorkerView } from '../schemas/index.js'
import { numberOption, stringOption, type Command } from './command.js'
import { EXIT, UsageError, type Context } from './context.js'
import { ago, table, tree } from './format.js'
import { usageText } from './sandbox.js'

/** A full id, or a unique prefix of at least 4 hex characters. */
export async function resolveWorkerId(ctx: Context, given: string): Promise<string> {
  if (/^[0-9a-f]{32}$/.test(given)) return given
  if (!/^[0-9a-f]{4,31}$/.test(given)) throw new UsageError(`${JSON.stringify(given)} is not a worker id (32 hex characters, or a unique prefix of 4 or more)`)
  const matches: string[] = []
  for await (const worker of ctx.client().workers()) if (worker.worker_id.startsWith(given)) matches.push(worker.worker_id)
  if (matches.length === 1) return matches[0]!
  if (matches.length === 0) throw new WardenError('worker_not_found', { status: 404, detail: `no worker id starts with ${given}` })
  throw new UsageError(`${given} matches ${matches.length} workers; give more characters`)
}

function reasonText(worker: Pick<WorkerSummary, 'reason'>): string {
  return worker.reason ?? ''
}

function printView(ctx: Context, worker: WorkerView): void {
  const rows: [string, string][] = [
    ['worker', worker.worker_id],
    ['status', ctx.style.status(worker.status) + (worker.reason ? ` (${worker.reason})` : '')],
    ['parent', worker.parent_id ?? '- (root)'],
    ['depth', String(worker.depth)],
    ['children', String(worker.children_count)],
    ['resources', `${worker.resources.cpu_limit} cpu, ${worker.resources.memory_limit_mb} MB, external network ${worker.resources.network_policy.allow_external ? 'allowed' : 'denied'}`],
    ['registered', `${worker.registered_at} (${ago(worker.registered_at)})`],
    ['last heartbeat', worker.last_heartbeat_at ? `${worker.last_heartbeat_at} (${ago(worker.last_heartbeat_at)})` : '-'],
    ['lease expires', worker.lease_expires_at],
    ['lifetime ends', worker.expires_at ?? 'never'],
    ['ended', worker.ended_at ?? '-'],
    ['state snapshot', JSON.stringify(worker.state_snapshot)],
    [
      'sandbox',
      worker.sandbox
        ? `${worker.sandbox.driver}, ${worker.sandbox.state}, pid ${worker.sandbox.pid ?? '-'}` +
          (worker.sandbox.state === 'ended' ? `, exit ${worker.sandbox.exit_code ?? '-'} signal ${worker.sandbox.signal ?? '-'}` : `: ${usageText(worker.sandbox.usage)}`)
        : 'external (run by its owner)',
    ],
  ]
  for (const [key, value] of rows) ctx.out(`${ctx.style.bold(key.padEnd(15))} ${value}`)
}

export const workerCommands: Command[] = [
  {
    name: ['workers', 'ls'],
    summary: 'List workers (all pages), as a table or as a lineage tree',
    options: {
      status: { type: 'string', value: 'STATUS', description: `only this status: ${WorkerStatusSchema.options.join(', ')}` },
      depth: { type: 'string', value: 'N', description: 'only this depth' },
      parent: { type: 'string', value: 'ID', description: 'only children of this worker' },
      tree: { type: 'boolean', description: 'show lineage as an indented tree' },
    },
    async run(ctx) {
      const status = stringOption(ctx.values, 'status')
      const parsedStatus = status === undefined ? undefined : WorkerStatusSchema.safeParse(status)
      if (parsedStatus && !parsedStatus.success) {
        throw new UsageError(`--status must be one of ${WorkerStatusSchema.options.join(', ')}, got ${JSON.stringify(status)}`)
      }
      const depth = numberOption(ctx.values, 'depth')
      const parent = stringOption(ctx.values, 'parent')
      const filter = {
        ...(parsedStatus?.success ? { status: parsedStatus.data } : {}),
        ...(depth === undefined ? {} : { depth }),
        ...(parent === undefined ? {} : { parent_id: await resolveWorkerId(ctx, parent) }),
      }
      const workers: WorkerSummary[] = []
      for await (const worker of ctx.client().workers(filter)) workers.push(worker)

      if (ctx.json) {
        ctx.printJson(workers)
        return EXIT.ok
      }
      if (workers.length === 0) {
        ctx.out('no workers')
        return EXIT.ok
      }
      const now = Date.now()
      if (ctx.values.tree) {
        const nodes = workers.map((worker) => ({ ...worker, id: worker.worker_id }))
        const lines = tree(nodes, (worker) =>
          [
            worker.worker_id,
            ctx.style.dim(`d${worker.depth}`),
            ctx.style.status(worker.status) + (worker.reason ? ctx.style.dim(` (${worker.reason})`) : ''),
            ctx.style.dim(`registered ${ago(worker.registered_at, now)}`),
            ...(worker.sandbox ? [ctx.style.dim(`sandbox ${worker.sandbox.state}: ${usageText(worker.sandbox.usage)}`)] : []),
          ].join('  '),
        )
        for (const line of lines) ctx.out(line)
      } else {
        const rows = workers.map((worker) => [
          worker.worker_id,
          worker.parent_id ? worker.parent_id.slice(0, 8) : '-',
          String(worker.depth),
          ctx.style.status(worker.status),
          reasonText(worker),
          ago(worker.registered_at, now),
          ago(worker.last_heartbeat_at, now),
          worker.sandbox ? worker.sandbox.state : 'external',
          worker.sandbox ? usageText(worker.sandbox.usage) : '',
        ])
        for (const line of table(['WORKER', 'PARENT', 'DEPTH', 'STATUS', 'REASON', 'REGISTERED', 'HEARTBEAT', 'SANDBOX', 'USAGE'], rows, ctx.style)) ctx.out(line)
      }
      const live = workers.filter((worker) => isLive(worker.status)).length
      ctx.out(ctx.style.dim(`${workers.length} worker(s), ${live} live`))
      return EXIT.ok
    },
  },
  {
    name: ['workers', 'get'],
    args: ['ID'],
    summary: 'Show one worker',
    arity: [1, 1],
    async run(ctx) {
      const worker = await ctx.client().getWorker(await resolveWorkerId(ctx, ctx.positionals[0]!))
      if (ctx.json) ctx.printJson(worker)
      else printView(ctx, worker)
      return EXIT.ok
    },
  },
  {
    name: ['workers', 'kill'],
    args: ['ID'],
    summary: 'Kill a worker and (unless --no-cascade) its live descendants',
    options: {
      'no-cascade': { type: 'boolean', description: 'kill only this worker, not its descendants' },
      reason: { type: 'string', value: 'TEXT', description: 'why, kept in the audit log' },
    },
    arity: [1, 1],
    async run(ctx) {
      const id = await resolveWorkerId(ctx, ctx.positionals[0]!)
      const reason = stringOption(ctx.values, 'reason')
      const result = await ctx.client().kill(id, { cascade: ctx.values['no-cascade'] !== true, ...(reason ? { reason } : {}) })
      if (ctx.json) ctx.printJson(result)
      else if (result.killed.length === 0) ctx.out(`nothing to kill: ${id} is ${result.worker.status} and has no live descendants`)
      else {
        ctx.out(`killed ${result.killed.length} worker(s):`)
        for (const killed of result.killed) ctx.out(`  ${killed}${killed === id ? '' : ctx.style.dim(' (descendant)')}`)
      }
      return EXIT.ok
    },
  },
  {
    name: ['quarantine'],
    args: ['ID'],
    summary: 'Quarantine a worker: it stays alive and suspended, and may not spawn',
    options: { reason: { type: 'string', value: 'TEXT', description: 'why (default "quarantined by operator")' } },
    arity: [1, 1],
    async run(ctx) {
      const id = await resolveWorkerId(ctx, ctx.positionals[0]!)
      const worker = await ctx.client().quarantine(id, stringOption(ctx.values, 'reason') ?? 'quarantined by operator')
      if (ctx.json) ctx.printJson(worker)
      else ctx.out(`${id} is ${ctx.style.status(worker.status)}${worker.reason ? ` (${worker.reason})` : ''}`)
      return EXIT.ok
    },
  },
  {
    name: ['release'],
    args: ['ID'],
    summary: 'Release a worker from quarantine',
    arity: [1, 1],
    async run(ctx) {
      const id = await resolveWorkerId(ctx, ctx.positionals[0]!)
      const worker = await ctx.client().release(id)
      if (ctx.json) ctx.printJson(worker)
      else ctx.out(`${id} is ${ctx.style.status(worker.status)}`)
      return EXIT.ok
    },
  },
]
