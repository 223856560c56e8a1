// SPEC §2.14 and §7: a full disk never ends the process, fails requests with 503
// storage_unavailable, fails readiness while writes fail, and still lets the kill switch and a
// kill commit (from the reserve). Attacked for real: the database on a small tmpfs, filled up.
import { existsSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { WardenClient } from '../../src/client/client.js'
import type { WardenError } from '../../src/client/errors.js'
import { outcome, registerRoot, rejection } from '../helpers/calls.js'
import { contract, sleep, waitFor } from '../helpers/fixtures.js'
import { rawRequest } from '../helpers/raw-http.js'
import { createServerTracker } from '../helpers/server.js'
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
  await running.client.putContract(contract({ max_replicas: 100, cooldown_seconds: 0, heartbeat_timeout_seconds: 30, manifest_ttl_seconds: 600 }))
  const workers = [await registerRoot(running.client), await registerRoot(running.client), await registerRoot(running.client)]
  return { ...running, disk: mounted, workers }
}

/** Issues manifests until the full disk refuses one; every answer is 2xx or 503, never a 500. */
async function writeUntilRefused(client: WardenClient): Promise<WardenError> {
  for (let i = 0; i < 500; i++) {
    const answer = await outcome(client.issueManifest())
    if (answer.ok) continue
    expect(answer.status, answer.error.message).toBe(503)
    return answer.error
  }
  throw new Error('the full disk never refused a write')
}

describe.skipIf(cannotMount !== null)('a full disk (SPEC §7)', () => {
  it('keeps the process up, answers 503 storage_unavailable, fails /readyz, and still engages the kill switch', async () => {
    const { server, client, disk: tmpfs, workers } = await serverOnSmallDisk()
    const reserveFile = `${server.dbFile}.reserve`
    expect(statSync(reserveFile).size).toBe(1024 * 1024)
    expect(await client.ready()).toMatchObject({ status: 'ready' })

    // Fill the disk, then keep heartbeating: renewals pile up in memory and the lease flusher
    // fails on every slice (it crashed the process before).
    tmpfs.fill()
    for (let round = 0; round < 5; round++) {
      for (const worker of workers) expect((await client.heartbeat(worker)).directive).toBe('continue')
      await sleep(150)
    }
    const refused = await writeUntilRefused(client)
    expect(refused.code).toBe('storage_unavailable')
    // Raw, for the media type the client does not surface: still a problem document.
    const again = await rawRequest(server.url, 'POST', '/v1/manifests', { token: server.operatorToken, body: {} })
    expect(again.status).toBe(503)
    expect(String(again.headers['content-type'])).toContain('application/problem+json')
    const ready = await rejection(client.ready())
    expect(ready.status).toBe(503)
    expect(ready.code).toBe('storage_unavailable')
    await sleep(500) // a few more failing flushes and reaper ticks
    expect(server.child.exitCode).toBeNull()

    const engaged = await client.engageKillSwitch('disk full drill')
    expect(engaged).toMatchObject({ engaged: true, terminated: workers.length })
    expect(existsSync(reserveFile)).toBe(false) // the reserve paid for it
    for (const worker of workers) {
      const beat = await rejection(client.heartbeat(worker))
      expect(beat.status).toBe(410)
      expect(beat.problem?.directive).toBe('terminate')
    }

    // Space returns: readiness recovers and the reserve is put back.
    tmpfs.unfill()
    await waitFor('readiness after space returns', async () => (await outcome(client.ready())).ok)
    await waitFor('the reserve restored', async () => (existsSync(reserveFile) && statSync(reserveFile).size === 1024 * 1024 ? true : undefined))
    expect(server.child.exitCode).toBeNull()
    expect((await client.verifyAudit()).ok).toBe(true)

    // Committed: the kill switch survives a crash.
    await server.kill('SIGKILL')
    const restarted = await servers.start({ dbFile: server.dbFile, env: { WARDEN_DISK_RESERVE_MB: '1' } })
    expect((await restarted.client.getKillSwitch()).engaged).toBe(true)
  }, 60_000)

  it('still kills a worker and its descendants on a full disk', async () => {
    const { server, client, disk: tmpfs, workers } = await serverOnSmallDisk()
    tmpfs.fill()
    const refused = await writeUntilRefused(client)
    expect(refused.code).toBe('storage_unavailable')

    const killed = await client.kill(workers[0]!.worker_id, { reason: 'disk full drill' })
    expect(killed.worker.status).toBe('killed')
    expect((await rejection(client.heartbeat(workers[0]!))).status).toBe(410)
    expect(server.child.exitCode).toBeNull()
  }, 60_000)
})
