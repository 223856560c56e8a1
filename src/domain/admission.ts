// The admission use cases: issuing root and child manifests, and registering them. Each builds
// the context of its decision, runs the table of admission rules (admission-rules.ts) and either
// denies with the first rule that refuses or approves. A decision and its audit record commit in
// one transaction; denials are audited and then thrown. The process is single-threaded and every
// decision runs synchronously inside an IMMEDIATE transaction, so no two decisions interleave:
// quota and cooldown cannot be raced.
import type { Manifest, RegistrationResponse, RootManifestRequest, SpawnRequest, UnsignedManifest } from '../schemas/index.js'
import type { WorkerRecord } from '../store/workers.js'
import { authenticityRules, firstRefusal, lazy, type AdmissionContext, type AdmissionStage, type Candidate, type Refusal } from './admission-rules.js'
import { iso } from './clock.js'
import { contractView, heartbeatIntervalSeconds, type CompiledContract } from './contract.js'
import { operatorActor, workerActor } from './actors.js'
import { type DomainDeps } from './context.js'
import { DomainError } from './errors.js'
import type { Transitions } from './transitions.js'
import { within } from './resources.js'
import { EXTERNAL } from './sandbox.js'
import { evaluateConditions } from './stop-conditions.js'
import { idempotencyScope, keptManifest } from './idempotency.js'
import { generateToken, hashToken, newWorkerId } from './tokens.js'
import { workerSummary } from './views.js'

export function createAdmission(deps: DomainDeps, transitions: Transitions) {
  const { store, clock, signer, contracts, sandbox, leases, idempotency, rejections } = deps

  /**
   * The context of one decision. The lease book holds exactly the live workers as of the last
   * commit; a worker ended earlier in the same transaction still counts, which errs on the safe side.
   */
  function context(
    stage: AdmissionStage,
    now: number,
    contract: CompiledContract,
    parentId: string | null,
    candidate: () => Candidate,
    presented: Manifest | null = null,
  ): AdmissionContext {
    const parent = lazy(() => {
      if (parentId === null) return null
      const row = store.workers.get(parentId)
      return row ? transitions.settle(row, now) : null
    })
    const issued = lazy(() => (presented ? (store.manifests.get(presented.worker_id) ?? null) : null))
    const signatureProblem = lazy(() => {
      if (!presented) return null
      try {
        signer.verify(presented)
        return null
      } catch (error) {
        if (error instanceof DomainError) return error
        throw error
      }
    })
    const parentResources = lazy(() => {
      const row = parent()
      return row?.resources ?? null
    })
    const stopVerdict = lazy(() =>
      evaluateConditions(contract.compiled_conditions, {
        manifest: candidate(),
        active_count: leases.size,
        contract: contractView(contract),
        parent: parent() && workerSummary(parent()!, sandbox.describe(parent()!.worker_id)),
      }, deps.celBudgetMs),
    )
    const occupied = lazy(() => leases.size + store.manifests.countOutstanding(now))
    return {
      stage,
      now,
      contract,
      get killSwitchEngaged() {
        return store.killSwitch.get().engaged === 1
      },
      get parent() {
        return parent()
      },
      get parentResources() {
        return parentResources()
      },
      get candidate() {
        return candidate()
      },
      get occupied() {
        return occupied()
      },
      get stopVerdict() {
        return stopVerdict()
      },
      presented,
      get issued() {
        return issued()
      },
      get signatureProblem() {
        return signatureProblem()
      },
    }
  }

  /** Issues a root manifest (parent null, operator) or a child manifest (a spawn by `parentId`). */
  function issue(parentId: string | null, request: RootManifestRequest & { reason?: string }, key: string | undefined): Manifest {
    const stage: AdmissionStage = parentId === null ? 'issue' : 'spawn'
    const actor = parentId === null ? operatorActor : workerActor(parentId)
    const withReason = request.reason ? { reason: request.reason } : {}
    // Keys are the caller's: the operator's, or this parent worker's own.
    const scope = idempotencyScope(actor, key, stage, request)

    return idempotency.once(scope, () => {
      const now = clock.now()
      const contract = contracts.current()
      const ctx: AdmissionContext = context(stage, now, contract, parentId, lazy(propose))
      function propose(): Candidate {
        const parent = ctx.parent
        const resources =
          request.resources ?? (ctx.parentResources ? within(contract.default_resources, ctx.parentResources) : contract.default_resources)
        return {
          worker_id: newWorkerId(),
          parent_id: parent?.worker_id ?? null,
          depth: parent ? parent.depth + 1 : 0,
          state_snapshot: request.state_snapshot ?? parent?.state_snapshot ?? {},
          resources,
          issued_at: iso(now),
          expires_at: iso(now + contract.ms.manifest_ttl),
        }
      }

      const refusal = firstRefusal(ctx)
      if (refusal) {
        const { rule, denial } = refusal
        store.audit.append(
          {
            type: parentId === null ? 'manifest_denied' : 'spawn_denied',
            actor,
            parent_id: parentId,
            code: denial.auditCode ?? rule.code,
            data: { detail: denial.detail, ...denial.extras, ...denial.data, ...withReason },
          },
          iso(now),
        )
        return refusalError(refusal)
      }

      const manifest = signer.sign(ctx.candidate)
      const { signature, ...unsigned } = manifest
      store.manifests.insert({
        worker_id: manifest.worker_id,
        parent_id: manifest.parent_id,
        depth: manifest.depth,
        // The signature makes the manifest a bearer credential: only its digest is stored (SPEC §7).
        body: JSON.stringify(unsigned),
        signature_hash: hashToken(signature),
        issued_at: now,
        expires_at: now + contract.ms.manifest_ttl,
      })
      if (parentId !== null) store.workers.recordSpawn(parentId, now)
      store.audit.append(
        {
          type: parentId === null ? 'manifest_issued' : 'spawn_approved',
          actor,
          worker_id: manifest.worker_id,
          parent_id: manifest.parent_id,
          data: { depth: manifest.depth, resources: manifest.resources, expires_at: manifest.expires_at, ...withReason },
        },
        iso(now),
      )
      return manifest
    }, { status: 201, keep: keptManifest, replay: (kept) => signer.signAgain(kept as UnsignedManifest) }).value
  }

  /**
   * A repeated registration answers the first one with a fresh lease token: tokens are stored
   * only as hashes, so the first cannot be answered again, and it stops working at once.
   */
  function rotateLeaseToken(kept: unknown): RegistrationResponse {
    const first = kept as Omit<RegistrationResponse, 'lease_token'>
    const workerId = first.worker.worker_id
    const leaseToken = generateToken()
    const tokenHash = hashToken(leaseToken)
    store.workers.setTokenHash(workerId, tokenHash)
    store.afterCommit(() => {
      const lease = leases.get(workerId)
      if (lease) lease.tokenHash = tokenHash
    })
    return { ...first, lease_token: leaseToken }
  }

  return {
    /** `key`: the request's Idempotency-Key (SPEC §3 Retries), if it sent one. */
    issueRoot(request: RootManifestRequest, key?: string): Manifest {
      return issue(null, request, key)
    },

    spawn(parent: Pick<WorkerRecord, 'worker_id'>, request: SpawnRequest, key?: string): Manifest {
      return issue(parent.worker_id, request, key)
    },

    /**
     * SPEC §2.4: only an authentic, unused, unexpired manifest registers, and only once.
     * The open endpoint has no caller but the manifest, which is its credential: keys are scoped
     * to the manifest's worker_id. A manifest that fails verification establishes no caller, so
     * its refusal is not recorded under the key.
     */
    register(manifest: Manifest, key?: string, client = 'unknown'): RegistrationResponse {
      const scope = idempotencyScope(`manifest:${manifest.worker_id}`, key, 'register', manifest)
      const { value: registered } = idempotency.once(scope, () => {
        const now = clock.now()
        const contract = contracts.current()
        const { signature: _signature, key_id: _keyId, ...fields } = manifest
        const ctx = context('register', now, contract, manifest.parent_id, () => fields, manifest)

        const refusal = firstRefusal(ctx)
        if (refusal) {
          const { rule, denial } = refusal
          // A manifest that fails verification is the caller's own text: counted for the
          // per-minute summary, never audited by itself nor allowed to touch a real manifest.
          const forged = firstRefusal(ctx, authenticityRules)
          if (forged) {
            store.afterCommit(() => rejections.count(client, forged.rule.code, now))
            return refusalError(refusal)
          }
          if (rule.onRegister) store.manifests.close(manifest.worker_id, rule.onRegister)
          store.audit.append(
            {
              type: 'registration_rejected',
              actor: workerActor(manifest.worker_id),
              worker_id: manifest.worker_id,
              parent_id: manifest.parent_id,
              code: denial.auditCode ?? rule.code,
              data: { detail: denial.detail, ...denial.extras, ...denial.data },
            },
            iso(now),
          )
          return refusalError(refusal)
        }

        const leaseToken = generateToken()
        store.workers.insert({
          worker_id: manifest.worker_id,
          parent_id: manifest.parent_id,
          depth: manifest.depth,
          status: 'active',
          reason: null,
          lease_token_hash: hashToken(leaseToken),
          resources: manifest.resources,
          state_snapshot: manifest.state_snapshot,
          key_id: manifest.key_id,
          issued_at: Date.parse(manifest.issued_at),
          registered_at: now,
          lease_expires_at: now + contract.ms.heartbeat_timeout,
          expires_at: contract.ms.expiration === null ? null : now + contract.ms.expiration,
        })
        const row = store.workers.get(manifest.worker_id)!
        store.afterCommit(() => leases.add(row))
        store.manifests.close(manifest.worker_id, 'registered')
        store.sandboxes.launch(manifest.worker_id, EXTERNAL, JSON.stringify(manifest.resources), now)
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
          worker: transitions.view(row),
          lease_token: leaseToken,
          heartbeat_interval_seconds: heartbeatIntervalSeconds(contract),
          heartbeat_timeout_seconds: contract.heartbeat_timeout_seconds,
        }
      }, {
        status: 201,
        keep: ({ lease_token: _token, ...rest }) => rest,
        replay: rotateLeaseToken,
        recordError: (error) => error.code !== 'invalid_signature' && error.code !== 'unknown_key',
      })
      return registered
    },
  }
}

const refusalError = ({ rule, denial }: Refusal): DomainError => denial.error ?? new DomainError(rule.code, denial.detail, denial.extras)

export type Admission = ReturnType<typeof createAdmission>
