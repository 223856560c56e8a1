// The worker runtime: register, keep the lease with heartbeats at the interval the controller
// answers, obey its directives, and never outlive the lease. A worker that cannot reach the
// controller keeps trying with backoff and stops itself once its last lease has surely ended.
import type { Directive, HeartbeatResponse, Manifest, Resources, StateSnapshot, WorkerView } from '../schemas/index.js'
import { WardenClient, type Lease, type Registration, type WardenClientOptions } from './client.js'
import { WardenError, type DenialCode, type StopReason } from './errors.js'
import { backoffDelay } from './retry.js'

export type WorkerState = 'running' | 'suspended' | 'terminated'

export type WorkerEvent =
  | { type: 'registered'; worker: WorkerView }
  /** Started from a lease it was given (Worker.attach, Worker.fromEnv): no registration of its own. */
  | { type: 'attached'; worker_id: string; directive: Directive }
  | { type: 'heartbeat'; directive: Directive; lease_expires_at: string }
  | { type: 'suspended' }
  | { type: 'resumed' }
  | { type: 'controller_unreachable'; error: WardenError; retry_in_ms: number; lease_left_ms: number }
  | { type: 'controller_reachable' }
  | { type: 'terminated'; reason: StopReason; detail: string }

export interface WorkerOptions {
  /** The controller; or pass `client`. */
  url?: string
  /** A client to use instead of creating one from `url` (it is not closed by the worker). */
  client?: WardenClient
  clientOptions?: Omit<WardenClientOptions, 'url' | 'token'>
  /** Runs once when the worker stops for any reason (after its tasks were told to abort). */
  onTerminate?: (reason: StopReason, detail: string) => void | Promise<void>
  onEvent?: (event: WorkerEvent) => void
  /** Numbers sent with every heartbeat. */
  metrics?: () => Record<string, number>
  /** Backoff between heartbeat attempts while the controller cannot be reached. */
  reconnect?: { baseDelayMs?: number; maxDelayMs?: number }
  now?: () => number
  random?: () => number
}

/** Where Worker.fromEnv reads its start: a managed worker's environment (SPEC §5). */
export interface WorkerEnv {
  /** http://host:port, or unix:/absolute/path for a controller on a Unix socket. */
  WARDEN_URL?: string | undefined
  WARDEN_WORKER_ID?: string | undefined
  /** Absent: the worker registers WARDEN_MANIFEST itself (an external worker). */
  WARDEN_LEASE_TOKEN?: string | undefined
  /** The signed manifest as JSON. */
  WARDEN_MANIFEST?: string | undefined
}

export type ReplicationDenial = {
  approved: false
  code: DenialCode
  detail: string
  /** The stop condition that triggered (`stop_condition`). */
  condition?: string
  /** Seconds until the cooldown ends (`cooldown_active`). */
  retry_after?: number
  error: WardenError
}

export type ReplicationResult = { approved: true; manifest: Manifest } | ReplicationDenial

export interface ReplicateOptions {
  resources?: Resources
  signal?: AbortSignal
  /** Wait out a cooldown up to this long instead of returning the denial (default 0: return it). */
  maxCooldownWaitMs?: number
}

const MAX_TIMER_MS = 2 ** 31 - 1

export class Worker {
  readonly manifest: Manifest
  readonly lease: Lease
  /** The controller's answer to this worker's registration; null when it started from a given lease. */
  readonly registration: Registration | null
  /** Resolves once the worker has stopped, with why. */
  readonly done: Promise<{ reason: StopReason; detail: string }>

  private current: WorkerState = 'running'
  private stopReason: StopReason | null = null
  private resolveDone!: (value: { reason: StopReason; detail: string }) => void
  private readonly client: WardenClient
  private readonly ownsClient: boolean
  private readonly options: WorkerOptions
  private readonly now: () => number
  private readonly random: () => number
  private readonly tasks = new Set<AbortController>()
  private heartbeatTimer: NodeJS.Timeout | undefined
  private leaseTimer: NodeJS.Timeout | undefined
  private expiryTimer: NodeJS.Timeout | undefined
  private inflight: AbortController | undefined
  private intervalMs: number
  private leaseMs: number
  private leaseDeadline = 0
  private expiryDeadline: number | null = null
  private failures = 0

  /** Registers `manifest` with the controller and starts the heartbeat loop. */
  static async start(manifest: Manifest, options: WorkerOptions): Promise<Worker> {
    const client = Worker.clientFor(options)
    const now = options.now ?? Date.now
    let registration: Registration
    try {
      // Keyed: a registration whose answer is lost is retried and answered once (a fresh token).
      registration = await client.register(manifest)
    } catch (error) {
      if (!options.client) await client.close()
      throw error
    }
    const worker = new Worker(client, !options.client, manifest, { lease: registration, registration }, options)
    worker.arm(now(), registration.worker.lease_expires_at, registration.worker.expires_at)
    worker.emit({ type: 'registered', worker: registration.worker })
    return worker
  }

  /**
   * Takes over a worker that is already registered (a managed worker: the controller registered
   * it and launched this process with its lease token). The first heartbeat tells the lease.
   */
  static async attach(manifest: Manifest, leaseToken: string, options: WorkerOptions): Promise<Worker> {
    const client = Worker.clientFor(options)
    const now = options.now ?? Date.now
    const lease = { worker_id: manifest.worker_id, lease_token: leaseToken }
    let answer: HeartbeatResponse
    try {
      answer = await client.heartbeat(lease)
    } catch (error) {
      if (!options.client) await client.close()
      throw error
    }
    const worker = new Worker(client, !options.client, manifest, { lease, registration: null }, options)
    worker.intervalMs = answer.heartbeat_interval_seconds * 1000
    worker.leaseMs = answer.heartbeat_timeout_seconds * 1000
    worker.arm(now(), answer.lease_expires_at, answer.expires_at)
    worker.emit({ type: 'attached', worker_id: manifest.worker_id, directive: answer.directive })
    worker.obey(answer.directive)
    return worker
  }

  /**
   * Starts the worker this process was launched as (SPEC §5): WARDEN_URL (http://host:port or
   * unix:/path), WARDEN_WORKER_ID, WARDEN_LEASE_TOKEN and WARDEN_MANIFEST. Without a lease token
   * it registers the manifest itself.
   */
  static async fromEnv(options: Omit<WorkerOptions, 'url'> & { env?: WorkerEnv } = {}): Promise<Worker> {
    const env: WorkerEnv = options.env ?? process.env
    const { env: _env, ...rest } = options
    const url = env.WARDEN_URL
    if (!url && !options.client) throw new TypeError('Worker.fromEnv: WARDEN_URL is not set')
    if (!env.WARDEN_MANIFEST) throw new TypeError('Worker.fromEnv: WARDEN_MANIFEST is not set')
    let manifest: Manifest
    try {
      manifest = JSON.parse(env.WARDEN_MANIFEST) as Manifest
    } catch (error) {
      throw new TypeError(`Worker.fromEnv: WARDEN_MANIFEST is not JSON: ${(error as Error).message}`)
    }
    if (typeof manifest !== 'object' || manifest === null || typeof manifest.worker_id !== 'string') {
      throw new TypeError('Worker.fromEnv: WARDEN_MANIFEST is not a manifest')
    }
    if (env.WARDEN_WORKER_ID !== undefined && env.WARDEN_WORKER_ID !== manifest.worker_id) {
      throw new TypeError(`Worker.fromEnv: WARDEN_WORKER_ID ${env.WARDEN_WORKER_ID} is not the manifest's worker ${manifest.worker_id}`)
    }
    const withUrl: WorkerOptions = { ...rest, ...(url ? { url } : {}) }
    return env.WARDEN_LEASE_TOKEN ? Worker.attach(manifest, env.WARDEN_LEASE_TOKEN, withUrl) : Worker.start(manifest, withUrl)
  }

  private static clientFor(options: WorkerOptions): WardenClient {
    if (!options.client && !options.url) throw new TypeError('a Worker needs a url or a client')
    return (
      options.client ??
      new WardenClient({
        url: options.url!,
        // Short, so a controller back from a restart is found again well inside one lease.
        circuitBreaker: { failureThreshold: 3, cooldownMs: 1_000 },
        ...options.clientOptions,
      })
    )
  }

  private constructor(
    client: WardenClient,
    ownsClient: boolean,
    manifest: Manifest,
    start: { lease: Pick<Registration, 'lease_token'>; registration: Registration | null },
    options: WorkerOptions,
  ) {
    this.client = client
    this.ownsClient = ownsClient
    this.manifest = manifest
    this.registration = start.registration
    this.options = options
    this.now = options.now ?? Date.now
    this.random = options.random ?? Math.random
    this.lease = { worker_id: manifest.worker_id, lease_token: start.lease.lease_token }
    this.done = new Promise((resolve) => (this.resolveDone = resolve))
    this.intervalMs = (start.registration?.heartbeat_interval_seconds ?? 1) * 1000
    this.leaseMs = (start.registration?.heartbeat_timeout_seconds ?? 3) * 1000
  }

  /** Arms the lease watchdog and the heartbeat loop from the first answer. */
  private arm(receivedAt: number, leaseExpiresAt: string, expiresAt: string | null): void {
    this.renewed(receivedAt, leaseExpiresAt, expiresAt)
    this.scheduleHeartbeat(this.intervalMs)
  }

  get id(): string {
    return this.lease.worker_id
  }

  get depth(): number {
    return this.manifest.depth
  }

  get parentId(): string | null {
    return this.manifest.parent_id
  }

  get state_snapshot(): StateSnapshot {
    return this.manifest.state_snapshot
  }

  get state(): WorkerState {
    return this.current
  }

  /** Why the worker stopped, or null while it lives. */
  get terminationReason(): StopReason | null {
    return this.stopReason
  }

  /**
   * Runs `task` unless the worker is terminated, expired or suspended (then it throws a
   * WardenError: worker_terminated, worker_expired or worker_suspended). The signal aborts when
   * the controller suspends or terminates the worker while the task runs.
   */
  async perform<T>(task: (signal: AbortSignal) => T | Promise<T>): Promise<T> {
    this.assertMayWork()
    const controller = new AbortController()
    this.tasks.add(controller)
    try {
      return await task(controller.signal)
    } finally {
      this.tasks.delete(controller)
    }
  }

  /**
   * Asks the controller for a child. An approval carries the child's signed manifest, for
   * whoever launches it; a policy denial comes back as a value with its code. Anything else
   * (the controller unreachable, a bad request) throws.
   */
  async maybeReplicate(reason: string, state?: StateSnapshot, options: ReplicateOptions = {}): Promise<ReplicationResult> {
    if (this.current === 'terminated') {
      const error = this.stoppedError()
      return { approved: false, code: error.code as DenialCode, detail: error.detail, error }
    }
    try {
      const manifest = await this.client.spawn(
        this.lease,
        { reason, ...(state === undefined ? {} : { state_snapshot: state }), ...(options.resources ? { resources: options.resources } : {}) },
        { retry: { maxRetryAfterMs: options.maxCooldownWaitMs ?? 0 }, ...(options.signal ? { signal: options.signal } : {}) },
      )
      return { approved: true, manifest }
    } catch (error) {
      if (!(error instanceof WardenError) || !error.isDenial) throw error
      if (error.code === 'worker_terminated') await this.terminate(error.reason ?? 'killed', error.detail)
      return {
        approved: false,
        code: error.code as DenialCode,
        detail: error.detail,
        ...(error.condition === undefined ? {} : { condition: error.condition }),
        ...(error.retry_after === undefined ? {} : { retry_after: error.retry_after }),
        error,
      }
    }
  }

  /**
   * Deregisters and stops. Returns the controller's view of the worker, or null when it could
   * not be told (the worker stops all the same; its lease then runs out).
   */
  async shutdown(reason = 'shutdown'): Promise<WorkerView | null> {
    if (this.current === 'terminated') return null
    clearTimeout(this.heartbeatTimer)
    let view: WorkerView | null = null
    try {
      view = await this.client.deregister(this.lease, reason)
    } catch (error) {
      if (!(error instanceof WardenError)) throw error
    }
    await this.terminate('deregistered', reason)
    return view
  }

  // --- the lease ------------------------------------------------------------------------------

  private assertMayWork(): void {
    if (this.current !== 'terminated' && this.expiryDeadline !== null && this.now() >= this.expiryDeadline) {
      void this.terminate('expired', 'lifetime over')
    }
    if (this.current === 'terminated') throw this.stoppedError()
    if (this.current === 'suspended') {
      throw new WardenError('worker_suspended', { status: 0, detail: `worker ${this.id} is suspended by the controller (quarantined)` })
    }
  }

  private stoppedError(): WardenError {
    const reason = this.stopReason ?? 'killed'
    return new WardenError(reason === 'expired' ? 'worker_expired' : 'worker_terminated', {
      status: 0,
      detail: `worker ${this.id} has stopped (${reason})`,
      reason,
    })
  }

  /**
   * Records a renewal answered at local time `receivedAt`. The controller renewed the lease no
   * later than that, so by our clock it surely ends `leaseMs` after; server timestamps convert
   * through the same offset.
   */
  private renewed(receivedAt: number, leaseExpiresAt: string, expiresAt: string | null): void {
    const serverNow = Date.parse(leaseExpiresAt) - this.leaseMs
    const local = (serverTime: string) => receivedAt + (Date.parse(serverTime) - serverNow)
    this.leaseDeadline = receivedAt + this.leaseMs
    clearTimeout(this.leaseTimer)
    this.leaseTimer = setTimeout(() => void this.leaseEnded(), Math.min(MAX_TIMER_MS, this.leaseMs))

    const expiry = expiresAt === null ? null : local(expiresAt)
    if (expiry !== this.expiryDeadline) {
      this.expiryDeadline = expiry
      clearTimeout(this.expiryTimer)
      if (expiry !== null) this.scheduleExpiry(expiry)
    }
  }

  private scheduleExpiry(at: number): void {
    const wait = at - this.now()
    this.expiryTimer = setTimeout(
      () => (wait > MAX_TIMER_MS ? this.scheduleExpiry(at) : void this.terminate('expired', 'lifetime over')),
      Math.max(0, Math.min(MAX_TIMER_MS, wait)),
    )
  }

  /**
   * The lease has run out by this process's clock. So it seems, too, to a process that was frozen
   * (quarantine freezes a managed worker while the controller holds its lease) or stopped: on
   * waking, every timer is overdue at once. Unless the last heartbeat has just failed, ask the
   * controller once before concluding the lease is lost; a heartbeat already out is waited for.
   */
  private async leaseEnded(probe = true): Promise<void> {
    if (this.stopReason !== null) return
    const left = this.leaseDeadline - this.now()
    if (left > 0 || (probe && this.inflight)) {
      clearTimeout(this.leaseTimer)
      this.leaseTimer = setTimeout(() => void this.leaseEnded(probe), Math.min(MAX_TIMER_MS, Math.max(left, 20)))
      return
    }
    if (probe) {
      clearTimeout(this.heartbeatTimer)
      if (await this.heartbeat(true)) return
      if (this.stopReason !== null) return
    }
    await this.terminate('lease_lost', `no heartbeat answered for ${this.leaseMs} ms: the lease has ended`)
  }

  private scheduleHeartbeat(delayMs: number): void {
    clearTimeout(this.heartbeatTimer)
    if (this.current === 'terminated') return
    this.heartbeatTimer = setTimeout(() => void this.heartbeat(), Math.max(0, delayMs))
  }

  /**
   * One heartbeat; true when the controller answered with a live directive. A `probe` (the lease
   * watchdog asking before it gives up) reports a failure instead of scheduling the next attempt.
   */
  private async heartbeat(probe = false): Promise<boolean> {
    if (this.current === 'terminated') return false
    const inflight = new AbortController()
    this.inflight = inflight
    const leaseLeft = this.leaseDeadline - this.now()
    const metrics = this.options.metrics?.()
    let answer: HeartbeatResponse
    try {
      answer = await this.client.heartbeat(this.lease, metrics ? { metrics } : undefined, {
        retry: false,
        signal: inflight.signal,
        timeoutMs: probe ? Math.max(250, Math.min(2_000, this.intervalMs)) : Math.max(250, Math.min(10_000, leaseLeft)),
      })
    } catch (error) {
      if (this.stopReason !== null) return false
      if (probe) {
        const failure = error instanceof WardenError ? error : null
        if (failure?.code === 'worker_terminated') await this.terminate(failure.reason ?? 'killed', failure.detail)
        return false
      }
      await this.heartbeatFailed(error)
      return false
    } finally {
      this.inflight = undefined
    }
    // Stopped while the heartbeat was out (shutdown, expiry, the lease watchdog).
    if (this.stopReason !== null) return false

    const reconnected = this.failures > 0
    this.failures = 0
    this.intervalMs = answer.heartbeat_interval_seconds * 1000
    this.leaseMs = answer.heartbeat_timeout_seconds * 1000
    this.renewed(this.now(), answer.lease_expires_at, answer.expires_at)
    if (reconnected) this.emit({ type: 'controller_reachable' })
    this.emit({ type: 'heartbeat', directive: answer.directive, lease_expires_at: answer.lease_expires_at })
    this.obey(answer.directive)
    this.scheduleHeartbeat(this.intervalMs)
    return true
  }

  private async heartbeatFailed(error: unknown): Promise<void> {
    const failure =
      error instanceof WardenError
        ? error
        : new WardenError('connection_failed', { status: 0, detail: String(error), cause: error })
    if (failure.code === 'worker_terminated') return this.terminate(failure.reason ?? 'killed', failure.detail)
    // The controller does not know this worker or its token: there is no lease to keep.
    if (failure.status === 401 || failure.status === 404) return this.terminate('lease_lost', failure.detail)

    this.failures += 1
    const leaseLeft = this.leaseDeadline - this.now()
    // This very heartbeat went unanswered: no need to ask again before giving up.
    if (leaseLeft <= 0) return this.leaseEnded(false)
    const base = this.options.reconnect?.baseDelayMs ?? 200
    const max = Math.min(this.options.reconnect?.maxDelayMs ?? 5_000, this.intervalMs)
    const wait = Math.min(leaseLeft, Math.max(50, backoffDelay(this.failures - 1, { baseDelayMs: base, maxDelayMs: max }, this.random)))
    this.emit({ type: 'controller_unreachable', error: failure, retry_in_ms: wait, lease_left_ms: leaseLeft })
    this.scheduleHeartbeat(wait)
  }

  private obey(directive: Directive): void {
    if (directive === 'suspend' && this.current === 'running') {
      this.current = 'suspended'
      this.abortTasks(new WardenError('worker_suspended', { status: 0, detail: `worker ${this.id} was suspended by the controller` }))
      this.emit({ type: 'suspended' })
    } else if (directive === 'continue' && this.current === 'suspended') {
      this.current = 'running'
      this.emit({ type: 'resumed' })
    } else if (directive === 'terminate') {
      void this.terminate('killed', 'the controller answered terminate')
    }
  }

  private abortTasks(reason: WardenError): void {
    for (const task of this.tasks) task.abort(reason)
    this.tasks.clear()
  }

  /** Stops everything, once: timers, the heartbeat in flight, running tasks; then onTerminate. */
  private async terminate(reason: StopReason, detail: string): Promise<void> {
    if (this.stopReason !== null) return
    this.stopReason = reason
    this.current = 'terminated'
    clearTimeout(this.heartbeatTimer)
    clearTimeout(this.leaseTimer)
    clearTimeout(this.expiryTimer)
    this.inflight?.abort()
    this.abortTasks(this.stoppedError())
    this.emit({ type: 'terminated', reason, detail })
    try {
      await this.options.onTerminate?.(reason, detail)
    } catch (error) {
      console.error(`warden worker ${this.id}: onTerminate failed`, error)
    } finally {
      if (this.ownsClient) await this.client.close().catch(() => {})
      this.resolveDone({ reason, detail })
    }
  }

  private emit(event: WorkerEvent): void {
    try {
      this.options.onEvent?.(event)
    } catch (error) {
      console.error(`warden worker ${this.id}: onEvent failed`, error)
    }
  }
}
