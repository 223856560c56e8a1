// The sandbox driver: where a managed worker's processes run and how a decision reaches them
// (SPEC §5, §2.12–2.13). The domain decides and commits; a driver then acts on the processes.
// Implementations: `process` (bubblewrap + cgroups, Linux, src/sandbox/process-driver.ts) and
// `none` (this host cannot run sandboxes: every launch refused with sandbox_unavailable).
import type { Resources } from '../schemas/index.js'

export interface SandboxProgram {
  command: string[]
  env?: Record<string, string>
}

export interface LaunchSpec {
  worker_id: string
  /** The root's program: a managed child runs its root's program with its own manifest. */
  program: SandboxProgram
  resources: Resources
  /**
   * What Warden adds to the program's environment: WARDEN_WORKER_ID, WARDEN_LEASE_TOKEN,
   * WARDEN_MANIFEST. The driver adds WARDEN_URL itself (it knows where it mounted the socket).
   */
  env: Record<string, string>
}

export interface SandboxUsage {
  cpu_seconds: number
  memory_bytes: number
  memory_peak_bytes: number
  pids: number
  oom_kills: number
}

/** Reported once per sandbox, when its last process has ended, whatever ended it. */
export interface SandboxExit {
  worker_id: string
  exit_code: number | null
  signal: string | null
  /** The kernel killed a process of it for exceeding its memory limit. */
  oom: boolean
}

export interface DriverStatus {
  driver: 'process' | 'none'
  available: boolean
  /** Why not available, or what is not enforced on this host; null when everything is. */
  reason: string | null
  cgroup: 'v2' | 'v1' | 'hybrid' | null
  enforces: { memory: boolean; cpu: boolean; pids: boolean; network: boolean; freeze: boolean; kill: boolean }
}

export interface SandboxDriver {
  readonly name: 'process' | 'none'
  status(): DriverStatus
  /** Starts the sandbox; resolves once its first process runs inside its cgroup and namespaces. */
  launch(spec: LaunchSpec): Promise<{ pid: number; started_at: number }>
  /** Kills every process of these sandboxes; resolves once none is left. Unknown ids are ignored. */
  kill(workerIds: readonly string[]): Promise<void>
  /** Freezes every process of the sandbox (no CPU time) until thaw. */
  freeze(workerId: string): Promise<void>
  thaw(workerId: string): Promise<void>
  /** Read from the cgroup now; null for an unknown or ended sandbox. */
  usage(workerId: string): SandboxUsage | null
  onExit(listener: (exit: SandboxExit) => void): void
  /** Kills every sandbox and removes their cgroups (controller shutdown). */
  shutdown(): Promise<void>
}

/** No driver can run this sandbox (the domain answers 503 sandbox_unavailable). */
export class SandboxUnavailableError extends Error {
  readonly code = 'sandbox_unavailable' as const
  override readonly name = 'SandboxUnavailableError'
}
