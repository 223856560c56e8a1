// SPEC §7: a manifest that fails verification (bad signature, unknown key) is attacker-controlled.
// It adds no audit record of its own (no fsync, no attacker-chosen text, no victim named as actor):
// it is counted, and one `registrations_rejected` summary per minute and client address carries
// the counts by code.
import type { Store } from '../store/index.js'
import { iso } from './clock.js'
import { controllerActor } from './actors.js'

/** One summary per address covers this long. */
export const REJECTION_WINDOW_MS = 60_000
/** Addresses tracked at once; beyond it rejections are counted under "other" (memory stays bounded). */
const MAX_ADDRESSES = 10_000
const OTHER = 'other'

interface Window {
  from: number
  counts: Record<string, number>
}

export function createRejectionCounter() {
  const windows = new Map<string, Window>()
  return {
    count(address: string, code: string, now: number): void {
      const key = windows.has(address) || windows.size < MAX_ADDRESSES ? address : OTHER
      let window = windows.get(key)
      if (!window) {
        window = { from: now, counts: {} }
        windows.set(key, window)
      }
      window.counts[code] = (window.counts[code] ?? 0) + 1
    },

    /** Appends a summary for every window at least a minute old (every window with `all`); how many. */
    summarize(store: Store, now: number, all = false): number {
      const due = [...windows].filter(([, window]) => all || now - window.from >= REJECTION_WINDOW_MS)
      if (due.length === 0) return 0
      store.transaction(() => {
        for (const [address, window] of due) {
          const total = Object.values(window.counts).reduce((sum, n) => sum + n, 0)
          store.audit.append(
            {
              type: 'registrations_rejected',
              actor: controllerActor,
              data: { client: address, from: iso(window.from), to: iso(now), counts: window.counts, total },
            },
            iso(now),
          )
        }
      })
      for (const [address] of due) windows.delete(address)
      return due.length
    },

    /** Rejections counted and not yet summarized (tests, metrics). */
    pending(): number {
      let n = 0
      for (const window of windows.values()) for (const count of Object.values(window.counts)) n += count
      return n
    },
  }
}

export type RejectionCounter = ReturnType<typeof createRejectionCounter>
