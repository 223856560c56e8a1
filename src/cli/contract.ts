// warden contract get | set FILE
import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import type { ContractInput } from '../client/client.js'
import type { Contract, Resources } from '../schemas/index.js'
import type { Command } from './command.js'
import { EXIT, UsageError, type Context } from './context.js'

const resources = (r: Resources) =>
  `${r.cpu_limit} cpu, ${r.memory_limit_mb} MB, controller ${r.network_policy.allow_controller ? 'allowed' : 'denied'}, external ${r.network_policy.allow_external ? 'allowed' : 'denied'}`

function printContract(ctx: Context, contract: Contract): void {
  const rows: [string, string][] = [
    ['version', `${contract.version} (updated ${contract.updated_at})`],
    ['max_depth', String(contract.max_depth)],
    ['max_replicas', String(contract.max_replicas)],
    ['cooldown_seconds', String(contract.cooldown_seconds)],
    ['expiration_seconds', contract.expiration_seconds === null ? 'none' : String(contract.expiration_seconds)],
    ['heartbeat_timeout_seconds', String(contract.heartbeat_timeout_seconds)],
    ['manifest_ttl_seconds', String(contract.manifest_ttl_seconds)],
    ['default_resources', resources(contract.default_resources)],
    ['max_resources', resources(contract.max_resources)],
  ]
  for (const [key, value] of rows) ctx.out(`${ctx.style.bold(key.padEnd(26))} ${value}`)
  ctx.out(`${ctx.style.bold('stop_conditions'.padEnd(26))} ${contract.stop_conditions.length === 0 ? 'none' : ''}`)
  for (const condition of contract.stop_conditions) {
    ctx.out(`  ${ctx.style.cyan(condition.name)}: ${condition.expression}${condition.description ? ctx.style.dim(`  # ${condition.description}`) : ''}`)
  }
}

async function readContract(ctx: Context, path: string): Promise<unknown> {
  let text: string
  try {
    if (path === '-' && !ctx.io.readInput) throw new Error('standard input is not available here')
    text = path === '-' ? await ctx.io.readInput!('-') : await readFile(resolve(ctx.io.cwd, path), 'utf8')
  } catch (error) {
    throw new UsageError(`cannot read ${path}: ${(error as Error).message}`)
  }
  try {
    return JSON.parse(text)
  } catch (error) {
    throw new UsageError(`${path} is not JSON: ${(error as Error).message}`)
  }
}

export const contractCommands: Command[] = [
  {
    name: ['contract', 'get'],
    summary: 'Show the current replication contract',
    async run(ctx) {
      const contract = await ctx.client().getContract()
      if (ctx.json) ctx.printJson(contract)
      else printContract(ctx, contract)
      return EXIT.ok
    },
  },
  {
    name: ['contract', 'set'],
    args: ['FILE'],
    summary: 'Replace the contract with the JSON in FILE (- for stdin); validated, audited, version + 1',
    details: ['The file holds every field of a contract but version and updated_at (see `warden contract get --json`).'],
    arity: [1, 1],
    async run(ctx) {
      const input = (await readContract(ctx, ctx.positionals[0]!)) as Record<string, unknown>
      // A file saved from `contract get --json` carries these two; the controller sets them.
      if (input && typeof input === 'object') {
        delete input.version
        delete input.updated_at
      }
      const contract = await ctx.client().putContract(input as ContractInput)
      if (ctx.json) ctx.printJson(contract)
      else {
        ctx.out(`contract is now version ${contract.version}`)
        printContract(ctx, contract)
      }
      return EXIT.ok
    },
  },
]
