// SPEC §2.10: a 2xx means committed. The server is SIGKILLed right after acknowledgements (and,
// in a loop, at a random moment in a stream of changes), restarted on the same file, and every
// acknowledged change must be there, with an audit chain that verifies.
import { afterEach, describe, expect, it } from 'vitest'
import type { WardenClient } from '../../src/client/client.js'
import type { AuditRecord, Manifest } from '../../src/schemas/index.js'
import { auditLog, listWorkers, outcome, registerChild, registerRoot, rejection, type Registered } from '../helpers/calls.js'
import { contract, range, sleep, tempDbFile, waitFor } from '../helpers/fixtures.js'
import { createServerTracker, type Running } from '../helpers/server.js'

const servers = createServerTracker()
afterEach(() => servers.cleanup())

async function crash({ server, client }: Running): Promise<void> {
  const exit = await server.kill('SIGKILL')
  expect(exit.signal).toBe('SIGKILL')
  await client.close()
}

async function restart(dbFile: string): Promise<Running> {
  const running = await servers.start({ dbFile })
  expect(await running.client.ready()).toMatchObject({ status: 'ready' })
  return running
}

/** Records by (type, worker_id), to check an acknowledged decision was recorded. */
const recorded = (records: AuditRecord[]) => {
  const keys = new Set(records.map((r) => `${r.type}:${r.worker_id ?? ''}`))
  return (type: string, workerId = '') => keys.has(`${type}:${workerId}`)
}

describe('durability across SIGKILL (SPEC §2.10)', () => {
  it('keeps every change acknowledged just before a SIGKILL, and the kill switch stays engaged across the restart', async () => {
    const first = await servers.start()
    const { client } = first
    const dbFile = first.server.dbFile

    const put = await client.putContract(
      contract({
        max_replicas: 50,
        max_depth: 3,
        cooldown_seconds: 0,
        heartbeat_timeout_seconds: 600,
        manifest_ttl_seconds: 600,
        expiration_seconds: null,
        stop_conditions: [{ name: 'cap', description: 'e2e', expression: 'active_count >= 40' }],
      }),
    )
    const w1 = await registerRoot(client)
    const outstandingRoot = await client.issueManifest()
    const w2 = await registerChild(client, w1)
    const outstandingChild = await client.spawn(w1, { reason: 'e2e' })
    const w3 = await registerRoot(client)
    await client.quarantine(w3.worker_id, 'inspect')
    const w4 = await registerRoot(client)
    const w5 = await registerChild(client, w4)
    const killed = await client.kill(w4.worker_id, { reason: 'operator test' })
    await crash(first)

    // Round 1: everything acknowledged is there.
    const second = await restart(dbFile)
    const c2 = second.client
    const current = await c2.getContract()
    expect(current).toMatchObject({ version: put.version, max_replicas: 50, max_depth: 3, manifest_ttl_seconds: 600 })
    expect(current.stop_conditions).toEqual([{ name: 'cap', description: 'e2e', expression: 'active_count >= 40' }])
    const status = (worker: Registered) => c2.getWorker(worker.worker_id)
    expect(await status(w1)).toMatchObject({ status: 'active', depth: 0, parent_id: null })
    expect(await status(w2)).toMatchObject({ status: 'active', depth: 1, parent_id: w1.worker_id })
    expect(await status(w3)).toMatchObject({ status: 'quarantined', reason: 'inspect' })
    expect(killed.killed.sort()).toEqual([w4.worker_id, w5.worker_id].sort())
    expect(await status(w4)).toMatchObject({ status: 'killed', reason: 'operator test' })
    expect(await status(w5)).toMatchObject({ status: 'killed' })
    expect(await c2.heartbeat(w1)).toMatchObject({ directive: 'continue' })
    expect(await c2.heartbeat(w3)).toMatchObject({ directive: 'suspend' })
    expect(await rejection(c2.heartbeat(w4))).toMatchObject({ status: 410, code: 'worker_terminated', reason: 'killed' })

    const audit1 = await auditLog(c2)
    expect(await c2.verifyAudit()).toMatchObject({ ok: true, records: audit1.length })
    const has1 = recorded(audit1)
    expect(audit1.some((r) => r.type === 'contract_updated' && r.data.version === put.version)).toBe(true)
    for (const id of [w1.worker_id, w3.worker_id, w4.worker_id, outstandingRoot.worker_id]) expect(has1('manifest_issued', id), id).toBe(true)
    for (const id of [w2.worker_id, w5.worker_id, outstandingChild.worker_id]) expect(has1('spawn_approved', id), id).toBe(true)
    for (const w of [w1, w2, w3, w4, w5]) expect(has1('worker_registered', w.worker_id), w.worker_id).toBe(true)
    expect(has1('worker_quarantined', w3.worker_id)).toBe(true)
    expect(has1('worker_killed', w4.worker_id) && has1('worker_killed', w5.worker_id)).toBe(true)

    // The manifests that were outstanding at the crash still hold their slots and still register.
    const w6 = { worker_id: outstandingRoot.worker_id, lease_token: (await c2.register(outstandingRoot)).lease_token }
    const w7 = { worker_id: outstandingChild.worker_id, lease_token: (await c2.register(outstandingChild)).lease_token }
    const spare = await c2.issueManifest()

    // Round 2: engage the kill switch and crash right after the 200.
    const engaged = await c2.engageKillSwitch('durability')
    expect(engaged).toMatchObject({ engaged: true, terminated: 5, manifests_voided: 1 })
    await crash(second)

    const third = await restart(dbFile)
    const c3 = third.client
    expect(await c3.getKillSwitch()).toMatchObject({ engaged: true, reason: 'durability' })
    for (const worker of [w1, w2, w3, w6, w7]) {
      const beat = await rejection(c3.heartbeat(worker))
      expect(beat.status).toBe(410)
      expect(beat.problem).toMatchObject({ code: 'worker_terminated', directive: 'terminate', reason: 'kill_switch' })
    }
    expect(await listWorkers(c3, { status: 'active' })).toEqual([])
    expect(await listWorkers(c3, { status: 'quarantined' })).toEqual([])
    expect((await rejection(c3.issueManifest())).code).toBe('kill_switch_engaged')
    expect((await rejection(c3.register(spare))).code).toBe('kill_switch_engaged')

    const audit2 = await auditLog(c3)
    expect(await c3.verifyAudit()).toMatchObject({ ok: true, records: audit2.length })
    // Nothing recorded before the crash was lost or changed.
    expect(audit2.slice(0, audit1.length)).toEqual(audit1)
    const has2 = recorded(audit2)
    for (const id of [w6.worker_id, w7.worker_id]) expect(has2('worker_registered', id), id).toBe(true)
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

    async function checkAcknowledged(client: WardenClient, context: string): Promise<void> {
      const records = await auditLog(client)
      expect(await client.verifyAudit(), context).toMatchObject({ ok: true, records: records.length, first_invalid_seq: null })
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
      const current = await client.getContract()
      expect(current.version, context).toBeGreaterThanOrEqual(Math.max(0, ...contractVersions))

      const byId = new Map((await listWorkers(client)).map((w) => [w.worker_id, w]))
      for (const id of registered.keys()) {
        const worker = byId.get(id)!
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
        const put = await client.putContract(
          contract({
            max_replicas: 100_000,
            max_depth: 6,
            cooldown_seconds: 0,
            heartbeat_timeout_seconds: 600,
            manifest_ttl_seconds: 600,
            expiration_seconds: null,
          }),
        )
        contractVersions.push(put.version)
      } else {
        await checkAcknowledged(client, context)
      }

      let acks = 0
      let stopped = false
      const ack = () => void acks++
      const live = () => [...registered.values()].filter((w) => !killed.has(w.worker_id))
      const pick = <T>(items: T[]): T | undefined => items[Math.floor(Math.random() * items.length)]

      // A refusal is part of the stream (quota, a killed parent); only acknowledgements count.
      async function admit(type: 'manifest_issued' | 'spawn_approved', pending: Promise<Manifest>) {
        const issued = await outcome(pending)
        if (!issued.ok) return
        const manifest = issued.value
        manifests.set(manifest.worker_id, { manifest, type })
        ack()
        const registration = await outcome(client.register(manifest))
        if (!registration.ok) return
        registered.set(manifest.worker_id, { worker_id: manifest.worker_id, lease_token: registration.value.lease_token, manifest })
        ack()
      }

      async function stream(index: number): Promise<void> {
        for (let i = 0; !stopped; i++) {
          const action = (index * 7 + i) % 10
          if (action < 4) await admit('manifest_issued', client.issueManifest())
          else if (action < 8) {
            const parent = pick(live().filter((w) => !quarantined.has(w.worker_id)))
            if (parent) await admit('spawn_approved', client.spawn(parent, { reason: 'e2e' }))
          } else if (action === 8) {
            const target = pick(live())
            if (!target) continue
            if (i % 2 === 0) {
              const response = await outcome(client.kill(target.worker_id, { reason: 'stream' }))
              if (response.ok) {
                for (const id of response.value.killed) killed.add(id)
                ack()
              }
            } else {
              const response = await outcome(client.quarantine(target.worker_id, 'stream'))
              if (response.ok && response.value.status === 'quarantined') {
                quarantined.add(target.worker_id)
                ack()
              }
            }
          } else {
            const { version: _version, updated_at: _updated, ...current } = await client.getContract()
            const response = await outcome(client.putContract({ ...current, manifest_ttl_seconds: 600 + round * 100 + i }))
            if (response.ok) {
              contractVersions.push(response.value.version)
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
      await running.client.close()
    }

    const last = await restart(dbFile)
    await checkAcknowledged(last.client, `after the last restart (SIGKILL moments: ${moments.join(', ')} ms)`)
    expect(registered.size).toBeGreaterThan(0)
    expect(killed.size + quarantined.size).toBeGreaterThan(0)

    // Acknowledged manifests that never registered were persisted: none is unknown to the server.
    const unregistered = [...manifests.values()].filter(({ manifest }) => !registered.has(manifest.worker_id))
    const tries = await Promise.all(unregistered.map(({ manifest }) => outcome(last.client.register(manifest))))
    for (const [i, response] of tries.entries()) {
      const manifest = unregistered[i]!.manifest
      expect(response.code, `manifest ${manifest.worker_id}`).not.toBe('invalid_signature')
      if (response.status === 403) {
        // Only a child manifest can be refused now: its parent ended or was quarantined, and an
        // earlier refusal or voiding was audited before this retry.
        const detail = JSON.stringify(response.error.problem)
        expect(manifest.parent_id, detail).not.toBeNull()
        const parent = await last.client.getWorker(manifest.parent_id!)
        if (response.code === 'parent_quarantined') expect(parent.status, detail).toBe('quarantined')
        else if (response.code === 'parent_not_active') expect(parent.status, detail).toBe('killed')
        else {
          expect(response.code, detail).toBe('manifest_expired')
          const closedBefore = previousAudit.some(
            (r) => r.worker_id === manifest.worker_id && (r.type === 'registration_rejected' || r.type === 'manifest_expired'),
          )
          expect(closedBefore, detail).toBe(true)
        }
      } else if (!response.ok) {
        expect(response.status, JSON.stringify(response.error.problem)).toBe(409)
      }
    }
    expect(await last.client.verifyAudit()).toMatchObject({ ok: true })
  })
})
