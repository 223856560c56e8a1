// A sandbox driver for domain and route tests: records every call, launches on demand, and
// lets a test end a sandbox as the kernel would (exit code, signal, OOM).
import type { SandboxLaunchSpec, SandboxPort } from '../../src/domain/sandbox.js'
import type { SandboxDriverStatus, SandboxUsage } from '../../src/schemas/index.js'

export interface FakeSandbox extends SandboxPort {
  calls: string[]
  launches: SandboxLaunchSpec[]
  /** Sandboxes launched and not yet ended or killed. */
  running: Set<string>
  frozen: Set<string>
  usageOf: Map<string, SandboxUsage>
  /** When set, the next launches fail with this message. */
  failLaunch: string | null
  /** When set, launches wait until `releaseLaunches()`. */
  holdLaunches: boolean
  releaseLaunches(): void
  available: boolean
}

export function createFakeSandbox(): FakeSandbox {
  let nextPid = 1000
  let held: Array<() => void> = []
  const fake: FakeSandbox = {
    name: 'process',
    calls: [],
    launches: [],
    running: new Set(),
    frozen: new Set(),
    usageOf: new Map(),
    failLaunch: null,
    holdLaunches: false,
    available: true,
    releaseLaunches() {
      const waiting = held
      held = []
      for (const go of waiting) go()
    },
    status(): SandboxDriverStatus {
      return {
        driver: 'process',
        available: fake.available,
        reason: fake.available ? null : 'fake driver switched off',
        cgroup: 'v1',
        enforces: { memory: true, cpu: true, pids: true, network: true, freeze: true, kill: true },
      }
    },
    async launch(spec) {
      fake.calls.push(`launch ${spec.worker_id}`)
      fake.launches.push(spec)
      if (fake.holdLaunches) await new Promise<void>((go) => held.push(go))
      if (fake.failLaunch !== null) throw new Error(fake.failLaunch)
      fake.running.add(spec.worker_id)
      fake.usageOf.set(spec.worker_id, { cpu_seconds: 0.5, memory_bytes: 1 << 20, memory_peak_bytes: 2 << 20, pids: 1, oom_kills: 0 })
      return { pid: nextPid++, started_at: Date.parse('2026-01-01T00:00:00.000Z') }
    },
    async kill(ids) {
      fake.calls.push(`kill ${[...ids].sort().join(',')}`)
      for (const id of ids) {
        fake.running.delete(id)
        fake.frozen.delete(id)
      }
    },
    async freeze(id) {
      fake.calls.push(`freeze ${id}`)
      fake.frozen.add(id)
    },
    async thaw(id) {
      fake.calls.push(`thaw ${id}`)
      fake.frozen.delete(id)
    },
    usage(id) {
      return fake.running.has(id) ? (fake.usageOf.get(id) ?? null) : null
    },
  }
  return fake
}

/** Lets queued promise callbacks (driver calls and their follow-ups) run. */
export const flushAsync = () => new Promise<void>((resolve) => setImmediate(resolve))
