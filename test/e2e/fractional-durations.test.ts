// SPEC §7: durations may be fractional seconds; Warden works in whole milliseconds, and no
// contract value it accepts makes a request fail with 5xx or stops the process. The attack
// against a real server: a fractional heartbeat timeout crashed the lease flusher (a REAL in an
// INTEGER column) on every start; fractional TTL and lifetime made issuing and registering 500.
import { afterEach, describe, expect, it } from 'vitest'
import { registerChild, registerRoot } from '../helpers/calls.js'
import { contract, sleep } from '../helpers/fixtures.js'
import { createServerTracker } from '../helpers/server.js'

const servers = createServerTracker()
afterEach(() => servers.cleanup())

describe('fractional durations (SPEC §7)', () => {
  it('renews, flushes, issues, registers and spawns under fractional durations, and the process survives a restart', async () => {
    const first = await servers.start()
    await first.client.putContract(contract({
      heartbeat_timeout_seconds: 30.0001,
      manifest_ttl_seconds: 300.0005,
      expiration_seconds: 10_000.0007,
      cooldown_seconds: 0.0004,
      max_replicas: 20,
    }))
    const worker = await registerRoot(first.client)
    expect((await first.client.heartbeat(worker)).directive).toBe('continue')
    await sleep(600) // several lease flushes
    expect(first.server.child.exitCode).toBeNull()
    await registerChild(first.client, worker)
    const view = await first.client.getWorker(worker.worker_id)
    expect(Number.isInteger(Date.parse(view.lease_expires_at))).toBe(true)

    // The contract is stored: the next start must not die on it either.
    await first.server.kill('SIGKILL')
    const second = await servers.start({ dbFile: first.server.dbFile })
    expect((await second.client.heartbeat(worker)).directive).toBe('continue')
    await sleep(600)
    expect(second.server.child.exitCode).toBeNull()
    expect((await registerRoot(second.client)).worker_id).toMatch(/^[0-9a-f]{32}$/)
  }, 60_000)
})
