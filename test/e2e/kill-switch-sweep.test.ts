// SPEC §2.6 and §2.10 across a real crash in the kill switch's window (migration 0010): the
// engaging transaction commits the termination as one sweep row; the workers rows are rewritten
// afterwards by the reaper. Here the server is SIGKILLed after the 200 and before its reaper ever
// ran (a one-minute interval), so the file holds the sweep and rows that still say live; the
// restarted server must show every worker killed to every reader, and write the rows itself.
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import { WardenError } from '../../src/client/errors.js'
import { createServerTracker } from '../helpers/server.js'
import { listWorkers, registerChild, registerRoot, type Registered } from '../helpers/calls.js'
import { contract, waitFor } from '../helpers/fixtures.js'

const servers = createServerTracker()
const copies: string[] = []
afterEach(async () => {
  await servers.cleanup()
  for (const dir of copies.splice(0)) rmSync(dir, { recursive: true, force: true })
})

/** What the file holds, read from a copy (the crashed server's WAL recovered there, never in the original). */
function stored(dbFile: string) {
  const dir = mkdtempSync(join(tmpdir(), 'warden-sweep-'))
  copies.push(dir)
  const copy = join(dir, 'copy.db')
  copyFileSync(dbFile, copy)
  if (existsSync(`${dbFile}-wal`)) copyFileSync(`${dbFile}-wal`, `${copy}-wal`)
  const db = new Database(copy)
  try {
    return {
      sweeps: db.prepare(`SELECT count(*) FROM kill_sweep`).pluck().get() as number,
      storedLive: db.prepare(`SELECT count(*) FROM workers WHERE status IN ('active', 'quarantined')`).pluck().get() as number,
      killedBySwitch: db.prepare(`SELECT count(*) FROM workers WHERE status = 'killed' AND reason = 'kill_switch'`).pluck().get() as number,
    }
  } finally {
    db.close()
  }
}

const metric = (text: string, name: string) => Number(new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN)

describe('kill switch: a crash between the committed sweep and its rows (SPEC §2.6, §2.10)', () => {
  it('after a SIGKILL in the window, the restarted server shows every worker killed at once and writes the rows itself', async () => {
    const first = await servers.start({ env: { WARDEN_REAPER_INTERVAL_MS: '60000' } })
    const dbFile = first.server.dbFile
    await first.client.putContract(contract({ max_replicas: 100 }))
    const workers: Registered[] = []
    for (let r = 0; r < 6; r++) {
      const root = await registerRoot(first.client)
      workers.push(root, await registerChild(first.client, root), await registerChild(first.client, root))
    }
    await first.client.quarantine(workers[4]!.worker_id, 'inspect')
    const engaged = await first.client.engageKillSwitch('crash in the window')
    expect(engaged.terminated).toBe(workers.length)
    const exit = await first.server.kill('SIGKILL')
    expect(exit.signal).toBe('SIGKILL')

    // The window, on disk: the sweep row committed, the rows not yet written.
    expect(stored(dbFile)).toEqual({ sweeps: 1, storedLive: workers.length, killedBySwitch: 0 })

    const second = await servers.start({ dbFile })
    const client = second.client
    for (const worker of workers) {
      expect(await client.getWorker(worker.worker_id)).toMatchObject({ status: 'killed', reason: 'kill_switch', ended_at: engaged.engaged_at })
      const refused = await client.heartbeat(worker).catch((error: unknown) => error)
      expect(refused).toBeInstanceOf(WardenError)
      expect(refused).toMatchObject({ status: 410, code: 'worker_terminated' })
      expect((refused as WardenError).problem).toMatchObject({ directive: 'terminate', reason: 'kill_switch' })
    }
    expect(await listWorkers(client, { status: 'active' })).toEqual([])
    expect(await listWorkers(client, { status: 'quarantined' })).toEqual([])
    expect((await listWorkers(client, { status: 'killed' })).map((w) => w.worker_id)).toEqual(workers.map((w) => w.worker_id))
    const lineage = await client.getLineage(workers[0]!.worker_id)
    expect(lineage.descendants.map((node) => node.status)).toEqual(['killed', 'killed'])
    const metrics = await client.metrics()
    expect(metric(metrics, 'warden_workers{status="killed"}')).toBe(workers.length)
    expect(metric(metrics, 'warden_workers{status="active"}')).toBe(0)
    expect(metric(metrics, 'warden_workers{status="quarantined"}')).toBe(0)
    expect(await client.getKillSwitch()).toMatchObject({ engaged: true, reason: 'crash in the window' })
    expect((await client.verifyAudit()).ok).toBe(true)

    // Its reaper (every 100 ms here) writes the rows: once it has ticked twice, the sweep is done.
    await waitFor('two reaper ticks', async () => metric(await client.metrics(), 'warden_reaper_tick_seconds_count') >= 2)
    const closed = await second.server.kill('SIGTERM')
    expect(closed.code).toBe(0)
    expect(stored(dbFile)).toEqual({ sweeps: 0, storedLive: 0, killedBySwitch: workers.length })
  })
})
