// Who may exist (SPEC §2.1–2.5): issuing root and child manifests, and registering them.
// Each decision and its audit record commit in one transaction; denials are audited and then
// thrown. The process is single-threaded and every decision runs synchronously inside an
// IMMEDIATE transaction, so no two decisions interleave: quota and cooldown cannot be raced.
import type {
  Manifest,
  Resources,
  RootManifestRequest,
  SpawnRequest,
  StateSnapshot,
  WorkerView,
} from '../schemas/index.js'
import type { WorkerRow } from '../store/workers.js'
import { iso } from './clock.js'
import { contractView, heartbeatIntervalSeconds, type CompiledContract } from './contract.js'
import { operatorActor, workerActor, type DomainDeps } from './context.js'
import { DomainError, type ErrorCode, type ProblemExtras } from './errors.js'
import { isLive, terminatedError, type Lifecycle } from './lifecycle.js'
import { exceeds, within } from './resources.js'
import { evaluateConditions } from './stop-conditions.js'
import { generateToken, hashToken, newWorkerId } from './tokens.js'
import { workerSummary } from './views.js'

export interface Registration {
  worker: WorkerView
  lease_token: string
  heartbeat_interval_seconds: number
  heartbeat_timeout_seconds: number
}

export function createAdmission(deps: DomainDeps, lifecycle: Lifecycle) {
  const { store, clock, signer, contracts, sandbox, leases } = deps

  /**
   * Occupied slots: live workers plus outstanding manifests inside their TTL (SPEC §2.1). The
   * lease book holds exactly the live workers as of the last commit; a worker ended earlier in
   * the same transaction still counts, which errs on the safe side.
   */
  const occupied = (now: number): number => leases.size + store.manifests.countOutstanding(now)

  function stopVerdict(contract: CompiledContract, manifest: Omit<Manifest, 'signature' | 'key_id'>, parent: WorkerRow | null) {
    return evaluateConditions(contract.compiled_conditions, {
      manifest,
      active_count: leases.size,
      contract: contractView(contract),
      parent: parent && workerSummary(parent),
    })
  }

  /** Issues a root manifest (parent null, operator) or a child manifest (a spawn by `parent`). */
  function issue(parent: Pick<WorkerRow, 'worker_id'> | null, request: RootManifestRequest & { reason?: string }): Manifest {
    const approvedType = parent ? 'spawn_approved' : 'manifest_issued'
    const deniedType = parent ? 'spawn_denied' : 'manifest_denied'
    const actor = parent ? workerActor(parent.worker_id) : operatorActor

    return lifecycle.decide(() => {
      const now = clock.now()
      const contract = contracts.current()
      const deny = (code: ErrorCode, detail: string, extras: ProblemExtras = {}, data: Record<string, unknown> = {}) => {
        store.audit.append(
          {
            type: deniedType,
            actor,
            parent_id: parent?.worker_id ?? null,
            code,
            data: { detail, ...extras, ...data, ...(request.reason ? { reason: request.reason } : {}) },
          },
          iso(now),
        )
        return new DomainError(code, detail, extras)
      }

      if (store.killSwitch.get().engaged === 1) return deny('kill_switch_engaged', 'the kill switch is engaged')

      let parentRow: WorkerRow | null = null
      if (parent) {
        parentRow = lifecycle.settle(store.workers.get(parent.worker_id)!, now)
        if (!isLive(parentRow.status)) {
          const gone = terminatedError(parentRow)
          deny(parentRow.status === 'expired' ? 'worker_expired' : gone.code, gone.message, gone.extras)
          return gone
        }
        if (parentRow.status === 'quarantined') return deny('parent_quarantined', `worker ${parentRow.worker_id} is quarantined`)
      }

      const depth = parentRow ? parentRow.depth + 1 : 0
      if (depth > contract.max_depth) {
        return deny('depth_exceeded', `a child at depth ${depth} exceeds max_depth ${contract.max_depth}`)
      }

      if (parentRow?.last_spawn_at != null) {
        const readyAt = parentRow.last_spawn_at + contract.cooldown_seconds * 1000
        if (now < readyAt) {
          const retryAfter = Math.max(1, Math.ceil((readyAt - now) / 1000))
          return deny('cooldown_active', `worker ${parentRow.worker_id} may spawn again in ${(readyAt - now) / 1000} s`, {
            retry_after: retryAfter,
          })
        }
      }

      const parentResources = parentRow ? (JSON.parse(parentRow.resources) as Resources) : null
      const resources =
        request.resources ?? (parentResources ? within(contract.default_resources, parentResources) : contract.default_resources)
      const overContract = exceeds(resources, contract.max_resources)
      if (overContract) return deny('resources_exceed_contract', `resources exceed max_resources: ${overContract}`)
      const overParent = parentResources && exceeds(resources, parentResources)
      if (overParent) return deny('resources_exceed_parent', `resources exceed the parent's: ${overParent}`)

      const used = occupied(now)
      if (used + 1 > contract.max_replicas) {
        return deny('quota_exceeded', `${used} of max_replicas ${contract.max_replicas} slots are taken (live workers and outstanding manifests)`)
      }

      const fields = {
        worker_id: newWorkerId(),
        parent_id: parentRow?.worker_id ?? null,
        depth,
        state_snapshot: request.state_snapshot ?? (parentRow ? (JSON.parse(parentRow.state_snapshot) as StateSnapshot) : {}),
        resources,
        issued_at: iso(now),
        expires_at: iso(now + contract.manifest_ttl_seconds * 1000),
      }
      const verdict = stopVerdict(contract, fields, parentRow)
      if (verdict.triggered) {
        return deny(
          'stop_condition',
          `stop condition ${verdict.condition} triggered${verdict.error ? ` (evaluation failed: ${verdict.error})` : ''}`,
          { condition: verdict.condition },
          verdict.error ? { evaluation_error: verdict.error } : {},
        )
      }

      const manifest = signer.sign(fields)
      store.manifests.insert({
        worker_id: manifest.worker_id,
        parent_id: manifest.parent_id,
        depth,
        body: JSON.stringify(manifest),
        issued_at: now,
        expires_at: now + contract.manifest_ttl_seconds * 1000,
      })
      if (parentRow) store.workers.recordSpawn(parentRow.worker_id, now)
      store.audit.append(
        {
          type: approvedType,
          actor,
          worker_id: manifest.worker_id,
          parent_id: manifest.parent_id,
          data: { depth, resources, expires_at: manifest.expires_at, ...(request.reason ? { reason: request.reason } : {}) },
        },
        iso(now),
      )
      return manifest
    })
  }

  return {
    issueRoot(request: RootManifestRequest): Manifest {
      return issue(null, request)
    },

    spawn(parent: Pick<WorkerRow, 'worker_id'>, request: SpawnRequest): Manifest {
      return issue(parent, request)
    },

    /** SPEC §2.4: only an authentic, unused, unexpired manifest registers, and only once. */
    register(manifest: Manifest): Registration {
      const registered = lifecycle.decide(() => {
        const now = clock.now()
        const contract = contracts.current()
        const reject = (
          code: ErrorCode,
          detail: string,
          close: 'rejected' | 'expired' | 'voided' | null,
          extras: ProblemExtras = {},
          data: Record<string, unknown> = {},
        ) => {
          if (close) store.manifests.close(manifest.worker_id, close)
          store.audit.append(
            {
              type: 'registration_rejected',
              actor: workerActor(manifest.worker_id),
              worker_id: manifest.worker_id,
              parent_id: manifest.parent_id,
              code,
              data: { detail, ...extras, ...data },
            },
            iso(now),
          )
          return new DomainError(code, detail, extras)
        }

        if (store.killSwitch.get().engaged === 1) return reject('kill_switch_engaged', 'the kill switch is engaged', 'voided')
        try {
          signer.verify(manifest)
        } catch (error) {
          if (error instanceof DomainError) return reject(error.code, error.message, null)
          throw error
        }

        const issued = store.manifests.get(manifest.worker_id)
        if (!issued) return reject('invalid_signature', 'this manifest was not issued by this controller', null)
        if (issued.status === 'registered') {
          return reject('manifest_already_used', `manifest ${manifest.worker_id} has already registered`, null)
        }
        // The parent first: a child whose parent ended had its manifest voided for that reason.
        let parentRow: WorkerRow | null = null
        if (manifest.parent_id !== null) {
          const parent = store.workers.get(manifest.parent_id)
          parentRow = parent ? lifecycle.settle(parent, now) : null
          if (!parentRow || !isLive(parentRow.status)) {
            return reject('parent_not_active', `parent ${manifest.parent_id} is ${parentRow?.status ?? 'unknown'}`, 'rejected')
          }
        }
        if (issued.status !== 'outstanding' || now >= issued.expires_at) {
          return reject('manifest_expired', `manifest ${manifest.worker_id} is no longer valid (${issued.status === 'outstanding' ? 'expired' : issued.status})`, 'expired')
        }
        if (manifest.depth > contract.max_depth) {
          return reject('depth_exceeded', `depth ${manifest.depth} exceeds max_depth ${contract.max_depth}`, 'rejected')
        }
        if (parentRow?.status === 'quarantined') {
          return reject('parent_quarantined', `parent ${manifest.parent_id} is quarantined`, 'rejected')
        }

        const overContract = exceeds(manifest.resources, contract.max_resources)
        if (overContract) return reject('resources_exceed_contract', `resources exceed max_resources: ${overContract}`, 'rejected')
        if (parentRow) {
          const overParent = exceeds(manifest.resources, JSON.parse(parentRow.resources) as Resources)
          if (overParent) return reject('resources_exceed_parent', `resources exceed the parent's: ${overParent}`, 'rejected')
        }

        // This manifest already holds one of the counted slots; a lowered max_replicas can still refuse it.
        const used = occupied(now)
        if (used > contract.max_replicas) {
          return reject('quota_exceeded', `${used} slots are taken, above max_replicas ${contract.max_replicas}`, 'rejected')
        }

        const { signature: _signature, key_id: _keyId, ...fields } = manifest
        const verdict = stopVerdict(contract, fields, parentRow)
        if (verdict.triggered) {
          return reject(
            'stop_condition',
            `stop condition ${verdict.condition} triggered${verdict.error ? ` (evaluation failed: ${verdict.error})` : ''}`,
            'rejected',
            { condition: verdict.condition },
            verdict.error ? { evaluation_error: verdict.error } : {},
          )
        }

        const leaseToken = generateToken()
        const resources = JSON.stringify(manifest.resources)
        store.workers.insert({
          worker_id: manifest.worker_id,
          parent_id: manifest.parent_id,
          depth: manifest.depth,
          status: 'active',
          reason: null,
          lease_token_hash: hashToken(leaseToken),
          resources,
          state_snapshot: JSON.stringify(manifest.state_snapshot),
          key_id: manifest.key_id,
          issued_at: Date.parse(manifest.issued_at),
          registered_at: now,
          lease_expires_at: now + contract.heartbeat_timeout_seconds * 1000,
          expires_at: contract.expiration_seconds === null ? null : now + contract.expiration_seconds * 1000,
        })
        const row = store.workers.get(manifest.worker_id)!
        store.afterCommit(() => leases.add(row))
        store.manifests.close(manifest.worker_id, 'registered')
        store.sandboxes.launch(manifest.worker_id, sandbox.name, resources, now)
        store.audit.append(
          {
            type: 'worker_registered',
            actor: workerActor(manifest.worker_id),
            worker_id: manifest.worker_id,
            parent_id: manifest.parent_id,
            data: { depth: manifest.depth, resources: manifest.resources },
          },
          iso(now),
        )
        return {
          worker: lifecycle.view(row),
          lease_token: leaseToken,
          heartbeat_interval_seconds: heartbeatIntervalSeconds(contract),
          heartbeat_timeout_seconds: contract.heartbeat_timeout_seconds,
        }
      })
      sandbox.launch(registered.worker.worker_id, registered.worker.resources)
      return registered
    },
  }
}

export type Admission = ReturnType<typeof createAdmission>
