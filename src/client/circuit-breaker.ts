// A circuit breaker in front of the controller: after `failureThreshold` transient failures in a
// row it opens and fails calls at once; after `cooldownMs` it half-opens and lets one probe
// through, whose outcome closes it again or re-opens it for another cooldown.

export type CircuitState = 'closed' | 'open' | 'half_open'

export interface CircuitBreakerOptions {
  failureThreshold: number
  cooldownMs: number
  now?: () => number
  onStateChange?: (to: CircuitState, from: CircuitState) => void
}

export const DEFAULT_CIRCUIT_BREAKER = { failureThreshold: 5, cooldownMs: 5_000 } as const

export class CircuitBreaker {
  private failures = 0
  private openedAt = 0
  private probing = false
  private current: CircuitState = 'closed'
  /** What the last transient failure was, so an open circuit can say why it opened. */
  lastFailure: string | undefined
  private readonly now: () => number

  constructor(private readonly options: CircuitBreakerOptions) {
    if (!(options.failureThreshold >= 1)) throw new RangeError('failureThreshold must be >= 1')
    if (!(options.cooldownMs >= 0)) throw new RangeError('cooldownMs must be >= 0')
    this.now = options.now ?? Date.now
  }

  get state(): CircuitState {
    if (this.current === 'open' && this.now() - this.openedAt >= this.options.cooldownMs) this.transition('half_open')
    return this.current
  }

  /** Milliseconds until an open circuit lets a probe through (0 unless open). */
  get remainingCooldownMs(): number {
    return this.state === 'open' ? Math.max(0, this.openedAt + this.options.cooldownMs - this.now()) : 0
  }

  /** May a call go out now? In half-open, only one probe at a time. */
  tryAcquire(): boolean {
    const state = this.state
    if (state === 'closed') return true
    if (state === 'open' || this.probing) return false
    this.probing = true
    return true
  }

  /** The controller answered (any status that is not a transient failure). */
  recordSuccess(): void {
    this.failures = 0
    this.probing = false
    if (this.current !== 'closed') this.transition('closed')
  }

  /** The call failed transiently: no answer, a timeout, or a 5xx. */
  recordFailure(description?: string): void {
    this.failures += 1
    if (description !== undefined) this.lastFailure = description
    const wasProbe = this.probing
    this.probing = false
    if (this.current === 'half_open' || wasProbe || (this.current === 'closed' && this.failures >= this.options.failureThreshold)) {
      this.openedAt = this.now()
      this.transition('open')
    }
  }

  /** A call that went out but ended without a verdict (aborted by the caller): free the probe slot. */
  release(): void {
    this.probing = false
  }

  private transition(to: CircuitState): void {
    const from = this.current
    if (from === to && to !== 'open') return
    this.current = to
    if (from !== to) this.options.onStateChange?.(to, from)
  }
}
