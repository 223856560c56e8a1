// SPEC §2.14 and §7: a full disk never ends the process, fails requests with 503
// storage_unavailable, fails readiness while writes fail, and still lets the kill switch and a
// kill commit (from the reserve). Attacked for real: the database on a small tmpfs, filled up.
import { existsSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createServerTracker } from '../helpers/e2e.js'
import { heartbeat, issueRoot, putContract, registerRoot, sleep, verifyAudit, waitFor, type ApiClient } from '../helpers/http-client.js'
import { mountTmpfs, type Tmpfs } from '../helpers/tmpfs.js'

const servers = createServerTracker()
let disk: Tmpfs | null = null
afterEach(async () => {
  await servers.cleanup()
  disk?.unmount()
  disk = null
})

const probe = mountTmpfs(1024)
const cannotMount = typeof probe === 'string' ? probe : null
if (typeof probe !== 'string') probe.unmount()
if (cannotMount) console.warn(`full-disk tests skipped: ${cannotMount}`)

/** A server whose database lives on a fresh 8 MiB tmpfs, with a 1 MiB reserve. */
async function serverOnSmallDisk() {
  const mounted = mountTmpfs(8 * 1024)
  if (typeof mounted === 'string') throw new Error(mounted)
  disk = mounted
  const running = await servers.start({
    dbFile: join(mounted.dir, 'data', 'warden.db'),
    env: { WARDEN_DISK_RESERVE_MB: '1', WARDEN_REAPER_INTERVAL_MS: '200' },
  })
  await putContract(running.client, { max_replicas: 100, cooldown_seconds: 0, heartbeat_timeout_seconds: 30, manifest_ttl_seconds: 600 })
  const workers = [await registerRoot(running.client), await registerRoot(running.client), await registerRoot(running.client)]
  return { ...running, disk: mounted, workers }
}

/** Issues manifests until the full disk refuses one; every answer is 201 or 503, never a 500. */
async function writeUntilRefused(client: ApiClient) {
  for (let i = 0; i < 500; i++) {
    const answer = await issueRoot(client)
    if (answer.status === 503) return answer
    expect(answer.status, JSON.stringify(answer.body)).toBe(201)
  }
  throw new Error('the full disk never refused a write')
}

describe.skipIf(cannotMount !== null)('a full disk (SPEC §7)', () => {
  it('keeps the process up, answers 503 storage_unavailable, fails /readyz, and still engages the kill switch', async () => {
    const { server, client, disk: tmpfs, workers } = await serverOnSmallDisk()
    const reserveFile = `${server.dbFile}.reserve`
    expect(statSync(reserveFile).size).toBe(1024 * 1024)
    expect((await client.request('GET', '/readyz')).status).toBe(200)

    // Fill the disk, then keep heartbeating: renewals pile up in memory and the lease flusher
    // fails on every slice (it crashed the process before).
    tmpfs.fill()
    for (let round = 0; round < 5; round++) {
      for (const worker of workers) expect((await heartbeat(client, worker)).status).toBe(200)
      await sleep(150)
    }
    const refused = await writeUntilRefused(client)
    expect(refused.body.code).toBe('storage_unavailable')
    expect(String(refused.headers['content-type'])).toContain('application/problem+json')
    const ready = await client.request('GET', '/readyz')
    expect(ready.status).toBe(503)
    expect(ready.body.code).toBe('storage_unavailable')
    await sleep(500) // a few more failing flushes and reaper ticks
    expect(server.child.exitCode).toBeNull()

    const engaged = await client.op('POST', '/v1/kill-switch', { reason: 'disk full drill' })
    expect(engaged.status, JSON.stringify(engaged.body)).toBe(200)
    expect(engaged.body).toMatchObject({ engaged: true, terminated: workers.length })
    expect(existsSync(reserveFile)).toBe(false) // the reserve paid for it
    for (const worker of workers) {
      const beat = await heartbeat(client, worker)
      expect(beat.status).toBe(410)
      expect(beat.body.directive).toBe('terminate')
    }

    // Space returns: readiness recovers and the reserve is put back.
    tmpfs.unfill()
    await waitFor('readiness after space returns', async () => ((await client.request('GET', '/readyz')).status === 200 ? true : undefined))
    await waitFor('the reserve restored', async () => (existsSync(reserveFile) && statSync(reserveFile).size === 1024 * 1024 ? true : undefined))
    expect(server.child.exitCode).toBeNull()
    expect((await verifyAudit(client)).ok).toBe(true)

    // Committed: the kill switch survives a crash.
    await server.kill('SIGKILL')
    const again = await servers.start({ dbFile: server.dbFile, env: { WARDEN_DISK_RESERVE_MB: '1' } })
    expect((await again.client.op('GET', '/v1/kill-switch')).body.engaged).toBe(true)
  }, 60_000)

  it('still kills a worker and its descendants on a full disk', async () => {
    const { server, client, disk: tmpfs, workers } = await serverOnSmallDisk()
    tmpfs.fill()
    const refused = await writeUntilRefused(client)
    expect(refused.body.code).toBe('storage_unavailable')

    const killed = await client.op('POST', `/v1/workers/${workers[0]!.id}/kill`, { reason: 'disk full drill' })
    expect(killed.status, JSON.stringify(killed.body)).toBe(200)
    expect(killed.body.worker.status).toBe('killed')
    expect((await heartbeat(client, workers[0]!)).status).toBe(410)
    expect(server.child.exitCode).toBeNull()
  }, 60_000)
})
