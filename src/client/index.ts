// The Warden client, for workers and operators: `import { WardenClient, Worker } from 'warden/client'`.
export { WardenClient } from './client.js'
export type {
  AuditFilter,
  AuditPage,
  CallOptions,
  ContractInput,
  KillRequest,
  KillResult,
  KillSwitchEngaged,
  Lease,
  Lineage,
  Registration,
  RetryEvent,
  RootManifestRequest,
  SpawnRequest,
  WardenClientOptions,
  WorkerList,
  WorkerListFilter,
} from './client.js'
export { WardenError, isWardenError, DENIAL_CODES } from './errors.js'
export type { ClientErrorCode, DenialCode, Problem, StopReason, WardenErrorCode } from './errors.js'
export { CircuitBreaker, DEFAULT_CIRCUIT_BREAKER } from './circuit-breaker.js'
export type { CircuitBreakerOptions, CircuitState } from './circuit-breaker.js'
export { DEFAULT_RETRY, backoffDelay, retryDelay } from './retry.js'
export type { RetryOptions } from './retry.js'
export { Worker } from './worker.js'
export type { ReplicateOptions, ReplicationDenial, ReplicationResult, WorkerEnv, WorkerEvent, WorkerOptions, WorkerState } from './worker.js'
export type {
  AuditRecord,
  AuditVerification,
  Contract,
  Directive,
  HeartbeatResponse,
  KillSwitchState,
  Manifest,
  Resources,
  SandboxDriverStatus,
  SandboxLaunch,
  SandboxLaunchRequest,
  SandboxView,
  StateSnapshot,
  WorkerStatus,
  WorkerSummary,
  WorkerView,
} from '../schemas/index.js'
