// Pre-builds a Warden database for the scale scenarios, through the project's own store and
// domain code (openDatabase, createStore, createWarden, the workers/sandboxes repositories, the
// token helpers), in large transactions; an ended worker is inserted as it ends up (one write
// instead of a registration and a termination). The real server is then started on the file.
//
// What it holds:
// - `total` workers; `live` of them active with a lease far ahead, `due` more active whose lease
//   (as of the controller's last tick) runs out `due-in-ms` after the next start, all at the same
//   instant; the rest terminal (deregistered, reaped, expired, killed), (their sandboxes stopped with them).
// - Live workers registered under contract v1 (heartbeat_timeout 1 day); the contract is then
//   replaced by v2 with `timeout-seconds`, the one the server runs with. So leases renewed by the
//   benchmark are short while the seeded ones are long, and nothing but the `due` ones falls due.
// - Lease tokens made and hashed by src/domain/tokens.ts; the live and due ones are written to
//   `tokens` as lines "<worker_id> <lease_token> live|due" so the benchmark can heartbeat them.
// - The audit log holds only the contract records: its size enters none of the measured paths
//   (appending reads the head by primary key).
//
// Usage: tsx bench/seed.ts --db F --total N --live N --due N --due-in-ms MS --timeout-seconds S --key K --tokens F
//          [--layout recent|spread]
import { randomBytes } from 'node:crypto'
import { createWriteStream, statSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { systemClock } from '../src/domain/clock.js'
import { DEFAULT_CONTRACT } from '../src/domain/contract.js'
import { createWarden } from '../src/domain/index.js'
import { createSigner } from '../src/domain/signing.js'
import { generateToken, hashToken, newWorkerId } from '../src/domain/tokens.js'
import type { WorkerStatus } from '../src/schemas/index.js'
import { openDatabase } from '../src/store/db.js'
import { createStore } from '../src/store/index.js'
import { storeHooks } from '../src/domain/store-hooks.js'

const { values } = parseArgs({
  options: {
    db: { type: 'string' },
    total: { type: 'string' },
    live: { type: 'string' },
    due: { type: 'string' },
    'due-in-ms': { type: 'string' },
    'timeout-seconds': { type: 'string' },
    key: { type: 'string' },
    tokens: { type: 'string' },
    layout: { type: 'string', default: 'recent' },
  },
})
const required = (name: keyof typeof values): string => {
  const value = values[name]
  if (value === undefined) throw new Error(`--${name} is required`)
  return value
}
const total = Number(required('total'))
const live = Number(required('live'))
const due = Number(required('due'))
const dueInMs = Number(required('due-in-ms'))
const timeoutSeconds = Number(required('timeout-seconds'))
if (live + due > total) throw new Error('live + due must not exceed total')

// One transaction per million rows: with random worker ids every index page is dirtied by each
// batch, so fewer, larger batches write each page fewer times (57 s → 47 s at 1M rows).
const BATCH = 1_000_000
const DAY = 86_400_000
const started = performance.now()

const db = openDatabase(required('db'))
// This connection only: a large page cache for the bulk insert (random worker ids in the unique
// index), and no journal or fsync while building (a crashed seed is thrown away, never opened):
// every page is written once, to the database file, instead of to the WAL and again at the
// checkpoint. The file is put back in WAL mode at the end, as the server keeps it.
db.pragma('cache_size = -1048576')
db.pragma('synchronous = OFF')
db.pragma('journal_mode = OFF')
const store = createStore(db, storeHooks)
const baseContract = { ...DEFAULT_CONTRACT, max_replicas: 10_000_000, cooldown_seconds: 0, expiration_seconds: null, max_depth: 3 }
const signer = createSigner(Buffer.from(required('key'), 'utf8'))
const warden = createWarden({
  store,
  clock: systemClock,
  signer,
  contract: { ...baseContract, heartbeat_timeout_seconds: 86_400 },
})

// 0 terminal, 1 live, 2 due. Layout `recent`: the live workers are among the most recent
// registrations (rows are in registration order), spread over the last 1.5 × (live + due) rows
// with the recently ended ones between them, as a fleet with bounded lifetimes looks. Layout
// `spread`: spread evenly over the whole table (long-lived workers; the worst case for writes
// that touch every live row).
const layout = values.layout
if (layout !== 'recent' && layout !== 'spread') throw new Error('--layout is recent or spread')
const region = layout === 'spread' ? total : Math.min(total, Math.ceil(1.5 * (live + due)))
const regionStart = total - region
const kinds = new Uint8Array(total)
for (let k = 0; k < live; k++) kinds[regionStart + Math.floor((k * region) / live)] = 1
for (let k = 0; k < due; k++) {
  let at = regionStart + Math.floor(((k + 0.5) * region) / due)
  while (kinds[at % total] !== 0) at++
  kinds[at % total] = 2
}

const terminal: Array<{ status: WorkerStatus; reason: string }> = [
  { status: 'deregistered', reason: 'deregistered' },
  { status: 'reaped', reason: 'heartbeat timeout' },
  { status: 'expired', reason: 'lifetime over' },
  { status: 'killed', reason: 'killed' },
]
const resources = baseContract.default_resources
const resourcesJson = JSON.stringify(resources)
// Random bytes for ended workers' token hashes, drawn a batch at a time (one call, not one per row).
let pool = Buffer.alloc(0)
let poolAt = 0
const deadTokenHash = (): Buffer => {
  if (poolAt === pool.length) {
    pool = randomBytes(32 * 4096)
    poolAt = 0
  }
  poolAt += 32
  return pool.subarray(poolAt - 32, poolAt)
}
const keyId = signer.keyId
const t0 = systemClock.now()
const tokens = createWriteStream(required('tokens'))
const dueIds: string[] = []
let lastRoot = ''

for (let from = 0; from < total; from += BATCH) {
  const lines: string[] = []
  store.transaction(() => {
    for (let i = from; i < Math.min(total, from + BATCH); i++) {
      const workerId = newWorkerId()
      const kind = kinds[i]!
      const registeredAt = t0 - (total - i) * 50
      const isRoot = i % 4 === 0
      const end = kind === 0 ? terminal[i % terminal.length]! : null
      // A live worker's token is made and hashed as registration does; an ended worker's token
      // is never presented again, so its hash is 32 random bytes (same size, same column).
      const token = end ? null : generateToken()
      store.workers.insert({
        worker_id: workerId,
        parent_id: isRoot ? null : lastRoot,
        depth: isRoot ? 0 : 1,
        // An ended worker is written as it ends up after terminate() (status, reason, ended_at,
        // its final lease): one row write instead of a registration and a termination.
        status: end ? end.status : 'active',
        reason: end ? end.reason : null,
        lease_token_hash: token === null ? deadTokenHash() : hashToken(token),
        resources,
        state_snapshot: {},
        key_id: keyId,
        issued_at: registeredAt - 100,
        registered_at: registeredAt,
        lease_expires_at: end ? registeredAt + 30_000 : t0 + DAY,
        expires_at: null,
        ended_at: end ? registeredAt + 60_000 : null,
      })
      store.sandboxes.launch(workerId, 'record', resourcesJson, registeredAt)
      if (!end) {
        lines.push(`${workerId} ${token} ${kind === 2 ? 'due' : 'live'}\n`)
        if (kind === 2) dueIds.push(workerId)
      }
      if (isRoot) lastRoot = workerId
    }
  })
  tokens.write(lines.join(''))
}
await new Promise<void>((done, fail) => tokens.end((error?: Error | null) => (error ? fail(error) : done())))

// The controller's last tick is now; the due leases run out `dueInMs` after it, all at once.
// (On the next start the restart rule shifts every lease by the downtime.)
const lastTick = systemClock.now()
store.transaction(() => {
  for (const workerId of dueIds) {
    store.workers.renewLease({ worker_id: workerId, lease_expires_at: lastTick + dueInMs, last_heartbeat_at: lastTick })
  }
  store.controllerState.tick(lastTick)
})
warden.contracts.replace({ ...baseContract, heartbeat_timeout_seconds: timeoutSeconds }, 'config')
db.pragma('journal_mode = WAL')
db.pragma('synchronous = FULL')
db.close()

console.log(
  JSON.stringify({
    layout,
    rows: total,
    live,
    due,
    seconds: (performance.now() - started) / 1000,
    file_mib: statSync(required('db')).size / 2 ** 20,
  }),
)
