// SPEC §2.1, §2.3, §2.4 and §2.6 attacked with real parallel HTTP requests against a real
// server process on 127.0.0.1. No assertion depends on how fast the machine is: every check is
// about which answers came back and what the audit log recorded, in order.
import { afterEach, describe, expect, it } from 'vitest'
import type { AuditRecord, Manifest } from '../../src/schemas/index.js'
import { createServerTracker, range } from '../helpers/e2e.js'
import {
  auditLog,
  getWorker,
  heartbeat,
  issueRoot,
  listWorkers,
  putContract,
  register,
  registerChild,
  registerRoot,
  sleep,
  spawn,
  verifyAudit,
  type ApiClient,
  type ApiResponse,
  type Registered,
} from '../helpers/http-client.js'
import { createSlotReplay } from '../helpers/quota-replay.js'

const servers = createServerTracker()
afterEach(() => servers.cleanup())

/** Enough sockets that hundreds of requests are really in flight at once. */
const CONNECTIONS = 256

const codeOf = (response: ApiResponse): string | undefined => (response.status >= 400 ? response.body?.code : undefined)
const summarize = (responses: ApiResponse[]) =>
  responses.reduce<Record<string, number>>((counts, r) => {
    const key = `${r.status}${codeOf(r) ? ` ${codeOf(r)}` : ''}`
    counts[key] = (counts[key] ?? 0) + 1
    return counts
  }, {})

/** Live workers as the gauges of /metrics report them, read in one scrape. */
async function liveFromMetrics(client: ApiClient): Promise<number> {
  const response = await client.request<string>('GET', '/metrics')
  let live = 0
  for (const match of response.body.matchAll(/^warden_workers\{status="(active|quarantined)"\} (\d+)$/gm)) live += Number(match[2])
  return live
}

describe('quota under real concurrency (SPEC §2.1)', () => {
  it('approves exactly the free slots out of a storm of parallel root issues, spawns and registrations, and never exceeds max_replicas at any step', async () => {
    const MAX = 25
    const { client } = await servers.start({ connections: CONNECTIONS })
    await putContract(client, {
      max_replicas: MAX,
      max_depth: 10,
      cooldown_seconds: 0,
      manifest_ttl_seconds: 600,
      heartbeat_timeout_seconds: 600,
      expiration_seconds: null,
    })
    const root = await registerRoot(client)
    const parents: Registered[] = [root]
    for (const _ of range(3)) parents.push(await registerChild(client, root))
    const available = MAX - parents.length
    const stormStartSeq = (await auditLog(client)).at(-1)!.seq

    const approvals: ApiResponse[] = []
    const denials: ApiResponse[] = []
    const registrations: ApiResponse[] = []

    // An approval is immediately registered, and the new worker immediately asks to spawn too:
    // slots are converted and fought over while the storm is still running.
    async function admit(pending: Promise<ApiResponse>, spawnsAfterRegistering: number): Promise<void> {
      const response = await pending
      if (response.status !== 201) {
        denials.push(response)
        return
      }
      approvals.push(response)
      const manifest = response.body as Manifest
      const registration = await register(client, manifest)
      registrations.push(registration)
      if (registration.status !== 201) return
      const worker = { id: manifest.worker_id, token: registration.body.lease_token as string }
      await Promise.all(range(spawnsAfterRegistering).map(() => admit(spawn(client, worker), 0)))
    }

    // Meanwhile, keep reading the state: the gauges, and the audit log replayed record by record.
    let stormOver = false
    const violations: string[] = []
    const replay = createSlotReplay()
    const poller = (async () => {
      let polls = 0
      while (!stormOver) {
        const [live, records] = await Promise.all([liveFromMetrics(client), auditLog(client, { after_seq: replay.lastSeq })])
        if (live > MAX) violations.push(`/metrics reported ${live} live workers, above max_replicas ${MAX}`)
        replay.apply(records)
        const above = replay.firstAbove(MAX)
        if (above) violations.push(`after audit seq ${above.seq}, ${above.occupied} slots were taken`)
        const active = (await listWorkers(client, 'active')).length
        if (active > MAX) violations.push(`GET /v1/workers listed ${active} active workers`)
        polls++
      }
      return polls
    })()

    await Promise.all([
      ...range(80).map(() => admit(issueRoot(client), 2)),
      ...parents.flatMap((parent) => range(30).map(() => admit(spawn(client, parent), 1))),
    ])
    stormOver = true
    const polls = await poller

    const requests = approvals.length + denials.length + registrations.length
    expect(requests).toBeGreaterThanOrEqual(200)
    expect(polls).toBeGreaterThan(0)
    expect(violations).toEqual([])

    expect(approvals).toHaveLength(available)
    expect(summarize(denials)).toEqual({ '403 quota_exceeded': denials.length })
    expect(summarize(registrations)).toEqual({ '201': available })
    expect(await listWorkers(client, 'active')).toHaveLength(MAX)
    expect(await liveFromMetrics(client)).toBe(MAX)

    // Afterwards, from the audit log alone: replayed in seq order the count never passes the cap.
    const records = await auditLog(client)
    const full = createSlotReplay()
    full.apply(records)
    expect(full.firstAbove(MAX)).toBeUndefined()
    expect(full.occupied).toBe(MAX)
    const during = records.filter((record) => record.seq > stormStartSeq)
    const ofType = (...types: string[]) => during.filter((record) => types.includes(record.type))
    expect(ofType('manifest_issued', 'spawn_approved')).toHaveLength(available)
    expect(ofType('manifest_denied', 'spawn_denied')).toHaveLength(denials.length)
    expect(ofType('manifest_denied', 'spawn_denied').every((record) => record.code === 'quota_exceeded')).toBe(true)
    expect(ofType('worker_registered')).toHaveLength(available)
    expect(await verifyAudit(client)).toMatchObject({ ok: true, records: records.length, first_invalid_seq: null })
  })
})

describe('cooldown under concurrency (SPEC §2.3)', () => {
  it('approves one of 50 parallel spawns of one parent, answers the rest 429 cooldown_active with Retry-After, and never approves two closer than the cooldown', async () => {
    const COOLDOWN = 2
    const { client } = await servers.start({ connections: CONNECTIONS })
    await putContract(client, { cooldown_seconds: COOLDOWN, max_replicas: 10_000, max_depth: 5, heartbeat_timeout_seconds: 600 })
    const parent = await registerRoot(client)

    const all: ApiResponse[] = []
    const expectCooldownDenials = (responses: ApiResponse[]) => {
      for (const response of responses.filter((r) => r.status !== 201)) {
        expect(response.status, JSON.stringify(response.body)).toBe(429)
        expect(response.body.code).toBe('cooldown_active')
        const retryAfter = Number(response.headers['retry-after'])
        expect(Number.isInteger(retryAfter)).toBe(true)
        expect(retryAfter).toBeGreaterThanOrEqual(1)
        expect(retryAfter).toBeLessThanOrEqual(COOLDOWN)
        expect(response.body.retry_after).toBe(retryAfter)
      }
    }

    const burst = await Promise.all(range(50).map(() => spawn(client, parent)))
    all.push(...burst)
    expect(summarize(burst)).toEqual({ '201': 1, '429 cooldown_active': 49 })
    expectCooldownDenials(burst)

    // Then attack the boundary: parallel waves from just before the cooldown ends until one wins.
    let lastApproval = Date.parse(burst.find((r) => r.status === 201)!.body.issued_at)
    for (const _round of range(2)) {
      await sleep(Math.max(0, lastApproval + COOLDOWN * 1000 - 150 - Date.now()))
      let winner: ApiResponse | undefined
      for (let wave = 0; winner === undefined && wave < 400; wave++) {
        const responses = await Promise.all(range(25).map(() => spawn(client, parent)))
        all.push(...responses)
        expectCooldownDenials(responses)
        winner = responses.find((r) => r.status === 201)
      }
      expect(winner, 'a spawn after the cooldown is approved').toBeDefined()
      lastApproval = Date.parse(winner!.body.issued_at)
    }

    const approved = all.filter((r) => r.status === 201)
    const records = await auditLog(client, { worker_id: parent.id })
    const approvals = records.filter((r) => r.type === 'spawn_approved' && r.parent_id === parent.id)
    expect(approvals.map((r) => r.worker_id).sort()).toEqual(approved.map((r) => r.body.worker_id as string).sort())
    for (let i = 1; i < approvals.length; i++) {
      const gap = Date.parse(approvals[i]!.at) - Date.parse(approvals[i - 1]!.at)
      expect(gap, `spawn_approved seq ${approvals[i - 1]!.seq} and ${approvals[i]!.seq}`).toBeGreaterThanOrEqual(COOLDOWN * 1000)
    }
    const denied = records.filter((r) => r.type === 'spawn_denied' && r.parent_id === parent.id)
    expect(denied).toHaveLength(all.length - approved.length)
    expect(denied.every((r) => r.code === 'cooldown_active')).toBe(true)
  })
})

describe('manifest replay race (SPEC §2.4)', () => {
  it('registers each manifest once out of 240 parallel registrations and answers every other one 409 manifest_already_used', async () => {
    const { client } = await servers.start({ connections: CONNECTIONS })
    await putContract(client, { cooldown_seconds: 0, max_replicas: 100, heartbeat_timeout_seconds: 600 })
    const parent = await registerRoot(client)
    const rootManifest = (await issueRoot(client)).body as Manifest
    const childManifest = (await spawn(client, parent)).body as Manifest
    expect(childManifest.parent_id).toBe(parent.id)

    const attempts = range(120).flatMap(() => [rootManifest, childManifest])
    const responses = await Promise.all(attempts.map((manifest) => register(client, manifest)))

    for (const manifest of [rootManifest, childManifest]) {
      const mine = responses.filter((_, i) => attempts[i] === manifest)
      expect(summarize(mine)).toEqual({ '201': 1, '409 manifest_already_used': 119 })
      const records = await auditLog(client, { worker_id: manifest.worker_id })
      const about = records.filter((r) => r.worker_id === manifest.worker_id)
      expect(about.filter((r) => r.type === 'worker_registered')).toHaveLength(1)
      const rejected = about.filter((r) => r.type === 'registration_rejected')
      expect(rejected).toHaveLength(119)
      expect(rejected.every((r) => r.code === 'manifest_already_used')).toBe(true)
      expect((await getWorker(client, manifest.worker_id)).body.status).toBe('active')
    }
    const workers = await listWorkers(client)
    expect(workers.filter((w) => w.worker_id === rootManifest.worker_id || w.worker_id === childManifest.worker_id)).toHaveLength(2)
    expect(await verifyAudit(client)).toMatchObject({ ok: true })
  })
})

describe('kill switch racing with admission (SPEC §2.6)', () => {
  it('once the kill switch POST has returned, no worker is live, every heartbeat is 410 kill_switch, and nothing is issued or registered', async () => {
    const { client } = await servers.start({ connections: CONNECTIONS })
    await putContract(client, {
      cooldown_seconds: 0,
      max_replicas: 10_000,
      max_depth: 30,
      heartbeat_timeout_seconds: 600,
      manifest_ttl_seconds: 600,
      expiration_seconds: null,
    })
    const workers: Registered[] = [await registerRoot(client)]
    for (const _ of range(7)) workers.push(await registerChild(client, workers[0]!))

    type Kind = 'issue' | 'spawn' | 'register' | 'heartbeat'
    const outcomes: Array<{ kind: Kind; sentAfterKill: boolean; response: ApiResponse }> = []
    const manifests: Manifest[] = []
    let killReturned = false
    let killResponse: ApiResponse | undefined

    async function send(kind: Kind, request: () => Promise<ApiResponse>): Promise<ApiResponse> {
      const sentAfterKill = killReturned
      const response = await request()
      outcomes.push({ kind, sentAfterKill, response })
      return response
    }
    async function admit(kind: 'issue' | 'spawn', request: () => Promise<ApiResponse>): Promise<void> {
      const issued = await send(kind, request)
      if (issued.status !== 201) return
      const manifest = issued.body as Manifest
      manifests.push(manifest)
      const registration = await send('register', () => register(client, manifest))
      if (registration.status === 201) workers.push({ id: manifest.worker_id, token: registration.body.lease_token, manifest })
    }
    const pick = () => workers[Math.floor(Math.random() * workers.length)]!

    async function loop(index: number): Promise<void> {
      let afterKill = 0
      for (let i = 0; i < 200 && afterKill < 6; i++) {
        if (killReturned) afterKill++
        switch ((index + i) % 3) {
          case 0:
            await admit('issue', () => issueRoot(client))
            break
          case 1: {
            const parent = pick()
            await admit('spawn', () => spawn(client, parent))
            break
          }
          default: {
            const worker = pick()
            await send('heartbeat', () => heartbeat(client, worker))
          }
        }
      }
    }

    const immediately: { active: number; quarantined: number } = { active: -1, quarantined: -1 }
    const operator = (async () => {
      while (outcomes.length < 150) await sleep(5)
      killResponse = await client.op('POST', '/v1/kill-switch', { reason: 'e2e race' })
      killReturned = true
      const [active, quarantined] = await Promise.all([listWorkers(client, 'active'), listWorkers(client, 'quarantined')])
      immediately.active = active.length
      immediately.quarantined = quarantined.length
    })()
    await Promise.all([...range(24).map(loop), operator])

    expect(killResponse?.status).toBe(200)
    expect(killResponse?.body).toMatchObject({ engaged: true })
    expect(immediately).toEqual({ active: 0, quarantined: 0 })
    expect(outcomes.length).toBeGreaterThanOrEqual(200)

    // Everything sent after the engagement returned was refused.
    const late = outcomes.filter((o) => o.sentAfterKill)
    expect(late.length).toBeGreaterThan(0)
    for (const { kind, response } of late) {
      const body = JSON.stringify(response.body)
      if (kind === 'heartbeat') {
        expect(response.status, body).toBe(410)
        expect(response.body).toMatchObject({ code: 'worker_terminated', directive: 'terminate', reason: 'kill_switch' })
      } else if (kind === 'spawn') {
        expect([403, 410], body).toContain(response.status)
        expect(['kill_switch_engaged', 'worker_terminated'], body).toContain(response.body.code)
      } else {
        expect(response.status, body).toBe(403)
        expect(response.body.code, body).toBe('kill_switch_engaged')
      }
    }

    // Every worker that ever registered is terminated by the switch and told so.
    const registered = outcomes.filter((o) => o.kind === 'register' && o.response.status === 201).length
    expect(workers).toHaveLength(8 + registered)
    const beats = await Promise.all(workers.map((worker) => heartbeat(client, worker)))
    for (const beat of beats) {
      expect(beat.status).toBe(410)
      expect(beat.body).toMatchObject({ code: 'worker_terminated', directive: 'terminate', reason: 'kill_switch' })
    }
    const views = await Promise.all(workers.map((worker) => getWorker(client, worker.id)))
    expect(views.every((view) => view.body.status === 'killed' && view.body.reason === 'kill_switch')).toBe(true)
    expect(await listWorkers(client, 'active')).toEqual([])

    // No manifest obtained before the switch registers now, and no new one is issued.
    const retries = await Promise.all(manifests.map((manifest) => register(client, manifest)))
    for (const retry of retries) {
      expect([403, 409]).toContain(retry.status)
      expect(['kill_switch_engaged', 'manifest_already_used']).toContain(retry.body.code)
    }
    expect(codeOf(await issueRoot(client))).toBe('kill_switch_engaged')

    // The audit log agrees: nothing admitted after the engagement, which ended every live worker.
    const records = await auditLog(client)
    const engaged = records.filter((r) => r.type === 'kill_switch_engaged')
    expect(engaged).toHaveLength(1)
    const killSeq = engaged[0]!.seq
    const admittedLater = records.filter(
      (r: AuditRecord) => r.seq > killSeq && ['manifest_issued', 'spawn_approved', 'worker_registered'].includes(r.type),
    )
    expect(admittedLater).toEqual([])
    const before = createSlotReplay()
    before.apply(records.filter((r) => r.seq < killSeq))
    expect(engaged[0]!.data).toMatchObject({ terminated: before.live, manifests_voided: before.outstanding })
    expect([...(engaged[0]!.data.worker_ids as string[])].sort()).toEqual(before.liveIds().sort())
    expect(killResponse?.body).toMatchObject({ terminated: before.live, manifests_voided: before.outstanding })
    expect(await verifyAudit(client)).toMatchObject({ ok: true })
  })
})
