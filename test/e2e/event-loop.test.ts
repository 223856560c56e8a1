// SPEC §2.14: no request or background task holds the event loop for long, and a stall of the
// loop never reaps a worker that heartbeated in time. Attacked against a real server process:
// the expensive stop conditions, a real stall (the process stopped with SIGSTOP while a
// worker keeps heartbeating), and audit verification over many records while heartbeats go on.
import { afterEach, describe, expect, it } from 'vitest'
import { iso } from '../../src/domain/clock.js'
import { openDatabase } from '../../src/store/db.js'
import { createStore } from '../../src/store/index.js'
import { storeHooks } from '../../src/domain/store-hooks.js'
import type { WardenClient } from '../../src/client/client.js'
import { auditLog, outcome, registerRoot, rejection } from '../helpers/calls.js'
import { contract, sleep, tempDbFile, waitFor } from '../helpers/fixtures.js'
import { createServerTracker } from '../helpers/server.js'

const servers = createServerTracker()
afterEach(() => servers.cleanup())

/**
 * The longest block of the server's event loop since the previous scrape (from /metrics): the
 * process busy (cpu) and the wall time, which on a loaded machine includes time it was not run.
 */
async function longestBlock(client: WardenClient): Promise<string> {
  const text = await client.metrics()
  const read = (measure: string) => {
    const match = new RegExp(`^warden_event_loop_longest_block_seconds\\{measure="${measure}"\\} ([0-9.e+-]+)$`, 'm').exec(text)
    if (!match) return 'n/a'
    return (Number(match[1]) * 1000).toFixed(1)
  }
  return `${read('cpu')} ms busy (${read('wall')} ms wall)`
}

const literal = (n: number) => `[${Array.from({ length: n }, (_, i) => i).join(',')}]`
const QUADRATIC = 'has(manifest.state_snapshot.xs) && manifest.state_snapshot.xs.all(a, manifest.state_snapshot.xs.all(b, a + b >= 0.0)) == false'

describe('event-loop responsiveness (SPEC §2.14)', () => {
  it('refuses the nested comprehensions of the issue, and fails a too-expensive stop condition closed within its budget, audited', async () => {
    const { client } = await servers.start()
    const l = literal(60)
    const { version: _version, updated_at: _updated, ...current } = await client.getContract()
    const refused = await rejection(
      client.putContract({
        ...current,
        stop_conditions: [{ name: 'four-deep', expression: `${l}.all(a, ${l}.all(b, ${l}.all(c, ${l}.all(d, a + b + c + d >= 0))))` }],
      }),
    )
    expect(refused.status, refused.message).toBe(400)
    expect(refused.detail).toMatch(/nests comprehensions 4 deep/)

    await client.putContract(contract({ cooldown_seconds: 0, max_replicas: 50, stop_conditions: [{ name: 'quadratic', description: '', expression: QUADRATIC }] }))
    const parent = await registerRoot(client)
    const xs = Array.from({ length: 2000 }, (_, i) => i)
    // The attack, repeated: the first run also pays for compiling the route and the validation
    // of a 2,000-element snapshot (JIT); later runs show the steady state.
    const figures: string[] = []
    for (let attempt = 0; attempt < 3; attempt++) {
      await longestBlock(client)
      const started = performance.now()
      const denied = await rejection(client.spawn(parent, { reason: 'big snapshot', state_snapshot: { xs } }))
      const spawnMs = performance.now() - started
      expect(denied.status, denied.message).toBe(403)
      expect(denied.problem).toMatchObject({ code: 'stop_condition', condition: 'quadratic' })
      figures.push(`spawn answered in ${spawnMs.toFixed(0)} ms, longest loop block ${await longestBlock(client)}`)
    }
    const records = await auditLog(client, { type: 'spawn_denied' })
    expect(records).toHaveLength(3)
    for (const record of records) {
      expect(record.data).toMatchObject({ condition: 'quadratic', evaluation_error: 'evaluation exceeded its budget of 10 ms' })
    }
    expect((await client.heartbeat(parent)).directive).toBe('continue')
    console.log(`CEL attack (2,000-element snapshot, quadratic condition): ${figures.join('; ')}`)
  }, 60_000)

  it('does not reap a worker that heartbeated in time when the loop stalls (process stopped 5 s), and still reaps a silent one', async () => {
    const { server, client } = await servers.start({ connections: 8 })
    await client.putContract(contract({ heartbeat_timeout_seconds: 3, expiration_seconds: null, cooldown_seconds: 0, max_replicas: 10 }))
    const silent = await registerRoot(client)
    const healthy = await registerRoot(client)

    let beating = true
    const answers: string[] = []
    const beats = (async () => {
      while (beating) {
        const beat = await outcome(client.heartbeat(healthy))
        answers.push(beat.ok ? beat.value.directive : `${beat.status} ${beat.code}`)
        await sleep(500)
      }
    })()
    await sleep(1_000)
    process.kill(server.pid, 'SIGSTOP')
    await sleep(5_000)
    process.kill(server.pid, 'SIGCONT')
    await sleep(2_000)
    beating = false
    await beats

    expect(answers.every((answer) => answer === 'continue'), JSON.stringify(answers)).toBe(true)
    expect((await client.getWorker(healthy.worker_id)).status).toBe('active')
    await waitFor('the silent worker reaped', async () => (await client.getWorker(silent.worker_id)).status === 'reaped', 10_000)
  }, 60_000)

  it('answers heartbeats while verifying an audit chain of 20,000 records', async () => {
    const N = 20_000
    const dbFile = tempDbFile().file
    const seed = openDatabase(dbFile)
    const store = createStore(seed, storeHooks)
    store.transaction(() => {
      for (let i = 0; i < N; i++) store.audit.append({ type: 'manifest_denied', actor: 'operator', code: 'quota_exceeded', data: { detail: `seed ${i}` } }, iso(Date.now()))
    })
    seed.close()

    const { client } = await servers.start({ dbFile, connections: 8 })
    const worker = await registerRoot(client)
    let verifying = true
    let answeredDuring = 0
    const beats = (async () => {
      while (verifying) {
        const beat = await client.heartbeat(worker)
        if (verifying && beat.directive === 'continue') answeredDuring++
      }
    })()
    await sleep(200)
    await longestBlock(client)
    answeredDuring = 0
    const started = performance.now()
    const verified = await client.verifyAudit()
    const verifyMs = performance.now() - started
    verifying = false
    await beats
    expect(verified).toMatchObject({ ok: true, first_invalid_seq: null })
    expect(verified.records).toBeGreaterThan(N)
    expect(answeredDuring).toBeGreaterThan(0)
    console.log(
      `verify at ${verified.records} records: ${verifyMs.toFixed(0)} ms, ${answeredDuring} heartbeats answered meanwhile; longest event-loop block ${await longestBlock(client)}`,
    )
  }, 120_000)
})
