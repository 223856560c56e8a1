// The event hub's fan-out with an in-memory log and sinks that record every write: which records
// each subscriber gets (filters, cursors), in how many writes, and what a subscriber that arrives
// while a round is half written receives.
import { EventEmitter } from 'node:events'
import { afterEach, describe, expect, it } from 'vitest'
import { createEventHub, type AuditEventSource, type EventFilter, type EventSink } from '../../src/events/hub.js'
import type { AuditRecord } from '../../src/schemas/index.js'
import { SseParser, type SseMessage } from '../../src/client/sse.js'

const TYPES = ['manifest_issued', 'worker_registered', 'worker_killed'] as const

function fakeLog() {
  const records: AuditRecord[] = []
  const listeners = new Set<() => void>()
  let reads = 0
  const source: AuditEventSource = {
    after(afterSeq, limit) {
      reads++
      return records.filter((r) => r.seq > afterSeq).slice(0, limit)
    },
    headSeq: () => records.length,
    onCommitted(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
  }
  return {
    source,
    reads: () => reads,
    /** Appends `n` records (types and workers cycling) in one "transaction" and sends the notice. */
    commit(n: number) {
      for (let i = 0; i < n; i++) {
        const seq = records.length + 1
        records.push({
          seq,
          at: new Date(0).toISOString(),
          type: TYPES[seq % TYPES.length]!,
          actor: 'test',
          worker_id: `w${seq % 4}`,
          parent_id: null,
          code: null,
          data: { n: seq },
          prev_hash: '0'.repeat(64),
          hash: '0'.repeat(64),
        } as AuditRecord)
      }
      for (const listener of listeners) listener()
    },
    records,
  }
}

class FakeSink extends EventEmitter implements EventSink {
  writes: string[] = []
  writableLength = 0
  writableHighWaterMark = 16 * 1024
  ended = false
  write(chunk: string): boolean {
    this.writes.push(chunk)
    return true
  }
  end() {
    this.ended = true
  }
  destroy() {}
  messages(): SseMessage[] {
    const messages: SseMessage[] = []
    const parser = new SseParser({ message: (m) => messages.push(m) })
    parser.push(this.writes.join(''))
    return messages
  }
  seqs(): number[] {
    return this.messages().map((m) => Number(m.id))
  }
  /** Writes that carried at least one event (not the opening retry line or a keep-alive). */
  eventWrites(): number {
    return this.writes.filter((w) => w.includes('\nevent: ')).length
  }
}

const hubs: Array<{ close(): void }> = []
afterEach(() => {
  for (const hub of hubs.splice(0)) hub.close()
})

const all: EventFilter = { types: null, workerId: null }
const turn = () => new Promise((done) => setImmediate(done))
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms))

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await sleep(2)
  if (!check()) throw new Error(`timed out waiting for ${what}`)
}

describe('event hub fan-out', () => {
  it('reads each new slice of the log once for all subscribers and gives each, filtered or behind, exactly its records in order', async () => {
    const log = fakeLog()
    log.commit(10)
    const hub = createEventHub({ source: log.source, batchMs: 0 })
    hubs.push(hub)
    const sinks = {
      live: new FakeSink(),
      live2: new FakeSink(),
      killed: new FakeSink(),
      w1: new FakeSink(),
      behind: new FakeSink(),
    }
    hub.subscribe(sinks.live, all, null)
    hub.subscribe(sinks.live2, all, null)
    hub.subscribe(sinks.killed, { types: new Set(['worker_killed', 'manifest_issued']), workerId: null }, null)
    hub.subscribe(sinks.w1, { types: null, workerId: 'w1' }, null)
    hub.subscribe(sinks.behind, all, 4)
    await until(() => sinks.behind.seqs().length === 6, 'the backlog')
    const readsBefore = log.reads()
    log.commit(30)
    await until(() => sinks.live.seqs().at(-1) === 40 && sinks.behind.seqs().at(-1) === 40, 'every record')
    await turn()

    const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i)
    expect(sinks.live.seqs()).toEqual(range(11, 40))
    expect(sinks.live2.seqs()).toEqual(range(11, 40))
    expect(sinks.behind.seqs()).toEqual(range(5, 40))
    expect(sinks.killed.seqs()).toEqual(range(11, 40).filter((s) => ['worker_killed', 'manifest_issued'].includes(TYPES[s % 3]!)))
    expect(sinks.w1.seqs()).toEqual(range(11, 40).filter((s) => s % 4 === 1))
    // The same frame for the same record, whichever subscriber it went to.
    const frames = (sink: FakeSink) => new Map(sink.messages().map((m) => [m.id, m.data]))
    const shared = frames(sinks.live)
    for (const sink of Object.values(sinks)) for (const [id, data] of frames(sink)) if (shared.has(id)) expect(data).toBe(shared.get(id))
    expect(JSON.parse(shared.get('17')!)).toEqual(log.records[16])
    // One commit of 30 records: one read of the log for all five subscribers, one write each.
    expect(log.reads() - readsBefore).toBe(1)
    for (const sink of Object.values(sinks)) expect(sink.writes.length - 1 - (sink === sinks.behind ? 1 : 0)).toBe(1)
  })

  it('coalesces notices that arrive within batchMs into one write per subscriber', async () => {
    const log = fakeLog()
    const hub = createEventHub({ source: log.source, batchMs: 400 })
    hubs.push(hub)
    const sink = new FakeSink()
    hub.subscribe(sink, all, null)
    log.commit(1) // the hub was idle: this one goes at once
    await until(() => sink.seqs().length === 1, 'the first record')
    // Five decisions a few ms apart, each its own turn of the event loop, all within the 400 ms window.
    for (let i = 0; i < 5; i++) {
      log.commit(1)
      await sleep(3)
    }
    await until(() => sink.seqs().length === 6, 'the next five')
    expect(sink.seqs()).toEqual([1, 2, 3, 4, 5, 6])
    expect(sink.eventWrites()).toBe(2)
  })

  it('gives a subscriber that arrives while a round is half written every record after its own cursor, once, in order', async () => {
    const log = fakeLog()
    // A zero budget: a round writes to one subscriber per turn of the event loop.
    const hub = createEventHub({ source: log.source, batchMs: 0, turnBudgetMs: 0 })
    hubs.push(hub)
    const early = Array.from({ length: 20 }, () => new FakeSink())
    for (const sink of early) hub.subscribe(sink, all, null)
    log.commit(5) // seqs 1..5
    await turn()
    await turn()
    // Mid-round: some early subscribers have seq 5, others not yet.
    expect(early.some((s) => s.seqs().length === 5)).toBe(true)
    expect(early.some((s) => s.seqs().length === 0)).toBe(true)
    const fromHead = new FakeSink()
    const fromTwo = new FakeSink()
    hub.subscribe(fromHead, all, null) // head is 5: wants 6.. only
    hub.subscribe(fromTwo, all, 2) // resumes: wants 3..
    log.commit(3) // seqs 6..8, noticed while the round still runs
    await until(() => [...early, fromHead, fromTwo].every((s) => s.seqs().at(-1) === 8), 'every record everywhere')
    await sleep(10)
    for (const sink of early) expect(sink.seqs()).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
    expect(fromHead.seqs()).toEqual([6, 7, 8])
    expect(fromTwo.seqs()).toEqual([3, 4, 5, 6, 7, 8])
  })

  it('stops writing to a subscriber whose buffer is full mid-round, and resumes it from its cursor after drain', async () => {
    const log = fakeLog()
    const hub = createEventHub({ source: log.source, batchMs: 0, bufferBytes: 1000 })
    hubs.push(hub)
    const slow = new FakeSink()
    const fast = new FakeSink()
    // Its buffer never empties until we say so.
    slow.write = function (chunk: string) {
      this.writes.push(chunk)
      this.writableLength += chunk.length
      return this.writableLength < this.writableHighWaterMark
    }
    hub.subscribe(slow, all, null)
    hub.subscribe(fast, all, null)
    log.commit(2000) // far more than 64 KiB of frames: written in pieces
    await until(() => fast.seqs().at(-1) === 2000, 'the fast reader')
    const got = slow.seqs().length
    expect(got).toBeGreaterThan(0)
    expect(got).toBeLessThan(2000)
    // Bounded: one piece past the buffer bound at most.
    expect(slow.writableLength).toBeLessThan(1000 + 70 * 1024)
    // The reader catches up piece by piece: each drain lets the hub write on from its cursor.
    for (let i = 0; i < 200 && slow.seqs().at(-1) !== 2000; i++) {
      slow.writableLength = 0
      slow.emit('drain')
      await sleep(2)
    }
    expect(slow.seqs()).toEqual(Array.from({ length: 2000 }, (_, i) => i + 1))
  })
})
