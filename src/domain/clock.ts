/** Milliseconds since the epoch. Injected everywhere so leases, cooldowns and TTLs test exactly. */
export interface Clock {
  now(): number
}

export const systemClock: Clock = { now: () => Date.now() }

/** A clock tests move by hand. */
export class ManualClock implements Clock {
  constructor(private ms: number = Date.parse('2026-01-01T00:00:00.000Z')) {}
  now(): number {
    return this.ms
  }
  advance(ms: number): void {
    this.ms += ms
  }
  set(ms: number): void {
    this.ms = ms
  }
}

/**
 * Stalls of the event loop (SPEC §2.14): time the process could not run, like a brief outage of
 * the controller. Lease time does not run during one, so a worker whose heartbeat waited behind
 * the stall is not reaped for it.
 */
export interface LoopWatch {
  /** Milliseconds the loop was stalled since the last call (0 when it ran normally). */
  takeStall(): number
}

export const noStalls: LoopWatch = { takeStall: () => 0 }

export const iso = (ms: number): string => new Date(ms).toISOString()
export const isoOrNull = (ms: number | null): string | null => (ms === null ? null : iso(ms))
