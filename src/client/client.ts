// The Warden client: one method per v1 endpoint over an undici keep-alive dispatcher, typed from
// the zod schemas the server validates with. Transient failures are retried (see retry.ts) behind
// a circuit breaker; every failure surfaces as a WardenError.
import { randomUUID } from 'node:crypto'
import { Pool, type Dispatcher } from 'undici'
import type { z } from 'zod'
import type {
  AuditPageSchema,
  AuditQuery,
  AuditRecord,
  AuditVerification,
  Contract,
  ContractInputSchema,
  HeartbeatRequest,
  HeartbeatResponse,
  KillRequestSchema,
  KillResultSchema,
  KillSwitchEngagedSchema,
  KillSwitchState,
  LineageSchema,
  Manifest,
  ProblemSchema,
  RegistrationResponseSchema,
  RootManifestRequestSchema,
  SpawnRequestSchema,
  WorkerListQuery,
  WorkerListSchema,
  WorkerSummary,
  WorkerView,
  SandboxDriverStatus,
  SandboxLaunch,
  SandboxLaunchRequest,
} from '../schemas/index.js'
import { CircuitBreaker, DEFAULT_CIRCUIT_BREAKER, type CircuitBreakerOptions, type CircuitState } from './circuit-breaker.js'
import { WardenError, type Problem } from './errors.js'
import { SseParser, type SseMessage } from './sse.js'
import { abortableSleep, DEFAULT_RETRY, parseRetryAfter, retryDelay, type RetryOptions } from './retry.js'

// Requests are what a caller may send (defaults still optional); responses what the server returns.
export type ContractInput = z.input<typeof ContractInputSchema>
export type RootManifestRequest = z.input<typeof RootManifestRequestSchema>
export type SpawnRequest = z.input<typeof SpawnRequestSchema>
export type KillRequest = z.input<typeof KillRequestSchema>
export type Registration = z.output<typeof RegistrationResponseSchema>
export type WorkerList = z.output<typeof WorkerListSchema>
export type Lineage = z.output<typeof LineageSchema>
export type KillResult = z.output<typeof KillResultSchema>
export type KillSwitchEngaged = z.output<typeof KillSwitchEngagedSchema>
export type AuditPage = z.output<typeof AuditPageSchema>
export type WorkerListFilter = Partial<WorkerListQuery>
export type AuditFilter = Partial<AuditQuery>
export interface EventsFilter {
  type?: Array<NonNullable<AuditQuery['type']>>
  worker_id?: string
  /** Start after this seq; from now when omitted. */
  after_seq?: number
}

/** What a worker's own endpoints need: its id and the lease token its registration returned. */
export type Lease = Pick<WorkerView, 'worker_id'> & Pick<Registration, 'lease_token'>

export interface RetryEvent {
  method: string
  path: string
  /** The retry about to happen, from 1. */
  attempt: number
  delayMs: number
  error: WardenError
}

export interface WardenClientOptions {
  /**
   * Base URL of the controller, e.g. http://127.0.0.1:8080 (a path prefix is kept), or
   * unix:/absolute/path/to/socket for a controller serving on a Unix socket (as WARDEN_URL
   * gives a managed worker).
   */
  url: string
  /** The operator token, for the operator endpoints. */
  token?: string | undefined
  /** A keep-alive Pool or Agent to share; when omitted the client creates a Pool and closes it in close(). */
  dispatcher?: Dispatcher
  /** Per attempt, until the response headers and between body chunks. */
  timeoutMs?: number
  /** Retry policy, or false for none. */
  retry?: Partial<RetryOptions> | false
  /** Circuit breaker, or false for none. */
  circuitBreaker?: Partial<Omit<CircuitBreakerOptions, 'now'>> | false
  onRetry?: (event: RetryEvent) => void
  /** Injected for tests: the wait between attempts, the jitter source and the clock. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>
  random?: () => number
  now?: () => number
}

export interface CallOptions {
  signal?: AbortSignal
  /** Overrides the client's retry policy for this call (false: one attempt). */
  retry?: Partial<RetryOptions> | false
  timeoutMs?: number
  /**
   * For spawn, register, issueManifest (and launchSandbox): the Idempotency-Key to send. By
   * default the client makes a fresh one per call and reuses it across that call's own retries;
   * pass your own to retry a call across process restarts (1–128 visible ASCII characters).
   */
  idempotencyKey?: string
}

interface Call {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE'
  path: string
  query?: Record<string, string | number | boolean | undefined> | undefined
  body?: unknown
  /** Bearer token: the operator's unless a lease token is given. */
  token?: string | undefined
  /** Safe to send twice (SPEC §3: GET, PUT, DELETE; heartbeat, kill, quarantine, kill switch). */
  idempotent: boolean
  /** Not idempotent by itself, but made so by an Idempotency-Key (SPEC §3 Retries). */
  keyed?: boolean
  text?: boolean
  options?: CallOptions | undefined
}

const CLIENT_VERSION = '0.1.0'

/** Socket-level failures raised before the request could be written. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT'])
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT'])

const id = (workerId: string) => encodeURIComponent(workerId)

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,128}$/

/** `unix:/path` → the socket path; anything else → undefined. */
function unixSocketPath(url: string): string | undefined {
  if (!url.startsWith('unix:')) return undefined
  const path = url.slice('unix:'.length)
  if (!path.startsWith('/')) throw new TypeError(`a unix: url needs an absolute socket path: ${url}`)
  return path
}

export class WardenClient {
  readonly url: URL
  /** Where requests go, for messages: the URL's origin or the Unix socket's path. */
  readonly origin: string
  readonly breaker: CircuitBreaker | null
  private readonly dispatcher: Dispatcher
  private readonly ownsDispatcher: boolean
  private readonly token: string | undefined
  private readonly retry: RetryOptions | false
  private readonly timeoutMs: number
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>
  private readonly random: () => number
  private readonly now: () => number
  private readonly onRetry: ((event: RetryEvent) => void) | undefined

  constructor(options: WardenClientOptions) {
    const socketPath = unixSocketPath(options.url)
    this.url = new URL(socketPath === undefined ? options.url : 'http://localhost')
    if (this.url.protocol !== 'http:' && this.url.protocol !== 'https:') throw new TypeError(`url must be http(s) or unix: ${options.url}`)
    this.origin = socketPath ?? this.url.origin
    this.ownsDispatcher = options.dispatcher === undefined
    this.dispatcher =
      options.dispatcher ??
      new Pool(this.url.origin, { connections: 16, keepAliveTimeout: 10_000, ...(socketPath === undefined ? {} : { connect: { socketPath } }) })
    this.token = options.token
    this.retry = options.retry === false ? false : { ...DEFAULT_RETRY, ...options.retry }
    this.timeoutMs = options.timeoutMs ?? 10_000
    this.sleep = options.sleep ?? abortableSleep
    this.random = options.random ?? Math.random
    this.now = options.now ?? Date.now
    this.onRetry = options.onRetry
    this.breaker =
      options.circuitBreaker === false
        ? null
        : new CircuitBreaker({ ...DEFAULT_CIRCUIT_BREAKER, ...options.circuitBreaker, now: this.now })
  }

  get circuitState(): CircuitState {
    return this.breaker?.state ?? 'closed'
  }

  /** Closes the dispatcher if this client created it. */
  async close(): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.close()
  }

  // --- system ---------------------------------------------------------------------------------

  health(options?: CallOptions): Promise<{ status: 'ok' }> {
    return this.call({ method: 'GET', path: '/healthz', idempotent: true, options })
  }

  /** Database open and migrated; `sandbox` says which driver runs and what this host does not enforce. */
  ready(options?: CallOptions): Promise<{
    status: 'ready'
    sandbox?: { driver: string; available: boolean; not_enforced: string[]; reason: string | null }
  }> {
    return this.call({ method: 'GET', path: '/readyz', idempotent: true, options })
  }

  /** Prometheus text. */
  metrics(options?: CallOptions): Promise<string> {
    return this.call({ method: 'GET', path: '/metrics', idempotent: true, text: true, options })
  }

  // --- contract (operator) --------------------------------------------------------------------

  getContract(options?: CallOptions): Promise<Contract> {
    return this.call({ method: 'GET', path: '/v1/contract', idempotent: true, options })
  }

  putContract(contract: ContractInput, options?: CallOptions): Promise<Contract> {
    return this.call({ method: 'PUT', path: '/v1/contract', body: contract, idempotent: true, options })
  }

  // --- admission ------------------------------------------------------------------------------

  /** Operator: issue a root manifest. */
  issueManifest(request: RootManifestRequest = {}, options?: CallOptions): Promise<Manifest> {
    return this.call({ method: 'POST', path: '/v1/manifests', body: request, idempotent: false, keyed: true, options })
  }

  /** Operator: launch a managed root in a sandbox of its own (SPEC §5); answers once it runs. */
  launchSandbox(request: SandboxLaunchRequest, options?: CallOptions): Promise<SandboxLaunch> {
    return this.call({ method: 'POST', path: '/v1/sandboxes', body: request, idempotent: false, keyed: true, options })
  }

  /** Operator: this host's sandbox driver and what it enforces. */
  sandboxDriver(options?: CallOptions): Promise<SandboxDriverStatus> {
    return this.call({ method: 'GET', path: '/v1/sandbox-driver', idempotent: true, options })
  }

  /** Register with a signed manifest; the answer holds the lease token, shown once. */
  register(manifest: Manifest, options?: CallOptions): Promise<Registration> {
    return this.call({ method: 'POST', path: '/v1/workers', body: manifest, idempotent: false, keyed: true, options })
  }

  // --- a worker's own endpoints (lease token) -------------------------------------------------

  heartbeat(lease: Lease, request?: HeartbeatRequest, options?: CallOptions): Promise<HeartbeatResponse> {
    return this.call({
      method: 'POST',
      path: `/v1/workers/${id(lease.worker_id)}/heartbeat`,
      body: request,
      token: lease.lease_token,
      idempotent: true,
      options,
    })
  }

  /** Ask to replicate; an approval is the child's signed manifest. */
  spawn(lease: Lease, request: SpawnRequest, options?: CallOptions): Promise<Manifest> {
    return this.call({
      method: 'POST',
      path: `/v1/workers/${id(lease.worker_id)}/spawn`,
      body: request,
      token: lease.lease_token,
      idempotent: false,
      keyed: true,
      options,
    })
  }

  /** Graceful shutdown; repeating it is harmless. */
  deregister(lease: Lease, reason?: string, options?: CallOptions): Promise<WorkerView> {
    return this.call({
      method: 'DELETE',
      path: `/v1/workers/${id(lease.worker_id)}`,
      query: { reason },
      token: lease.lease_token,
      idempotent: true,
      options,
    })
  }

  // --- workers (operator) ---------------------------------------------------------------------

  listWorkers(filter: WorkerListFilter = {}, options?: CallOptions): Promise<WorkerList> {
    return this.call({ method: 'GET', path: '/v1/workers', query: filter, idempotent: true, options })
  }

  /** Every worker matching `filter`, page after page. */
  async *workers(filter: Omit<WorkerListFilter, 'cursor'> = {}, options?: CallOptions): AsyncGenerator<WorkerSummary> {
    let cursor: string | undefined
    do {
      const page = await this.listWorkers({ limit: 1000, ...filter, cursor }, options)
      yield* page.items
      cursor = page.next_cursor ?? undefined
    } while (cursor !== undefined)
  }

  getWorker(workerId: string, options?: CallOptions): Promise<WorkerView> {
    return this.call({ method: 'GET', path: `/v1/workers/${id(workerId)}`, idempotent: true, options })
  }

  getLineage(workerId: string, options?: CallOptions): Promise<Lineage> {
    return this.call({ method: 'GET', path: `/v1/workers/${id(workerId)}/lineage`, idempotent: true, options })
  }

  quarantine(workerId: string, reason: string, options?: CallOptions): Promise<WorkerView> {
    return this.call({ method: 'POST', path: `/v1/workers/${id(workerId)}/quarantine`, body: { reason }, idempotent: true, options })
  }

  release(workerId: string, options?: CallOptions): Promise<WorkerView> {
    return this.call({ method: 'DELETE', path: `/v1/workers/${id(workerId)}/quarantine`, idempotent: true, options })
  }

  /** Kill a worker and, unless `cascade: false`, its live descendants. */
  kill(workerId: string, request: KillRequest = {}, options?: CallOptions): Promise<KillResult> {
    return this.call({ method: 'POST', path: `/v1/workers/${id(workerId)}/kill`, body: request, idempotent: true, options })
  }

  // --- kill switch (operator) -----------------------------------------------------------------

  getKillSwitch(options?: CallOptions): Promise<KillSwitchState> {
    return this.call({ method: 'GET', path: '/v1/kill-switch', idempotent: true, options })
  }

  engageKillSwitch(reason?: string, options?: CallOptions): Promise<KillSwitchEngaged> {
    return this.call({
      method: 'POST',
      path: '/v1/kill-switch',
      body: reason === undefined ? undefined : { reason },
      idempotent: true,
      options,
    })
  }

  disengageKillSwitch(options?: CallOptions): Promise<KillSwitchState> {
    return this.call({ method: 'DELETE', path: '/v1/kill-switch', idempotent: true, options })
  }

  // --- audit (operator) -----------------------------------------------------------------------

  listAudit(filter: AuditFilter = {}, options?: CallOptions): Promise<AuditPage> {
    return this.call({ method: 'GET', path: '/v1/audit', query: filter, idempotent: true, options })
  }

  /** Every audit record matching `filter` after `after_seq`, page after page. */
  async *auditRecords(filter: AuditFilter = {}, options?: CallOptions): AsyncGenerator<AuditRecord> {
    let after: number | null = filter.after_seq ?? 0
    while (after !== null) {
      const page = await this.listAudit({ limit: 1000, ...filter, order: 'asc', after_seq: after }, options)
      yield* page.items
      after = page.next_after_seq
    }
  }

  /**
   * Follows GET /v1/events: every audit record after `after_seq` (default: from now), in order,
   * until `signal` aborts. After an overflow or a dropped connection it reconnects from the last
   * seq it yielded, so nothing is missed or repeated. A refusal (401, 400) is thrown.
   */
  async *events(filter: EventsFilter = {}, options: { signal?: AbortSignal } = {}): AsyncGenerator<AuditRecord> {
    const { signal } = options
    let last = filter.after_seq
    let failures = 0
    const prefix = this.url.pathname.replace(/\/+$/, '')
    while (!signal?.aborted) {
      const query = new URLSearchParams()
      for (const type of filter.type ?? []) query.append('type', type)
      if (filter.worker_id !== undefined) query.set('worker_id', filter.worker_id)
      if (last !== undefined) query.set('after_seq', String(last))
      const path = `${prefix}/v1/events${query.size > 0 ? `?${query}` : ''}`
      const where = { method: 'GET', path: '/v1/events' }
      const queue: SseMessage[] = []
      const parser = new SseParser({
        message: (message) => queue.push(message),
        // The stream's first comment names where it starts: a reconnect from there misses nothing.
        comment: (text) => {
          const start = /^warden audit events after seq (\d+)$/.exec(text)
          if (start && last === undefined) last = Number(start[1])
        },
      })
      try {
        const response = await this.dispatcher.request({
          origin: this.url.origin,
          path,
          method: 'GET',
          headers: {
            accept: 'text/event-stream',
            'user-agent': `warden-client/${CLIENT_VERSION}`,
            ...(this.token === undefined ? {} : { authorization: `Bearer ${this.token}` }),
          },
          headersTimeout: this.timeoutMs,
          // Keep-alive comments come every 15 s: four missed ones mean a dead connection.
          bodyTimeout: 60_000,
          signal,
        })
        if (response.statusCode !== 200) {
          const error = this.problemError(response, await response.body.text(), where)
          if (response.statusCode < 500) throw error
          throw Object.assign(new Error(error.message), { retryable: true })
        }
        failures = 0
        response.body.setEncoding('utf8')
        for await (const chunk of response.body) {
          parser.push(chunk as string)
          for (const message of queue.splice(0)) {
            if (message.event === 'overflow') {
              last = (JSON.parse(message.data) as { resume_after_seq: number }).resume_after_seq
              continue
            }
            const record = JSON.parse(message.data) as AuditRecord
            if (last !== undefined && record.seq <= last) continue
            last = record.seq
            yield record
          }
        }
      } catch (error) {
        if (signal?.aborted) return
        if (error instanceof WardenError) throw error
      }
      // Ended or dropped: reconnect from `last` after a short, growing pause.
      try {
        await this.sleep(Math.min(10_000, 250 * 2 ** failures++), signal)
      } catch {
        return
      }
    }
  }

  verifyAudit(options?: CallOptions): Promise<AuditVerification> {
    return this.call({ method: 'GET', path: '/v1/audit/verify', idempotent: true, options })
  }

  // --- transport ------------------------------------------------------------------------------

  private async call<T>(call: Call): Promise<T> {
    const policy = call.options?.retry === false || this.retry === false ? false : { ...this.retry, ...call.options?.retry }
    const path = this.pathFor(call)
    // One key per logical call, the same on each of its retries: the controller decides once.
    const given = call.options?.idempotencyKey
    if (given !== undefined && !IDEMPOTENCY_KEY.test(given)) throw new TypeError('idempotencyKey must be 1–128 visible ASCII characters')
    let key = call.keyed ? (given ?? randomUUID()) : undefined
    // This call's own transport failure: when its retries open the circuit, that is the cause
    // to report (connection refused, say), not `circuit_open`.
    let cause: WardenError | undefined
    for (let attempt = 0; ; attempt++) {
      try {
        return (await this.attempt(call, path, key)) as T
      } catch (error) {
        if (!(error instanceof WardenError)) throw error
        if (error.code === 'circuit_open' && cause !== undefined) throw cause
        if (error.status === 0 && error.code !== 'circuit_open' && error.code !== 'aborted') cause = error
        let delay = policy === false ? null : retryDelay(error, attempt, call.idempotent || key !== undefined, policy, this.random)
        // A 429 was an answer: the controller recorded it under this key, so asking again after
        // Retry-After is a new decision and needs a new key (a key of the caller's own is kept,
        // so that 429 surfaces instead).
        if (delay !== null && key !== undefined && error.status === 429) {
          if (given === undefined) key = randomUUID()
          else delay = null
        }
        if (delay === null) throw error
        this.onRetry?.({ method: call.method, path: call.path, attempt: attempt + 1, delayMs: delay, error })
        try {
          await this.sleep(delay, call.options?.signal)
        } catch {
          throw new WardenError('aborted', { status: 0, detail: 'the caller aborted the request', method: call.method, path: call.path })
        }
      }
    }
  }

  private pathFor(call: Call): string {
    const prefix = this.url.pathname.replace(/\/+$/, '')
    const query = new URLSearchParams()
    for (const [key, value] of Object.entries(call.query ?? {})) if (value !== undefined) query.set(key, String(value))
    const search = query.size > 0 ? `?${query}` : ''
    return `${prefix}${call.path}${search}`
  }

  private async attempt(call: Call, path: string, idempotencyKey: string | undefined): Promise<unknown> {
    const where = { method: call.method, path: call.path }
    const breaker = this.breaker
    if (breaker && !breaker.tryAcquire()) {
      const remaining = breaker.remainingCooldownMs
      throw new WardenError('circuit_open', {
        status: 0,
        detail:
          `the circuit to ${this.origin} is open after repeated failures` +
          `${breaker.lastFailure === undefined ? '' : ` (last: ${breaker.lastFailure})`}; next probe in ${remaining} ms`,
        retry_after: Math.ceil(remaining / 1000),
        not_sent: true,
        ...where,
      })
    }

    const token = call.token ?? this.token
    const headers: Record<string, string> = {
      accept: call.text ? 'text/plain' : 'application/json',
      'user-agent': `warden-client/${CLIENT_VERSION}`,
    }
    if (token !== undefined) headers.authorization = `Bearer ${token}`
    if (call.body !== undefined) headers['content-type'] = 'application/json'
    if (idempotencyKey !== undefined) headers['idempotency-key'] = idempotencyKey
    const timeout = call.options?.timeoutMs ?? this.timeoutMs

    let response: Dispatcher.ResponseData
    let text: string
    try {
      response = await this.dispatcher.request({
        origin: this.url.origin,
        path,
        method: call.method,
        headers,
        body: call.body === undefined ? null : JSON.stringify(call.body),
        headersTimeout: timeout,
        bodyTimeout: timeout,
        signal: call.options?.signal,
      })
      text = await response.body.text()
    } catch (error) {
      const failure = this.transportError(error, where, timeout, call.options?.signal)
      if (failure.code === 'aborted') breaker?.release()
      else breaker?.recordFailure(failure.message)
      throw failure
    }

    if (response.statusCode >= 500) breaker?.recordFailure(`HTTP ${response.statusCode} from ${this.origin}`)
    else breaker?.recordSuccess()

    if (response.statusCode >= 200 && response.statusCode < 300) {
      if (call.text) return text
      if (text === '') return undefined
      try {
        return JSON.parse(text)
      } catch {
        throw new WardenError('unexpected_response', { status: response.statusCode, detail: 'the answer is not JSON', ...where })
      }
    }
    throw this.problemError(response, text, where)
  }

  private problemError(response: Dispatcher.ResponseData, text: string, where: { method: string; path: string }): WardenError {
    let problem: Problem | undefined
    try {
      const parsed = JSON.parse(text) as Partial<z.output<typeof ProblemSchema>>
      if (parsed && typeof parsed === 'object' && typeof parsed.code === 'string') problem = parsed as Problem
    } catch {
      // Not a problem document (a proxy's HTML page, say): described by status below.
    }
    const retryAfter = parseRetryAfter(response.headers['retry-after'], this.now())
    if (problem) {
      return new WardenError(problem.code as WardenError['code'], {
        status: response.statusCode,
        detail: problem.detail ?? problem.title,
        problem,
        retry_after: retryAfter,
        ...where,
      })
    }
    const code = response.statusCode === 503 ? 'service_unavailable' : response.statusCode >= 500 ? 'internal_error' : 'unexpected_response'
    return new WardenError(code, {
      status: response.statusCode,
      detail: `HTTP ${response.statusCode} without a problem document: ${text.slice(0, 120)}`,
      retry_after: retryAfter,
      ...where,
    })
  }

  private transportError(error: unknown, where: { method: string; path: string }, timeout: number, signal?: AbortSignal): WardenError {
    if (signal?.aborted) return new WardenError('aborted', { status: 0, detail: 'the caller aborted the request', cause: error, ...where })
    const code = errorCode(error)
    if (code !== undefined && TIMEOUT_CODES.has(code) && code !== 'UND_ERR_CONNECT_TIMEOUT') {
      return new WardenError('timeout', { status: 0, detail: `no answer within ${timeout} ms`, cause: error, ...where })
    }
    const message = error instanceof Error ? error.message || code || error.name : String(error)
    return new WardenError('connection_failed', {
      status: 0,
      detail: `cannot reach ${this.origin}: ${code && !message.includes(code) ? `${code} ` : ''}${message}`,
      not_sent: code !== undefined && NOT_SENT_CODES.has(code),
      cause: error,
      ...where,
    })
  }
}

/** The system or undici error code, looking inside the AggregateError of a happy-eyeballs connect. */
function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined
  const code = (error as { code?: unknown }).code
  if (typeof code === 'string') return code
  if (error instanceof AggregateError) return errorCode(error.errors[0])
  return errorCode((error as { cause?: unknown }).cause)
}
