// Shared by the client and CLI suites: a real server per suite, contracts, bounded waits.
// (Servers log at info: startServer waits for the "listening" line.)
import { rmSync } from 'node:fs'
import { dirname } from 'node:path'
import { WardenClient, type WardenClientOptions } from '../../src/client/client.js'
import { startServer, type ServerProcess } from '../helpers/server.js'

import { OPERATOR_TOKEN } from '../helpers/harness.js'
export { OPERATOR_TOKEN }

export { contract, waitFor } from '../helpers/fixtures.js'
export { rejection } from '../helpers/calls.js'

/** A real server child process; `stop()` kills it by its PID and removes its folder. */
export async function realServer(env: Record<string, string> = {}, dbFile?: string) {
  const server = await startServer({ env: { WARDEN_OPERATOR_TOKEN: OPERATOR_TOKEN, ...env }, ...(dbFile ? { dbFile } : {}) })
  return server
}

export async function stopServer(server: ServerProcess | undefined, removeFiles = true): Promise<void> {
  if (!server) return
  await server.kill('SIGKILL')
  if (removeFiles) rmSync(dirname(server.dbFile), { recursive: true, force: true })
}

/** Restarts a stopped server on the same port and database. */
export function restart(server: ServerProcess, env: Record<string, string> = {}): Promise<ServerProcess> {
  return realServer({ WARDEN_PORT: new URL(server.url).port, ...env }, server.dbFile)
}

export function operatorClient(url: string, options: Partial<WardenClientOptions> = {}): WardenClient {
  return new WardenClient({ url, token: OPERATOR_TOKEN, ...options })
}

/** Kills every live worker and voids every manifest, then re-opens admission: a clean quota. */
export async function resetWorkers(client: WardenClient): Promise<void> {
  await client.engageKillSwitch('test reset')
  await client.disengageKillSwitch()
}

