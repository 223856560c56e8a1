// A command: its name, help text, options (node:util parseArgs) and what it runs.
import { parseArgs } from 'node:util'
import type { Context } from './context.js'
import { UsageError } from './context.js'

export interface OptionSpec {
  type: 'string' | 'boolean'
  short?: string
  /** The value's name in help, e.g. FILE. */
  value?: string
  description: string
}

export interface Command {
  /** Words after `warden`, e.g. ['workers', 'ls']. */
  name: string[]
  /** Positional arguments for the usage line, e.g. ['ID'] or ['[engage|disengage|status]']. */
  args?: string[]
  summary: string
  /** Extra paragraphs for --help. */
  details?: string[]
  options?: Record<string, OptionSpec>
  /** Positionals accepted: [min, max]. */
  arity?: [number, number]
  run(ctx: Context): Promise<number>
}

export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  url: {
    type: 'string',
    value: 'URL',
    description: 'controller URL (default: WARDEN_URL, else http://127.0.0.1:$WARDEN_PORT, else http://127.0.0.1:8080)',
  },
  token: {
    type: 'string',
    value: 'TOKEN',
    description: 'operator token (WARDEN_OPERATOR_TOKEN; else the operator-token file beside WARDEN_DB, default ./data/)',
  },
  json: { type: 'boolean', description: 'machine-readable JSON on stdout' },
  help: { type: 'boolean', short: 'h', description: 'show help' },
}

export const EXIT_CODES_HELP =
  'Exit codes: 0 ok, 1 refused by the controller or a check failed, 2 usage error, 3 controller unreachable, 4 unauthorized, 5 not found.'

export function parse(command: Command, argv: string[]) {
  const specs = { ...GLOBAL_OPTIONS, ...command.options }
  const options = Object.fromEntries(
    Object.entries(specs).map(([name, spec]) => [name, spec.short ? { type: spec.type, short: spec.short } : { type: spec.type }]),
  )
  let parsed
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true })
  } catch (error) {
    throw new UsageError(`${describeParseError(error as Error & { code?: string })}\nSee: warden ${command.name.join(' ')} --help`)
  }
  const values = parsed.values as Record<string, string | boolean | undefined>
  if (!values.help) {
    const [min, max] = command.arity ?? [0, 0]
    const count = parsed.positionals.length
    if (count < min) throw new UsageError(`missing ${command.args?.slice(count).join(' ') ?? 'argument'}\nUsage: ${usage(command)}`)
    if (count > max) throw new UsageError(`unexpected argument ${parsed.positionals[max]}\nUsage: ${usage(command)}`)
  }
  return { values, positionals: parsed.positionals }
}

/** node:util parseArgs errors, said the way a person would. */
function describeParseError(error: Error & { code?: string }): string {
  const option = /'(-[^' ]+)/.exec(error.message)?.[1]
  if (error.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && option) return `unknown option ${option}`
  if (error.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && option) {
    return /argument missing/.test(error.message) ? `${option} needs a value` : `${option} takes no value`
  }
  return error.message
}

/** Global options given before the command (`warden --token T kill-switch status`), taken off the front. */
export function leadingGlobals(argv: string[]): { globals: string[]; rest: string[] } {
  const globals: string[] = []
  let i = 0
  while (i < argv.length) {
    const arg = argv[i]!
    const name = /^--([^=]+)/.exec(arg)?.[1]
    const spec = name === undefined ? undefined : GLOBAL_OPTIONS[name]
    if (spec === undefined || name === 'help') break
    globals.push(arg)
    if (spec.type === 'string' && !arg.includes('=')) {
      if (i + 1 >= argv.length) throw new UsageError(`--${name} needs a value`)
      globals.push(argv[i + 1]!)
      i += 1
    }
    i += 1
  }
  return { globals, rest: argv.slice(i) }
}

export function usage(command: Command): string {
  const options = Object.entries(command.options ?? {}).map(([name, spec]) => `[--${name}${spec.value ? ` ${spec.value}` : ''}]`)
  return ['warden', ...command.name, ...(command.args ?? []), ...options].join(' ')
}

export function help(command: Command): string {
  const lines = [`${command.summary}`, '', `Usage: ${usage(command)}`]
  if (command.details?.length) lines.push('', ...command.details)
  lines.push('', 'Options:')
  lines.push(...optionLines({ ...command.options, ...GLOBAL_OPTIONS }))
  lines.push('', EXIT_CODES_HELP)
  return lines.join('\n') + '\n'
}

export function optionLines(specs: Record<string, OptionSpec>): string[] {
  const rows = Object.entries(specs).map(([name, spec]) => [
    `${spec.short ? `-${spec.short}, ` : '    '}--${name}${spec.value ? ` ${spec.value}` : ''}`,
    spec.description,
  ])
  const width = Math.max(...rows.map(([flag]) => flag!.length))
  return rows.map(([flag, description]) => `  ${flag!.padEnd(width)}  ${description}`)
}

/** A number option, or undefined; a usage error when it is not one. */
export function numberOption(values: Record<string, string | boolean | undefined>, name: string): number | undefined {
  const raw = values[name]
  if (raw === undefined || typeof raw === 'boolean') return undefined
  const value = Number(raw)
  if (raw.trim() === '' || !Number.isFinite(value)) throw new UsageError(`--${name} must be a number, got ${JSON.stringify(raw)}`)
  return value
}

export function stringOption(values: Record<string, string | boolean | undefined>, name: string): string | undefined {
  const raw = values[name]
  return typeof raw === 'string' ? raw : undefined
}
