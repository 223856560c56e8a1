// Real process restarts: lease time frozen while the controller is down (SPEC §2.7), one process
// per database file (SPEC §4), and SIGTERM draining in-flight requests.
import { Readable } from 'node:stream'
import { Pool } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import type { Lease } from '../../src/client/client.js'
import { auditLog } from '../helpers/calls.js'
import { contract, range, waitFor } from '../helpers/fixtures.js'
import { createServerTracker } from '../helpers/server.js'

const servers = createServerTracker()
afterEach(() => servers.cleanup())

describe('restart keeps the leases workers had left (SPEC §2.7)', () => {
  // The rule itself, to the millisecond, with a manual clock: test/domain/liveness.test.ts
  // ("restart: lease time does not run while the controller is down"). This test adds what only
  // real processes show: the leases written before a SIGKILL are the ones the next process shifts.
  it('after a SIGKILL, a new process on the same file moves each lease by the downtime it records, and healthy workers carry on', async () => {
    const first = await servers.start()
    const dbFile = first.server.dbFile
    const op = first.client
    await op.putContract(contract({ heartbeat_timeout_seconds: 30, max_replicas: 50, expiration_seconds: null }))
    const workers: Lease[] = []
    for (let i = 0; i < 3; i++) {
      const manifest = await op.issueManifest()
      const registration = await op.register(manifest)
      workers.push({ worker_id: manifest.worker_id, lease_token: registration.lease_token })
    }
    // A heartbeat renews in memory; this waits until the renewal is on disk, as SIGKILL will find it.
    const beat = await op.heartbeat(workers[0]!)
    await waitFor('the renewed lease to be flushed', async () => {
      const rows = (await op.listWorkers({ limit: 10 })).items
      return rows.find((row) => row.worker_id === workers[0]!.worker_id && row.lease_expires_at === beat.lease_expires_at)
    })
    const leasesAtCrash = new Map((await op.listWorkers({ limit: 10 })).items.map((row) => [row.worker_id, Date.parse(row.lease_expires_at)]))

    await first.server.kill('SIGKILL')

    const restartedAt = Date.now()
    const { client } = await servers.start({ dbFile })
    {
      const started = (await client.listAudit({ type: 'controller_started', order: 'desc', limit: 1 })).items[0]!
      const downtime = Number(started.data.downtime_ms)
      expect(downtime).toBeGreaterThan(0)
      const floor = Date.parse(started.at) + 10_000 // one heartbeat interval (timeout / 3)
      for (const worker of workers) {
        const view = await client.getWorker(worker.worker_id)
        expect(view.status).toBe('active')
        // Exactly the shifted lease, unless the new process's loop stalled since (a busy machine):
        // a stall moves leases on by its length (SPEC §2.14), never back, and by no more than has passed.
        const shifted = Math.max(leasesAtCrash.get(worker.worker_id)! + downtime, floor)
        const lease = Date.parse(view.lease_expires_at)
        expect(lease).toBeGreaterThanOrEqual(shifted)
        expect(lease - shifted).toBeLessThanOrEqual(Date.now() - restartedAt)
        expect((await client.heartbeat(worker)).directive).toBe('continue')
      }
      expect((await client.verifyAudit()).ok).toBe(true)
    }
  })
})

describe('one process per database file (SPEC §4)', () => {
  it('makes a second server on the same file exit non-zero saying the database is in use, and leaves the first one serving', async () => {
    const { server, client } = await servers.start()
    const error = await servers.failToStart({ dbFile: server.dbFile })
    expect(error.exit, error.message).not.toBeNull()
    expect(error.exit!.code, error.message).not.toBe(0)
    expect(error.exit!.code, error.message).not.toBeNull()
    expect(error.message).toMatch(/database .*warden\.db is already in use by another Warden process/)

    expect(await client.ready()).toMatchObject({ status: 'ready' })
    await client.issueManifest()
    expect(await client.verifyAudit()).toMatchObject({ ok: true })
  })
})

describe('SIGTERM drains (SPEC §4)', () => {
  it('completes in-flight requests with 2xx, exits 0, and leaves a database that reopens cleanly', async () => {
    const { server, client } = await servers.start()
    await client.putContract(contract({ cooldown_seconds: 0, max_replicas: 100, heartbeat_timeout_seconds: 600 }))
    const manifests = await Promise.all(range(10).map(() => client.issueManifest()))

    // 20 requests whose bodies stop half-way until the server is already draining: raw, since
    // the client sends a body whole.
    let release!: () => void
    const gate = new Promise<void>((done) => (release = done))
    const pool = new Pool(server.url, { connections: 32 })
    const inFlight = [
      ...range(10).map((i) => ({ path: '/v1/manifests', token: server.operatorToken, body: { state_snapshot: { drain: i } } })),
      ...manifests.map((manifest) => ({ path: '/v1/workers', token: undefined, body: manifest })),
    ].map(async ({ path, token, body }) => {
      const bytes = Buffer.from(JSON.stringify(body))
      const half = Math.floor(bytes.length / 2)
      const response = await pool.request({
        method: 'POST',
        path,
        headers: {
          'content-type': 'application/json',
          'content-length': String(bytes.length),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: Readable.from(
          (async function* () {
            yield bytes.subarray(0, half)
            await gate
            yield bytes.subarray(half)
          })(),
        ),
      })
      return { status: response.statusCode, body: (await response.body.json()) as Record<string, unknown> }
    })

    try {
      const incoming = () => server.logs.filter((line) => line.includes('"msg":"incoming request"') && /"url":"\/v1\/(manifests|workers)"/.test(line))
      const before = incoming().length
      await waitFor('the server to receive all 20 requests', async () => (incoming().length - before >= 20 ? true : undefined))
      process.kill(server.pid, 'SIGTERM')
      await waitFor('the server to start draining', async () => (server.logs.some((line) => line.includes('draining and closing')) ? true : undefined))
      release()

      const responses = await Promise.all(inFlight)
      for (const response of responses) expect(response.status, JSON.stringify(response.body)).toBe(201)
      const exit = await server.exited
      const lastWords = server.logs.filter((line) => !/"msg":"(incoming request|request completed)"/.test(line)).slice(-4)
      expect(exit, lastWords.join('\n')).toEqual({ code: 0, signal: null })

      const restarted = await servers.start({ dbFile: server.dbFile })
      expect(await restarted.client.ready()).toMatchObject({ status: 'ready' })
      expect(await restarted.client.verifyAudit()).toMatchObject({ ok: true })
      const issued = responses.slice(0, 10).map((r) => r.body.worker_id as string)
      const records = await auditLog(restarted.client)
      for (const id of issued) expect(records.some((r) => r.type === 'manifest_issued' && r.worker_id === id), id).toBe(true)
      for (const manifest of manifests) {
        expect((await restarted.client.getWorker(manifest.worker_id)).status).toBe('active')
      }
    } finally {
      release()
      await pool.destroy()
    }
  })
})
