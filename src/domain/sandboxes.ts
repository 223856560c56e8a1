// Managed workers (SPEC §5): launching a root, launching a managed parent's approved child,
// the end of a sandbox (exit, crash, OOM, launch failure) and the reconciliation at start.
// Issue + register + record commit as one transaction; the driver then launches after commit.
import {
  isLive,
  type Manifest,
  type Resources,
  type SandboxLaunchRequest,
  type SandboxProgram,
  type SpawnRequest,
  type UnsignedManifest,
  type WorkerView,
} from '../schemas/index.js'
import type { Admission } from './admission.js'
import { iso } from './clock.js'
import { controllerActor, operatorActor, workerActor } from './actors.js'
import { type DomainDeps } from './context.js'
import { DomainError } from './errors.js'
import { idempotencyScope, keptManifest } from './idempotency.js'
import { type Transitions } from './transitions.js'
import type { SandboxEnforcer, SandboxExit } from './sandbox.js'

export interface ManagedLaunch {
  worker: WorkerView
  manifest: Manifest
  /** Settles once the driver has launched (or failed to launch) the sandbox; never rejects. */
  launched: Promise<void>
}

/** The reason a worker whose sandbox ended carries: exit code, signal, or OOM. */
export function exitReason(exit: Pick<SandboxExit, 'exit_code' | 'signal' | 'oom'>): string {
  const how = exit.signal !== null ? `killed by signal ${exit.signal}` : exit.exit_code !== null ? `exit code ${exit.exit_code}` : 'ended'
  return exit.oom ? `out of memory (${how})` : how
}

/** Returns a DomainError thrown by `fn` instead of throwing it: its audit record stays committed. */
function caught<T>(fn: () => T): T | DomainError {
  try {
    return fn()
  } catch (error) {
    if (error instanceof DomainError) return error
    throw error
  }
}

export function createSandboxes(deps: DomainDeps & { enforcer: SandboxEnforcer }, lifecycle: Transitions, admission: Admission) {
  const { store, clock, enforcer } = deps
  const port = enforcer.port
  const report = deps.report ?? (() => {})
  /** OOM kills already audited per open sandbox. */
  const oomAudited = new Map<string, number>()

  function unavailable(type: 'manifest_denied' | 'spawn_denied', actor: string, parentId: string | null): DomainError | null {
    const status = port.status()
    if (status.available) return null
    const detail = `no sandbox driver can run on this host: ${status.reason ?? 'unavailable'}`
    store.transaction(() =>
      store.audit.append({ type, actor, parent_id: parentId, code: 'sandbox_unavailable', data: { detail, driver: status.driver } }, iso(clock.now())),
    )
    return new DomainError('sandbox_unavailable', detail)
  }

  /**
   * Inside a transaction: registers `manifest` and marks the worker managed with `program`.
   * A rejection is audited and returned.
   */
  function admitManaged(manifest: Manifest, program: SandboxProgram): { manifest: Manifest; leaseToken: string } | DomainError {
    const registration = caught(() => admission.register(manifest))
    if (registration instanceof DomainError) return registration
    store.sandboxes.manage(manifest.worker_id, port.name, JSON.stringify(program))
    return { manifest, leaseToken: registration.lease_token }
  }

  /** After commit: the driver launches the sandbox; the outcome is recorded and audited. */
  function start(manifest: Manifest, leaseToken: string, program: SandboxProgram): Promise<void> {
    const workerId = manifest.worker_id
    const spec = {
      worker_id: workerId,
      program,
      resources: manifest.resources as Resources,
      env: {
        WARDEN_WORKER_ID: workerId,
        WARDEN_LEASE_TOKEN: leaseToken,
        WARDEN_MANIFEST: JSON.stringify(manifest),
      },
    }
    return port.launch(spec).then(
      ({ pid, started_at }) => {
        const worker = store.transaction(() => {
          const row = store.workers.get(workerId)!
          if (store.sandboxes.started(workerId, pid, started_at)) {
            store.audit.append(
              {
                type: 'sandbox_launched',
                actor: controllerActor,
                worker_id: workerId,
                parent_id: row.parent_id,
                data: { driver: port.name, pid, command: program.command[0] ?? '', resources: manifest.resources },
              },
              iso(clock.now()),
            )
          }
          return row
        })
        // A decision that committed while the launch was under way is carried out now.
        if (!isLive(worker.status)) enforcer.stop([workerId], worker.reason ?? worker.status)
        else if (worker.status === 'quarantined') enforcer.freeze(workerId)
      },
      (error: unknown) => {
        report(`sandbox ${workerId}: launch failed`, error)
        const message = error instanceof Error ? error.message : String(error)
        ended({ worker_id: workerId, exit_code: null, signal: null, oom: false }, `launch failed: ${message}`.slice(0, 500))
      },
    )
  }

  /** A sandbox's last process ended: recorded; a live worker ends `exited`. */
  function ended(exit: SandboxExit, reason = exitReason(exit)): void {
    const workerId = exit.worker_id
    store.transaction(() => {
      const now = clock.now()
      const sandbox = store.sandboxes.get(workerId)
      if (!sandbox || sandbox.managed !== 1 || !store.sandboxes.end(workerId, now, exit.exit_code, exit.signal)) return
      const worker = store.workers.get(workerId)!
      const data = { exit_code: exit.exit_code, signal: exit.signal, oom: exit.oom }
      if (isLive(worker.status)) {
        lifecycle.terminate(worker, 'exited', reason, controllerActor, now, data)
      } else {
        store.audit.append(
          { type: 'sandbox_exited', actor: controllerActor, worker_id: workerId, parent_id: worker.parent_id, data: { ...data, worker_status: worker.status } },
          iso(now),
        )
      }
      if (exit.oom && (oomAudited.get(workerId) ?? 0) === 0) {
        store.audit.append({ type: 'sandbox_oom', actor: controllerActor, worker_id: workerId, parent_id: worker.parent_id, code: 'oom', data }, iso(now))
      }
    })
    oomAudited.delete(workerId)
    enforcer.forget(workerId)
  }

  return {
    /** POST /v1/sandboxes: a managed root, issued, registered and launched in one decision. */
    launchRoot(request: SandboxLaunchRequest, key?: string): ManagedLaunch {
      const scope = idempotencyScope(operatorActor, key, 'launch_sandbox', request)
      // With a key, a repeat answers the first launch (its manifest) and launches nothing, even if
      // the driver has become unavailable since. A 503 decided nothing: it is not kept under the
      // key, so a retry once the driver is back launches.
      const { value, replayed } = deps.idempotency.once(
        scope,
        () => {
          const denied = unavailable('manifest_denied', operatorActor, null)
          if (denied) return denied
          const manifest = caught(() => admission.issueRoot({ state_snapshot: request.state_snapshot, resources: request.resources }))
          if (manifest instanceof DomainError) return manifest
          return admitManaged(manifest, request.program)
        },
        {
          status: 201,
          keep: ({ manifest }) => ({ manifest: keptManifest(manifest) }),
          replay: (kept) => ({ manifest: deps.signer.signAgain((kept as { manifest: UnsignedManifest }).manifest), leaseToken: '' }),
          recordError: (error) => error.code !== 'sandbox_unavailable',
        },
      )
      const { manifest, leaseToken } = value
      const launched = replayed ? Promise.resolve() : start(manifest, leaseToken, request.program)
      return { worker: lifecycle.view(store.workers.get(manifest.worker_id)!), manifest, launched }
    },

    /**
     * A spawn. An external parent gets its child manifest to register itself; a managed parent's
     * child is registered here and launched running the root's program, so the manifest the
     * parent receives is already used and cannot register anywhere else.
     */
    spawn(parent: { worker_id: string }, request: SpawnRequest, key?: string): { manifest: Manifest; launched: Promise<void> | null } {
      const parentSandbox = store.sandboxes.get(parent.worker_id)
      if (!parentSandbox || parentSandbox.managed !== 1 || parentSandbox.program === null) {
        return { manifest: admission.spawn(parent, request, key), launched: null }
      }
      const program = JSON.parse(parentSandbox.program) as SandboxProgram
      // The whole managed spawn (approval, registration, record) is the keyed decision: a repeat
      // answers the first one (even if the driver has become unavailable since) and launches
      // nothing; a 503 decided nothing and is not kept under the key.
      const scope = idempotencyScope(workerActor(parent.worker_id), key, 'spawn', request)
      const { value, replayed } = deps.idempotency.once(
        scope,
        () => {
          const denied = unavailable('spawn_denied', workerActor(parent.worker_id), parent.worker_id)
          if (denied) return denied
          const manifest = caught(() => admission.spawn(parent, request))
          if (manifest instanceof DomainError) return manifest
          return admitManaged(manifest, program)
        },
        {
          status: 201,
          keep: ({ manifest }) => ({ manifest: keptManifest(manifest) }),
          replay: (kept) => ({ manifest: deps.signer.signAgain((kept as { manifest: UnsignedManifest }).manifest), leaseToken: '' }),
          recordError: (error) => error.code !== 'sandbox_unavailable',
        },
      )
      return { manifest: value.manifest, launched: replayed ? null : start(value.manifest, value.leaseToken, program) }
    },

    ended,

    /** Usage of every open sandbox read now; an OOM kill inside one is audited when first seen. */
    poll(): void {
      for (const row of store.sandboxes.open()) {
        const usage = enforcer.usage(row.worker_id)
        if (!usage || usage.oom_kills <= (oomAudited.get(row.worker_id) ?? 0)) continue
        const before = oomAudited.get(row.worker_id) ?? 0
        oomAudited.set(row.worker_id, usage.oom_kills)
        store.transaction(() => {
          const worker = store.workers.get(row.worker_id)!
          store.audit.append(
            {
              type: 'sandbox_oom',
              actor: controllerActor,
              worker_id: row.worker_id,
              parent_id: worker.parent_id,
              code: 'oom',
              data: { oom_kills: usage.oom_kills, new_kills: usage.oom_kills - before, memory_peak_bytes: usage.memory_peak_bytes },
            },
            iso(clock.now()),
          )
        })
      }
    },

    /**
     * At start, before serving: no sandbox outlives its controller, so every managed worker
     * still live in the database has ended (`exited`, reason `controller stopped`).
     */
    reconcile(): { exited: number } {
      return store.transaction(() => {
        const now = clock.now()
        let exited = 0
        for (const row of store.sandboxes.open()) {
          store.sandboxes.end(row.worker_id, now, null, null)
          const worker = store.workers.get(row.worker_id)!
          if (isLive(worker.status)) {
            lifecycle.terminate(worker, 'exited', 'controller stopped', controllerActor, now, { exit_code: null, signal: null, oom: false })
            exited++
          }
        }
        return { exited }
      })
    },

    /** Live managed sandboxes by state, with their summed usage (metrics: per state, not per worker). */
    usageByState(): Array<{ state: string; sandboxes: number; cpu_seconds: number; memory_bytes: number; pids: number; oom_kills: number }> {
      const byState = new Map<string, { state: string; sandboxes: number; cpu_seconds: number; memory_bytes: number; pids: number; oom_kills: number }>()
      for (const row of store.sandboxes.open()) {
        const entry = byState.get(row.state) ?? { state: row.state, sandboxes: 0, cpu_seconds: 0, memory_bytes: 0, pids: 0, oom_kills: 0 }
        entry.sandboxes++
        const usage = enforcer.usage(row.worker_id)
        if (usage) {
          entry.cpu_seconds += usage.cpu_seconds
          entry.memory_bytes += usage.memory_bytes
          entry.pids += usage.pids
          entry.oom_kills += usage.oom_kills
        }
        byState.set(row.state, entry)
      }
      return [...byState.values()]
    },
  }
}

export type Sandboxes = ReturnType<typeof createSandboxes>
