// npm run bench:idempotency [-- --spawns 3000 --rows 1000000]
//
// What an Idempotency-Key costs (SPEC §3 Retries), measured on a real database file with the
// production durability (WAL, synchronous=FULL, one fsync per decision):
//   1. the spawn decision without a key, with a fresh key (lookup + record in the same
//      transaction), and a keyed repeat (lookup + replay, nothing decided), per call;
//   2. the lookup alone against a table of `--rows` keys (a hit and a miss);
//   3. the bytes each stored key takes (table + its two indexes), from the file's page count,
//      extrapolated to one million keyed requests;
//   4. the background sweep: the time one slice of expired keys holds the event loop.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { ManualClock } from '../src/domain/clock.js'
import { DEFAULT_CONTRACT } from '../src/domain/contract.js'
import { IDEMPOTENCY_WINDOW_MS, requestDigest } from '../src/domain/idempotency.js'
import { createWarden } from '../src/domain/index.js'
import { createSigner } from '../src/domain/signing.js'
import { openDatabase } from '../src/store/db.js'
import { storeHooks } from '../src/domain/store-hooks.js'
import { createStore } from '../src/store/index.js'

const { values: flags } = parseArgs({
  options: { spawns: { type: 'string', default: '3000' }, rows: { type: 'string', default: '1000000' } },
})
const SPAWNS = Number(flags.spawns)
const ROWS = Number(flags.rows)

const dir = mkdtempSync(join(tmpdir(), 'warden-bench-idem-'))
try {
  const open = (file: string) => {
    const db = openDatabase(file)
    const store = createStore(db, storeHooks)
    const clock = new ManualClock(Date.now())
    const warden = createWarden({
      store,
      clock,
      signer: createSigner(Buffer.alloc(32, 7)),
      contract: { ...DEFAULT_CONTRACT, max_replicas: 10_000_000, max_depth: 5, cooldown_seconds: 0, manifest_ttl_seconds: 86_400 },
    })
    warden.liveness.resume()
    const parent = warden.admission.register(warden.admission.issueRoot({}))
    return { db, store, clock, warden, lease: { worker_id: parent.worker.worker_id } }
  }

  const percentile = (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor((p / 100) * values.length))]!
  const timeEach = (n: number, fn: (i: number) => void): number[] => {
    const times: number[] = []
    for (let i = 0; i < n; i++) {
      const start = performance.now()
      fn(i)
      times.push((performance.now() - start) * 1000)
    }
    return times
  }
  const report = (label: string, micros: number[]) =>
    console.log(`${label.padEnd(44)} p50 ${percentile(micros, 50).toFixed(1).padStart(7)} µs   p99 ${percentile(micros, 99).toFixed(1).padStart(7)} µs`)

  const spawns = (label: string, target: ReturnType<typeof open>) => {
    console.log(`1. spawn decision, ${SPAWNS} calls each, ${label}:`)
    // Interleaved rounds, so drift on a shared machine hits all three alike.
    const plain: number[] = []
    const keyed: number[] = []
    const replay: number[] = []
    for (let round = 0; round < 10; round++) {
      const n = SPAWNS / 10
      plain.push(...timeEach(n, () => target.warden.admission.spawn(target.lease, { reason: 'bench' })))
      keyed.push(...timeEach(n, (i) => target.warden.admission.spawn(target.lease, { reason: 'bench' }, `key-${round}-${i}`)))
      replay.push(...timeEach(n, (i) => target.warden.admission.spawn(target.lease, { reason: 'bench' }, `key-${round}-${i}`)))
    }
    report('  without a key', plain)
    report('  with a fresh key (lookup + record)', keyed)
    report('  keyed repeat (lookup + replay)', replay)
    console.log(`  a key adds p50 ${(percentile(keyed, 50) - percentile(plain, 50)).toFixed(1)} µs to a spawn`)
  }
  // CPU alone (no disk wait), then as deployed: one fsync per decision dominates there.
  const memory = open(':memory:')
  spawns('in-memory database (CPU only)', memory)
  memory.db.close()
  const { db, store, clock, warden, lease } = open(join(dir, 'warden.db'))
  spawns('file database (WAL, synchronous=FULL: one fsync per decision)', { db, store, clock, warden, lease })

  // 3. Bytes per key: the file's pages before and after inserting keyed spawn answers.
  const pages = () => (db.pragma('page_count', { simple: true }) as number) - (db.pragma('freelist_count', { simple: true }) as number)
  const pageSize = db.pragma('page_size', { simple: true }) as number
  const answer = JSON.stringify(warden.admission.spawn(lease, { reason: 'bench' }))
  const caller = `worker:${lease.worker_id}`
  const put = store.idempotency.put
  db.exec('PRAGMA wal_checkpoint(TRUNCATE)')
  const before = pages()
  const SAMPLE = Math.min(ROWS, 200_000)
  const insertRows = (from: number, to: number, createdAt: number) => {
    for (let start = from; start < to; start += 10_000) {
      db.transaction(() => {
        for (let i = start; i < Math.min(to, start + 10_000); i++) {
          put({ caller, key: crypto.randomUUID(), body_digest: requestDigest('spawn', { reason: `bench ${i}` }), status: 201, answer, created_at: createdAt + i })
        }
      })()
    }
  }
  insertRows(0, SAMPLE, clock.now())
  db.exec('PRAGMA wal_checkpoint(TRUNCATE)')
  const bytesPerKey = ((pages() - before) * pageSize) / SAMPLE
  console.log(`3. storage: ${SAMPLE} keys of a spawn answer (${answer.length} B of JSON, caller ${caller.length} B, UUID key 36 B)`)
  console.log(`  ${bytesPerKey.toFixed(0)} B per key (table + primary key + created_at index) → ${((bytesPerKey * 1_000_000) / 2 ** 20).toFixed(0)} MiB per 1M keyed requests (extrapolated); swept after 24 h`)

  // 2. Lookups against a table of ROWS keys.
  if (ROWS > SAMPLE) insertRows(SAMPLE, ROWS, clock.now())
  const keys = db.prepare<[], { key: string }>(`SELECT key FROM idempotency_keys ORDER BY random() LIMIT 2000`).all()
  console.log(`2. lookup alone, table of ${store.idempotency.count()} keys:`)
  report('  hit', timeEach(keys.length, (i) => store.idempotency.get(caller, keys[i]!.key)))
  report('  miss', timeEach(keys.length, (i) => store.idempotency.get(caller, `absent-${i}`)))

  // 4. The sweep: everything above is 24 h old once the clock moves on.
  clock.advance(IDEMPOTENCY_WINDOW_MS + ROWS + 1)
  report('4. sweep, one slice of 100 expired keys (server)', timeEach(50, () => warden.idempotency.sweep(100)))
  report('   for comparison, slices of 500', timeEach(20, () => warden.idempotency.sweep(500)))
  db.close()
} finally {
  rmSync(dir, { recursive: true, force: true })
}
