// `warden`: the operator's command line. run() takes argv and an Io so tests drive it in-process.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import pkg from '../../package.json' with { type: 'json' }
import { auditCommands } from './audit.js'
import { EXIT_CODES_HELP, GLOBAL_OPTIONS, help, leadingGlobals, optionLines, parse, type Command } from './command.js'
import { WardenError } from '../client/errors.js'
import { createContext, describeFailure, EXIT, TokenMissingError, UsageError, type Io } from './context.js'
import { contractCommands } from './contract.js'
import { demoCommands } from './demo.js'
import { killSwitchCommands } from './kill-switch.js'
import { manifestCommands } from './manifest.js'
import { sandboxCommands } from './sandbox.js'
import { serveCommands } from './serve.js'
import { workerCommands } from './workers.js'

export const COMMANDS: Command[] = [
  ...serveCommands,
  ...killSwitchCommands,
  ...workerCommands,
  ...contractCommands,
  ...auditCommands,
  ...manifestCommands,
  ...sandboxCommands,
  ...demoCommands,
]

/** Commands that run until interrupted get a SIGINT that stops them cleanly. */
const LONG_RUNNING = new Set(['audit tail', 'demo'])

function topHelp(): string {
  const width = Math.max(...COMMANDS.map((command) => commandTitle(command).length))
  return [
    `warden ${pkg.version}: the command line of the Warden control plane`,
    '',
    'Usage: warden [global options] <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((command) => `  ${commandTitle(command).padEnd(width)}  ${command.summary}`),
    '',
    'Global options:',
    ...optionLines(GLOBAL_OPTIONS),
    '',
    'Run `warden <command> --help` for the options of one command.',
    EXIT_CODES_HELP,
    '',
  ].join('\n')
}

const commandTitle = (command: Command) => [...command.name, ...(command.args ?? [])].join(' ')

function groupHelp(group: string): string {
  const members = COMMANDS.filter((command) => command.name[0] === group)
  const width = Math.max(...members.map((command) => commandTitle(command).length))
  return [
    `Usage: warden ${group} <${members.map((command) => command.name[1]).join('|')}> [options]`,
    '',
    ...members.map((command) => `  ${commandTitle(command).padEnd(width)}  ${command.summary}`),
    '',
    `Run \`warden ${group} <command> --help\` for its options.`,
    '',
  ].join('\n')
}

function find(argv: string[]): { command: Command; rest: string[] } | { group: string } | null {
  const [first, second] = argv
  const single = COMMANDS.find((command) => command.name.length === 1 && command.name[0] === first)
  if (single) return { command: single, rest: argv.slice(1) }
  const inGroup = COMMANDS.filter((command) => command.name[0] === first)
  if (inGroup.length === 0) return null
  const command = inGroup.find((candidate) => candidate.name[1] === second)
  return command ? { command, rest: argv.slice(2) } : { group: first! }
}

export async function run(input: string[], io: Io): Promise<number> {
  let globals: string[]
  let argv: string[]
  try {
    ;({ globals, rest: argv } = leadingGlobals(input))
  } catch (error) {
    io.stderr(`warden: ${(error as Error).message}\n`)
    return EXIT.usage
  }
  const [first] = argv
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    io.stdout(topHelp())
    return first === undefined ? EXIT.usage : EXIT.ok
  }
  if (first === '--version' || first === '-v') {
    io.stdout(`${pkg.version}\n`)
    return EXIT.ok
  }
  const found = find(argv)
  if (found === null) {
    const what = first.startsWith('-') ? `unknown option ${first}` : `unknown command ${JSON.stringify(first)}`
    io.stderr(`warden: ${what}\n\n${topHelp()}`)
    return EXIT.usage
  }
  if ('group' in found) {
    const wantsHelp = argv.slice(1).some((arg) => arg === '--help' || arg === '-h')
    const text = groupHelp(found.group)
    if (wantsHelp) io.stdout(text)
    else io.stderr(`warden: ${argv[1] === undefined ? 'missing' : `unknown ${JSON.stringify(argv[1])}:`} subcommand\n\n${text}`)
    return wantsHelp ? EXIT.ok : EXIT.usage
  }

  const { command, rest } = found
  let ctx: ReturnType<typeof createContext> | undefined
  try {
    const { values, positionals } = parse(command, [...globals, ...rest])
    if (values.help) {
      io.stdout(help(command))
      return EXIT.ok
    }
    ctx = createContext(io, values, positionals)
    return await command.run(ctx)
  } catch (error) {
    const failure = describeFailure(error, ctx)
    if (ctx?.json && failure.code !== EXIT.usage) {
      io.stderr(JSON.stringify({ error: errorJson(error), exit_code: failure.code }) + '\n')
    } else {
      io.stderr(`warden ${command.name.join(' ')}: ${failure.message}\n`)
    }
    return failure.code
  } finally {
    await ctx?.close()
  }
}

function errorJson(error: unknown): unknown {
  if (error instanceof WardenError) return error.problem ?? { code: error.code, status: error.status, detail: error.detail }
  const code = error instanceof UsageError ? 'usage' : error instanceof TokenMissingError ? 'unauthorized' : 'failed'
  return { code, detail: error instanceof Error ? error.message : String(error) }
}

/** The process entry: bin/warden.js calls this. */
export async function main(): Promise<void> {
  const argv = process.argv.slice(2)
  const controller = new AbortController()
  const words = argv.slice(0, 2).join(' ')
  if (LONG_RUNNING.has(words) || LONG_RUNNING.has(argv[0] ?? '')) {
    let interrupted = 0
    const onSignal = () => {
      interrupted += 1
      if (interrupted > 1) process.exit(130)
      controller.abort()
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
  }
  const code = await run(argv, {
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
    env: process.env,
    cwd: process.cwd(),
    isTTY: process.stdout.isTTY === true,
    ...(process.stdout.columns ? { columns: process.stdout.columns } : {}),
    signal: controller.signal,
    readInput: async (path) => readFileSync(path === '-' ? 0 : path, 'utf8'),
  })
  process.exitCode = code
  // Whatever still holds the event loop (a keep-alive socket closing) must not hold the exit code hostage.
  setTimeout(() => process.exit(code), 1_000).unref()
}

// Run directly (`tsx src/cli/index.ts`, `node dist/src/cli/index.js`) rather than imported.
if (process.argv[1] === fileURLToPath(import.meta.url)) await main()
