// Watches the event loop from a short timer: how long the loop was blocked (the longest block,
// for /metrics and the tests of SPEC §2.14) and the stalls lease time must not run through.
import { performance } from 'node:perf_hooks'
import type { LoopWatch } from './domain/clock.js'

export interface LongestBlock {
  /** Wall time the timer came late by: the loop blocked, or the process not scheduled at all. */
  wallMs: number
  /** The part of it the process spent on the CPU: the loop blocked by its own work. */
  cpuMs: number
}

export interface LoopMonitor extends LoopWatch {
  /** The longest block since the previous call (since start the first time). */
  takeLongestBlock(): LongestBlock
  /** Starts watching (start-up work before it is not a stall of the running controller). */
  start(): void
  stop(): void
}

const cpuMs = () => {
  const usage = process.cpuUsage()
  return (usage.user + usage.system) / 1000
}

/**
 * `tickMs`: how often the timer runs; a gap beyond it is time the loop was blocked. A block
 * longer than `stallMs` is a stall: leases are moved on by it.
 */
export function createLoopMonitor({ tickMs = 20, stallMs = 100 }: { tickMs?: number; stallMs?: number } = {}): LoopMonitor {
  let timer: NodeJS.Timeout | null = null
  // Stalls, observed by the timer and by every read of the lease book.
  let last = performance.now()
  let pending = 0
  const observe = () => {
    if (timer === null) return
    const now = performance.now()
    const blocked = Math.max(0, now - last - tickMs)
    last = now
    if (blocked > stallMs) pending += blocked
  }
  // Longest block, observed by the timer only.
  let lastTick = performance.now()
  let lastCpu = cpuMs()
  let longest: LongestBlock = { wallMs: 0, cpuMs: 0 }
  const tick = () => {
    const now = performance.now()
    const cpu = cpuMs()
    const wall = Math.max(0, now - lastTick - tickMs)
    const onCpu = Math.min(wall, Math.max(0, cpu - lastCpu - tickMs))
    lastTick = now
    lastCpu = cpu
    longest = { wallMs: Math.max(longest.wallMs, wall), cpuMs: Math.max(longest.cpuMs, onCpu) }
    observe()
  }
  return {
    start() {
      if (timer !== null) return
      last = lastTick = performance.now()
      lastCpu = cpuMs()
      timer = setInterval(tick, tickMs)
      timer.unref()
    },
    takeStall() {
      observe()
      const stall = Math.round(pending)
      pending = 0
      return stall
    },
    takeLongestBlock() {
      const value = longest
      longest = { wallMs: 0, cpuMs: 0 }
      return value
    },
    stop() {
      if (timer !== null) clearInterval(timer)
      timer = null
    },
  }
}
