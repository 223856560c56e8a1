// SPEC §6: the audit log as server-sent events. A decision's transaction only leaves a notice
// ("the head moved"); the hub then reads the durable log after the lowest subscriber cursor in
// small slices and writes it. One read and one frame per record serve every subscriber, nothing
// is buffered here that the log does not already hold, and a subscriber's cursor is the only
// thing a resume needs. A round writes each subscriber once, carrying every record since its
// cursor (notices that arrive while a round runs join the next one; `batchMs` can space rounds
// further apart), and yields to the event loop every ~2 ms, so however many subscribers and
// records there are, no request waits behind more than that (SPEC §2.14).
import type { AuditRecord } from '../schemas/index.js'

/** Where a subscriber's bytes go: an http.ServerResponse fits. */
export interface EventSink {
  /** False once the stream's buffer is past its high-water mark: 'drain' follows when it empties. */
  write(chunk: string): boolean
  /** Bytes written but not yet handed to the kernel. */
  readonly writableLength: number
  readonly writableHighWaterMark: number
  end(): unknown
  destroy(): unknown
  once(event: 'close' | 'drain', listener: () => void): unknown
  removeListener(event: 'drain', listener: () => void): unknown
}

export interface EventFilter {
  /** Only these record types; null: all. */
  types: ReadonlySet<string> | null
  /** Only records about this worker or naming it as parent; null: all. */
  workerId: string | null
}

export interface AuditEventSource {
  /** Records with seq > `afterSeq`, in order, at most `limit`. */
  after(afterSeq: number, limit: number): AuditRecord[]
  headSeq(): number
  /** Calls `listener` after each commit that appended records; returns the unsubscribe. */
  onCommitted(listener: () => void): () => void
}

export interface EventHubOptions {
  source: AuditEventSource
  /** A comment line goes to every subscriber this often (SPEC: at least every 15 s). */
  keepAliveMs?: number
  /** Per subscriber: beyond this many unsent bytes nothing more is written until the socket drains. */
  bufferBytes?: number
  /**
   * A subscriber whose buffer stays full this long (it reads nothing) is sent `overflow` and
   * disconnected.
   */
  stallMs?: number
  /** Records read per round; the next round waits for the event loop's next turn. */
  sliceSize?: number
  /** A fan-out round starts no sooner than this many ms after the last one ended; notices in between join it. */
  batchMs?: number
  /** A round writes to subscribers for about this long per turn of the event loop, then yields. */
  turnBudgetMs?: number
  /** How long a dropped subscriber may take to read its backlog before its socket is destroyed. */
  dropGraceMs?: number
}

export const DEFAULT_KEEP_ALIVE_MS = 15_000
export const DEFAULT_STALL_MS = 10_000
export const DEFAULT_BUFFER_BYTES = 512 * 1024
const DEFAULT_SLICE = 256
const DEFAULT_BATCH_MS = 0
const DEFAULT_TURN_BUDGET_MS = 2
/** A write to one subscriber carries about this many characters at most (more only for one larger frame). */
const MAX_WRITE_CHARS = 64 * 1024
const DEFAULT_DROP_GRACE_MS = 10_000
/** Sent to browsers' EventSource: how long to wait before reconnecting. */
const RETRY_MS = 2_000

interface Subscriber {
  /** The last seq this subscriber has been given (or skipped as filtered out). */
  cursor: number
  filter: EventFilter
  sink: EventSink
  open: boolean
  /** Its buffer is full: nothing more is written (its cursor stays) until it drains. */
  blocked: boolean
  stall: NodeJS.Timeout | null
  onDrain: () => void
}

export function formatEvent(record: AuditRecord): string {
  // JSON.stringify never emits a raw newline, so one data: line carries the record.
  return `id: ${record.seq}\nevent: ${record.type}\ndata: ${JSON.stringify(record)}\n\n`
}

function matches(filter: EventFilter, record: AuditRecord): boolean {
  if (filter.types !== null && !filter.types.has(record.type)) return false
  if (filter.workerId !== null && record.worker_id !== filter.workerId && record.parent_id !== filter.workerId) return false
  return true
}

export function createEventHub(options: EventHubOptions) {
  const { source } = options
  const keepAliveMs = options.keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS
  const stallMs = options.stallMs ?? DEFAULT_STALL_MS
  const bufferBytes = options.bufferBytes ?? DEFAULT_BUFFER_BYTES
  const sliceSize = options.sliceSize ?? DEFAULT_SLICE
  const dropGraceMs = options.dropGraceMs ?? DEFAULT_DROP_GRACE_MS
  const batchMs = options.batchMs ?? DEFAULT_BATCH_MS
  const turnBudgetMs = options.turnBudgetMs ?? DEFAULT_TURN_BUDGET_MS
  const subscribers = new Set<Subscriber>()
  let scheduled: NodeJS.Immediate | null = null
  let delayed: NodeJS.Timeout | null = null
  let closed = false
  let delivered = 0
  let overflows = 0

  const drop = (sub: Subscriber) => {
    if (!sub.open) return
    sub.open = false
    subscribers.delete(sub)
    if (sub.stall !== null) clearTimeout(sub.stall)
    sub.sink.removeListener('drain', sub.onDrain)
    sub.sink.end()
    // A reader that never reads would hold its backlog forever: cut it after a grace period.
    const cut = setTimeout(() => sub.sink.destroy(), dropGraceMs)
    cut.unref()
    sub.sink.once('close', () => clearTimeout(cut))
  }

  const overflow = (sub: Subscriber) => {
    overflows++
    const data = JSON.stringify({
      resume_after_seq: sub.cursor,
      detail: `this subscriber read nothing for ${stallMs} ms and fell behind; reconnect with Last-Event-ID: ${sub.cursor} (or ?after_seq=${sub.cursor}) to continue with nothing lost`,
    })
    // The id makes an EventSource's automatic reconnect resume exactly here.
    sub.sink.write(`id: ${sub.cursor}\nevent: overflow\ndata: ${data}\n\n`)
    drop(sub)
  }

  /**
   * Writes; once the subscriber's unsent bytes reach bufferBytes it is blocked until the socket
   * drains, and sent `overflow` if it does not drain within stallMs. Its buffer stays bounded by
   * bufferBytes plus one write (≤ MAX_WRITE_CHARS, or one larger frame): what a slow reader has
   * not had yet stays in the log.
   */
  const send = (sub: Subscriber, chunk: string) => {
    sub.sink.write(chunk)
    // Past the stream's own high-water mark too (write returned false), so 'drain' will come.
    if (sub.sink.writableLength < Math.max(bufferBytes, sub.sink.writableHighWaterMark)) return
    sub.blocked = true
    sub.sink.once('drain', sub.onDrain)
    sub.stall = setTimeout(() => overflow(sub), stallMs)
    sub.stall.unref()
  }

  /**
   * One fan-out round: the records after the lowest cursor, read once, served to the subscribers
   * that were ready when it began, a few per turn of the event loop so that a request arriving
   * meanwhile waits for one turn's writes, not for all of them.
   */
  interface Round {
    records: AuditRecord[]
    /** Every subscriber in `queue` had a cursor ≥ this when the round began: `records` cover its gap. */
    from: number
    queue: Subscriber[]
    next: number
    /** One SSE frame per record, built on first use and shared by every subscriber. */
    frames: Array<string | undefined>
    /** All the records' frames in one string, for unfiltered subscribers at `from`; null: too big to share. */
    all: string | null | undefined
  }
  let round: Round | null = null
  /** A notice (or a drain, or a new subscriber) came while a round ran: another round follows it. */
  let dirty = false
  let lastRoundAt = -Infinity

  const frameOf = (r: Round, i: number) => (r.frames[i] ??= formatEvent(r.records[i]!))

  /** Writes a subscriber every record of the round after its cursor that its filter lets through. */
  const serve = (r: Round, sub: Subscriber) => {
    const { records } = r
    const last = records[records.length - 1]!.seq
    if (sub.cursor >= last) return
    if (sub.cursor === r.from && sub.filter.types === null && sub.filter.workerId === null) {
      if (r.all === undefined) {
        let bytes = 0
        for (let i = 0; i < records.length && bytes <= MAX_WRITE_CHARS; i++) bytes += frameOf(r, i).length
        r.all = bytes <= MAX_WRITE_CHARS ? r.frames.join('') : null
      }
      if (r.all !== null) {
        send(sub, r.all)
        sub.cursor = last
        delivered += records.length
        return
      }
    }
    // Filtered, behind the others, or a large round: its own batch, written in bounded pieces so a
    // slow reader stops at its buffer bound instead of being handed the whole round at once.
    let parts: string[] = []
    let chars = 0
    for (let i = 0; i < records.length; i++) {
      const record = records[i]!
      if (record.seq <= sub.cursor) continue
      if (matches(sub.filter, record)) {
        const frame = frameOf(r, i)
        parts.push(frame)
        chars += frame.length
      }
      if (chars >= MAX_WRITE_CHARS || i === records.length - 1) {
        if (parts.length > 0) send(sub, parts.length === 1 ? parts[0]! : parts.join(''))
        sub.cursor = record.seq
        delivered += parts.length
        parts = []
        chars = 0
        if (sub.blocked || !sub.open) return
      }
    }
  }

  const step = () => {
    scheduled = null
    const r = round
    if (r === null || closed) return
    const until = performance.now() + turnBudgetMs
    while (r.next < r.queue.length) {
      const sub = r.queue[r.next++]!
      // Blocked since the round began, or gone: its cursor stays, a later round serves it.
      if (sub.open && !sub.blocked && sub.cursor >= r.from) serve(r, sub)
      if (performance.now() >= until) break
    }
    if (r.next < r.queue.length) {
      scheduled = setImmediate(step)
      return
    }
    round = null
    lastRoundAt = performance.now()
    // A full slice may have more behind it; notices that came meanwhile want their records too.
    if (dirty || r.records.length === sliceSize) {
      dirty = false
      schedule()
    }
  }

  const startRound = () => {
    scheduled = null
    delayed = null
    if (closed || subscribers.size === 0) return
    dirty = false
    let from = Infinity
    for (const sub of subscribers) if (!sub.blocked) from = Math.min(from, sub.cursor)
    if (from === Infinity) return
    const records = source.after(from, sliceSize)
    if (records.length === 0) return
    const queue: Subscriber[] = []
    for (const sub of subscribers) if (!sub.blocked) queue.push(sub)
    round = { records, from, queue, next: 0, frames: new Array(records.length), all: undefined }
    step()
  }

  /**
   * Coalesces notices: a round starts no sooner than `batchMs` after the last one ended (at once
   * when the hub has been idle that long; by default right after it), so under a stream of
   * decisions a round carries several records in one write per subscriber.
   */
  function schedule() {
    if (closed) return
    if (round !== null) {
      dirty = true
      return
    }
    if (scheduled !== null || delayed !== null) return
    const wait = lastRoundAt + batchMs - performance.now()
    if (wait <= 0) scheduled = setImmediate(startRound)
    else delayed = setTimeout(startRound, wait)
  }

  const stopNotices = source.onCommitted(schedule)

  const keepAlive = setInterval(() => {
    for (const sub of subscribers) if (!sub.blocked) send(sub, `: keep-alive ${new Date().toISOString()}\n\n`)
  }, keepAliveMs)
  keepAlive.unref()

  return {
    /**
     * Starts streaming to `sink` the records after `afterSeq` (the head when null: from now).
     * The caller has already written the response head.
     */
    subscribe(sink: EventSink, filter: EventFilter, afterSeq: number | null): { cursor: number; close(): void } {
      const cursor = afterSeq ?? source.headSeq()
      const sub: Subscriber = {
        cursor,
        filter,
        sink,
        open: true,
        blocked: false,
        stall: null,
        onDrain: () => {
          if (sub.stall !== null) clearTimeout(sub.stall)
          sub.stall = null
          sub.blocked = false
          schedule()
        },
      }
      if (closed) {
        sink.end()
        return { cursor, close: () => {} }
      }
      subscribers.add(sub)
      sink.once('close', () => {
        sub.open = false
        subscribers.delete(sub)
        if (sub.stall !== null) clearTimeout(sub.stall)
      })
      send(sub, `retry: ${RETRY_MS}\n: warden audit events after seq ${cursor}\n\n`)
      schedule()
      return { cursor, close: () => drop(sub) }
    },
    get size(): number {
      return subscribers.size
    },
    stats: () => ({ subscribers: subscribers.size, delivered, overflows }),
    /** Ends every stream (on shutdown, so the server can close). */
    close(): void {
      closed = true
      stopNotices()
      clearInterval(keepAlive)
      if (scheduled !== null) clearImmediate(scheduled)
      if (delayed !== null) clearTimeout(delayed)
      round = null
      for (const sub of [...subscribers]) drop(sub)
    },
  }
}

export type EventHub = ReturnType<typeof createEventHub>
