// One process driver with everything a hostile-program test looks at from outside: a controller
// socket that answers, a TCP server on the host that counts connections, a "data" folder with a
// secret the sandbox must not see, and cleanup of every process, cgroup and folder it made.
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseCgroupMounts } from '../../src/sandbox/cgroup-plan.js'
import type { LaunchSpec, SandboxDriver, SandboxExit } from '../../src/sandbox/driver.js'
import { createProcessDriver, type ProcessDriverOptions } from '../../src/sandbox/process-driver.js'
import type { Resources } from '../../src/schemas/index.js'
import { waitFor } from './fixtures.js'
import { killMarked, markedPids, newMarker } from './proc.js'

export const HOSTILE = fileURLToPath(new URL('../fixtures/hostile-sandbox.mjs', import.meta.url))
export const CONTROLLER = fileURLToPath(new URL('../fixtures/sandbox-controller.ts', import.meta.url))
/**
 * The process driver needs Linux and root; without them its tests are skipped with this reason.
 * A missing bubblewrap is not a reason to skip: those tests fail, naming it (as CI wants).
 */
export const cannotRunSandboxes: string | null =
  process.platform !== 'linux' ? `sandboxes need Linux, this is ${process.platform}`
  : process.getuid?.() !== 0 ? 'sandboxes need root (bubblewrap namespaces, cgroup writes)'
  : null
export const canRunSandboxes = cannotRunSandboxes === null
if (cannotRunSandboxes !== null) console.warn(`skipping the process driver tests: ${cannotRunSandboxes}`)

/** Folders named `root` in every hierarchy this process could place cgroups in. */
export function cgroupTops(root: string): string[] {
  const mounts = parseCgroupMounts(readFileSync('/proc/self/mountinfo', 'utf8'), readFileSync('/proc/self/cgroup', 'utf8'))
  return [...new Set([mounts.unified, ...Object.values(mounts.v1)])]
    .filter((b): b is string => typeof b === 'string')
    .map((base) => `${base}/${root}`)
}

/** The sub-folders (child cgroups) of a cgroup folder. */
export function childCgroups(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name)
  } catch {
    return []
  }
}

function rmdirQuiet(path: string): void {
  try {
    rmdirSync(path)
  } catch {
    // gone already, or still busy: the tests' own assertions report leftovers
  }
}

/** Removes the cgroups named `root` (controller/worker levels) that a test's drivers left. */
export function removeCgroupTree(root: string): void {
  for (const top of cgroupTops(root)) {
    for (const ctl of childCgroups(top)) {
      for (const leaf of childCgroups(`${top}/${ctl}`)) rmdirQuiet(`${top}/${ctl}/${leaf}`)
      rmdirQuiet(`${top}/${ctl}`)
    }
    rmdirQuiet(top)
  }
}

export interface HostileSpec {
  launch: LaunchSpec
  marker: string
  worker_id: string
  workDir: string
}

export interface SandboxLab {
  driver: SandboxDriver
  /** Top cgroup folder name of this lab's driver. */
  root: string
  dir: string
  workRoot: string
  socketPath: string
  secretDir: string
  exits: SandboxExit[]
  tcpPort: number
  tcpConnections: string[]
  /** A launch of the hostile program in `mode`, its processes marked with a fresh marker. */
  spec(mode: string, resources?: Partial<Resources>, env?: Record<string, string>): HostileSpec
  /** Remembers a marker so close() kills whatever still carries it. */
  track(marker: string): void
  report<T>(workDir: string): Promise<T>
  /** kill(), then SPEC §2.12: no process of it is left within 1 s, observed from /proc. */
  killAndCheckGone(worker_id: string, marker: string): Promise<void>
  close(): Promise<void>
}

export async function createSandboxLab(options: Partial<ProcessDriverOptions> & { pidsMax: number }): Promise<SandboxLab> {
  const root = options.cgroupRoot ?? `warden-test-${process.pid}-${randomBytes(3).toString('hex')}`
  const dir = mkdtempSync(join(tmpdir(), 'warden-sbx-'))
  const workRoot = join(dir, 'sandboxes')
  const secretDir = join(dir, 'data')
  mkdirSync(secretDir)
  writeFileSync(join(secretDir, 'signing-key'), 'do not read me', { mode: 0o600 })
  const socketPath = join(dir, 'controller.sock')
  const controller = net.createServer((socket) => socket.end('controller-ok\n'))
  await new Promise<void>((resolve) => controller.listen(socketPath, resolve))
  const tcpConnections: string[] = []
  const tcp = net.createServer((socket) => {
    tcpConnections.push(String(socket.remoteAddress))
    socket.destroy()
  })
  await new Promise<void>((resolve) => tcp.listen(0, '0.0.0.0', resolve))
  const markers: string[] = []
  const exits: SandboxExit[] = []

  async function close(): Promise<void> {
    await driver?.shutdown()
    for (const marker of markers) {
      killMarked(marker)
    }
    await new Promise((resolve) => controller.close(resolve))
    await new Promise((resolve) => tcp.close(resolve))
    removeCgroupTree(root)
    removeCgroupTree(`${root}-crash`)
    rmSync(dir, { recursive: true, force: true })
  }

  let driver: SandboxDriver | undefined
  try {
    driver = await createProcessDriver({
      workRoot,
      controllerSocket: socketPath,
      cgroupRoot: root,
      hidePaths: [secretDir],
      ...options,
    })
  } catch (error) {
    await close()
    throw error
  }
  driver.onExit((exit) => exits.push(exit))
  const d = driver

  return {
    driver: d,
    root,
    dir,
    workRoot,
    socketPath,
    secretDir,
    exits,
    tcpPort: (tcp.address() as net.AddressInfo).port,
    tcpConnections,
    spec(mode, resources = {}, env = {}) {
      const marker = newMarker()
      markers.push(marker)
      const worker_id = `t${randomBytes(8).toString('hex')}`
      const launch: LaunchSpec = {
        worker_id,
        program: { command: [process.execPath, HOSTILE, mode], env: { HOSTILE_MARKER: marker, ...env } },
        resources: {
          cpu_limit: 1,
          memory_limit_mb: 128,
          network_policy: { allow_controller: true, allow_external: false },
          ...resources,
        },
        env: { WARDEN_WORKER_ID: worker_id },
      }
      return { launch, marker, worker_id, workDir: join(workRoot, worker_id) }
    },
    track: (marker) => void markers.push(marker),
    async report<T>(workDir: string): Promise<T> {
      const file = join(workDir, 'report.json')
      return waitFor('report.json', async () => (existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as T) : undefined), 15_000, 20)
    },
    async killAndCheckGone(worker_id, marker) {
      await d.kill([worker_id])
      await waitFor('no process of the sandbox left', async () => (markedPids(marker).length === 0 ? true : undefined), 1000, 5)
    },
    close,
  }
}
