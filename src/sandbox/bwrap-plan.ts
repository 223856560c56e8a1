// The command line that starts one sandbox — pure data, no fs or process here.
// bubblewrap reports the pid of the sandbox's first process (its PID namespace's init) on the
// status fd, and that process then waits on the block fd before it starts anything of the
// program. The driver moves it into the sandbox's cgroups in between, so everything the program
// ever forks is born inside them. The outer bubblewrap stays in the controller's cgroup: a kill
// of the sandbox's cgroup leaves it to reap the init and report the status (no orphan zombies).
import type { LaunchSpec } from './driver.js'

/** Where the controller's Unix socket appears inside every sandbox. */
export const SOCKET_INSIDE = '/run/warden/controller.sock'

export interface BwrapPlanInput {
  bwrap: string
  /** Host path of the sandbox's work folder: mounted writable at the same path, its cwd. */
  workDir: string
  /** Host path of the controller's Unix socket, or null when the sandbox may not reach it. */
  controllerSocket: string | null
  allowExternal: boolean
  /** Host folders covered by an empty tmpfs inside (other sandboxes, the controller's data). */
  hidePaths: readonly string[]
  /**
   * Host paths that lie under the sandbox's private /tmp or /run but that the program needs
   * (see exposedPaths): bound read-only at the same path, before hidePaths are applied.
   */
  exposePaths: readonly string[]
  command: readonly string[]
  /** The fd bubblewrap reports the sandbox's pid and exit code on. */
  statusFd: number
  /** The fd the sandbox's init waits on before it starts the program (null: no wait). */
  blockFd: number | null
}

export function bwrapArgv(input: BwrapPlanInput): string[] {
  const argv = [
    input.bwrap,
    // The sandbox dies with its launcher's parent (the controller), SIGKILL included.
    '--die-with-parent',
    // A new session: no TIOCSTI into the controller's terminal.
    '--new-session',
    // A user namespace only so that no further one can be made inside (--disable-userns): nested
    // user namespaces are kernel attack surface a worker has no use for. uid 0 maps to itself.
    '--unshare-user',
    '--disable-userns',
    '--unshare-pid',
    '--unshare-ipc',
    '--unshare-uts',
    '--unshare-cgroup-try',
    ...(input.allowExternal ? [] : ['--unshare-net']),
    // bubblewrap started by root keeps every capability unless told otherwise.
    '--cap-drop', 'ALL',
    '--ro-bind', '/', '/',
    '--dev', '/dev',
    '--proc', '/proc',
    '--tmpfs', '/tmp',
    // /run holds the host's daemons' sockets (container runtimes, dbus): none of them inside.
    '--tmpfs', '/run',
    ...input.exposePaths.flatMap((path) => ['--ro-bind', path, path]),
    ...input.hidePaths.flatMap((path) => ['--tmpfs', path]),
    '--bind', input.workDir, input.workDir,
    ...(input.controllerSocket === null ? [] : ['--bind', input.controllerSocket, SOCKET_INSIDE]),
    '--chdir', input.workDir,
    '--hostname', 'sandbox',
    '--json-status-fd', String(input.statusFd),
    ...(input.blockFd === null ? [] : ['--block-fd', String(input.blockFd)]),
    '--',
    ...input.command,
  ]
  return argv
}

/** Mount points that the sandbox gets empty and private, covering the host's. */
export const PRIVATE_MOUNTS = ['/tmp', '/run'] as const

const under = (path: string, folder: string) => path === folder || path.startsWith(`${folder}/`)

/**
 * What of the host's /tmp and /run a program still sees (read-only): the folder Warden is
 * installed in (a worker imports its client from there) and, for each absolute path on the
 * command line, its folder (a script's own modules sit beside it) — or the file alone when
 * that folder is /tmp or /run itself. Without this a program kept under /tmp, as a clone in
 * /tmp is, would not exist inside its sandbox. Pure: `exists` says what is on the host.
 */
export function exposedPaths(command: readonly string[], installRoot: string, exists: (path: string) => 'file' | 'dir' | null): string[] {
  const wanted: string[] = []
  for (const candidate of [installRoot, ...command.filter((arg) => arg.startsWith('/'))]) {
    const kind = exists(candidate)
    if (kind === null || !PRIVATE_MOUNTS.some((mount) => under(candidate, mount) && candidate !== mount)) continue
    const folder = candidate.slice(0, candidate.lastIndexOf('/')) || '/'
    const path = kind === 'dir' ? candidate : PRIVATE_MOUNTS.includes(folder as (typeof PRIVATE_MOUNTS)[number]) ? candidate : folder
    if (!wanted.some((seen) => under(path, seen))) wanted.push(path)
  }
  // A folder already covering another makes the inner one redundant.
  return wanted.filter((path) => !wanted.some((other) => other !== path && under(path, other)))
}

/**
 * The sandbox's whole environment: nothing of the controller's own (its tokens and keys stay
 * out). Warden's variables win over the program's; the driver sets WARDEN_URL itself.
 */
export function sandboxEnv(spec: Pick<LaunchSpec, 'program' | 'env' | 'resources'>, workDir: string): Record<string, string> {
  const env: Record<string, string> = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: workDir,
    TMPDIR: '/tmp',
    LANG: 'C.UTF-8',
    ...spec.program.env,
    ...spec.env,
  }
  if (spec.resources.network_policy.allow_controller) env.WARDEN_URL = `unix:${SOCKET_INSIDE}`
  else delete env.WARDEN_URL
  return env
}

/** bubblewrap passes on its child's status; a status above 128 is a signal, as in a shell. */
export function exitFromStatus(
  code: number | null,
  signal: NodeJS.Signals | null,
  signalNames: Readonly<Record<number, string>>,
): { exit_code: number | null; signal: string | null } {
  if (signal !== null) return { exit_code: null, signal }
  if (code !== null && code > 128 && signalNames[code - 128] !== undefined) {
    return { exit_code: null, signal: signalNames[code - 128] ?? null }
  }
  return { exit_code: code, signal: null }
}
