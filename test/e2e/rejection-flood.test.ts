// SPEC §7 (issue #7 item 5): unauthenticated callers cannot grow the audit log. A bounded version
// of the issue's flood against a real server: 16 parallel loops posting well-formed manifests with
// a made-up key_id, and forged copies of a victim's manifest. None adds an audit record of its own,
// none lands in the victim's trail; one registrations_rejected summary per address carries the counts.
// Half the posts are what an attacker sends by hand (no Idempotency-Key), half what the project's
// client sends (a fresh key each): a keyed forgery must not leave a key record either.
import { randomBytes } from 'node:crypto'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import { auditLog, outcome } from '../helpers/calls.js'
import { range } from '../helpers/fixtures.js'
import { rawRequest } from '../helpers/raw-http.js'
import { createServerTracker } from '../helpers/server.js'

const servers = createServerTracker()
afterEach(() => servers.cleanup())

const LOOPS = 16
const PER_LOOP = 40

describe('a flood of manifests failing verification (SPEC §7)', () => {
  it('writes no audit record per request, never names the victim, and summarizes the counts by code per address', async () => {
    const first = await servers.start({ connections: LOOPS })
    const victim = await first.client.issueManifest()
    const before = await auditLog(first.client)
    const victimTrail = await auditLog(first.client, { worker_id: victim.worker_id })

    const started = performance.now()
    const statuses = await Promise.all(
      range(LOOPS).map(async (loop) => {
        const codes: string[] = []
        for (let i = 0; i < PER_LOOP; i++) {
          const manifest =
            loop % 2 === 0
              ? { ...victim, key_id: `k1-${randomBytes(8).toString('hex')}` } // unknown key
              : { ...victim, signature: randomBytes(32).toString('hex') } // forged copy naming the victim
          if (i % 2 === 0) {
            const answer = await rawRequest(first.server.url, 'POST', '/v1/workers', { body: manifest })
            codes.push(`${answer.status} ${answer.body.code}`)
          } else {
            const answer = await outcome(first.client.register(manifest))
            codes.push(`${answer.status} ${answer.code}`)
          }
        }
        return codes
      }),
    )
    const seconds = (performance.now() - started) / 1000
    const all = statuses.flat()
    expect(new Set(all)).toEqual(new Set(['403 unknown_key', '403 invalid_signature']))

    const after = await auditLog(first.client)
    expect(after.length).toBe(before.length)
    expect(await auditLog(first.client, { worker_id: victim.worker_id })).toEqual(victimTrail)
    // The victim's manifest is untouched and still registers.
    expect((await first.client.register(victim)).worker.worker_id).toBe(victim.worker_id)

    // The summary is written once a minute, and at a graceful close.
    await first.server.kill('SIGTERM')
    // Nor any Idempotency-Key record (read once the server, which holds the file exclusively, is
    // gone): a forgery establishes no caller to keep a key for.
    const db = new Database(first.server.dbFile, { readonly: true, fileMustExist: true })
    try {
      // The only keys: the operator's issue of the victim and the victim's own registration.
      const keys = db.prepare(`SELECT caller, status FROM idempotency_keys ORDER BY caller`).all()
      expect(keys).toEqual([
        { caller: `manifest:${victim.worker_id}`, status: 201 },
        { caller: 'operator', status: 201 },
      ])
    } finally {
      db.close()
    }
    const second = await servers.start({ dbFile: first.server.dbFile })
    const summaries = await auditLog(second.client, { type: 'registrations_rejected' })
    expect(summaries).toHaveLength(1)
    const half = (LOOPS / 2) * PER_LOOP
    expect(summaries[0]).toMatchObject({
      actor: 'controller',
      worker_id: null,
      data: { client: '127.0.0.1', counts: { unknown_key: half, invalid_signature: half }, total: LOOPS * PER_LOOP },
    })
    console.log(
      `flood: ${all.length} forged registrations from 16 parallel loops in ${seconds.toFixed(1)} s wrote ${after.length - before.length} audit records; then 1 summary`,
    )
  }, 90_000)
})
