// The narrow port through which the domain reaches a sandbox driver (SPEC §5, §2.12–2.13), and
// the enforcer that carries each committed decision out on a managed worker's processes.
// The domain decides and commits first; the driver then acts on the outside world. The wiring
// (server.ts) adapts the real driver in src/sandbox/ to this port.
import type { Resources, SandboxDriverStatus, SandboxProgram, SandboxUsage, SandboxView } from '../schemas/index.js'
import type { SandboxRow } from '../store/sandboxes.js'
import type { Store } from '../store/index.js'
import { iso, isoOrNull, type Clock } from './clock.js'
import type { ContractService } from './contract-service.js'
import type { LeaseBook } from './lease-book.js'

export interface SandboxLaunchSpec {
  worker_id: string
  /** The root's program: a managed child runs its root's program with its own manifest. */
  program: SandboxProgram
  resources: Resources
  /** WARDEN_WORKER_ID, WARDEN_LEASE_TOKEN, WARDEN_MANIFEST; the driver adds WARDEN_URL. */
  env: Record<string, string>
}

/** Reported once per sandbox, when its last process has ended, whatever ended it. */
export interface SandboxExit {
  worker_id: string
  exit_code: number | null
  signal: string | null
  oom: boolean
}

/** What the domain needs of a driver. */
export interface SandboxPort {
  readonly name: 'process' | 'none'
  status(): SandboxDriverStatus
  launch(spec: SandboxLaunchSpec): Promise<{ pid: number; started_at: number }>
  kill(workerIds: readonly string[]): Promise<void>
  freeze(workerId: string): Promise<void>
  thaw(workerId: string): Promise<void>
  usage(workerId: string): SandboxUsage | null
}

/** No driver: external workers only; every launch is refused with sandbox_unavailable. */
export function noSandboxPort(reason = 'no sandbox driver is configured'): SandboxPort {
  const status: SandboxDriverStatus = {
    driver: 'none',
    available: false,
    reason,
    cgroup: null,
    enforces: { memory: false, cpu: false, pids: false, network: false, freeze: false, kill: false },
  }
  return {
    name: 'none',
    status: () => status,
    launch: () => Promise.reject(new Error(reason)),
    kill: () => Promise.resolve(),
    freeze: () => Promise.resolve(),
    thaw: () => Promise.resolve(),
    usage: () => null,
  }
}

/** The sandbox part of a worker view. */
export interface SandboxInfo {
  managed: boolean
  sandbox: SandboxView | null
}

/** The driver name recorded for a worker its owner runs. */
export const EXTERNAL = 'external'

/** Usage older than this is read again from the driver. */
const USAGE_MAX_AGE_MS = 2_000

export interface EnforcerDeps {
  store: Store
  clock: Clock
  contracts: ContractService
  leases: LeaseBook
  port: SandboxPort
  /** Where a driver failure is reported (logged by the wiring). */
  report: (message: string, error: unknown) => void
}

/**
 * Called by the lifecycle after a decision commits. Each call touches managed sandboxes only;
 * calls for external workers are no-ops. Operations on one sandbox run in order.
 */
export function createSandboxEnforcer(deps: EnforcerDeps) {
  const { store, clock, contracts, leases, port, report } = deps
  const chains = new Map<string, Promise<void>>()
  const usageCache = new Map<string, { at: number; usage: SandboxUsage | null }>()

  /** Runs `op` after the operations already queued for this sandbox. */
  function serial(workerId: string, op: () => Promise<void>): Promise<void> {
    const next = (chains.get(workerId) ?? Promise.resolve()).then(op).catch((error) => report(`sandbox ${workerId}: driver call failed`, error))
    chains.set(workerId, next)
    void next.then(() => {
      if (chains.get(workerId) === next) chains.delete(workerId)
    })
    return next
  }

  const openRow = (workerId: string): SandboxRow | undefined => {
    const row = store.sandboxes.get(workerId)
    return row && row.managed === 1 && row.state !== 'ended' ? row : undefined
  }

  function usage(workerId: string): SandboxUsage | null {
    const now = clock.now()
    const cached = usageCache.get(workerId)
    if (cached && now - cached.at < USAGE_MAX_AGE_MS) return cached.usage
    let read: SandboxUsage | null = null
    try {
      read = port.usage(workerId)
    } catch (error) {
      report(`sandbox ${workerId}: usage read failed`, error)
    }
    usageCache.set(workerId, { at: now, usage: read })
    return read
  }

  /** Renews a lease Warden holds on the worker's behalf (it is frozen, so it cannot). */
  function holdLease(workerId: string, now: number): void {
    const lease = leases.get(workerId)
    if (lease) leases.renew(lease, workerId, now + contracts.current().ms.heartbeat_timeout, lease.lastHeartbeatAt ?? now)
  }

  return {
    port,
    usage,

    /** The sandbox fields of a worker view. */
    describe(workerId: string): SandboxInfo {
      const row = store.sandboxes.get(workerId)
      if (!row || row.managed !== 1) return { managed: false, sandbox: null }
      return {
        managed: true,
        sandbox: {
          driver: row.driver,
          state: row.state ?? 'starting',
          pid: row.pid,
          started_at: isoOrNull(row.started_at),
          ended_at: isoOrNull(row.ended_at),
          exit_code: row.exit_code,
          signal: row.signal,
          usage: row.state === 'ended' ? null : usage(workerId),
        },
      }
    },

    /** After commit: these workers ended; every process of their sandboxes is killed. */
    stop(workerIds: readonly string[] | 'all', _reason: string): void {
      const ids = workerIds === 'all' ? store.sandboxes.open().map((row) => row.worker_id) : workerIds.filter((id) => openRow(id))
      if (ids.length === 0) return
      port.kill(ids).catch((error) => report(`sandboxes ${ids.join(', ')}: kill failed`, error))
    },

    /** After a quarantine commits: freeze every process (audited once the driver has done it). */
    freeze(workerId: string): void {
      if (!openRow(workerId)) return
      void serial(workerId, async () => {
        await port.freeze(workerId)
        store.transaction(() => {
          const worker = store.workers.get(workerId)
          if (worker?.status !== 'quarantined' || !store.sandboxes.transition(workerId, 'running', 'frozen')) return
          store.audit.append(
            { type: 'sandbox_frozen', actor: 'controller', worker_id: workerId, parent_id: worker.parent_id, data: { lease: 'held by warden' } },
            iso(clock.now()),
          )
        })
      })
    },

    /** After a release commits: a fresh lease, then thaw (audited once the driver has done it). */
    thaw(workerId: string): void {
      if (!openRow(workerId)) return
      holdLease(workerId, clock.now())
      void serial(workerId, async () => {
        await port.thaw(workerId)
        store.transaction(() => {
          const worker = store.workers.get(workerId)
          if (!worker || !store.sandboxes.transition(workerId, 'frozen', 'running')) return
          holdLease(workerId, clock.now())
          store.audit.append(
            {
              type: 'sandbox_thawed',
              actor: 'controller',
              worker_id: workerId,
              parent_id: worker.parent_id,
              data: { lease_expires_at: iso(leases.get(workerId)?.leaseExpiresAt ?? worker.lease_expires_at) },
            },
            iso(clock.now()),
          )
        })
      })
    },

    /** Each reaper tick: Warden holds the lease of every quarantined managed worker. */
    holdLeases(now: number): void {
      for (const row of store.sandboxes.open()) if (row.status === 'quarantined') holdLease(row.worker_id, now)
    },

    /** The queued driver operations of one sandbox have run (tests, shutdown). */
    settled(workerId: string): Promise<void> {
      return chains.get(workerId) ?? Promise.resolve()
    },

    forget(workerId: string): void {
      usageCache.delete(workerId)
    },
  }
}

export type SandboxEnforcer = ReturnType<typeof createSandboxEnforcer>
