// The wire shapes of SPEC §1 and §3. One zod schema per shape serves request validation,
// response allowlisting, the TypeScript types (z.infer) and the OpenAPI document.
import { z } from 'zod'
import { ErrorCodeSchema } from './error-codes.js'
import { EXAMPLES } from './examples.js'

export { ErrorCodeSchema, type ErrorCode } from './error-codes.js'

export const LIMITS = {
  /** Canonical JSON bytes of one state_snapshot. */
  stateSnapshotBytes: 16 * 1024,
  /** Request body bytes (a manifest with a full snapshot fits with room to spare). */
  bodyBytes: 64 * 1024,
  reasonChars: 500,
  stopConditions: 32,
  expressionChars: 2_000,
  metrics: 64,
  listLimit: 1000,
  /** Nesting levels of a request body (a state snapshot sits two levels down). */
  jsonDepth: 32,
  /** A managed worker's program (SPEC §5): argv items, env entries, and their lengths. */
  programArgs: 64,
  programEnv: 64,
  programArgChars: 4096,
  programEnvNameChars: 128,
  programEnvValueChars: 4096,
} as const

/** A live worker holds a lease (SPEC §1); every other status is terminal and final. This is the one
 * place "live" is defined: the domain, the store's SQL and the CLI all derive from it. */
export const LIVE_STATUSES = ['active', 'quarantined'] as const
export const TERMINAL_STATUSES = ['deregistered', 'killed', 'reaped', 'expired', 'exited'] as const
export const WorkerStatusSchema = z.enum([...LIVE_STATUSES, ...TERMINAL_STATUSES]).meta({ id: 'WorkerStatus', examples: ['active'] })
export type WorkerStatus = z.infer<typeof WorkerStatusSchema>
export type LiveStatus = (typeof LIVE_STATUSES)[number]
export type TerminalStatus = (typeof TERMINAL_STATUSES)[number]
export const isLive = (status: WorkerStatus | null): status is LiveStatus => status === 'active' || status === 'quarantined'

export const TerminationReasonSchema = z.enum(['kill_switch', 'killed', 'reaped', 'expired', 'deregistered', 'exited'])
export type TerminationReason = z.infer<typeof TerminationReasonSchema>

export const WorkerIdSchema = z
  .string()
  .regex(/^[0-9a-f]{32}$/, 'must be 32 lowercase hex characters')
  .meta({ examples: [EXAMPLES.workerId] })
const HexDigest = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex characters')
const Timestamp = z.iso.datetime({ offset: false, precision: 3 }).meta({ examples: [EXAMPLES.timestamp] })
const Reason = z.string().trim().min(1).max(LIMITS.reasonChars)

/** A whole number in a query string: digits only (no '', ' ', 0x10 or 1e3, which Number() accepts). */
const QueryInt = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .regex(/^[0-9]{1,15}$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.int().min(min).max(max))

export const NetworkPolicySchema = z
  .strictObject({
    allow_controller: z.boolean().default(true),
    allow_external: z.boolean().default(false),
  })
  .meta({ id: 'NetworkPolicy', examples: [EXAMPLES.networkPolicy] })

export const ResourcesSchema = z
  .strictObject({
    cpu_limit: z.number().positive().max(1024),
    memory_limit_mb: z.int().positive().max(16 * 1024 * 1024),
    network_policy: NetworkPolicySchema.default({ allow_controller: true, allow_external: false }),
  })
  .meta({ id: 'Resources', examples: [EXAMPLES.resources] })
export type Resources = z.output<typeof ResourcesSchema>

/** Resources as they stand in a signed manifest: every field present, no defaults filled in. */
export const ManifestResourcesSchema = z.strictObject({
  cpu_limit: z.number().positive(),
  memory_limit_mb: z.int().positive(),
  network_policy: z.strictObject({ allow_controller: z.boolean(), allow_external: z.boolean() }),
})

/** Any JSON value; named so the OpenAPI document refers to one schema instead of an anonymous one. */
type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue }
export const JsonValueSchema: z.ZodType<JsonValue> = z
  .lazy(() => z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(JsonValueSchema), z.record(z.string(), JsonValueSchema)]))
  .meta({ id: 'JsonValue', description: 'Any JSON value', examples: [{ step: 12, done: false }] })

/** A JSON object of bounded size; its canonical form is what gets signed. */
export const StateSnapshotSchema = z
  .record(z.string(), JsonValueSchema)
  .refine((value) => Buffer.byteLength(JSON.stringify(value)) <= LIMITS.stateSnapshotBytes, {
    message: `must be at most ${LIMITS.stateSnapshotBytes} bytes of JSON`,
  })
  .meta({ id: 'StateSnapshot', description: 'JSON object cloned into the replica', examples: [EXAMPLES.stateSnapshot] })
export type StateSnapshot = z.infer<typeof StateSnapshotSchema>

export const StopConditionSchema = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 _ . -'),
    description: z.string().max(500).default(''),
    expression: z.string().min(1).max(LIMITS.expressionChars),
  })
  .meta({ id: 'StopCondition', examples: [EXAMPLES.stopCondition] })
export type StopCondition = z.output<typeof StopConditionSchema>

export const ContractInputSchema = z
  .strictObject({
    max_depth: z.int().min(0).max(64),
    max_replicas: z.int().min(1).max(10_000_000),
    cooldown_seconds: z.number().min(0).max(31_536_000),
    expiration_seconds: z.number().positive().max(31_536_000 * 10).nullable(),
    heartbeat_timeout_seconds: z.number().positive().max(86_400),
    manifest_ttl_seconds: z.number().positive().max(86_400 * 7),
    default_resources: ResourcesSchema,
    max_resources: ResourcesSchema,
    stop_conditions: z
      .array(StopConditionSchema)
      .max(LIMITS.stopConditions)
      .default([]),
  })
  .meta({ id: 'ContractSpec', description: 'A contract as an operator writes it (no version)', examples: [EXAMPLES.contractSpec] })
export type ContractInput = z.output<typeof ContractInputSchema>

export const ContractSchema = ContractInputSchema.extend({
  version: z.int().min(1),
  updated_at: Timestamp,
}).meta({ id: 'Contract', description: 'The current contract', examples: [EXAMPLES.contract] })
export type Contract = z.output<typeof ContractSchema>

/** Every field of a manifest but the signature: exactly what the signature covers. */
export const UnsignedManifestSchema = z.strictObject({
  worker_id: WorkerIdSchema,
  parent_id: WorkerIdSchema.nullable(),
  depth: z.int().min(0),
  state_snapshot: StateSnapshotSchema,
  resources: ManifestResourcesSchema,
  issued_at: Timestamp,
  expires_at: Timestamp.describe('registration deadline'),
  key_id: z.string().min(1).max(64),
})
export type UnsignedManifest = z.output<typeof UnsignedManifestSchema>

export const ManifestSchema = UnsignedManifestSchema.extend({
  signature: HexDigest.describe('HMAC-SHA256 (hex) over the RFC 8785 canonical JSON of every other field'),
}).meta({ id: 'Manifest', description: 'A signed manifest: the identity of one worker', examples: [EXAMPLES.manifest] })
export type Manifest = z.output<typeof ManifestSchema>

export const RootManifestRequestSchema = z
  .strictObject({
    state_snapshot: StateSnapshotSchema.optional(),
    resources: ResourcesSchema.optional(),
  })
  .meta({ id: 'RootManifestRequest', examples: [EXAMPLES.rootManifestRequest] })
export type RootManifestRequest = z.output<typeof RootManifestRequestSchema>

export const SpawnRequestSchema = z
  .strictObject({
    reason: Reason,
    state_snapshot: StateSnapshotSchema.optional(),
    resources: ResourcesSchema.optional(),
  })
  .meta({ id: 'SpawnRequest', examples: [EXAMPLES.spawnRequest] })
export type SpawnRequest = z.output<typeof SpawnRequestSchema>

export const HeartbeatRequestSchema = z
  .strictObject({
    metrics: z
      .record(z.string().min(1).max(64), z.number())
      .refine((m) => Object.keys(m).length <= LIMITS.metrics, { message: `at most ${LIMITS.metrics} metrics` })
      .optional(),
  })
  .meta({ id: 'HeartbeatRequest', examples: [EXAMPLES.heartbeatRequest] })
export type HeartbeatRequest = z.output<typeof HeartbeatRequestSchema>

export const DirectiveSchema = z.enum(['continue', 'suspend', 'terminate']).meta({ id: 'Directive', examples: ['continue'] })
export type Directive = z.infer<typeof DirectiveSchema>

export const HeartbeatResponseSchema = z
  .strictObject({
    directive: DirectiveSchema,
    lease_expires_at: Timestamp,
    expires_at: Timestamp.nullable().describe('end of the worker lifetime, null when unlimited'),
    heartbeat_interval_seconds: z.number(),
    heartbeat_timeout_seconds: z.number().describe('a worker silent this long is reaped: the lease each renewal grants'),
  })
  .meta({ id: 'HeartbeatResponse', examples: [EXAMPLES.heartbeatResponse] })
export type HeartbeatResponse = z.infer<typeof HeartbeatResponseSchema>

/** What a managed worker runs (SPEC §5); a managed child runs its root's program. */
export const SandboxProgramSchema = z
  .strictObject({
    command: z
      .array(z.string().min(1).max(LIMITS.programArgChars).refine((arg) => !arg.includes('\0'), 'must not contain NUL'))
      .min(1)
      .max(LIMITS.programArgs),
    env: z
      .record(
        z
          .string()
          .regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'must be an environment variable name')
          .refine((name) => !name.startsWith('WARDEN_'), 'WARDEN_* variables are set by Warden'),
        z.string().max(LIMITS.programEnvValueChars).refine((value) => !value.includes('\0'), 'must not contain NUL'),
      )
      .refine((env) => Object.keys(env).length <= LIMITS.programEnv, { message: `at most ${LIMITS.programEnv} entries` })
      .optional(),
  })
  .meta({ id: 'SandboxProgram', description: 'argv (command[0] is the executable) and extra environment', examples: [EXAMPLES.program] })
export type SandboxProgram = z.output<typeof SandboxProgramSchema>

export const SandboxLaunchRequestSchema = z
  .strictObject({
    program: SandboxProgramSchema,
    state_snapshot: StateSnapshotSchema.optional(),
    resources: ResourcesSchema.optional(),
  })
  .meta({ id: 'SandboxLaunchRequest', examples: [EXAMPLES.sandboxLaunchRequest] })
export type SandboxLaunchRequest = z.output<typeof SandboxLaunchRequestSchema>

export const SandboxUsageSchema = z
  .strictObject({
    cpu_seconds: z.number(),
    memory_bytes: z.number(),
    memory_peak_bytes: z.number(),
    pids: z.int(),
    oom_kills: z.int(),
  })
  .meta({ id: 'SandboxUsage', description: 'read from the cgroup, at most a few seconds old', examples: [EXAMPLES.sandboxUsage] })
export type SandboxUsage = z.infer<typeof SandboxUsageSchema>

export const SandboxStateSchema = z.enum(['starting', 'running', 'frozen', 'ended']).meta({ id: 'SandboxState', examples: ['running'] })
export type SandboxState = z.infer<typeof SandboxStateSchema>

export const SandboxViewSchema = z
  .strictObject({
    driver: z.string(),
    state: SandboxStateSchema,
    pid: z.int().nullable().describe('host PID of the sandbox\'s first process'),
    started_at: Timestamp.nullable(),
    ended_at: Timestamp.nullable(),
    exit_code: z.int().nullable(),
    signal: z.string().nullable(),
    usage: SandboxUsageSchema.nullable().describe('null once the sandbox has ended'),
  })
  .meta({ id: 'Sandbox', description: 'The sandbox of a managed worker', examples: [EXAMPLES.sandbox] })
export type SandboxView = z.infer<typeof SandboxViewSchema>

export const SandboxDriverStatusSchema = z
  .strictObject({
    driver: z.enum(['process', 'none']),
    available: z.boolean(),
    reason: z.string().nullable().describe('why not available, or what is not enforced on this host'),
    cgroup: z.enum(['v2', 'v1', 'hybrid']).nullable(),
    enforces: z.strictObject({
      memory: z.boolean(),
      cpu: z.boolean(),
      pids: z.boolean(),
      network: z.boolean(),
      freeze: z.boolean(),
      kill: z.boolean(),
    }),
  })
  .meta({ id: 'SandboxDriverStatus', examples: [EXAMPLES.sandboxDriverStatus] })
export type SandboxDriverStatus = z.infer<typeof SandboxDriverStatusSchema>

const workerFields = {
  worker_id: WorkerIdSchema,
  parent_id: WorkerIdSchema.nullable(),
  depth: z.int(),
  status: WorkerStatusSchema,
  reason: z.string().nullable().describe('why the worker is in its current state'),
  resources: ResourcesSchema,
  key_id: z.string(),
  issued_at: Timestamp,
  registered_at: Timestamp,
  last_heartbeat_at: Timestamp.nullable(),
  lease_expires_at: Timestamp,
  expires_at: Timestamp.nullable().describe('end of the worker lifetime, null when unlimited'),
  ended_at: Timestamp.nullable(),
  managed: z.boolean().describe('launched by Warden in a sandbox that enforces every decision (SPEC §5)'),
  sandbox: SandboxViewSchema.nullable().describe('null for an external worker'),
}

export const WorkerSummarySchema = z.strictObject(workerFields).meta({ id: 'WorkerSummary', examples: [EXAMPLES.summary] })
export type WorkerSummary = z.infer<typeof WorkerSummarySchema>

export const WorkerViewSchema = z
  .strictObject({
    ...workerFields,
    state_snapshot: StateSnapshotSchema,
    children_count: z.int(),
  })
  .meta({ id: 'Worker', description: 'One worker: manifest fields, status, reason, timestamps', examples: [EXAMPLES.worker] })
export type WorkerView = z.infer<typeof WorkerViewSchema>

export const RegistrationResponseSchema = z
  .strictObject({
    worker: WorkerViewSchema,
    lease_token: z.string().describe('bearer token for this worker only; shown once'),
    heartbeat_interval_seconds: z.number(),
    heartbeat_timeout_seconds: z.number(),
  })
  .meta({ id: 'Registration', examples: [EXAMPLES.registration] })
export type RegistrationResponse = z.infer<typeof RegistrationResponseSchema>

export const SandboxLaunchResponseSchema = z
  .strictObject({
    worker: WorkerViewSchema,
    manifest: ManifestSchema.describe('the signed manifest the sandbox runs with (already registered)'),
  })
  .meta({ id: 'SandboxLaunch', examples: [EXAMPLES.sandboxLaunch] })
export type SandboxLaunch = z.infer<typeof SandboxLaunchResponseSchema>

export const WorkerListQuerySchema = z.strictObject({
  status: WorkerStatusSchema.optional(),
  parent_id: WorkerIdSchema.optional(),
  depth: QueryInt(0).optional(),
  limit: QueryInt(1, LIMITS.listLimit).default(100),
  cursor: z.string().regex(/^[0-9]{1,15}$/, 'must be a cursor returned by a previous page').optional(),
})
export type WorkerListQuery = z.output<typeof WorkerListQuerySchema>

export const WorkerListSchema = z
  .strictObject({
    items: z.array(WorkerSummarySchema),
    next_cursor: z.string().nullable(),
  })
  .meta({ id: 'WorkerList', examples: [EXAMPLES.workerList] })
export type WorkerList = z.infer<typeof WorkerListSchema>

export const LineageNodeSchema = z
  .strictObject({
    worker_id: WorkerIdSchema,
    parent_id: WorkerIdSchema.nullable(),
    depth: z.int(),
    status: WorkerStatusSchema,
    managed: z.boolean(),
    sandbox: SandboxViewSchema.nullable(),
  })
  .meta({ id: 'LineageNode', examples: [EXAMPLES.lineageNode] })
export type LineageNode = z.infer<typeof LineageNodeSchema>

export const LineageSchema = z
  .strictObject({
    worker_id: WorkerIdSchema,
    ancestors: z.array(LineageNodeSchema).describe('root first'),
    descendants: z.array(LineageNodeSchema).describe('breadth first, bounded'),
    truncated: z.boolean().describe('true when descendants were cut at the bound'),
  })
  .meta({ id: 'Lineage', examples: [EXAMPLES.lineage] })
export type Lineage = z.infer<typeof LineageSchema>

export const ReasonBodySchema = z.strictObject({ reason: Reason }).meta({ id: 'ReasonBody', examples: [EXAMPLES.reasonBody] })
export const OptionalReasonBodySchema = z
  .strictObject({ reason: Reason.optional() })
  .meta({ id: 'OptionalReasonBody', examples: [{ reason: 'operator drill' }] })
export const KillRequestSchema = z
  .strictObject({ reason: Reason.optional(), cascade: z.boolean().default(true) })
  .meta({ id: 'KillRequest', examples: [EXAMPLES.killRequest] })

export const KillResultSchema = z
  .strictObject({ worker: WorkerViewSchema, killed: z.array(WorkerIdSchema) })
  .meta({ id: 'KillResult', examples: [EXAMPLES.killResult] })
export type KillResult = z.infer<typeof KillResultSchema>

export const KillSwitchSchema = z
  .strictObject({
    engaged: z.boolean(),
    engaged_at: Timestamp.nullable(),
    reason: z.string().nullable(),
  })
  .meta({ id: 'KillSwitch', examples: [EXAMPLES.killSwitch] })
export type KillSwitchState = z.infer<typeof KillSwitchSchema>

export const KillSwitchEngagedSchema = KillSwitchSchema.extend({
  terminated: z.int().describe('workers terminated by this request'),
  manifests_voided: z.int(),
}).meta({ id: 'KillSwitchEngaged', examples: [EXAMPLES.killSwitchEngaged] })
export type KillSwitchEngaged = z.infer<typeof KillSwitchEngagedSchema>

export const AuditTypeSchema = z.enum([
  'manifest_issued',
  'manifest_denied',
  'manifest_expired',
  'worker_registered',
  'registration_rejected',
  'spawn_approved',
  'spawn_denied',
  'worker_deregistered',
  'worker_quarantined',
  'worker_released',
  'worker_killed',
  'worker_reaped',
  'worker_expired',
  'kill_switch_engaged',
  'kill_switch_disengaged',
  'contract_updated',
  'controller_started',
  'sandbox_launched',
  'sandbox_exited',
  'sandbox_oom',
  'sandbox_frozen',
  'sandbox_thawed',
  'registrations_rejected',
]).meta({ id: 'AuditType', examples: ['spawn_approved'] })
export type AuditType = z.infer<typeof AuditTypeSchema>

export const AuditRecordSchema = z
  .strictObject({
    seq: z.int(),
    at: Timestamp,
    type: AuditTypeSchema,
    actor: z.string(),
    worker_id: z.string().nullable(),
    parent_id: z.string().nullable(),
    code: z.string().nullable(),
    data: z.record(z.string(), JsonValueSchema),
    prev_hash: HexDigest,
    hash: HexDigest,
  })
  .meta({ id: 'AuditRecord', examples: [EXAMPLES.auditRecord] })
export type AuditRecord = z.infer<typeof AuditRecordSchema>

export const AuditQuerySchema = z.strictObject({
  type: AuditTypeSchema.optional(),
  worker_id: WorkerIdSchema.optional(),
  after_seq: QueryInt(0).default(0).describe('only records with a greater seq (the next page, oldest first)'),
  before_seq: QueryInt(1).optional().describe('only records with a smaller seq (the next page, newest first)'),
  order: z.enum(['asc', 'desc']).default('asc').describe('`desc`: newest first'),
  limit: QueryInt(1, LIMITS.listLimit).default(100),
})
export type AuditQuery = z.output<typeof AuditQuerySchema>

export const SummarySchema = z
  .strictObject({
    workers: z.record(WorkerStatusSchema, z.int()).describe('workers by status (every status present, 0 when none)'),
    outstanding_manifests: z.int().describe('issued, not yet registered, not expired'),
    slots_in_use: z.int().describe('live workers (active + quarantined) plus outstanding manifests'),
    max_replicas: z.int(),
    contract_version: z.int(),
    kill_switch: KillSwitchSchema,
    audit_head_seq: z.int().describe('the newest audit record: resume GET /v1/events after it'),
  })
  .meta({
    id: 'Summary',
    examples: [
      {
        workers: { ...Object.fromEntries(WorkerStatusSchema.options.map((status) => [status, 0])), active: 12, quarantined: 1, killed: 4, reaped: 2 },
        outstanding_manifests: 2,
        slots_in_use: 15,
        max_replicas: 20,
        contract_version: 4,
        kill_switch: { engaged: false, engaged_at: null, reason: null },
        audit_head_seq: 1287,
      },
    ],
  })
export type Summary = z.infer<typeof SummarySchema>

/** GET /v1/events: `type` may repeat; Last-Event-ID (a header) wins over `after_seq`. */
export const EventsQuerySchema = z.strictObject({
  type: z
    .union([AuditTypeSchema, z.array(AuditTypeSchema).max(AuditTypeSchema.options.length)])
    .optional()
    .describe('only records of these types; repeat the parameter for several'),
  worker_id: WorkerIdSchema.optional().describe('only records about this worker or naming it as parent'),
  after_seq: QueryInt(0)
    .optional()
    .describe('start after this seq (default: from now); the Last-Event-ID header takes precedence'),
})
export type EventsQuery = z.output<typeof EventsQuerySchema>

export const AuditPageSchema = z
  .strictObject({
    items: z.array(AuditRecordSchema),
    next_after_seq: z.int().nullable().describe('oldest first: pass as `after_seq` for the next page; null on the last'),
    next_before_seq: z.int().nullable().describe('newest first (`order=desc`): pass as `before_seq` for the next page; null on the last'),
  })
  .meta({ id: 'AuditPage', examples: [EXAMPLES.auditPage] })
export type AuditPage = z.infer<typeof AuditPageSchema>

export const AuditVerificationSchema = z
  .strictObject({
    ok: z.boolean(),
    records: z.int(),
    head_hash: HexDigest.nullable(),
    first_invalid_seq: z.int().nullable(),
  })
  .meta({ id: 'AuditVerification', examples: [EXAMPLES.auditVerification] })
export type AuditVerification = z.infer<typeof AuditVerificationSchema>

export const ProblemSchema = z
  .looseObject({
    type: z.string(),
    title: z.string(),
    status: z.int(),
    detail: z.string().optional(),
    code: ErrorCodeSchema,
    instance: z.string().optional(),
    request_id: z.string().optional(),
  })
  .meta({ id: 'Problem', description: 'RFC 9457 problem details with a stable machine code', examples: [EXAMPLES.problem] })
