// Who may exist (SPEC §2.1–2.6 at the door): one ordered table of the rules that issuing a root
// manifest, approving a spawn and registering a manifest apply. A use case builds the context,
// runs the table and denies with the first rule that answers, or approves. The table's order is
// the precedence when several rules would deny: the kill switch first, then authenticity, the
// parent's state, depth, cooldown, resources, quota and the contract's stop conditions.
import { isLive, type Manifest, type Resources, type UnsignedManifest } from '../schemas/index.js'
import type { ManifestRow } from '../store/manifests.js'
import type { WorkerRecord } from '../store/workers.js'
import type { CompiledContract } from './contract.js'
import { DomainError, type ErrorCode, type ProblemExtras } from './errors.js'
import { exceeds } from './resources.js'
import type { StopVerdict } from './stop-conditions.js'
import { terminatedError } from './transitions.js'
import { tokenMatches } from './tokens.js'

export type AdmissionStage = 'issue' | 'spawn' | 'register'

/** The manifest fields a decision is about: proposed at issue and spawn, presented at register. */
export type Candidate = Omit<UnsignedManifest, 'key_id'>

/**
 * What the rules read. Fields that cost a query or write a settlement (the parent, the quota
 * count, the stop verdict) are computed on first read, so a rule that denies early spares the rest.
 */
export interface AdmissionContext {
  readonly stage: AdmissionStage
  readonly now: number
  readonly contract: CompiledContract
  readonly killSwitchEngaged: boolean
  /** The parent, settled (a lease or lifetime that ran out ends it first); null for a root. */
  readonly parent: WorkerRecord | null
  /** The parent's resources, null for a root. */
  readonly parentResources: Resources | null
  readonly candidate: Candidate
  /** Live workers plus outstanding manifests inside their TTL (SPEC §2.1). */
  readonly occupied: number
  readonly stopVerdict: StopVerdict
  /** At register: the manifest as presented, and what this controller issued under its id. */
  readonly presented: Manifest | null
  readonly issued: ManifestRow | null
  /** At register: the signer's objection to the presented manifest, if any. */
  readonly signatureProblem: DomainError | null
}

/** What becomes of a presented manifest that a rule refuses at registration. */
export type ManifestOutcome = 'rejected' | 'expired' | 'voided' | null

export interface Denial {
  detail: string
  /** Members of the problem document, recorded in the audit data too. */
  extras?: ProblemExtras
  /** Audit data only. */
  data?: Record<string, unknown>
  /** When the audit record names a more precise cause than the problem's code. */
  auditCode?: ErrorCode
  /** The error to throw, when it is not a plain DomainError of the rule's code. */
  error?: DomainError
}

export interface AdmissionRule {
  readonly code: ErrorCode
  readonly stages: readonly AdmissionStage[]
  /** At register: how the refused manifest is closed (null: left as it is). */
  readonly onRegister?: ManifestOutcome
  check(context: AdmissionContext): Denial | string | null
}

const parentLabel = (context: AdmissionContext) => context.candidate.parent_id

export const admissionRules: readonly AdmissionRule[] = [
  {
    code: 'kill_switch_engaged',
    stages: ['issue', 'spawn', 'register'],
    onRegister: 'voided',
    check: (c) => (c.killSwitchEngaged ? 'the kill switch is engaged' : null),
  },
  {
    code: 'unknown_key',
    stages: ['register'],
    onRegister: null,
    check: (c) => (c.signatureProblem?.code === 'unknown_key' ? c.signatureProblem.message : null),
  },
  {
    code: 'invalid_signature',
    stages: ['register'],
    onRegister: null,
    check: (c) => {
      if (c.signatureProblem) return c.signatureProblem.message
      if (!c.issued) return 'this manifest was not issued by this controller'
      // Authentic yet not the one issued under this id (only a key holder could make one).
      if (c.issued.signature_hash && c.presented && !tokenMatches(c.presented.signature, c.issued.signature_hash)) {
        return 'this manifest is not the one issued under its worker_id'
      }
      return null
    },
  },
  {
    code: 'manifest_already_used',
    stages: ['register'],
    onRegister: null,
    check: (c) => (c.issued?.status === 'registered' ? `manifest ${c.candidate.worker_id} has already registered` : null),
  },
  {
    // A spawn by a parent that ended answers what its heartbeat would: 410, worker_terminated.
    code: 'worker_terminated',
    stages: ['spawn'],
    check: ({ parent }) => {
      if (!parent || isLive(parent.status)) return null
      const gone = terminatedError(parent)
      return { detail: gone.message, extras: gone.extras, error: gone, auditCode: parent.status === 'expired' ? 'worker_expired' : gone.code }
    },
  },
  {
    // Checked before expiry: a child whose parent ended had its manifest voided for that reason.
    code: 'parent_not_active',
    stages: ['register'],
    onRegister: 'rejected',
    check: (c) => {
      if (c.candidate.parent_id === null || (c.parent && isLive(c.parent.status))) return null
      return `parent ${c.candidate.parent_id} is ${c.parent?.status ?? 'unknown'}`
    },
  },
  {
    code: 'manifest_expired',
    stages: ['register'],
    onRegister: 'expired',
    check: ({ issued, now, candidate }) => {
      if (!issued || (issued.status === 'outstanding' && now < issued.expires_at)) return null
      return `manifest ${candidate.worker_id} is no longer valid (${issued.status === 'outstanding' ? 'expired' : issued.status})`
    },
  },
  {
    code: 'parent_quarantined',
    stages: ['spawn', 'register'],
    onRegister: 'rejected',
    check: (c) => {
      if (c.parent?.status !== 'quarantined') return null
      return c.stage === 'register' ? `parent ${parentLabel(c)} is quarantined` : `worker ${c.parent.worker_id} is quarantined`
    },
  },
  {
    // Depth is derived, never taken from a manifest (SPEC §2.2): at registration it is derived
    // again (a root 0, a child its parent's + 1) and a manifest stating another is refused. A
    // root is depth 0 and max_depth >= 0: only children can be too deep.
    code: 'depth_exceeded',
    stages: ['spawn', 'register'],
    onRegister: 'rejected',
    check: ({ stage, candidate: { depth }, contract, parent }) => {
      if (stage === 'register') {
        const derived = parent ? parent.depth + 1 : 0
        if (depth !== derived) return `depth ${depth} is not the derived depth ${derived} (a root is 0, a child its parent's + 1)`
      }
      if (depth <= contract.max_depth) return null
      return stage === 'register'
        ? `depth ${depth} exceeds max_depth ${contract.max_depth}`
        : `a child at depth ${depth} exceeds max_depth ${contract.max_depth}`
    },
  },
  {
    // Measured from approval (the last issued child manifest), not from a child's registration.
    code: 'cooldown_active',
    stages: ['spawn'],
    check: ({ parent, contract, now }) => {
      if (parent?.last_spawn_at == null) return null
      const readyAt = parent.last_spawn_at + contract.ms.cooldown
      if (now >= readyAt) return null
      return {
        detail: `worker ${parent.worker_id} may spawn again in ${(readyAt - now) / 1000} s`,
        extras: { retry_after: Math.max(1, Math.ceil((readyAt - now) / 1000)) },
      }
    },
  },
  {
    code: 'resources_exceed_contract',
    stages: ['issue', 'spawn', 'register'],
    onRegister: 'rejected',
    check: ({ candidate, contract }) => {
      const over = exceeds(candidate.resources, contract.max_resources)
      return over && `resources exceed max_resources: ${over}`
    },
  },
  {
    code: 'resources_exceed_parent',
    stages: ['spawn', 'register'],
    onRegister: 'rejected',
    check: ({ candidate, parentResources }) => {
      const over = parentResources && exceeds(candidate.resources, parentResources)
      return over ? `resources exceed the parent's: ${over}` : null
    },
  },
  {
    // A manifest being registered already holds one of the counted slots; a lowered
    // max_replicas can still refuse it.
    code: 'quota_exceeded',
    stages: ['issue', 'spawn', 'register'],
    onRegister: 'rejected',
    check: ({ stage, occupied, contract }) => {
      if (stage === 'register') {
        return occupied > contract.max_replicas ? `${occupied} slots are taken, above max_replicas ${contract.max_replicas}` : null
      }
      return occupied + 1 > contract.max_replicas
        ? `${occupied} of max_replicas ${contract.max_replicas} slots are taken (live workers and outstanding manifests)`
        : null
    },
  },
  {
    code: 'stop_condition',
    stages: ['issue', 'spawn', 'register'],
    onRegister: 'rejected',
    check: ({ stopVerdict: verdict }) => {
      if (!verdict.triggered) return null
      return {
        detail: `stop condition ${verdict.condition} triggered${verdict.error ? ` (evaluation failed: ${verdict.error})` : ''}`,
        extras: { condition: verdict.condition },
        data: verdict.error ? { evaluation_error: verdict.error } : {},
      }
    },
  },
]

/** The rules that establish a presented manifest is authentic: one failing them is the caller's own text. */
export const authenticityRules: readonly AdmissionRule[] = admissionRules.filter(
  (rule) => rule.code === 'unknown_key' || rule.code === 'invalid_signature',
)

export interface Refusal {
  rule: AdmissionRule
  denial: Denial
}

/** The first rule of `stage` that refuses, in table order; null when every rule admits. */
export function firstRefusal(context: AdmissionContext, rules: readonly AdmissionRule[] = admissionRules): Refusal | null {
  for (const rule of rules) {
    if (!rule.stages.includes(context.stage)) continue
    const answer = rule.check(context)
    if (answer !== null) return { rule, denial: typeof answer === 'string' ? { detail: answer } : answer }
  }
  return null
}

/** A lazily computed, memoised value: the context reads each costly field at most once. */
export function lazy<T>(compute: () => T): () => T {
  let done = false
  let value: T
  return () => {
    if (!done) {
      value = compute()
      done = true
    }
    return value
  }
}
