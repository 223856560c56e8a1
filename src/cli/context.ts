// What every command gets: its parsed arguments, where to write, the controller URL and
// operator token resolved from flags and the environment, a client, and exit codes.
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { WardenClient } from '../client/client.js'
import { WardenError } from '../client/errors.js'
import { createStyle, type Style } from './format.js'

/** Exit codes scripts can rely on. */
export const EXIT = {
  ok: 0,
  /** The controller refused the request (a 4xx other than 401/404), or a check failed (audit verify). */
  failed: 1,
  usage: 2,
  /** No answer, a timeout, or a 5xx. */
  unreachable: 3,
  /** No operator token, or a wrong one. */
  unauthorized: 4,
  notFound: 5,
} as const

export interface Io {
  stdout(text: string): void
  stderr(text: string): void
  env: NodeJS.ProcessEnv
  cwd: string
  /** Whether stdout is a terminal (colours, live redraw). */
  isTTY: boolean
  /** Terminal width, when a terminal. */
  columns?: number
  /** Aborts long-running commands (audit tail --follow, demo). */
  signal?: AbortSignal
  /** Reads a file or, for '-', standard input. */
  readInput?(path: string): Promise<string>
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'UsageError'
  }
}

export class TokenMissingError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'TokenMissingError'
  }
}

export type OptionValues = Record<string, string | boolean | undefined>

export interface Context {
  io: Io
  json: boolean
  style: Style
  values: OptionValues
  positionals: string[]
  url: string
  /** The operator token; throws TokenMissingError when none can be found. */
  token(): string
  /** Where the token in use came from (--token, WARDEN_OPERATOR_TOKEN or a file), once read. */
  tokenSource(): string | undefined
  /** A client with the operator token, created on first use and closed after the command. */
  client(): WardenClient
  out(line?: string): void
  err(line?: string): void
  /** Prints a value as JSON (one line when not a terminal, indented otherwise). */
  printJson(value: unknown): void
}

export function controllerUrl(values: OptionValues, env: NodeJS.ProcessEnv): string {
  if (typeof values.url === 'string') return values.url
  if (env.WARDEN_URL) return env.WARDEN_URL
  return `http://127.0.0.1:${env.WARDEN_PORT && env.WARDEN_PORT !== '0' ? env.WARDEN_PORT : '8080'}`
}

/** The token file the server writes beside its database (SPEC §4); ./data for an in-memory one. */
export function tokenFile(env: NodeJS.ProcessEnv, cwd: string): string {
  const db = env.WARDEN_DB || './data/warden.db'
  return join(db === ':memory:' ? resolve(cwd, 'data') : dirname(resolve(cwd, db)), 'operator-token')
}

/** The operator token and where it came from (named when the controller rejects it). */
export function operatorToken(values: OptionValues, env: NodeJS.ProcessEnv, cwd: string): { token: string; source: string } {
  if (typeof values.token === 'string' && values.token !== '') return { token: values.token, source: '--token' }
  if (env.WARDEN_OPERATOR_TOKEN) return { token: env.WARDEN_OPERATOR_TOKEN, source: 'WARDEN_OPERATOR_TOKEN' }
  const file = tokenFile(env, cwd)
  if (existsSync(file)) {
    const token = readFileSync(file, 'utf8').trim()
    if (token !== '') return { token, source: file }
  }
  throw new TokenMissingError(`no operator token: pass --token, set WARDEN_OPERATOR_TOKEN, or run where ${file} exists`)
}

export function createContext(io: Io, values: OptionValues, positionals: string[]): Context & { close(): Promise<void> } {
  const json = values.json === true
  const url = controllerUrl(values, io.env)
  let client: WardenClient | undefined
  let source: string | undefined
  const token = () => {
    const found = operatorToken(values, io.env, io.cwd)
    source = found.source
    return found.token
  }
  return {
    io,
    json,
    style: createStyle(io.isTTY && !json && !io.env.NO_COLOR),
    values,
    positionals,
    url,
    token,
    tokenSource: () => source,
    client() {
      client ??= new WardenClient({
        url,
        token: token(),
        retry: { retries: 2, baseDelayMs: 200, maxDelayMs: 1_000, maxRetryAfterMs: 0 },
        circuitBreaker: false,
      })
      return client
    },
    out: (line = '') => io.stdout(line + '\n'),
    err: (line = '') => io.stderr(line + '\n'),
    printJson: (value) => io.stdout(JSON.stringify(value, null, io.isTTY ? 2 : undefined) + '\n'),
    async close() {
      await client?.close()
    },
  }
}

/** Maps a failure to its exit code and a message for stderr. */
export function describeFailure(error: unknown, ctx?: Pick<Context, 'url' | 'tokenSource'>): { code: number; message: string } {
  if (error instanceof UsageError) return { code: EXIT.usage, message: error.message }
  if (error instanceof TokenMissingError) return { code: EXIT.unauthorized, message: error.message }
  const source = ctx?.tokenSource()
  if (error instanceof WardenError && error.status === 401 && source !== undefined) {
    return { code: EXIT.unauthorized, message: `token rejected: ${ctx!.url} did not accept the operator token from ${source}` }
  }
  if (error instanceof WardenError) {
    const code =
      error.status === 0 || error.status >= 500
        ? EXIT.unreachable
        : error.status === 401
          ? EXIT.unauthorized
          : error.status === 404
            ? EXIT.notFound
            : EXIT.failed
    const extras = [
      error.condition && `condition ${error.condition}`,
      error.retry_after !== undefined && `retry after ${error.retry_after} s`,
      error.reason && `reason ${error.reason}`,
    ].filter(Boolean)
    const status = error.status ? ` (${error.status})` : ''
    return { code, message: `${error.code}${status}: ${error.detail}${extras.length ? ` [${extras.join(', ')}]` : ''}` }
  }
  return { code: EXIT.failed, message: error instanceof Error ? (error.stack ?? error.message) : String(error) }
}
