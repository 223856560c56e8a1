// SPEC §7: durations may be fractional seconds; Warden works in whole milliseconds, and no
// contract value it accepts makes a request fail with 5xx or stops the process. The issue's attack
// against a real server: a fractional heartbeat timeout crashed the lease flusher (a REAL in an
// INTEGER column) on every start; fractional TTL and lifetime made issuing and registering 500.
import { afterEach, describe, expect, it } from 'vitest'
import { createServerTracker } from '../helpers/e2e.js'
import { getWorker, heartbeat, issueRoot, putContract, register, registerRoot, sleep, spawn } from '../helpers/http-client.js'

const servers = createServerTracker()
afterEach(() => servers.cleanup())

describe('fractional durations (SPEC §7)', () => {
  it('renews, flushes, issues, registers and spawns under fractional durations, and the process survives a restart', async () => {
    const first = await servers.start()
    await putContract(first.client, {
      heartbeat_timeout_seconds: 30.0001,
      manifest_ttl_seconds: 300.0005,
      expiration_seconds: 10_000.0007,
      cooldown_seconds: 0.0004,
      max_replicas: 20,
    })
    const issued = await issueRoot(first.client)
    expect(issued.status, JSON.stringify(issued.body)).toBe(201)
    const registered = await register(first.client, issued.body)
    expect(registered.status, JSON.stringify(registered.body)).toBe(201)
    const worker = { id: issued.body.worker_id as string, token: registered.body.lease_token as string }
    expect((await heartbeat(first.client, worker)).status).toBe(200)
    await sleep(600) // several lease flushes
    expect(first.server.child.exitCode).toBeNull()
    const child = await spawn(first.client, worker)
    expect(child.status, JSON.stringify(child.body)).toBe(201)
    expect((await register(first.client, child.body)).status).toBe(201)
    const view = (await getWorker(first.client, worker.id)).body
    expect(Number.isInteger(Date.parse(view.lease_expires_at))).toBe(true)

    // The contract is stored: the next start must not die on it either.
    await first.server.kill('SIGKILL')
    const second = await servers.start({ dbFile: first.server.dbFile })
    expect((await heartbeat(second.client, worker)).status).toBe(200)
    await sleep(600)
    expect(second.server.child.exitCode).toBeNull()
    expect((await registerRoot(second.client)).id).toMatch(/^[0-9a-f]{32}$/)
  }, 60_000)
})
