// warden audit tail [--follow] | verify
import { AuditTypeSchema, type AuditRecord } from '../schemas/index.js'
import { numberOption, stringOption, type Command } from './command.js'
import { EXIT, UsageError, type Context } from './context.js'
import { shortId } from './format.js'
import { resolveWorkerId } from './workers.js'

function summary(record: AuditRecord): string {
  const data = record.data
  const parts: string[] = []
  for (const key of ['reason', 'condition', 'detail', 'terminated', 'depth', 'version']) {
    const value = data[key]
    if (value !== undefined && value !== null && value !== '') parts.push(`${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
  }
  return parts.join(' ')
}

const COLUMNS = { seq: 6, at: 24, type: 22, code: 20, who: 9 }

function header(ctx: Context): string {
  return ctx.style.dim(
    ['SEQ'.padStart(COLUMNS.seq), 'TIME (UTC)'.padEnd(COLUMNS.at), 'TYPE'.padEnd(COLUMNS.type), 'CODE'.padEnd(COLUMNS.code), 'WORKER'.padEnd(COLUMNS.who), 'DATA'].join(' '),
  )
}

function line(ctx: Context, record: AuditRecord): string {
  const { style } = ctx
  const type = record.type.padEnd(COLUMNS.type)
  const coloured = /denied|rejected/.test(record.type)
    ? style.red(type)
    : /approved|issued|registered/.test(record.type)
      ? style.green(type)
      : /kill|reaped|expired/.test(record.type)
        ? style.yellow(type)
        : type
  const who = record.worker_id ? shortId(record.worker_id) : record.parent_id ? `${shortId(record.parent_id)}^` : '-'
  return [
    String(record.seq).padStart(COLUMNS.seq),
    style.dim(record.at.padEnd(COLUMNS.at)),
    coloured,
    (record.code ?? '').padEnd(COLUMNS.code),
    who.padEnd(COLUMNS.who),
    style.dim(summary(record)),
  ]
    .join(' ')
    .trimEnd()
}

export const auditCommands: Command[] = [
  {
    name: ['audit', 'tail'],
    summary: 'Show the last audit records, and with --follow the new ones as they are written',
    details: [
      'Columns (under a header line): seq, time (ISO 8601, UTC), type, code, worker (or its parent, marked ^, for a spawn decision), data.',
      'With --json, one record per line (NDJSON).',
    ],
    options: {
      lines: { type: 'string', short: 'n', value: 'N', description: 'how many records to show first (default 20)' },
      type: { type: 'string', value: 'TYPE', description: 'only records of this type' },
      worker: { type: 'string', value: 'ID', description: 'only records about this worker (or naming it as parent)' },
      follow: { type: 'boolean', short: 'f', description: 'keep printing new records as they are committed (the event stream) until interrupted' },
    },
    async run(ctx) {
      const count = numberOption(ctx.values, 'lines') ?? 20
      if (!Number.isInteger(count) || count < 0) throw new UsageError('--lines must be a whole number >= 0')
      const typeName = stringOption(ctx.values, 'type')
      const type = typeName === undefined ? undefined : AuditTypeSchema.safeParse(typeName)
      if (type && !type.success) throw new UsageError(`--type must be one of ${AuditTypeSchema.options.join(', ')}`)
      const workerArg = stringOption(ctx.values, 'worker')
      const filter = {
        ...(type?.success ? { type: type.data } : {}),
        ...(workerArg === undefined ? {} : { worker_id: await resolveWorkerId(ctx, workerArg) }),
      }
      const client = ctx.client()
      const print = (record: AuditRecord) => (ctx.json ? ctx.out(JSON.stringify(record)) : ctx.out(line(ctx, record)))

      // Newest first from the API, printed oldest first; at least one record read, so that
      // --follow knows where the log ends even with -n 0.
      const newest: AuditRecord[] = []
      let before: number | null | undefined
      while (newest.length < Math.max(count, 1)) {
        const page = await client.listAudit({
          ...filter,
          order: 'desc',
          limit: Math.min(1000, Math.max(count, 1) - newest.length),
          ...(before === undefined || before === null ? {} : { before_seq: before }),
        })
        newest.push(...page.items)
        before = page.next_before_seq
        if (before === null) break
      }
      const afterSeq = newest[0]?.seq ?? 0
      if (!ctx.json) ctx.out(header(ctx))
      newest.slice(0, count).reverse().forEach(print)
      if (!ctx.values.follow) return EXIT.ok

      // New records arrive on the event stream (GET /v1/events), resumed after the last one shown.
      const signal = ctx.io.signal
      const events = {
        ...(filter.type === undefined ? {} : { type: [filter.type] }),
        ...(filter.worker_id === undefined ? {} : { worker_id: filter.worker_id }),
        after_seq: afterSeq,
      }
      for await (const record of client.events(events, signal ? { signal } : {})) print(record)
      return EXIT.ok
    },
  },
  {
    name: ['audit', 'verify'],
    summary: 'Recompute the audit hash chain; exit 1 when a record was edited, removed or reordered',
    async run(ctx) {
      const result = await ctx.client().verifyAudit()
      if (ctx.json) ctx.printJson(result)
      else if (result.ok) ctx.out(`${ctx.style.green('audit chain verified')}: ${result.records} records, head ${result.head_hash ?? '-'}`)
      else ctx.out(`${ctx.style.red('audit chain BROKEN')} at seq ${result.first_invalid_seq} (${result.records} records)`)
      return result.ok ? EXIT.ok : EXIT.failed
    },
  },
]
