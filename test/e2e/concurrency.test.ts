// SPEC §2.1, §2.3, §2.4 and §2.6 attacked with real parallel HTTP requests against a real
// server process on 127.0.0.1. No assertion depends on how fast the machine is: every check is
// about which answers came back and what the audit log recorded, in order.
import { afterEach, describe, expect, it } from 'vitest'
import type { WardenClient } from '../../src/client/client.js'
import type { AuditRecord, Manifest } from '../../src/schemas/index.js'
import { auditLog, listWorkers, outcome, registerChild, registerRoot, type Outcome, type Registered } from '../helpers/calls.js'
import { contract, range, sleep } from '../helpers/fixtures.js'
import { createSlotReplay } from '../helpers/quota-replay.js'
import { createServerTracker } from '../helpers/server.js'

const servers = createServerTracker()
afterEach(() => servers.cleanup())

/** Enough sockets that hundreds of requests are really in flight at once. */
const CONNECTIONS = 256

/** Counts of outcomes: `ok` for an answer the client accepted (2xx), else `status code`. */
const summarize = (outcomes: Array<Outcome<unknown>>) =>
  outcomes.reduce<Record<string, number>>((counts, r) => {
    const key = r.ok ? 'ok' : `${r.status} ${r.code}`
    counts[key] = (counts[key] ?? 0) + 1
    return counts
  }, {})

/** Live workers as the gauges of /metrics report them, read in one scrape. */
async function liveFromMetrics(client: WardenClient): Promise<number> {
  const text = await client.metrics()
  let live = 0
  for (const match of text.matchAll(/^warden_workers\{status="(active|quarantined)"\} (\d+)$/gm)) live += Number(match[2])
  return live
}

describe('quota under real concurrency (SPEC §2.1)', () => {
  it('approves exactly the free slots out of a storm of parallel root issues, spawns and registrations, and never exceeds max_replicas at any step', async () => {
    const MAX = 25
    const { client } = await servers.start({ connections: CONNECTIONS })
    await client.putContract(
      contract({
        max_replicas: MAX,
        max_depth: 10,
        cooldown_seconds: 0,
        manifest_ttl_seconds: 600,
        heartbeat_timeout_seconds: 600,
        expiration_seconds: null,
      }),
    )
    const root = await registerRoot(client)
    const parents: Registered[] = [root]
    for (const _ of range(3)) parents.push(await registerChild(client, root))
    const available = MAX - parents.length
    const stormStartSeq = (await auditLog(client)).at(-1)!.seq

    const approvals: Manifest[] = []
    const denials: Array<Outcome<Manifest>> = []
    const registrations: Array<Outcome<unknown>> = []

    // An approval is immediately registered, and the new worker immediately asks to spawn too:
    // slots are converted and fought over while the storm is still running.
    async function admit(pending: Promise<Manifest>, spawnsAfterRegistering: number): Promise<void> {
      const response = await outcome(pending)
      if (!response.ok) {
        denials.push(response)
        return
      }
      approvals.push(response.value)
      const manifest = response.value
      const registration = await outcome(client.register(manifest))
      registrations.push(registration)
      if (!registration.ok) return
      const worker = { worker_id: manifest.worker_id, lease_token: registration.value.lease_token }
      await Promise.all(range(spawnsAfterRegistering).map(() => admit(client.spawn(worker, { reason: 'e2e' }), 0)))
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
        const active = (await listWorkers(client, { status: 'active' })).length
        if (active > MAX) violations.push(`GET /v1/workers listed ${active} active workers`)
        polls++
      }
      return polls
    })()

    await Promise.all([
      ...range(80).map(() => admit(client.issueManifest(), 2)),
      ...parents.flatMap((parent) => range(30).map(() => admit(client.spawn(parent, { reason: 'e2e' }), 1))),
    ])
    stormOver = true
    const polls = await poller

    const requests = approvals.length + denials.length + registrations.length
    expect(requests).toBeGreaterThanOrEqual(200)
    expect(polls).toBeGreaterThan(0)
    expect(violations).toEqual([])

    expect(approvals).toHaveLength(available)
    expect(summarize(denials)).toEqual({ '403 quota_exceeded': denials.length })
    expect(summarize(registrations)).toEqual({ ok: available })
    expect(await listWorkers(client, { status: 'active' })).toHaveLength(MAX)
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
    expect(await client.verifyAudit()).toMatchObject({ ok: true, records: records.length, first_invalid_seq: null })
  })
})

describe('cooldown under concurrency (SPEC §2.3)', () => {
  it('approves one of 50 parallel spawns of one parent, answers the rest 429 cooldown_active with Retry-After, and never approves two closer than the cooldown', async () => {
    const COOLDOWN = 2
    const { client } = await servers.start({ connections: CONNECTIONS })
    await client.putContract(contract({ cooldown_seconds: COOLDOWN, max_replicas: 10_000, max_depth: 5, heartbeat_timeout_seconds: 600 }))
    const parent = await registerRoot(client)
    const spawn = () => outcome(client.spawn(parent, { reason: 'e2e' }))

    const all: Array<Outcome<Manifest>> = []
    // The client reads Retry-After into `retry_after` (the header's exact presence is asserted in test/http/api.test.ts).
    const expectCooldownDenials = (responses: Array<Outcome<Manifest>>) => {
      for (const response of responses) {
        if (response.ok) continue
        expect(response.status, response.error.message).toBe(429)
        expect(response.code).toBe('cooldown_active')
        const retryAfter = response.error.retry_after!
        expect(Number.isInteger(retryAfter)).toBe(true)
        expect(retryAfter).toBeGreaterThanOrEqual(1)
        expect(retryAfter).toBeLessThanOrEqual(COOLDOWN)
        expect(response.error.problem?.retry_after).toBe(retryAfter)
      }
    }
    const approvedOf = (responses: Array<Outcome<Manifest>>) => responses.flatMap((r) => (r.ok ? [r.value] : []))

    const burst = await Promise.all(range(50).map(spawn))
    all.push(...burst)
    expect(summarize(burst)).toEqual({ ok: 1, '429 cooldown_active': 49 })
    expectCooldownDenials(burst)

    // Then attack the boundary: parallel waves from just before the cooldown ends until one wins.
    let lastApproval = Date.parse(approvedOf(burst)[0]!.issued_at)
    for (const _round of range(2)) {
      await sleep(Math.max(0, lastApproval + COOLDOWN * 1000 - 150 - Date.now()))
      let winner: Manifest | undefined
      for (let wave = 0; winner === undefined && wave < 400; wave++) {
        const responses = await Promise.all(range(25).map(spawn))
        all.push(...responses)
        expectCooldownDenials(responses)
        winner = approvedOf(responses)[0]
      }
      expect(winner, 'a spawn after the cooldown is approved').toBeDefined()
      lastApproval = Date.parse(winner!.issued_at)
    }

    const approved = approvedOf(all)
    const records = await auditLog(client, { worker_id: parent.worker_id })
    const approvals = records.filter((r) => r.type === 'spawn_approved' && r.parent_id === parent.worker_id)
    expect(approvals.map((r) => r.worker_id).sort()).toEqual(approved.map((r) => r.worker_id).sort())
    for (let i = 1; i < approvals.length; i++) {
      const gap = Date.parse(approvals[i]!.at) - Date.parse(approvals[i - 1]!.at)
      expect(gap, `spawn_approved seq ${approvals[i - 1]!.seq} and ${approvals[i]!.seq}`).toBeGreaterThanOrEqual(COOLDOWN * 1000)
    }
    const denied = records.filter((r) => r.type === 'spawn_denied' && r.parent_id === parent.worker_id)
    expect(denied).toHaveLength(all.length - approved.length)
    expect(denied.every((r) => r.code === 'cooldown_active')).toBe(true)
  })
})

describe('manifest replay race (SPEC §2.4)', () => {
  it('registers each manifest once out of 240 parallel registrations and answers every other one 409 manifest_already_used', async () => {
    const { client } = await servers.start({ connections: CONNECTIONS })
    await client.putContract(contract({ cooldown_seconds: 0, max_replicas: 100, heartbeat_timeout_seconds: 600 }))
    const parent = await registerRoot(client)
    const rootManifest = await client.issueManifest()
    const childManifest = await client.spawn(parent, { reason: 'e2e' })
    expect(childManifest.parent_id).toBe(parent.worker_id)

    const attempts = range(120).flatMap(() => [rootManifest, childManifest])
    const responses = await Promise.all(attempts.map((manifest) => outcome(client.register(manifest))))

    for (const manifest of [rootManifest, childManifest]) {
      const mine = responses.filter((_, i) => attempts[i] === manifest)
      expect(summarize(mine)).toEqual({ ok: 1, '409 manifest_already_used': 119 })
      const records = await auditLog(client, { worker_id: manifest.worker_id })
      const about = records.filter((r) => r.worker_id === manifest.worker_id)
      expect(about.filter((r) => r.type === 'worker_registered')).toHaveLength(1)
      const rejected = about.filter((r) => r.type === 'registration_rejected')
      expect(rejected).toHaveLength(119)
      expect(rejected.every((r) => r.code === 'manifest_already_used')).toBe(true)
      expect((await client.getWorker(manifest.worker_id)).status).toBe('active')
    }
    const workers = await listWorkers(client)
    expect(workers.filter((w) => w.worker_id === rootManifest.worker_id || w.worker_id === childManifest.worker_id)).toHaveLength(2)
    expect(await client.verifyAudit()).toMatchObject({ ok: true })
  })
})

describe('kill switch racing with admission (SPEC §2.6)', () => {
  it('once the kill switch POST has returned, no worker is live, every heartbeat is 410 kill_switch, and nothing is issued or registered', async () => {
    const { client } = await servers.start({ connections: CONNECTIONS })
    await client.putContract(
      contract({
        cooldown_seconds: 0,
        max_replicas: 10_000,
        max_depth: 30,
        heartbeat_timeout_seconds: 600,
        manifest_ttl_seconds: 600,
        expiration_seconds: null,
      }),
    )
    const workers: Registered[] = [await registerRoot(client)]
    for (const _ of range(7)) workers.push(await registerChild(client, workers[0]!))

    type Kind = 'issue' | 'spawn' | 'register' | 'heartbeat'
    const outcomes: Array<{ kind: Kind; sentAfterKill: boolean; response: Outcome<unknown> }> = []
    const manifests: Manifest[] = []
    let killReturned = false
    let killResponse: Awaited<ReturnType<WardenClient['engageKillSwitch']>> | undefined

    async function send<T>(kind: Kind, request: () => Promise<T>): Promise<Outcome<T>> {
      const sentAfterKill = killReturned
      const response = await outcome(request())
      outcomes.push({ kind, sentAfterKill, response })
      return response
    }
    async function admit(kind: 'issue' | 'spawn', request: () => Promise<Manifest>): Promise<void> {
      const issued = await send(kind, request)
      if (!issued.ok) return
      const manifest = issued.value
      manifests.push(manifest)
      const registration = await send('register', () => client.register(manifest))
      if (registration.ok) workers.push({ worker_id: manifest.worker_id, lease_token: registration.value.lease_token, manifest })
    }
    const pick = () => workers[Math.floor(Math.random() * workers.length)]!

    async function loop(index: number): Promise<void> {
      let afterKill = 0
      for (let i = 0; i < 200 && afterKill < 6; i++) {
        if (killReturned) afterKill++
        switch ((index + i) % 3) {
          case 0:
            await admit('issue', () => client.issueManifest())
            break
          case 1: {
            const parent = pick()
            await admit('spawn', () => client.spawn(parent, { reason: 'e2e' }))
            break
          }
          default: {
            const worker = pick()
            await send('heartbeat', () => client.heartbeat(worker))
          }
        }
      }
    }

    const immediately: { active: number; quarantined: number } = { active: -1, quarantined: -1 }
    const operator = (async () => {
      while (outcomes.length < 150) await sleep(5)
      killResponse = await client.engageKillSwitch('e2e race')
      killReturned = true
      const [active, quarantined] = await Promise.all([listWorkers(client, { status: 'active' }), listWorkers(client, { status: 'quarantined' })])
      immediately.active = active.length
      immediately.quarantined = quarantined.length
    })()
    await Promise.all([...range(24).map(loop), operator])

    expect(killResponse).toMatchObject({ engaged: true })
    expect(immediately).toEqual({ active: 0, quarantined: 0 })
    expect(outcomes.length).toBeGreaterThanOrEqual(200)

    // Everything sent after the engagement returned was refused.
    const late = outcomes.filter((o) => o.sentAfterKill)
    expect(late.length).toBeGreaterThan(0)
    for (const { kind, response } of late) {
      const body = JSON.stringify(response.ok ? response.value : response.error.problem)
      expect(response.ok, body).toBe(false)
      if (kind === 'heartbeat') {
        expect(response.status, body).toBe(410)
        expect(response.error?.problem).toMatchObject({ code: 'worker_terminated', directive: 'terminate', reason: 'kill_switch' })
      } else if (kind === 'spawn') {
        expect([403, 410], body).toContain(response.status)
        expect(['kill_switch_engaged', 'worker_terminated'], body).toContain(response.code)
      } else {
        expect(response.status, body).toBe(403)
        expect(response.code, body).toBe('kill_switch_engaged')
      }
    }

    // Every worker that ever registered is terminated by the switch and told so.
    const registered = outcomes.filter((o) => o.kind === 'register' && o.response.ok).length
    expect(workers).toHaveLength(8 + registered)
    const beats = await Promise.all(workers.map((worker) => outcome(client.heartbeat(worker))))
    for (const beat of beats) {
      expect(beat.status).toBe(410)
      expect(beat.error?.problem).toMatchObject({ code: 'worker_terminated', directive: 'terminate', reason: 'kill_switch' })
    }
    const views = await Promise.all(workers.map((worker) => client.getWorker(worker.worker_id)))
    expect(views.every((view) => view.status === 'killed' && view.reason === 'kill_switch')).toBe(true)
    expect(await listWorkers(client, { status: 'active' })).toEqual([])

    // No manifest obtained before the switch registers now, and no new one is issued.
    const retries = await Promise.all(manifests.map((manifest) => outcome(client.register(manifest))))
    for (const retry of retries) {
      expect([403, 409]).toContain(retry.status)
      expect(['kill_switch_engaged', 'manifest_already_used']).toContain(retry.code)
    }
    expect((await outcome(client.issueManifest())).code).toBe('kill_switch_engaged')

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
    expect(killResponse).toMatchObject({ terminated: before.live, manifests_voided: before.outstanding })
    expect(await client.verifyAudit()).toMatchObject({ ok: true })
  })
})
