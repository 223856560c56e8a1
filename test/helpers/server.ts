// The one way a test runs a real Warden server: `src/server.ts` under tsx as a child process on
// 127.0.0.1 with an ephemeral port, signalled only by its own PID. A tracker records every server
// and client a test opens and stops them in afterEach (SIGKILL by PID, temp folders removed).
// Suites drive a server with the project's own WardenClient (`testClient`).
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync, rmSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { Pool } from 'undici'
import { WardenClient } from '../../src/client/client.js'
import { tempDbFile } from './fixtures.js'

const ROOT = resolve(import.meta.dirname, '..', '..')

export type Exit = { code: number | null; signal: NodeJS.Signals | null }

export interface ServerProcess {
  url: string
  pid: number
  dbFile: string
  operatorToken: string
  child: ChildProcess
  /** Every line it wrote to stdout and stderr, as it comes. */
  logs: string[]
  /** Resolves with the exit code (or signal) once the process is gone. */
  exited: Promise<Exit>
  kill(signal?: NodeJS.Signals): Promise<Exit>
}

/** A start that never reached "listening": how the process ended (null: it timed out) and what it printed. */
export class StartFailure extends Error {
  constructor(
    message: string,
    readonly exit: Exit | null,
    readonly logs: string[],
  ) {
    super(message)
    this.name = 'StartFailure'
  }
}

export interface StartOptions {
  /** A database to open again (a restart); a fresh temp folder when omitted. */
  dbFile?: string | undefined
  /** WARDEN_* overrides; WARDEN_SANDBOX is `none` unless a suite asks for sandboxes. */
  env?: Record<string, string> | undefined
  timeoutMs?: number
}

/**
 * Starts `src/server.ts` under tsx and waits for its "listening" log line (so it logs at info).
 * Only this process is ever signalled, by its own PID.
 */
export function startServer(options: StartOptions = {}): Promise<ServerProcess> {
  // A folder of its own unless given one; removed here if the server never comes up.
  const temp = options.dbFile === undefined ? tempDbFile() : undefined
  const dbFile = options.dbFile ?? temp!.file
  const timeoutMs = options.timeoutMs ?? 30_000
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'server.ts')], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      WARDEN_HOST: '127.0.0.1',
      WARDEN_PORT: '0',
      WARDEN_DB: dbFile,
      WARDEN_LOG_LEVEL: 'info',
      WARDEN_REAPER_INTERVAL_MS: '100',
      // External workers only, unless a suite asks for sandboxes: no driver set-up at each start.
      WARDEN_SANDBOX: 'none',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const logs: string[] = []
  // Gone, with its last log lines read: 'close' comes once stdout and stderr ended too ('exit'
  // may come first, and a test reading its final line then raced the pipe).
  const exited = new Promise<Exit>((done) => child.once('close', (code, signal) => done({ code, signal })))
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => logs.push(line))
  }

  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new StartFailure(`server did not start within ${timeoutMs} ms:\n${logs.join('\n')}`, null, logs))
    }, timeoutMs)
    let listening = false
    void exited.then(({ code, signal }) => {
      if (listening) return
      clearTimeout(timer)
      temp?.cleanup()
      reject(new StartFailure(`server exited before listening (code ${code}, signal ${signal}):\n${logs.join('\n')}`, { code, signal }, logs))
    })
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const match = /Warden listening on ((?:http:\/\/|unix:)[^;]+);/.exec(line)
      if (!match) return
      listening = true
      clearTimeout(timer)
      const operatorToken =
        options.env?.WARDEN_OPERATOR_TOKEN ?? readFileSync(join(dbFile, '..', 'operator-token'), 'utf8').trim()
      resolvePromise({
        url: match[1]!,
        pid: child.pid!,
        dbFile,
        operatorToken,
        child,
        logs,
        exited,
        kill(signal = 'SIGKILL') {
          if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, signal)
          return exited
        },
      })
    })
  })
}

/** SIGKILLs `server` by its PID and (unless told not to) removes its database folder. */
export async function stopServer(server: ServerProcess | undefined, { removeFiles = true } = {}): Promise<void> {
  if (!server) return
  await server.kill('SIGKILL')
  if (removeFiles) rmSync(dirname(server.dbFile), { recursive: true, force: true })
}

/** Starts a server again on `server`'s database and port (the old process must be gone). */
export function restartServer(server: ServerProcess, env: Record<string, string> = {}): Promise<ServerProcess> {
  return startServer({ dbFile: server.dbFile, env: { WARDEN_PORT: new URL(server.url).port, ...env } })
}

/**
 * The project's WardenClient as a test uses it: one attempt per call (no retries, no circuit
 * breaker), so a test sees exactly what the server answered; `connections` bounds the sockets so
 * that many calls really run in parallel. `close()` closes its sockets.
 */
export function testClient(url: string, token: string | undefined, options: { connections?: number } = {}): WardenClient {
  const pool = url.startsWith('unix:') ? undefined : new Pool(url, { connections: options.connections ?? 64, pipelining: 1 })
  const client = new WardenClient({
    url,
    token,
    retry: false,
    circuitBreaker: false,
    timeoutMs: 60_000,
    ...(pool ? { dispatcher: pool } : {}),
  })
  if (pool) client.close = () => pool.destroy()
  return client
}

export interface Running {
  server: ServerProcess
  /** An operator client of this server. */
  client: WardenClient
}

export interface ServerTracker {
  /** Starts a server (on `dbFile` when given) and an operator client with `connections` sockets. */
  start(options?: StartOptions & { connections?: number }): Promise<Running>
  /** An operator client (or, with `token`, anyone's) of `server`, closed at cleanup. */
  client(server: Pick<ServerProcess, 'url' | 'operatorToken'>, options?: { connections?: number; token?: string }): WardenClient
  /** A start that must fail: how it failed. One that comes up anyway is tracked and fails the test. */
  failToStart(options?: StartOptions): Promise<StartFailure>
  /** Records a process started elsewhere so cleanup stops it too. */
  track(server: ServerProcess): void
  /** Stops every process (SIGKILL, by its PID), closes every client, removes the temp folders. */
  cleanup(): Promise<void>
}

export function createServerTracker(): ServerTracker {
  const servers: ServerProcess[] = []
  const clients: WardenClient[] = []
  const dirs = new Set<string>()

  const tracker: ServerTracker = {
    async start({ connections, ...options } = {}) {
      const server = await startServer(options)
      tracker.track(server)
      return { server, client: tracker.client(server, connections === undefined ? {} : { connections }) }
    },
    client(server, { token, ...options } = {}) {
      const client = testClient(server.url, token ?? server.operatorToken, options)
      clients.push(client)
      return client
    },
    async failToStart(options = {}) {
      const started = await startServer(options).catch((failure: unknown) => {
        if (failure instanceof StartFailure) return failure
        throw failure
      })
      if (started instanceof StartFailure) return started
      tracker.track(started)
      throw new Error(`the server started (${started.url}) where it had to fail`)
    },
    track(server) {
      servers.push(server)
      dirs.add(dirname(server.dbFile))
    },
    async cleanup() {
      await Promise.allSettled(clients.splice(0).map((client) => client.close()))
      await Promise.allSettled(servers.splice(0).map((server) => server.kill('SIGKILL')))
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
      dirs.clear()
    },
  }
  return tracker
}
