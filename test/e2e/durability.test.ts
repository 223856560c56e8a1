// SPEC §2.10: a 2xx means committed. The server is SIGKILLed right after acknowledgements (and,
// in a loop, at a random moment in a stream of changes), restarted on the same file, and every
// acknowledged change must be there, with an audit chain that verifies.
import { afterEach, describe, expect, it } from 'vitest'
import type { AuditRecord, Manifest } from '../../src/schemas/index.js'
import { createServerTracker, range, type Running } from '../helpers/e2e.js'
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
  waitFor,
  type ApiClient,
  type Registered,
} from '../helpers/http-client.js'
import { tempDbFile } from '../helpers/fixtures.js'

const servers = createServerTracker()
afterEach(() => servers.cleanup())

async function crash({ server, client }: Running): Promise<void> {
  const exit = await server.kill('SIGKILL')
  expect(exit.signal).toBe('SIGKILL')
  await client.destroy()
}

async function restart(dbFile: string): Promise<Running> {
  const running = await servers.start({ dbFile })
  const ready = await running.client.request('GET', '/readyz')
  expect(ready.status).toBe(200)
  return running
}

/** Records by (type, worker_id), to check an acknowledged decision was recorded. */
const recorded = (records: AuditRecord[]) => {
  const keys = new Set(records.map((r) => `${r.type}:${r.worker_id ?? ''}`))
  return (type: string, workerId = '') => keys.has(`${type}:${workerId}`)
}

async function expectOk<T extends { status: number; body: unknown }>(pending: Promise<T>, status = 200): Promise<T> {
  const response = await pending
  expect(response.status, JSON.stringify(response.body)).toBe(status)
  return response
}

describe('durability across SIGKILL (SPEC §2.10)', () => {
  it('keeps every change acknowledged just before a SIGKILL, and the kill switch stays engaged across the restart', async () => {
    const first = await servers.start()
    const { client } = first
    const dbFile = first.server.dbFile

    const put = await putContract(client, {
      max_replicas: 50,
      max_depth: 3,
      cooldown_seconds: 0,
      heartbeat_timeout_seconds: 600,
      manifest_ttl_seconds: 600,
      expiration_seconds: null,
      stop_conditions: [{ name: 'cap', description: 'e2e', expression: 'active_count >= 40' }],
    })
    const w1 = await registerRoot(client)
    const outstandingRoot = (await expectOk(issueRoot(client), 201)).body as Manifest
    const w2 = await registerChild(client, w1)
    const outstandingChild = (await expectOk(spawn(client, w1), 201)).body as Manifest
    const w3 = await registerRoot(client)
    await expectOk(client.op('POST', `/v1/workers/${w3.id}/quarantine`, { reason: 'inspect' }))
    const w4 = await registerRoot(client)
    const w5 = await registerChild(client, w4)
    const killed = await expectOk(client.op('POST', `/v1/workers/${w4.id}/kill`, { reason: 'operator test' }))
    await crash(first)

    // Round 1: everything acknowledged is there.
    const second = await restart(dbFile)
    const c2 = second.client
    const current = (await expectOk(c2.op('GET', '/v1/contract'))).body
    expect(current).toMatchObject({ version: put.body.version, max_replicas: 50, max_depth: 3, manifest_ttl_seconds: 600 })
    expect(current.stop_conditions).toEqual([{ name: 'cap', description: 'e2e', expression: 'active_count >= 40' }])
    const status = async (worker: Registered) => (await getWorker(c2, worker.id)).body
    expect(await status(w1)).toMatchObject({ status: 'active', depth: 0, parent_id: null })
    expect(await status(w2)).toMatchObject({ status: 'active', depth: 1, parent_id: w1.id })
    expect(await status(w3)).toMatchObject({ status: 'quarantined', reason: 'inspect' })
    expect(killed.body.killed.sort()).toEqual([w4.id, w5.id].sort())
    expect(await status(w4)).toMatchObject({ status: 'killed', reason: 'operator test' })
    expect(await status(w5)).toMatchObject({ status: 'killed' })
    expect((await heartbeat(c2, w1)).body).toMatchObject({ directive: 'continue' })
    expect((await heartbeat(c2, w3)).body).toMatchObject({ directive: 'suspend' })
    expect((await heartbeat(c2, w4)).body).toMatchObject({ code: 'worker_terminated', reason: 'killed' })

    const audit1 = await auditLog(c2)
    expect(await verifyAudit(c2)).toMatchObject({ ok: true, records: audit1.length })
    const has1 = recorded(audit1)
    expect(audit1.some((r) => r.type === 'contract_updated' && r.data.version === put.body.version)).toBe(true)
    for (const id of [w1.id, w3.id, w4.id, outstandingRoot.worker_id]) expect(has1('manifest_issued', id), id).toBe(true)
    for (const id of [w2.id, w5.id, outstandingChild.worker_id]) expect(has1('spawn_approved', id), id).toBe(true)
    for (const w of [w1, w2, w3, w4, w5]) expect(has1('worker_registered', w.id), w.id).toBe(true)
    expect(has1('worker_quarantined', w3.id)).toBe(true)
    expect(has1('worker_killed', w4.id) && has1('worker_killed', w5.id)).toBe(true)

    // The manifests that were outstanding at the crash still hold their slots and still register.
    const w6 = { id: outstandingRoot.worker_id, token: (await expectOk(register(c2, outstandingRoot), 201)).body.lease_token }
    const w7 = { id: outstandingChild.worker_id, token: (await expectOk(register(c2, outstandingChild), 201)).body.lease_token }
    const spare = (await expectOk(issueRoot(c2), 201)).body as Manifest

    // Round 2: engage the kill switch and crash right after the 200.
    const engaged = await expectOk(c2.op('POST', '/v1/kill-switch', { reason: 'durability' }))
    expect(engaged.body).toMatchObject({ engaged: true, terminated: 5, manifests_voided: 1 })
    await crash(second)

    const third = await restart(dbFile)
    const c3 = third.client
    expect((await expectOk(c3.op('GET', '/v1/kill-switch'))).body).toMatchObject({ engaged: true, reason: 'durability' })
    for (const worker of [w1, w2, w3, w6, w7]) {
      const beat = await heartbeat(c3, worker)
      expect(beat.status).toBe(410)
      expect(beat.body).toMatchObject({ code: 'worker_terminated', directive: 'terminate', reason: 'kill_switch' })
    }
    expect(await listWorkers(c3, 'active')).toEqual([])
    expect(await listWorkers(c3, 'quarantined')).toEqual([])
    expect((await issueRoot(c3)).body.code).toBe('kill_switch_engaged')
    expect((await register(c3, spare)).body.code).toBe('kill_switch_engaged')

    const audit2 = await auditLog(c3)
    expect(await verifyAudit(c3)).toMatchObject({ ok: true, records: audit2.length })
    // Nothing recorded before the crash was lost or changed.
    expect(audit2.slice(0, audit1.length)).toEqual(audit1)
    const has2 = recorded(audit2)
    for (const id of [w6.id, w7.id]) expect(has2('worker_registered', id), id).toBe(true)
    expect(has2('manifest_issued', spare.worker_id)).toBe(true)
    expect(audit2.filter((r) => r.type === 'kill_switch_engaged')).toHaveLength(1)
  })

  it('loses no acknowledged registration, spawn, quarantine, kill or contract change when SIGKILLed at a random moment of a concurrent stream', async () => {
    const dbFile = tempDbFile().file
    const ROUNDS = 4

    // What the server acknowledged, across all rounds.
    const manifests = new Map<string, { manifest: Manifest; type: 'manifest_issued' | 'spawn_approved' }>()
    const registered = new Map<string, Registered>()
    const quarantined = new Set<string>()
    const killed = new Set<string>()
    const contractVersions: number[] = []
    let previousAudit: AuditRecord[] = []
    const moments: number[] = []

    async function checkAcknowledged(client: ApiClient, context: string): Promise<void> {
      const records = await auditLog(client)
      expect(await verifyAudit(client), context).toMatchObject({ ok: true, records: records.length, first_invalid_seq: null })
      expect(records.slice(0, previousAudit.length), `${context}: earlier audit records survive unchanged`).toEqual(previousAudit)
      previousAudit = records
      const has = recorded(records)

      for (const [id, { type }] of manifests) expect(has(type, id), `${context}: ${type} ${id}`).toBe(true)
      for (const id of registered.keys()) expect(has('worker_registered', id), `${context}: worker_registered ${id}`).toBe(true)
      for (const id of quarantined) expect(has('worker_quarantined', id), `${context}: worker_quarantined ${id}`).toBe(true)
      for (const id of killed) expect(has('worker_killed', id), `${context}: worker_killed ${id}`).toBe(true)
      for (const version of contractVersions) {
        expect(records.some((r) => r.type === 'contract_updated' && r.data.version === version), `${context}: contract v${version}`).toBe(true)
      }
      const contract = (await client.op('GET', '/v1/contract')).body
      expect(contract.version, context).toBeGreaterThanOrEqual(Math.max(0, ...contractVersions))

      const byId = new Map((await listWorkers(client)).map((w) => [w.worker_id as string, w]))
      for (const id of registered.keys()) {
        const worker = byId.get(id)
        expect(worker, `${context}: worker ${id} is present`).toBeDefined()
        if (killed.has(id)) expect(worker.status, `${context}: ${id}`).toBe('killed')
        else if (quarantined.has(id)) expect(['quarantined', 'killed'], `${context}: ${id}`).toContain(worker.status)
        else expect(['active', 'quarantined', 'killed'], `${context}: ${id}`).toContain(worker.status)
      }
    }

    for (const round of range(ROUNDS)) {
      const running = await restart(dbFile)
      const { client } = running
      const context = `round ${round} (SIGKILL moments so far: ${moments.join(', ')} ms)`
      if (round === 0) {
        const put = await putContract(client, {
          max_replicas: 100_000,
          max_depth: 6,
          cooldown_seconds: 0,
          heartbeat_timeout_seconds: 600,
          manifest_ttl_seconds: 600,
          expiration_seconds: null,
        })
        contractVersions.push(put.body.version)
      } else {
        await checkAcknowledged(client, context)
      }

      let acks = 0
      let stopped = false
      const ack = () => void acks++
      const live = () => [...registered.values()].filter((w) => !killed.has(w.id))
      const pick = <T>(items: T[]): T | undefined => items[Math.floor(Math.random() * items.length)]

      async function admit(type: 'manifest_issued' | 'spawn_approved', pending: Promise<{ status: number; body: Manifest }>) {
        const issued = await pending
        if (issued.status !== 201) return
        manifests.set(issued.body.worker_id, { manifest: issued.body, type })
        ack()
        const registration = await register(client, issued.body)
        if (registration.status !== 201) return
        registered.set(issued.body.worker_id, { id: issued.body.worker_id, token: registration.body.lease_token, manifest: issued.body })
        ack()
      }

      async function stream(index: number): Promise<void> {
        for (let i = 0; !stopped; i++) {
          const action = (index * 7 + i) % 10
          if (action < 4) await admit('manifest_issued', issueRoot(client))
          else if (action < 8) {
            const parent = pick(live().filter((w) => !quarantined.has(w.id)))
            if (parent) await admit('spawn_approved', spawn(client, parent))
          } else if (action === 8) {
            const target = pick(live())
            if (!target) continue
            if (i % 2 === 0) {
              const response = await client.op('POST', `/v1/workers/${target.id}/kill`, { reason: 'stream' })
              if (response.status === 200) {
                for (const id of response.body.killed as string[]) killed.add(id)
                ack()
              }
            } else {
              const response = await client.op('POST', `/v1/workers/${target.id}/quarantine`, { reason: 'stream' })
              if (response.status === 200 && response.body.status === 'quarantined') {
                quarantined.add(target.id)
                ack()
              }
            }
          } else {
            const response = await client.op('PUT', '/v1/contract', {
              ...(await client.op('GET', '/v1/contract')).body,
              version: undefined,
              updated_at: undefined,
              manifest_ttl_seconds: 600 + round * 100 + i,
            })
            if (response.status === 200) {
              contractVersions.push(response.body.version)
              ack()
            }
          }
        }
      }

      const streams = range(12).map((index) => stream(index).catch(() => undefined))
      await waitFor('acknowledged changes', async () => (acks >= 30 ? true : undefined))
      const moment = Math.floor(Math.random() * 400)
      moments.push(moment)
      await sleep(moment)
      await running.server.kill('SIGKILL')
      // Every 2xx read, even after this point, was sent before the process died: all count.
      stopped = true
      await Promise.all(streams)
      await running.client.destroy()
    }

    const last = await restart(dbFile)
    await checkAcknowledged(last.client, `after the last restart (SIGKILL moments: ${moments.join(', ')} ms)`)
    expect(registered.size).toBeGreaterThan(0)
    expect(killed.size + quarantined.size).toBeGreaterThan(0)

    // Acknowledged manifests that never registered were persisted: none is unknown to the server.
    const unregistered = [...manifests.values()].filter(({ manifest }) => !registered.has(manifest.worker_id))
    const tries = await Promise.all(unregistered.map(({ manifest }) => register(last.client, manifest)))
    for (const [i, response] of tries.entries()) {
      const manifest = unregistered[i]!.manifest
      expect(response.body.code, `manifest ${manifest.worker_id}`).not.toBe('invalid_signature')
      if (response.status === 403) {
        // Only a child manifest can be refused now: its parent ended or was quarantined, and an
        // earlier refusal or voiding was audited before this retry.
        const detail = JSON.stringify(response.body)
        expect(manifest.parent_id, detail).not.toBeNull()
        const parent = (await getWorker(last.client, manifest.parent_id!)).body
        if (response.body.code === 'parent_quarantined') expect(parent.status, detail).toBe('quarantined')
        else if (response.body.code === 'parent_not_active') expect(parent.status, detail).toBe('killed')
        else {
          expect(response.body.code, detail).toBe('manifest_expired')
          const closedBefore = previousAudit.some(
            (r) => r.worker_id === manifest.worker_id && (r.type === 'registration_rejected' || r.type === 'manifest_expired'),
          )
          expect(closedBefore, detail).toBe(true)
        }
      } else {
        expect([201, 409], JSON.stringify(response.body)).toContain(response.status)
      }
    }
    expect(await verifyAudit(last.client)).toMatchObject({ ok: true })
  })
})
