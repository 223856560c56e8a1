// Real process restarts: lease time frozen while the controller is down (SPEC §2.7), one process
// per database file (SPEC §4), and SIGTERM draining in-flight requests.
import { Readable } from 'node:stream'
import { Pool } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import type { AuditRecord, Manifest } from '../../src/schemas/index.js'
import { createServerTracker, range } from '../helpers/e2e.js'
import {
  auditLog,
  getWorker,
  heartbeat,
  issueRoot,
  putContract,
  registerRoot,
  sleep,
  verifyAudit,
  waitFor,
} from '../helpers/http-client.js'
import { startServer } from '../helpers/server-process.js'

const servers = createServerTracker()
afterEach(() => servers.cleanup())

describe('restart keeps the leases workers had left (SPEC §2.7)', () => {
  it('does not reap workers for the time the controller was down, and still reaps a silent one after its remaining lease', async () => {
    const TIMEOUT = 4
    const DOWN_MS = 5_000
    const first = await servers.start()
    const dbFile = first.server.dbFile
    await putContract(first.client, {
      heartbeat_timeout_seconds: TIMEOUT,
      cooldown_seconds: 0,
      max_replicas: 50,
      expiration_seconds: null,
      manifest_ttl_seconds: 600,
    })

    // The silent worker's last heartbeat is older, so it has less lease left than the others
    // and a full lease reset at restart would show.
    const silent = await registerRoot(first.client)
    expect((await heartbeat(first.client, silent)).status).toBe(200)
    await sleep(1_500)
    const healthy = [await registerRoot(first.client), await registerRoot(first.client)]
    for (const worker of healthy) expect((await heartbeat(first.client, worker)).body.directive).toBe('continue')
    const leaseAtCrash = Date.parse((await getWorker(first.client, silent.id)).body.lease_expires_at)

    await first.server.kill('SIGKILL')
    await first.client.destroy()
    await sleep(DOWN_MS)

    const second = await servers.start({ dbFile })
    const { client } = second
    // Healthy workers heartbeat as soon as the controller is back: the outage cost them nothing.
    for (const worker of healthy) {
      const beat = await heartbeat(client, worker)
      expect(beat.status, JSON.stringify(beat.body)).toBe(200)
      expect(beat.body.directive).toBe('continue')
    }

    // The silent worker's lease moved by exactly the downtime (or to one heartbeat interval).
    const started = (await auditLog(client, { type: 'controller_started' })).at(-1) as AuditRecord
    const downtime = Number(started.data.downtime_ms)
    expect(downtime).toBeGreaterThan(TIMEOUT * 1000)
    const interval = Math.round((TIMEOUT / 3) * 1000)
    const expectedLease = Math.max(leaseAtCrash + downtime, Date.parse(started.at) + interval)
    const resumed = (await getWorker(client, silent.id)).body
    expect(Date.parse(resumed.lease_expires_at)).toBe(expectedLease)

    // Keep the healthy ones beating like real workers while the silent one runs out.
    let beating = true
    const beats: number[] = []
    const beater = (async () => {
      while (beating) {
        for (const worker of healthy) beats.push((await heartbeat(client, worker)).status)
        await sleep(interval / 2)
      }
    })()
    const reaped = await waitFor('the silent worker to be reaped', async () => {
      const view = (await getWorker(client, silent.id)).body
      return view.status === 'reaped' ? view : undefined
    })
    beating = false
    await beater

    expect(reaped.reason).toBe('heartbeat timeout')
    expect(Date.parse(reaped.ended_at)).toBeGreaterThanOrEqual(expectedLease)
    const gone = await heartbeat(client, silent)
    expect(gone.status).toBe(410)
    expect(gone.body).toMatchObject({ code: 'worker_terminated', directive: 'terminate', reason: 'reaped' })

    expect(beats.every((status) => status === 200)).toBe(true)
    for (const worker of healthy) expect((await getWorker(client, worker.id)).body.status).toBe('active')
    const reapRecords = await auditLog(client, { type: 'worker_reaped' })
    expect(reapRecords.map((r) => r.worker_id)).toEqual([silent.id])
    expect(await verifyAudit(client)).toMatchObject({ ok: true })
  })
})

describe('one process per database file (SPEC §4)', () => {
  it('makes a second server on the same file exit non-zero saying the database is in use, and leaves the first one serving', async () => {
    const { server, client } = await servers.start()
    const error = await startServer({ dbFile: server.dbFile }).then(
      (second) => {
        servers.track(second)
        return undefined
      },
      (failure: Error) => failure,
    )
    expect(error, 'the second server must not start').toBeInstanceOf(Error)
    const exit = /exited before listening \(code (\d+|null), signal (\w+)\)/.exec(error!.message)
    expect(exit, error!.message).not.toBeNull()
    expect(exit![1]).not.toBe('0')
    expect(exit![1]).not.toBe('null')
    expect(error!.message).toMatch(/database .*warden\.db is already in use by another Warden process/)

    expect((await client.request('GET', '/readyz')).status).toBe(200)
    expect((await issueRoot(client)).status).toBe(201)
    expect(await verifyAudit(client)).toMatchObject({ ok: true })
  })
})

describe('SIGTERM drains (SPEC §4)', () => {
  it('completes in-flight requests with 2xx, exits 0, and leaves a database that reopens cleanly', async () => {
    const { server, client } = await servers.start()
    await putContract(client, { cooldown_seconds: 0, max_replicas: 100, heartbeat_timeout_seconds: 600 })
    const manifests = await Promise.all(range(10).map(async () => (await issueRoot(client)).body as Manifest))

    // 20 requests whose bodies stop half-way until the server is already draining.
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
      expect((await restarted.client.request('GET', '/readyz')).status).toBe(200)
      expect(await verifyAudit(restarted.client)).toMatchObject({ ok: true })
      const issued = responses.slice(0, 10).map((r) => r.body.worker_id as string)
      const records = await auditLog(restarted.client)
      for (const id of issued) expect(records.some((r) => r.type === 'manifest_issued' && r.worker_id === id), id).toBe(true)
      for (const manifest of manifests) {
        expect((await getWorker(restarted.client, manifest.worker_id)).body.status).toBe('active')
      }
    } finally {
      release()
      await pool.destroy()
    }
  })
})
