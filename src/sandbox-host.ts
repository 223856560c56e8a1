// The controller's side of managed workers (SPEC §5): the Unix socket sandboxes reach the API
// through, the driver chosen by WARDEN_SANDBOX, and the line that says what this host enforces.
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Config } from './config.js'
import { sandboxDir, secretsDir } from './config.js'
import type { SandboxDriverStatus } from './schemas/index.js'
import { detectSandboxDriver, type DriverLog, type SandboxDriver } from './sandbox/index.js'
import { StartupError } from './startup.js'

/** sun_path holds 108 bytes on Linux, its terminating NUL included. */
const SOCKET_PATH_MAX = 100

/**
 * The folder of the controller socket: `run` beside the database (0700), or a private temporary
 * folder when that path would be too long for a socket (or the database is in memory).
 */
function socketDir(config: Config): { dir: string; temporary: boolean } {
  if (config.WARDEN_DB !== ':memory:') {
    const dir = join(secretsDir(config), 'run')
    if (join(dir, 'controller.sock').length <= SOCKET_PATH_MAX) {
      mkdirSync(dir, { recursive: true, mode: 0o700 })
      chmodSync(dir, 0o700)
      return { dir, temporary: false }
    }
  }
  return { dir: mkdtempSync(join(tmpdir(), 'warden-run-')), temporary: true }
}

export interface ControllerSocket {
  path: string
  listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<void>
  close(): Promise<void>
}

/**
 * The API on a Unix socket (mode 0600, in a 0700 folder), served by the same handler as TCP.
 * The process driver bind-mounts it into every sandbox: with `allow_external: false` a sandbox
 * has no network, and this socket is its only way out.
 */
export function controllerSocket(config: Config): ControllerSocket {
  const { dir, temporary } = socketDir(config)
  const path = join(dir, 'controller.sock')
  // One process owns the database (its lock is held by now), so a socket here is a dead one's.
  rmSync(path, { force: true })
  let server: Server | null = null
  return {
    path,
    async listen(handler) {
      server = createServer(
        {
          requestTimeout: config.WARDEN_REQUEST_TIMEOUT_MS,
          headersTimeout: Math.min(config.WARDEN_HEADERS_TIMEOUT_MS, config.WARDEN_REQUEST_TIMEOUT_MS),
          keepAliveTimeout: config.WARDEN_KEEP_ALIVE_TIMEOUT_MS,
        },
        handler,
      )
      server.maxConnections = config.WARDEN_MAX_CONNECTIONS
      await new Promise<void>((resolve, reject) => {
        server!.once('error', reject)
        server!.listen(path, () => resolve())
      })
      chmodSync(path, 0o600)
    },
    async close() {
      if (server) {
        const closing = new Promise<void>((resolve) => server!.close(() => resolve()))
        server.closeAllConnections()
        await closing
      }
      rmSync(temporary ? dir : path, { recursive: true, force: true })
    },
  }
}

/** WARDEN_SANDBOX decides; `process` on a host that cannot enforce is a start-up error. */
export async function chooseDriver(config: Config, socketPath: string, log: DriverLog): Promise<SandboxDriver> {
  try {
    return await detectSandboxDriver(config.WARDEN_SANDBOX, {
      workRoot: sandboxDir(config),
      controllerSocket: socketPath,
      pidsMax: config.WARDEN_SANDBOX_PIDS_MAX,
      cgroupRoot: config.WARDEN_SANDBOX_CGROUP,
      // The data folder holds the operator token, the signing key and the database.
      hidePaths: config.WARDEN_DB === ':memory:' ? [] : [secretsDir(config)],
      log,
    })
  } catch (error) {
    throw new StartupError(
      `WARDEN_SANDBOX=process but this host cannot run the process driver: ${(error as Error).message}`,
      'run as root on Linux with bubblewrap installed (apt-get install bubblewrap) and cgroups mounted, or set WARDEN_SANDBOX=auto or none',
    )
  }
}

/** One line for the start-up log: which driver, why, and what it does not enforce. */
export function describeDriver(status: SandboxDriverStatus): string {
  if (!status.available) {
    return `sandbox driver: none (${status.reason ?? 'unavailable'}); POST /v1/sandboxes answers 503 sandbox_unavailable, external workers are served as usual`
  }
  const missing = notEnforced(status)
  return (
    `sandbox driver: ${status.driver} (cgroup ${status.cgroup ?? 'unknown'})` +
    (missing.length === 0 ? '; enforces memory, cpu, pids, network, freeze and kill' : `; NOT enforced here: ${missing.join(', ')}`) +
    (status.reason ? ` — ${status.reason}` : '')
  )
}

export const notEnforced = (status: SandboxDriverStatus): string[] =>
  Object.entries(status.enforces)
    .filter(([, enforced]) => !enforced)
    .map(([what]) => what)
