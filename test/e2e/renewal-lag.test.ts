// SPEC §2.10: a heartbeat renewal is the one write that may be batched, lagging at most 1 s. A
// stream of heartbeats from 100 workers runs against a real server, which is SIGKILLed at a random
// moment; the file it leaves must hold, for every worker, each renewal acknowledged more than 1 s
// before the kill. (The flusher writes renewals in key order, in rounds: a renewal that comes
// after its worker's turn in a round waits for the next one, and must still make the second.)
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import { registerRoot, type Registered } from '../helpers/calls.js'
import { contract, range, sleep } from '../helpers/fixtures.js'
import { createServerTracker } from '../helpers/server.js'

const servers = createServerTracker()
afterEach(() => servers.cleanup())

const WORKERS = 100
const LOOPS = 8
const LAG_MS = 1_000

describe('heartbeat renewals across SIGKILL (SPEC §2.10)', () => {
  it('loses no renewal acknowledged more than 1 s before the kill', async () => {
    const { server, client } = await servers.start({ connections: LOOPS })
    await client.putContract(contract({ max_replicas: WORKERS, heartbeat_timeout_seconds: 600, expiration_seconds: null }))
    const workers: Registered[] = []
    for (const _ of range(WORKERS)) workers.push(await registerRoot(client))

    // For each worker, its acknowledged heartbeats as [sent, answered] (this machine's one clock).
    const acked = new Map<string, Array<[number, number]>>(workers.map((w) => [w.worker_id, []]))
    let killed = false
    const loops = range(LOOPS).map(async (loop) => {
      for (let i = loop; !killed; i = (i + LOOPS) % WORKERS) {
        const worker = workers[i]!
        const sent = Date.now()
        try {
          await client.heartbeat(worker)
          if (!killed) acked.get(worker.worker_id)!.push([sent, Date.now()])
        } catch (error) {
          if (!killed) throw error
        }
      }
    })
    await sleep(2_500 + Math.random() * 1_500)
    killed = true
    const killedAt = Date.now()
    await server.kill('SIGKILL')
    await Promise.all(loops)

    const db = new Database(server.dbFile, { fileMustExist: true })
    try {
      const stored = new Map(
        (db.prepare(`SELECT worker_id, last_heartbeat_at FROM leases`).all() as Array<{ worker_id: string; last_heartbeat_at: number | null }>).map(
          (row) => [row.worker_id, row.last_heartbeat_at ?? 0],
        ),
      )
      expect(stored.size).toBe(WORKERS)
      let checked = 0
      for (const [id, beats] of acked) {
        // The last heartbeat answered over 1 s before the kill: its renewal happened no earlier
        // than it was sent, and must be on disk.
        const due = beats.filter(([, answered]) => answered <= killedAt - LAG_MS).at(-1)
        if (due === undefined) continue
        checked++
        expect({ id, stored: stored.get(id)! >= due[0] }).toEqual({ id, stored: true })
      }
      expect(checked).toBe(WORKERS)
    } finally {
      db.close()
    }
  }, 60_000)
})
