// Issue #7 item 9: after a signing-key change, outstanding manifests signed with a key the
// controller no longer holds can never register; at start they are voided (audited) and stop
// holding quota slots, instead of blocking issuance until their TTL.
import { afterEach, describe, expect, it } from 'vitest'
import { auditLog, rejection } from '../helpers/calls.js'
import { contract } from '../helpers/fixtures.js'
import { createServerTracker } from '../helpers/server.js'

const servers = createServerTracker()
afterEach(() => servers.cleanup())

const OLD_KEY = 'old-signing-key-0123456789abcdef0123456789'
const NEW_KEY = 'new-signing-key-0123456789abcdef0123456789'

describe('signing-key change (issue #7 item 9)', () => {
  it('voids, at start and audited, the outstanding manifests signed with a key no longer held, freeing their slots', async () => {
    const first = await servers.start({ env: { WARDEN_SIGNING_KEY: OLD_KEY } })
    await first.client.putContract(contract({ max_replicas: 2, manifest_ttl_seconds: 3600 }))
    const stale = [await first.client.issueManifest(), await first.client.issueManifest()]
    expect(await rejection(first.client.issueManifest())).toMatchObject({ status: 403, code: 'quota_exceeded' })
    await first.server.kill('SIGTERM')

    const second = await servers.start({ dbFile: first.server.dbFile, env: { WARDEN_SIGNING_KEY: NEW_KEY } })
    const voided = await auditLog(second.client, { type: 'manifest_expired' })
    expect(voided.map((record) => record.worker_id).sort()).toEqual(stale.map((manifest) => manifest.worker_id).sort())
    for (const record of voided) expect(record).toMatchObject({ code: 'unknown_key', actor: 'controller' })
    // Their slots are free again, and they still never register.
    await second.client.issueManifest()
    await second.client.issueManifest()
    expect(await rejection(second.client.register(stale[0]!))).toMatchObject({ status: 403, code: 'unknown_key' })
  }, 60_000)
})
