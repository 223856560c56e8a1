// SPEC §2.14: no request or background task holds the event loop for long, and a stall of the
// loop never reaps a worker that heartbeated in time. Attacked against a real server process:
// the expensive stop conditions, a real stall (the process stopped with SIGSTOP while a
// worker keeps heartbeating), and audit verification over many records while heartbeats go on.
import { afterEach, describe, expect, it } from 'vitest'
import { iso } from '../../src/domain/clock.js'
import { openDatabase } from '../../src/store/db.js'
import { createStore } from '../../src/store/index.js'
import { storeHooks } from '../../src/domain/store-hooks.js'
import { createServerTracker } from '../helpers/e2e.js'
import { auditLog, getWorker, heartbeat, putContract, registerRoot, sleep, waitFor, type ApiClient } from '../helpers/http-client.js'
import { tempDbFile } from '../helpers/fixtures.js'

const servers = createServerTracker()
afterEach(() => servers.cleanup())

/**
 * The longest block of the server's event loop since the previous scrape (from /metrics): the
 * process busy (cpu) and the wall time, which on a loaded machine includes time it was not run.
 */
async function longestBlock(client: ApiClient): Promise<string> {
  const text: string = (await client.request('GET', '/metrics')).body
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
    const refused = await client.op('PUT', '/v1/contract', {
      ...(await client.op('GET', '/v1/contract')).body,
      version: undefined,
      updated_at: undefined,
      stop_conditions: [{ name: 'four-deep', expression: `${l}.all(a, ${l}.all(b, ${l}.all(c, ${l}.all(d, a + b + c + d >= 0))))` }],
    })
    expect(refused.status, JSON.stringify(refused.body)).toBe(400)
    expect(refused.body.detail).toMatch(/nests comprehensions 4 deep/)

    await putContract(client, { cooldown_seconds: 0, max_replicas: 50, stop_conditions: [{ name: 'quadratic', description: '', expression: QUADRATIC }] })
    const parent = await registerRoot(client)
    const xs = Array.from({ length: 2000 }, (_, i) => i)
    // The attack, repeated: the first run also pays for compiling the route and the validation
    // of a 2,000-element snapshot (JIT); later runs show the steady state.
    const figures: string[] = []
    for (let attempt = 0; attempt < 3; attempt++) {
      await longestBlock(client)
      const started = performance.now()
      const denied = await client.request('POST', `/v1/workers/${parent.id}/spawn`, { token: parent.token, body: { reason: 'big snapshot', state_snapshot: { xs } } })
      const spawnMs = performance.now() - started
      expect(denied.status, JSON.stringify(denied.body)).toBe(403)
      expect(denied.body).toMatchObject({ code: 'stop_condition', condition: 'quadratic' })
      figures.push(`spawn answered in ${spawnMs.toFixed(0)} ms, longest loop block ${await longestBlock(client)}`)
    }
    const records = await auditLog(client, { type: 'spawn_denied' })
    expect(records).toHaveLength(3)
    for (const record of records) {
      expect(record.data).toMatchObject({ condition: 'quadratic', evaluation_error: 'evaluation exceeded its budget of 10 ms' })
    }
    expect((await heartbeat(client, parent)).body.directive).toBe('continue')
    console.log(`CEL attack (2,000-element snapshot, quadratic condition): ${figures.join('; ')}`)
  }, 60_000)

  it('does not reap a worker that heartbeated in time when the loop stalls (process stopped 5 s), and still reaps a silent one', async () => {
    const { server, client } = await servers.start({ connections: 8 })
    await putContract(client, { heartbeat_timeout_seconds: 3, expiration_seconds: null, cooldown_seconds: 0, max_replicas: 10 })
    const silent = await registerRoot(client)
    const healthy = await registerRoot(client)

    let beating = true
    const answers: number[] = []
    const beats = (async () => {
      while (beating) {
        answers.push((await heartbeat(client, healthy)).status)
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

    expect(answers.every((status) => status === 200), JSON.stringify(answers)).toBe(true)
    expect((await getWorker(client, healthy.id)).body.status).toBe('active')
    await waitFor('the silent worker reaped', async () => ((await getWorker(client, silent.id)).body.status === 'reaped' ? true : undefined), 10_000)
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
        const status = (await heartbeat(client, worker)).status
        if (verifying && status === 200) answeredDuring++
      }
    })()
    await sleep(200)
    await longestBlock(client)
    answeredDuring = 0
    const started = performance.now()
    const verified = await client.op('GET', '/v1/audit/verify')
    const verifyMs = performance.now() - started
    verifying = false
    await beats
    expect(verified.status).toBe(200)
    expect(verified.body).toMatchObject({ ok: true, first_invalid_seq: null })
    expect(verified.body.records).toBeGreaterThan(N)
    expect(answeredDuring).toBeGreaterThan(0)
    console.log(
      `verify at ${verified.body.records} records: ${verifyMs.toFixed(0)} ms, ${answeredDuring} heartbeats answered meanwhile; longest event-loop block ${await longestBlock(client)}`,
    )
  }, 120_000)
})
