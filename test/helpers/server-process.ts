// A real Warden server as a child process on 127.0.0.1 with an ephemeral port.
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { tempDbFile } from './fixtures.js'

const ROOT = resolve(import.meta.dirname, '..', '..')

export interface ServerProcess {
  url: string
  pid: number
  dbFile: string
  operatorToken: string
  child: ChildProcess
  logs: string[]
  /** Resolves with the exit code (or signal) once the process is gone. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}


/**
 * Starts `src/server.ts` under tsx and waits for its "listening" log line. Only this process
 * is ever signalled, by its own PID.
 */
export function startServer(options: { dbFile?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<ServerProcess> {
  const dbFile = options.dbFile ?? tempDbFile().file
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
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.once('exit', (code, signal) => done({ code, signal })),
  )
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => logs.push(line))
  }

  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`server did not start within ${options.timeoutMs ?? 30_000} ms:\n${logs.join('\n')}`))
    }, options.timeoutMs ?? 30_000)
    void exited.then(({ code, signal }) => {
      clearTimeout(timer)
      reject(new Error(`server exited before listening (code ${code}, signal ${signal}):\n${logs.join('\n')}`))
    })
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const match = /Warden listening on ((?:http:\/\/|unix:)[^;]+);/.exec(line)
      if (!match) return
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
