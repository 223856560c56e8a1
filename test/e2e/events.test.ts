// GET /v1/events over real sockets: an in-process app listening on 127.0.0.1:0, decisions
// committed through the HTTP API (or the domain, for volume), and subscribers reading the stream.
import { connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { buildApp, type AppOptions } from '../../src/app.js'
import type { AuditRecord } from '../../src/schemas/index.js'
import { WardenClient } from '../../src/client/client.js'
import { abortableSleep } from '../../src/client/retry.js'
import { SseParser, type SseMessage } from '../../src/client/sse.js'
import { createTestWarden, OPERATOR_TOKEN, storeOf } from '../helpers/harness.js'
import { registerChild, registerRoot } from '../helpers/calls.js'
import { sleep } from '../helpers/fixtures.js'
import { testClient } from '../helpers/server.js'
import { seqs, subscribe, type SseSubscription } from '../helpers/sse.js'

const AUTH = { authorization: `Bearer ${OPERATOR_TOKEN}` }

interface Served {
  url: string
  client: WardenClient
  warden: ReturnType<typeof createTestWarden>['warden']
  app: Awaited<ReturnType<typeof buildApp>>
}

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function serve(events: AppOptions['events'] = {}): Promise<Served> {
  const base = createTestWarden({ max_replicas: 1_000_000, max_depth: 8 })
  const app = await buildApp({ warden: base.warden, operatorToken: OPERATOR_TOKEN, events })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const client = testClient(url, OPERATOR_TOKEN, { connections: 16 })
  cleanups.push(async () => {
    await client.close()
    await app.close()
    base.close()
  })
  return { url, client, warden: base.warden, app }
}

async function open(served: Served, path = '/v1/events', headers: Record<string, string> = AUTH): Promise<SseSubscription> {
  const sub = await subscribe(served.url, path, headers)
  cleanups.push(() => sub.close())
  return sub
}

/** Issues `n` root manifests over HTTP, `parallel` at a time: one committed audit record each. */
async function decide(client: WardenClient, n: number, parallel = 8): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < n) {
        next++
        await client.issueManifest()
      }
    }),
  )
}

const headSeq = (served: Served) => storeOf(served.warden).audit.head().seq
const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i)

function records(messages: SseMessage[]): AuditRecord[] {
  return messages.filter((m) => m.event !== 'overflow').map((m) => JSON.parse(m.data) as AuditRecord)
}

describe('GET /v1/events', () => {
  it('refuses a missing or wrong token with 401 and streams nothing', async () => {
    const served = await serve({ keepAliveMs: 20 })
    const refused: Array<Record<string, string>> = [{}, { authorization: 'Bearer not-the-operator-token' }, { authorization: `Basic ${OPERATOR_TOKEN}` }]
    for (const headers of refused) {
      const sub = await open(served, '/v1/events?after_seq=0', headers)
      await decide(served.client, 3)
      await sub.ended
      expect(sub.status).toBe(401)
      expect(sub.headers['content-type']).toContain('application/problem+json')
      expect(JSON.parse(sub.body).code).toBe('unauthorized')
      expect(sub.messages).toEqual([])
      expect(sub.comments).toEqual([])
    }
    expect(served.app.events.size).toBe(0)
  })

  it('delivers every record committed while subscribed once, in order, with id = seq, type as event and the record as data', async () => {
    const served = await serve()
    await decide(served.client, 5) // before subscribing: not part of "from now"
    const sub = await open(served)
    expect(sub.status).toBe(200)
    expect(sub.headers['content-type']).toBe('text/event-stream; charset=utf-8')
    const start = headSeq(served)
    await decide(served.client, 200, 16)
    const end = headSeq(served)
    await sub.until('every committed record', () => sub.messages.length >= end - start)
    expect(seqs(sub.messages)).toEqual(range(start + 1, end))
    const stored = storeOf(served.warden).audit.after(start, 1000)
    expect(records(sub.messages)).toEqual(stored)
    expect(sub.messages.map((m) => m.event)).toEqual(stored.map((r) => r.type))
    // Nothing more arrives than was committed.
    await decide(served.client, 1)
    await sub.until('the next record', () => sub.messages.length === end - start + 1)
    expect(seqs(sub.messages).at(-1)).toBe(end + 1)
  })

  it('resumes after Last-Event-ID (or after_seq) with no gap and no repeat while decisions keep committing', async () => {
    const served = await serve()
    const start = headSeq(served)
    let stop = false
    const committing = (async () => {
      while (!stop) await decide(served.client, 10, 4)
    })()
    const received: number[] = []
    let last = start
    try {
      // Four connections in turn, each cut while records keep arriving; the last one uses after_seq.
      for (let i = 0; i < 4; i++) {
        const path = i === 3 ? `/v1/events?after_seq=${last}` : '/v1/events'
        const sub = await open(served, path, i === 0 ? { ...AUTH } : i === 3 ? AUTH : { ...AUTH, 'last-event-id': String(last) })
        const before = i === 0 ? start : last
        if (i === 0) last = before
        await sub.until('some records', () => sub.messages.length >= 25)
        sub.close()
        const got = seqs(sub.messages)
        if (i === 0) expect(got[0]).toBeGreaterThan(start)
        else expect(got[0]).toBe(before + 1)
        received.push(...got)
        last = got.at(-1)!
      }
    } finally {
      stop = true
      await committing
    }
    const first = received[0]!
    expect(received).toEqual(range(first, last))
  })

  it('filters by type (repeatable) and by worker_id', async () => {
    const served = await serve()
    const byType = await open(served, '/v1/events?type=worker_registered&type=spawn_approved')
    const oneType = await open(served, '/v1/events?type=manifest_issued')
    const root = await registerRoot(served.client)
    const rootId = root.worker_id
    const byWorker = await open(served, `/v1/events?worker_id=${rootId}`)
    await registerChild(served.client, root, 'test')
    await decide(served.client, 3) // other roots: not about rootId
    await served.client.quarantine(rootId, 'look closer')

    await byType.until('registrations and the spawn', () => byType.messages.length >= 3)
    expect(byType.messages.map((m) => m.event)).toEqual(['worker_registered', 'spawn_approved', 'worker_registered'])
    await oneType.until('4 issued manifests', () => oneType.messages.length >= 4)
    expect(new Set(oneType.messages.map((m) => m.event))).toEqual(new Set(['manifest_issued']))

    await byWorker.until('the quarantine', () => byWorker.messages.some((m) => m.event === 'worker_quarantined'))
    const about = records(byWorker.messages)
    expect(about.map((r) => r.type)).toEqual(['spawn_approved', 'worker_registered', 'worker_quarantined'])
    for (const r of about) expect([r.worker_id, r.parent_id]).toContain(rootId)

    const bad = await open(served, '/v1/events?type=not_a_type')
    await bad.ended
    expect(bad.status).toBe(400)
    const badId = await open(served, '/v1/events', { ...AUTH, 'last-event-id': 'abc' })
    await badId.ended
    expect(badId.status).toBe(400)
  })

  it('sends a comment line every keep-alive interval while nothing happens', async () => {
    const served = await serve({ keepAliveMs: 40 })
    const sub = await open(served)
    await sub.until('three keep-alive comments', () => sub.comments.filter((c) => c.startsWith('keep-alive')).length >= 3)
    expect(sub.messages).toEqual([])
  })

  it('sends a slow reader an overflow event naming where to resume, disconnects it, and the resume loses nothing', async () => {
    const served = await serve({ stallMs: 200 })
    const start = headSeq(served)
    const { port } = new URL(served.url)
    // A raw socket that sends the request and then reads nothing: the kernel buffers fill, then ours.
    const socket = connect(Number(port), '127.0.0.1')
    cleanups.push(() => void socket.destroy())
    await new Promise<void>((done) => socket.once('connect', done))
    socket.write(`GET /v1/events HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${OPERATOR_TOKEN}\r\n\r\n`)
    socket.pause()
    while (served.app.events.size === 0) await sleep(5)
    // Loopback kernel buffers hold a few MB: commit big records until they are full and the stall is seen.
    const store = storeOf(served.warden)
    const padding = 'x'.repeat(8_000)
    for (let batch = 0; served.app.events.stats().overflows === 0; batch++) {
      if (batch === 400) throw new Error('no overflow after 20,000 records of 8 kB')
      store.transaction(() => {
        for (let i = 0; i < 50; i++) store.audit.append({ type: 'contract_updated', actor: 'test', data: { padding } }, new Date().toISOString())
      })
      await sleep(10)
    }
    expect(served.app.events.size).toBe(0)
    // Now read what the server sent before hanging up.
    let text = ''
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => (text += chunk))
    const closed = new Promise<void>((done) => socket.once('end', done))
    socket.resume()
    await closed
    const messages: SseMessage[] = []
    const parser = new SseParser({ message: (m) => messages.push(m) })
    parser.push(text.slice(text.indexOf('\r\n\r\n') + 4).replace(/^[0-9a-f]+\r\n|\r\n[0-9a-f]+\r\n/g, ''))
    const overflow = messages.at(-1)!
    expect(overflow.event).toBe('overflow')
    const resumeAfter = JSON.parse(overflow.data).resume_after_seq as number
    expect(overflow.id).toBe(String(resumeAfter))
    const before = seqs(messages)
    expect(before).toEqual(range(start + 1, resumeAfter))

    // Resuming from the named seq delivers the rest: no gap, no repeat.
    const end = headSeq(served)
    expect(end).toBeGreaterThan(resumeAfter)
    const resumed = await open(served, '/v1/events', { ...AUTH, 'last-event-id': String(resumeAfter) })
    await resumed.until('the rest of the log', () => resumed.messages.length >= end - resumeAfter, 30_000)
    expect([...before, ...seqs(resumed.messages)]).toEqual(range(start + 1, end))
  })

  it('gives each of 100 subscribers every record of a burst of decisions', async () => {
    const served = await serve()
    const subs = await Promise.all(Array.from({ length: 100 }, () => open(served)))
    expect(served.app.events.size).toBe(100)
    const start = headSeq(served)
    await decide(served.client, 300, 16)
    const end = headSeq(served)
    const expected = range(start + 1, end)
    await Promise.all(subs.map((sub, i) => sub.until(`subscriber ${i}`, () => sub.messages.length >= expected.length)))
    for (const sub of subs) expect(seqs(sub.messages)).toEqual(expected)
  })

  it('lets the client follow from now across dropped connections with no gap and no repeat', async () => {
    const served = await serve()
    const client = new WardenClient({ url: served.url, token: OPERATOR_TOKEN, sleep: (ms, signal) => abortableSleep(Math.min(ms, 20), signal) })
    cleanups.push(() => client.close())
    const controller = new AbortController()
    const got: number[] = []
    const start = headSeq(served)
    const following = (async () => {
      for await (const record of client.events({}, { signal: controller.signal })) got.push(record.seq)
    })()
    while (served.app.events.size === 0) await sleep(5)
    // Decisions through the domain: closeAllConnections would also cut an HTTP client's sockets.
    const commit = (n: number) => {
      for (let i = 0; i < n; i++) served.warden.admission.issueRoot({})
    }
    for (let round = 0; round < 3; round++) {
      commit(20)
      const target = headSeq(served)
      while (got.at(-1) !== target) await sleep(5)
      served.app.server.closeAllConnections() // the stream drops; records committed meanwhile are not lost
      commit(5)
    }
    const end = headSeq(served)
    while (got.at(-1) !== end) await sleep(5)
    controller.abort()
    await following
    expect(got).toEqual(range(start + 1, end))
  })

  it('ends every stream when the app closes', async () => {
    const served = await serve()
    const sub = await open(served)
    await served.app.close()
    await sub.ended
    expect(served.app.events.size).toBe(0)
  })
})
