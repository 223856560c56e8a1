// The command line that starts one sandbox — pure data, no fs or process here.
// A tiny sh writes its own pid into every cgroup of the sandbox, then execs bubblewrap, so the
// sandbox's first instruction already runs inside its cgroups: a fork at start cannot escape.
import type { LaunchSpec } from './driver.js'

/** Where the controller's Unix socket appears inside every sandbox. */
export const SOCKET_INSIDE = '/run/warden/controller.sock'

/** sh exits with this when it cannot join a cgroup (the program never ran). */
export const JOIN_FAILED_EXIT = 125

const JOIN_SCRIPT =
  `n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit ${JOIN_FAILED_EXIT}; shift; n=$((n-1)); done; exec "$@"`

export interface BwrapPlanInput {
  bwrap: string
  /** Host path of the sandbox's work folder: mounted writable at the same path, its cwd. */
  workDir: string
  /** Host path of the controller's Unix socket, or null when the sandbox may not reach it. */
  controllerSocket: string | null
  allowExternal: boolean
  /** Host folders covered by an empty tmpfs inside (other sandboxes, the controller's data). */
  hidePaths: readonly string[]
  command: readonly string[]
  /** The fd bubblewrap reports the sandbox's pid and exit code on. */
  statusFd: number
}

export function bwrapArgv(input: BwrapPlanInput): string[] {
  const argv = [
    input.bwrap,
    // The sandbox dies with its launcher's parent (the controller), SIGKILL included.
    '--die-with-parent',
    // A new session: no TIOCSTI into the controller's terminal.
    '--new-session',
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
    ...input.hidePaths.flatMap((path) => ['--tmpfs', path]),
    '--bind', input.workDir, input.workDir,
    ...(input.controllerSocket === null ? [] : ['--bind', input.controllerSocket, SOCKET_INSIDE]),
    '--chdir', input.workDir,
    '--hostname', 'sandbox',
    '--json-status-fd', String(input.statusFd),
    '--',
    ...input.command,
  ]
  return argv
}

/** sh joins each cgroup.procs file in order, then execs `argv`. */
export function launcherArgv(join: readonly string[], argv: readonly string[]): string[] {
  return ['/bin/sh', '-c', JOIN_SCRIPT, 'warden-launch', String(join.length), ...join, ...argv]
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
