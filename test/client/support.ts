// Shared by the client and CLI suites: a real server per suite (server.ts, with the fixed
// operator token these suites hand to the CLI), contracts, bounded waits.
import { WardenClient, type WardenClientOptions } from '../../src/client/client.js'
import { OPERATOR_TOKEN } from '../helpers/harness.js'
import { restartServer, startServer, type ServerProcess } from '../helpers/server.js'

export { OPERATOR_TOKEN }
export { rejection } from '../helpers/calls.js'
export { contract, waitFor } from '../helpers/fixtures.js'
export { stopServer } from '../helpers/server.js'

/** A real server child process with OPERATOR_TOKEN; `stopServer` kills it by its PID and removes its folder. */
export function realServer(env: Record<string, string> = {}, dbFile?: string): Promise<ServerProcess> {
  return startServer({ env: { WARDEN_OPERATOR_TOKEN: OPERATOR_TOKEN, ...env }, dbFile })
}

/** Restarts a stopped server on the same port and database. */
export function restart(server: ServerProcess, env: Record<string, string> = {}): Promise<ServerProcess> {
  return restartServer(server, { WARDEN_OPERATOR_TOKEN: OPERATOR_TOKEN, ...env })
}

export function operatorClient(url: string, options: Partial<WardenClientOptions> = {}): WardenClient {
  return new WardenClient({ url, token: OPERATOR_TOKEN, ...options })
}

/** Kills every live worker and voids every manifest, then re-opens admission: a clean quota. */
export async function resetWorkers(client: WardenClient): Promise<void> {
  await client.engageKillSwitch('test reset')
  await client.disengageKillSwitch()
}

