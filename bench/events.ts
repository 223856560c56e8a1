// The live view's numbers (issue #11): event delivery latency from a decision to 100 subscribers
// of GET /v1/events, the decision latency with 0 and 100 subscribers, and the console's load
// time in Debian's Chromium with 10,000 workers. The compiled server (what `npm start` runs) on
// 127.0.0.1, a fresh database under data/, removed at the end.
//
//   npx tsx bench/events.ts [--quick] [--no-build] [--only delivery|latency|console] [--profile]
//     [--decisions N --rounds R]   (decision latency: N per side, in R alternating rounds; default 500, 5)
//
// Prints a Markdown table and writes bench/results/events.json.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { Pool } from 'undici'
import { SseParser } from '../src/client/sse.js'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createInterface } from 'node:readline'
import { buildApp } from '../src/app.js'
import { systemClock } from '../src/domain/clock.js'
import { createWarden } from '../src/domain/index.js'
import { createSigner } from '../src/domain/signing.js'
import { openDatabase } from '../src/store/db.js'
import { createStore } from '../src/store/index.js'
import { storeHooks } from '../src/domain/store-hooks.js'
import { summarizeProfile, type ProfileSummary } from './lib/profile.js'
import { cpuSeconds, killAllStartedSync, stopProcess } from './lib/proc.js'
import { percentile, Samples } from './lib/stats.js'
import { benchContract, buildServer, newSecrets, ROOT, startWarden, type WardenServer } from './lib/warden.js'

const CHROMIUM = '/usr/bin/chromium'
const now = () => performance.timeOrigin + performance.now()

export interface EventsBenchOptions {
  quick?: boolean
  build?: boolean
  /** Run one part only (the others' results are empty): the loop for work on one of them. */
  only?: EventsPart
  /** V8 CPU profile of the server process (its whole life), summarized into the result. */
  profile?: boolean
  /** Decision latency: decisions per side (with and without subscribers) and alternating rounds. */
  decisions?: number
  rounds?: number
}

export const EVENTS_PARTS = ['delivery', 'latency', 'console'] as const
export type EventsPart = (typeof EVENTS_PARTS)[number]

interface Subscriber {
  received: Map<number, number>
  close(): void
}

/** One subscriber of GET /v1/events on its own connection, recording each seq's arrival time. */
async function subscribe(url: string, token: string): Promise<Subscriber> {
  const pool = new Pool(url, { connections: 1, bodyTimeout: 0 })
  const received = new Map<number, number>()
  const parser = new SseParser({
    message: (m) => {
      if (m.event !== 'overflow') received.set(Number(m.id), now())
    },
  })
  const controller = new AbortController()
  const response = await pool.request({
    method: 'GET',
    path: '/v1/events',
    headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
    signal: controller.signal,
  })
  if (response.statusCode !== 200) throw new Error(`GET /v1/events answered ${response.statusCode}`)
  response.body.setEncoding('utf8')
  response.body.on('data', (chunk: string) => parser.push(chunk))
  response.body.on('error', () => {})
  return {
    received,
    close: () => {
      controller.abort()
      void pool.destroy()
    },
  }
}

/** `count` root-manifest decisions over HTTP, `concurrency` at a time: their latencies. */
async function decide(api: Pool, token: string, count: number, concurrency: number): Promise<Float64Array> {
  const latency = new Samples()
  let issued = 0
  const loop = async () => {
    while (issued < count) {
      issued++
      const start = now()
      const response = await api.request({ method: 'POST', path: '/v1/manifests', headers: { authorization: `Bearer ${token}` } })
      await response.body.text()
      if (response.statusCode !== 201) throw new Error(`POST /v1/manifests answered ${response.statusCode}`)
      latency.push(now() - start)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, loop))
  return latency.sorted()
}

const stat = (s: Float64Array) => ({ p50: percentile(s, 50), p99: percentile(s, 99), max: s[s.length - 1] ?? NaN })

/**
 * Delivery from commit to each subscriber, in one process so one clock times both ends: the
 * store's commit notice is timed (a listener registered before the hub's), and 100 subscribers
 * read GET /v1/events over real sockets. A file database with full fsync, as in production.
 * Also the decision latency over HTTP with 0 and with 100 subscribers.
 */
async function measureDelivery(work: string, decisions: number, subscribers: number, concurrency: number) {
  const db = openDatabase(join(work, `delivery-${concurrency}.db`))
  const store = createStore(db, storeHooks)
  const committed = new Map<number, number>()
  store.onAuditCommitted((seq) => committed.set(seq, now()))
  const warden = createWarden({ store, clock: systemClock, signer: createSigner(randomBytes(32)), contract: benchContract(3600) })
  warden.liveness.resume()
  const token = randomBytes(24).toString('base64url')
  const app = await buildApp({ warden, operatorToken: token })
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  const api = new Pool(url, { connections: 8 })
  try {
    await decide(api, token, 50, concurrency) // warm-up
    const baseline = await decide(api, token, decisions, concurrency)
    const subs = await Promise.all(Array.from({ length: subscribers }, () => subscribe(url, token)))
    while (app.events.size < subscribers) await new Promise((r) => setTimeout(r, 5))
    const start = store.audit.head().seq
    const loaded = await decide(api, token, decisions, concurrency)
    const end = store.audit.head().seq
    const deadline = now() + 30_000
    while (subs.some((sub) => !sub.received.has(end)) && now() < deadline) await new Promise((r) => setTimeout(r, 20))
    const delivery = new Samples()
    let missing = 0
    for (const sub of subs) {
      for (let seq = start + 1; seq <= end; seq++) {
        const at = sub.received.get(seq)
        // A commit notice carries the newest seq of its transaction: one record per decision here.
        const commit = committed.get(seq)
        if (at === undefined || commit === undefined) missing++
        else delivery.push(at - commit)
      }
      sub.close()
    }
    return {
      decisions,
      subscribers,
      concurrency,
      deliveries: delivery.count,
      missing,
      delivery_ms: stat(delivery.sorted()),
      // Here the subscribers share the server's process: see measureDecisionCost for the real cost.
      decision_ms_0_subscribers_in_process: stat(baseline),
      decision_ms_with_subscribers_in_process: stat(loaded),
    }
  } finally {
    await api.destroy()
    await app.close()
    warden.liveness.flushAllLeases()
    db.close()
  }
}

/** CPU seconds used over `run` by the server, by this (the measuring) process, and its wall time. */
async function withCpu<T>(serverPid: number, run: () => Promise<T>) {
  const server0 = cpuSeconds(serverPid)
  const self0 = process.cpuUsage()
  const wall0 = now()
  const result = await run()
  const self = process.cpuUsage(self0)
  return { result, cpu: { wall_s: (now() - wall0) / 1000, server_s: cpuSeconds(serverPid) - server0, bench_s: (self.user + self.system) / 1e6 } }
}

/**
 * The decision path's cost of fan-out, with the server in its own process (as deployed):
 * POST /v1/manifests latency with no subscriber and with `subscribers` connected, in alternating
 * rounds (the machine is shared: a neighbour's burst or a slow disk then weighs on both sides
 * alike), each round of `decisions / rounds`. Every subscriber must receive every record
 * committed while it was connected, in order, none twice.
 */
async function measureDecisionCost(server: WardenServer, decisions: number, subscribers: number, concurrency: number, rounds: number) {
  const pool = new Pool(server.url, { connections: concurrency })
  const readers = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'lib', 'subscribers.ts'), server.url, server.operatorToken, String(subscribers)], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  const lines = createInterface({ input: readers.stdout! })[Symbol.asyncIterator]()
  const command = async (line: string) => {
    readers.stdin!.write(`${line}\n`)
    const { value, done } = await lines.next()
    if (done) throw new Error(`the subscriber process ended (after "${line}")`)
    return String(value)
  }
  const perRound = Math.ceil(decisions / rounds)
  const withReaders = async (count: number) => {
    if ((await command('connect')) !== 'ready') throw new Error('the subscribers did not connect')
    const run = await withCpu(server.proc.pid, () => decide(pool, server.operatorToken, count, concurrency))
    const report = JSON.parse(await command(`disconnect ${count}`)) as { min: number; max: number; disordered: number; cpu_seconds: number }
    if (report.min < count) throw new Error(`a subscriber received ${report.min} of ${count} records`)
    if (report.disordered > 0) throw new Error(`${report.disordered} records arrived out of order, repeated or after a gap`)
    // Let the server see the streams close before a run without them.
    await new Promise((r) => setTimeout(r, 200))
    return { ...run, report }
  }
  try {
    // Warm both paths (JIT, the hub's fan-out) before anything is measured.
    await decide(pool, server.operatorToken, 50, concurrency)
    await withReaders(50)
    const baseline = new Samples()
    const loaded = new Samples()
    const cpu0 = { wall_s: 0, server_s: 0, bench_s: 0 }
    const cpu1 = { wall_s: 0, server_s: 0, bench_s: 0, subscribers_s: 0 }
    const add = (to: Record<string, number>, from: Record<string, number>) => {
      for (const key of Object.keys(to)) to[key]! += from[key] ?? 0
    }
    const roundRatios: number[] = []
    let leastDelivered = Infinity
    for (let round = 0; round < rounds; round++) {
      let without: Float64Array | undefined
      let withSubs: Float64Array | undefined
      // Round r starts with the other side each time.
      for (const side of round % 2 === 0 ? ['without', 'with'] : ['with', 'without']) {
        if (side === 'without') {
          const run = await withCpu(server.proc.pid, () => decide(pool, server.operatorToken, perRound, concurrency))
          without = run.result
          add(cpu0, run.cpu)
        } else {
          const run = await withReaders(perRound)
          withSubs = run.result
          add(cpu1, { ...run.cpu, subscribers_s: run.report.cpu_seconds })
          leastDelivered = Math.min(leastDelivered, run.report.min)
        }
      }
      for (const v of without!) baseline.push(v)
      for (const v of withSubs!) loaded.push(v)
      roundRatios.push(percentile(withSubs!, 50) / percentile(without!, 50))
    }
    return {
      decisions: perRound * rounds,
      rounds,
      subscribers,
      concurrency,
      delivered_to_each_at_least: leastDelivered,
      decision_ms_0_subscribers: stat(baseline.sorted()),
      decision_ms_with_subscribers: stat(loaded.sorted()),
      round_ratios_p50: roundRatios,
      cpu_0_subscribers: cpu0,
      cpu_with_subscribers: cpu1,
    }
  } finally {
    readers.stdin!.end('exit\n')
    await pool.destroy()
  }
}

/**
 * A lineage of `count` workers written through the domain (no HTTP, no fsync: seeding is not
 * what is measured): `roots` roots, then breadth first, each worker spawning up to `fanout`.
 */
function seedFleet(file: string, count: number, roots: number, fanout: number) {
  const started = now()
  const db = openDatabase(file)
  db.pragma('synchronous = OFF')
  const store = createStore(db, storeHooks)
  const warden = createWarden({ store, clock: systemClock, signer: createSigner(randomBytes(32)), contract: { ...benchContract(3600), max_depth: 16 } })
  warden.liveness.resume()
  const ids: string[] = []
  for (let i = 0; i < roots; i++) ids.push(warden.admission.register(warden.admission.issueRoot({})).worker.worker_id)
  for (let next = 0; ids.length < count; next++) {
    const parent = store.workers.get(ids[next]!)!
    for (let k = 0; k < fanout && ids.length < count; k++) {
      ids.push(warden.admission.register(warden.admission.spawn(parent, { reason: 'bench: grow the fleet' })).worker.worker_id)
    }
  }
  warden.liveness.flushAllLeases()
  db.close()
  return { workers: ids.length, seconds: (now() - started) / 1000, sample: ids.at(-1)! }
}

/** Sign in to the console and time: to the first tree row, to the app's own "loaded" mark, a search, a live update. */
async function measureConsole(server: WardenServer, sampleId: string, screenshot: string | null) {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium`)
  const profile = mkdtempSync(join(tmpdir(), 'warden-bench-browser-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: { width: 1366, height: 768 },
  })
  try {
    const page = context.pages()[0] ?? (await context.newPage())
    await page.goto(`${server.url}/`)
    await page.getByLabel('Operator token').fill(server.operatorToken)
    const t0 = now()
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.getByRole('treeitem').first().waitFor({ timeout: 120_000 })
    const firstRowMs = now() - t0
    await page.locator('body[data-load-ms]').waitFor({ state: 'attached', timeout: 120_000 })
    const appLoadMs = Number(await page.evaluate('document.body.dataset.loadMs'))
    const treeRows = Number(await page.evaluate('document.querySelectorAll("[role=treeitem]:not([hidden])").length'))
    const domNodes = Number(await page.evaluate('document.getElementsByTagName("*").length'))

    const t1 = now()
    await page.getByRole('searchbox', { name: 'Search workers by id prefix' }).fill(sampleId.slice(0, 6))
    await page.getByRole('treeitem', { name: new RegExp(`^${sampleId}`) }).waitFor({ timeout: 30_000 })
    const searchMs = now() - t1
    await page.getByRole('searchbox', { name: 'Search workers by id prefix' }).fill('')

    // A worker registered now: how long until the page shows it (stream + fetch + render).
    const manifest = await server.api.expect<{ worker_id: string }>(201, 'POST', '/v1/manifests', { token: server.operatorToken })
    const t2 = now()
    await server.api.expect(201, 'POST', '/v1/workers', { body: manifest })
    await page.getByRole('searchbox', { name: 'Search workers by id prefix' }).fill(manifest.worker_id)
    await page.getByRole('treeitem', { name: new RegExp(`^${manifest.worker_id}`) }).waitFor({ timeout: 30_000 })
    const liveMs = now() - t2
    await page.getByRole('searchbox', { name: 'Search workers by id prefix' }).fill('')
    if (screenshot) await page.screenshot({ path: screenshot })
    const heapMb = Number(await page.evaluate('performance.memory ? performance.memory.usedJSHeapSize / 1048576 : NaN'))
    return { first_row_ms: firstRowMs, app_loaded_ms: appLoadMs, tree_rows_in_dom: treeRows, dom_nodes: domNodes, search_ms: searchMs, new_worker_shown_ms: liveMs, js_heap_mb: heapMb }
  } finally {
    await context.close()
    rmSync(profile, { recursive: true, force: true })
  }
}

export async function runEventsBench(options: EventsBenchOptions = {}) {
  const quick = options.quick ?? false
  if (options.build !== false) buildServer()
  mkdirSync(join(ROOT, 'data'), { recursive: true })
  const work = mkdtempSync(join(ROOT, 'data', 'bench-events-'))
  const secrets = newSecrets()
  const contractFile = join(work, 'contract.json')
  writeFileSync(contractFile, JSON.stringify({ ...benchContract(3600), max_depth: 16 }))
  const runs = (part: EventsPart) => options.only === undefined || options.only === part
  let server: WardenServer | undefined
  try {
    const delivery = runs('delivery') ? [await measureDelivery(work, quick ? 200 : 1000, 100, 1), await measureDelivery(work, quick ? 200 : 1000, 100, 4)] : []
    const dbFile = join(work, 'fleet.db')
    const fleet = seedFleet(dbFile, quick ? 2000 : 10_000, 20, 4)
    const profileDir = join(ROOT, 'bench', 'results', 'profile', 'events')
    if (options.profile) rmSync(profileDir, { recursive: true, force: true })
    server = await startWarden({ dbFile, ...secrets, contractFile, nodeFlags: options.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [] })
    const decisions = options.decisions ?? (quick ? 200 : 500)
    const rounds = options.rounds ?? (quick ? 4 : 5)
    const cost = []
    if (runs('latency')) for (const concurrency of [1, 4]) cost.push(await measureDecisionCost(server, decisions, 100, concurrency, rounds))
    mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true })
    const console = runs('console') ? await measureConsole(server, fleet.sample, join(ROOT, 'bench', 'results', 'console-10k.png')) : null
    let profile: ProfileSummary | null = null
    if (options.profile) {
      await server.api.close()
      await stopProcess(server.proc)
      server = undefined
      const file = readdirSync(profileDir).find((entry) => entry.endsWith('.cpuprofile'))
      if (file) profile = summarizeProfile(join(profileDir, file), ROOT, 30)
    }
    return { delivery, cost, fleet, console, profile }
  } finally {
    if (server) {
      await server.api.close()
      await stopProcess(server.proc)
    }
    rmSync(work, { recursive: true, force: true })
  }
}

function table(result: Awaited<ReturnType<typeof runEventsBench>>): string {
  const { fleet, console: c } = result
  const ms = (v: number) => `${v.toFixed(1)} ms`
  const rows = ['| Measure | Value |', '|---|---|']
  for (const d of result.delivery) {
    rows.push(
      `| Event delivery, commit → each of ${d.subscribers} subscribers, decisions ${d.concurrency} at a time, p50 / p99 / max | ${ms(d.delivery_ms.p50)} / ${ms(d.delivery_ms.p99)} / ${ms(d.delivery_ms.max)} (${d.deliveries} deliveries, ${d.missing} missing) |`,
    )
  }
  const s = (v: number) => `${v.toFixed(2)} s`
  for (const d of result.cost) {
    const [a, b] = [d.cpu_0_subscribers, d.cpu_with_subscribers]
    rows.push(
      `| Decision latency (POST /v1/manifests, ${d.concurrency} at a time, server process), 0 → ${d.subscribers} subscribers, p50 / p99 | ${ms(d.decision_ms_0_subscribers.p50)} / ${ms(d.decision_ms_0_subscribers.p99)} → ${ms(d.decision_ms_with_subscribers.p50)} / ${ms(d.decision_ms_with_subscribers.p99)} (${(d.decision_ms_with_subscribers.p50 / d.decision_ms_0_subscribers.p50).toFixed(2)}×; ${d.rounds} alternating rounds of ${d.decisions / d.rounds}, per round ${d.round_ratios_p50.map((r) => r.toFixed(2)).join(' ')}) |`,
      `| CPU over those runs (wall; server, measuring process, subscriber process), 0 → ${d.subscribers} subscribers | ${s(a.wall_s)}; ${s(a.server_s)}, ${s(a.bench_s)} → ${s(b.wall_s)}; ${s(b.server_s)}, ${s(b.bench_s)}, ${s(b.subscribers_s)} |`,
    )
  }
  rows.push(`| Fleet seeded (lineage of 20 roots, fan-out 4) | ${fleet.workers} workers in ${fleet.seconds.toFixed(1)} s |`)
  if (c !== null) rows.push(
    `| Console, sign-in → first tree row (${fleet.workers} workers) | ${ms(c.first_row_ms)} |`,
    `| Console, fully loaded (workers, audit tail, contract) | ${ms(c.app_loaded_ms)} |`,
    `| Console, tree rows in the DOM / all DOM nodes | ${c.tree_rows_in_dom} / ${c.dom_nodes} |`,
    `| Console, search by id prefix → match shown | ${ms(c.search_ms)} |`,
    `| Console, worker registered → shown in the tree | ${ms(c.new_worker_shown_ms)} |`,
    `| Console JS heap | ${c.js_heap_mb.toFixed(1)} MB |`,
  )
  if (result.profile !== null) {
    const p = result.profile
    rows.push('', `Server CPU profile (${p.file}): busy ${p.busyMs.toFixed(0)} ms, idle ${p.idleMs.toFixed(0)} ms`, '')
    for (const h of p.top) rows.push(`- ${h.busyPercent.toFixed(1)}% ${h.name}`)
    rows.push('', 'By package:')
    for (const h of p.byPackage) rows.push(`- ${h.busyPercent.toFixed(1)}% ${h.name}`)
  }
  return rows.join('\n')
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.on('SIGINT', () => {
    killAllStartedSync()
    process.exit(130)
  })
  const args = process.argv.slice(2)
  try {
    const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined
    if (only !== undefined && !(EVENTS_PARTS as readonly string[]).includes(only)) throw new Error(`--only takes one of ${EVENTS_PARTS.join(', ')}, got ${only}`)
    const result = await runEventsBench({ quick: args.includes('--quick'), build: !args.includes('--no-build'), only: only as EventsPart | undefined, profile: args.includes('--profile'),
      decisions: args.includes('--decisions') ? Number(args[args.indexOf('--decisions') + 1]) : undefined,
      rounds: args.includes('--rounds') ? Number(args[args.indexOf('--rounds') + 1]) : undefined,
    })
    mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true })
    writeFileSync(join(ROOT, 'bench', 'results', 'events.json'), JSON.stringify(result, null, 2) + '\n')
    console.log(table(result))
  } catch (error) {
    killAllStartedSync()
    console.error(error)
    process.exit(1)
  }
}
