// warden manifest issue
import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import type { RootManifestRequest, WardenClient } from '../client/client.js'
import type { Resources } from '../schemas/index.js'
import { numberOption, stringOption, type Command } from './command.js'
import { EXIT, UsageError, type Context } from './context.js'

export async function stateSnapshot(ctx: Context): Promise<Record<string, unknown> | undefined> {
  const inline = stringOption(ctx.values, 'state')
  const file = stringOption(ctx.values, 'state-file')
  if (inline !== undefined && file !== undefined) throw new UsageError('give --state or --state-file, not both')
  const text = inline ?? (file === undefined ? undefined : await readFile(resolve(ctx.io.cwd, file), 'utf8'))
  if (text === undefined) return undefined
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    throw new UsageError(`the state snapshot is not JSON: ${(error as Error).message}`)
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new UsageError('the state snapshot must be a JSON object')
  return value as Record<string, unknown>
}

/**
 * The resources that --cpu, the memory option (`memoryOption`) and --allow-external ask for, each
 * one not given taken from the contract's defaults; undefined when none is given (the server's
 * defaults then apply as they are).
 */
export async function resourcesOption(ctx: Context, client: WardenClient, memoryOption: string): Promise<Resources | undefined> {
  const cpu = numberOption(ctx.values, 'cpu')
  const memory = numberOption(ctx.values, memoryOption)
  const allowExternal = Boolean(ctx.values['allow-external'])
  if (cpu === undefined && memory === undefined && !allowExternal) return undefined
  const defaults = (await client.getContract()).default_resources
  return {
    cpu_limit: cpu ?? defaults.cpu_limit,
    memory_limit_mb: memory ?? defaults.memory_limit_mb,
    network_policy: { ...defaults.network_policy, ...(allowExternal ? { allow_external: true } : {}) },
  }
}

export const manifestCommands: Command[] = [
  {
    name: ['manifest', 'issue'],
    summary: 'Issue a signed root manifest (depth 0) and print it',
    details: [
      'The manifest is the credential a worker registers with (POST /v1/workers, or Worker.start).',
      'It reserves one slot of max_replicas until it registers or manifest_ttl_seconds pass.',
      'Resources not given come from the contract default_resources.',
      'Example: WARDEN_MANIFEST="$(warden manifest issue --json)" node worker.mjs',
    ],
    options: {
      state: { type: 'string', value: 'JSON', description: 'state snapshot (a JSON object) cloned into the worker' },
      'state-file': { type: 'string', value: 'FILE', description: 'read the state snapshot from FILE' },
      cpu: { type: 'string', value: 'N', description: 'cpu_limit' },
      memory: { type: 'string', value: 'MB', description: 'memory_limit_mb' },
      'allow-external': { type: 'boolean', description: 'allow external network access' },
    },
    async run(ctx) {
      const client = ctx.client()
      const request: RootManifestRequest = {}
      const state = await stateSnapshot(ctx)
      if (state) request.state_snapshot = state as RootManifestRequest['state_snapshot']
      const resources = await resourcesOption(ctx, client, 'memory')
      if (resources) request.resources = resources
      const manifest = await client.issueManifest(request)
      if (ctx.json) ctx.printJson(manifest)
      else {
        ctx.out(JSON.stringify(manifest, null, 2))
        ctx.err(`manifest for worker ${manifest.worker_id}; register it before ${manifest.expires_at}`)
      }
      return EXIT.ok
    },
  },
]
