// warden sandbox launch|driver: managed workers (SPEC §5) from the command line.
import { accessSync, constants, existsSync } from 'node:fs'
import { delimiter, isAbsolute, join, resolve } from 'node:path'
import type { SandboxLaunchRequest } from '../schemas/index.js'
import { stringOption, type Command } from './command.js'
import { EXIT, UsageError, type Context } from './context.js'
import { resourcesOption, stateSnapshot } from './manifest.js'

/** `node` → /usr/bin/node: the sandbox runs the program by path, with no shell. */
function onPath(name: string, env: NodeJS.ProcessEnv): string | null {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue
    const candidate = join(dir, name)
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }
  return null
}

/**
 * The program as the sandbox must see it: the executable found on PATH, and arguments that name
 * files here made absolute (the sandbox starts in its own work folder, not in this one).
 */
export function resolveProgram(argv: string[], cwd: string, env: NodeJS.ProcessEnv): string[] {
  const [first, ...rest] = argv
  if (first === undefined) throw new UsageError('give the program after --, e.g. warden sandbox launch -- node worker.mjs')
  const executable = first.includes('/') ? resolve(cwd, first) : onPath(first, env)
  if (executable === null) throw new UsageError(`${first} is not on PATH`)
  const args = rest.map((arg) => (!arg.startsWith('-') && !isAbsolute(arg) && existsSync(resolve(cwd, arg)) ? resolve(cwd, arg) : arg))
  return [executable, ...args]
}

const formatBytes = (bytes: number): string =>
  bytes >= 1 << 30 ? `${(bytes / (1 << 30)).toFixed(1)} GiB` : bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MiB` : `${Math.round(bytes / 1024)} KiB`

export function usageText(usage: { cpu_seconds: number; memory_bytes: number; pids: number; oom_kills: number } | null): string {
  if (usage === null) return '-'
  return `${usage.cpu_seconds.toFixed(1)}s cpu, ${formatBytes(usage.memory_bytes)}, ${usage.pids} pids${usage.oom_kills > 0 ? `, ${usage.oom_kills} OOM` : ''}`
}

async function launch(ctx: Context): Promise<number> {
  const client = ctx.client()
  const command = resolveProgram(ctx.positionals, ctx.io.cwd, ctx.io.env)
  const request: SandboxLaunchRequest = { program: { command } }
  const state = await stateSnapshot(ctx)
  if (state) request.state_snapshot = state as SandboxLaunchRequest['state_snapshot']
  const resources = await resourcesOption(ctx, client, 'memory-mb')
  if (resources) request.resources = resources
  const key = stringOption(ctx.values, 'idempotency-key')
  const { worker, manifest } = await client.launchSandbox(request, key === undefined ? {} : { idempotencyKey: key })
  if (ctx.json) {
    ctx.printJson({ worker, manifest })
    return EXIT.ok
  }
  const sandbox = worker.sandbox
  ctx.out(`${ctx.style.bold('worker')}     ${worker.worker_id}`)
  ctx.out(`${ctx.style.bold('status')}     ${ctx.style.status(worker.status)}${worker.reason ? ` (${worker.reason})` : ''}`)
  ctx.out(`${ctx.style.bold('sandbox')}    ${sandbox ? `${sandbox.driver}, ${sandbox.state}, pid ${sandbox.pid ?? '-'}` : '-'}`)
  ctx.out(`${ctx.style.bold('program')}    ${command.join(' ')}`)
  ctx.out(
    `${ctx.style.bold('resources')}  ${worker.resources.cpu_limit} cpu, ${worker.resources.memory_limit_mb} MB, external network ${worker.resources.network_policy.allow_external ? 'allowed' : 'denied'}`,
  )
  return worker.status === 'active' ? EXIT.ok : EXIT.failed
}

export const sandboxCommands: Command[] = [
  {
    name: ['sandbox', 'launch'],
    args: ['--', 'PROGRAM', '[ARGS...]'],
    summary: 'Launch a managed worker: Warden runs PROGRAM in a sandbox and enforces every decision on it',
    details: [
      'The program gets WARDEN_URL, WARDEN_WORKER_ID, WARDEN_LEASE_TOKEN and WARDEN_MANIFEST in its environment',
      '(Worker.fromEnv() starts from them) and its own work folder as working directory. Its approved',
      "spawns are launched by Warden running this same program. Resources not given come from the contract's",
      'default_resources. Example: warden sandbox launch --cpu 0.5 --memory-mb 128 -- node worker.mjs',
    ],
    options: {
      cpu: { type: 'string', value: 'N', description: 'cpu_limit (cores)' },
      'memory-mb': { type: 'string', value: 'MB', description: 'memory_limit_mb' },
      'allow-external': { type: 'boolean', description: "share the host's network (default: only the controller)" },
      state: { type: 'string', value: 'JSON', description: 'state snapshot (a JSON object) cloned into the worker' },
      'state-file': { type: 'string', value: 'FILE', description: 'read the state snapshot from FILE' },
      'idempotency-key': { type: 'string', value: 'KEY', description: 'retry-safe: a repeat with this key launches nothing new' },
    },
    arity: [1, 64],
    run: launch,
  },
  {
    name: ['sandbox', 'driver'],
    summary: "This host's sandbox driver and what it enforces",
    async run(ctx) {
      const status = await ctx.client().sandboxDriver()
      if (ctx.json) {
        ctx.printJson(status)
        return EXIT.ok
      }
      ctx.out(`${ctx.style.bold('driver')}     ${status.driver}${status.available ? '' : ' (unavailable)'}`)
      ctx.out(`${ctx.style.bold('cgroup')}     ${status.cgroup ?? '-'}`)
      for (const [what, enforced] of Object.entries(status.enforces)) ctx.out(`${ctx.style.bold(what.padEnd(10))} ${enforced ? 'enforced' : 'NOT enforced'}`)
      if (status.reason) ctx.out(`${ctx.style.bold('reason')}     ${status.reason}`)
      return EXIT.ok
    },
  },
]
