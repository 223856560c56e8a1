// Legacy, while suites move to server.ts's tracker and WardenClient: per-test bookkeeping for end-to-end suites: every server process a test starts and every client
// it opens is recorded here and stopped in afterEach, each process by its own PID.
import { rmSync } from 'node:fs'
import { dirname } from 'node:path'
import { createClient, type ApiClient } from './http-client.js'
import { startServer, type ServerProcess } from './server.js'

export interface Running {
  server: ServerProcess
  client: ApiClient
}

export interface ServerTracker {
  /** Starts a server (on `dbFile` when given) and a client with `connections` sockets. */
  start(options?: { dbFile?: string; env?: Record<string, string>; connections?: number }): Promise<Running>
  /** Records a process started elsewhere so cleanup stops it too. */
  track(server: ServerProcess): void
  /** Stops every process (SIGKILL, by its PID), closes every client, removes the temp folders. */
  cleanup(): Promise<void>
}

export function createServerTracker(): ServerTracker {
  const servers: ServerProcess[] = []
  const clients: ApiClient[] = []
  const dirs = new Set<string>()

  return {
    async start({ dbFile, env, connections } = {}) {
      const server = await startServer({ ...(dbFile ? { dbFile } : {}), ...(env ? { env } : {}) })
      servers.push(server)
      dirs.add(dirname(server.dbFile))
      const client = createClient(server.url, server.operatorToken, { connections: connections ?? 64 })
      clients.push(client)
      return { server, client }
    },
    track(server) {
      servers.push(server)
    },
    async cleanup() {
      await Promise.allSettled(clients.splice(0).map((client) => client.destroy()))
      await Promise.allSettled(servers.splice(0).map((server) => server.kill('SIGKILL')))
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
      dirs.clear()
    },
  }
}

export { range } from './fixtures.js'
