// Drives the CLI in-process (run(argv, io)) and as the real `bin/warden.js` process.
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { resolve } from 'node:path'
import { run } from '../../src/cli/index.js'

export const ROOT = resolve(import.meta.dirname, '..', '..')
export const BIN = resolve(ROOT, 'bin', 'warden.js')

export interface Result {
  code: number
  stdout: string
  stderr: string
  /** stdout split into lines, without the trailing empty one. */
  lines: string[]
}

export async function cli(argv: string[], env: NodeJS.ProcessEnv, options: { signal?: AbortSignal; cwd?: string; onOutput?: (text: string) => void } = {}): Promise<Result> {
  let stdout = ''
  let stderr = ''
  const code = await run(argv, {
    stdout: (text) => {
      stdout += text
      options.onOutput?.(text)
    },
    stderr: (text) => void (stderr += text),
    env,
    cwd: options.cwd ?? ROOT,
    isTTY: false,
    ...(options.signal ? { signal: options.signal } : {}),
  })
  return { code, stdout, stderr, lines: stdout.split('\n').filter((line) => line !== '') }
}

/** Runs `node bin/warden.js …` as its own process; kills it (by PID) after `timeoutMs`. */
export function binary(argv: string[], env: NodeJS.ProcessEnv, timeoutMs = 30_000): Promise<Result & { pid: number }> {
  const child = spawn(process.execPath, [BIN, ...argv], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env } })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk) => (stdout += chunk))
  child.stderr.on('data', (chunk) => (stderr += chunk))
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      process.kill(child.pid!, 'SIGKILL')
      reject(new Error(`warden ${argv.join(' ')} did not finish within ${timeoutMs} ms\n${stdout}\n${stderr}`))
    }, timeoutMs)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolvePromise({ code: code ?? -1, stdout, stderr, lines: stdout.split('\n').filter((line) => line !== ''), pid: child.pid! })
    })
  })
}

/** Starts `node bin/warden.js …` and lets a test wait for lines of its output. */
export function startBin(argv: string[], env: NodeJS.ProcessEnv) {
  const child: ChildProcess = spawn(process.execPath, [BIN, ...argv], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const lines: string[] = []
  const waiters: Array<() => void> = []
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => {
      lines.push(line)
      for (const wake of waiters.splice(0)) wake()
    })
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.once('exit', (code, signal) => done({ code, signal })),
  )
  return {
    child,
    lines,
    exited,
    /** The first line matching `pattern` (its match), within `timeoutMs`. */
    async waitForLine(pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        for (const line of lines) {
          const match = pattern.exec(line)
          if (match) return match
        }
        if (Date.now() > deadline) throw new Error(`no line matched ${pattern} within ${timeoutMs} ms:\n${lines.join('\n')}`)
        await new Promise<void>((wake) => {
          waiters.push(wake)
          setTimeout(wake, 100)
        })
      }
    },
  }
}
