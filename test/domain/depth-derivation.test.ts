// SPEC §2.2 (issue #7 item 8): depth is derived by Warden, never taken from a manifest, and
// derived again at registration: a root is 0, a child its parent's + 1, anything else is refused
// with 403. The attack: a manifest signed with the real key (a leaked key, a bug in issuance)
// stating another depth. The scenario signs and records it as this controller would have, had it erred.
import { describe, expect, it } from 'vitest'
import { createSigner } from '../../src/domain/signing.js'
import { hashToken } from '../../src/domain/tokens.js'
import type { Manifest } from '../../src/schemas/index.js'
import { registerRoot, SIGNING_KEY, storeOf, type TestWarden } from '../helpers/harness.js'
import { auditSince, expectDomainError, lastAudit, wardenPerTest, worker } from './support.js'

/** Re-signs `manifest` with `depth` using the real key, and records it as the one issued under its id. */
function issuedWithDepth(t: TestWarden, manifest: Manifest, depth: number): Manifest {
  const { signature: _s, key_id: _k, ...fields } = manifest
  const forged = createSigner(SIGNING_KEY).sign({ ...fields, depth })
  const { signature, ...unsigned } = forged
  storeOf(t.warden)
    .db.prepare(`UPDATE manifests SET body = ?, depth = ?, signature_hash = ? WHERE worker_id = ?`)
    .run(JSON.stringify(unsigned), depth, hashToken(signature), forged.worker_id)
  return forged
}

describe('registration derives depth again (SPEC §2.2)', () => {
  const fresh = wardenPerTest({ max_depth: 3 })

  it('refuses a root manifest stating depth 2 with 403, audits it and closes the manifest', () => {
    const t = fresh()
    const forged = issuedWithDepth(t, t.warden.admission.issueRoot({}), 2)
    const seq = lastAudit(t.warden).seq
    const error = expectDomainError(() => t.warden.admission.register(forged), 'depth_exceeded')
    expect(error.status).toBe(403)
    expect(error.message).toMatch(/depth 2 is not the derived depth 0/)
    expect(auditSince(t.warden, seq)).toMatchObject([{ type: 'registration_rejected', code: 'depth_exceeded', worker_id: forged.worker_id }])
    expect(storeOf(t.warden).manifests.get(forged.worker_id)!.status).toBe('rejected')
    expect(storeOf(t.warden).workers.get(forged.worker_id)).toBeUndefined()
  })

  it('refuses a child stating a shallower depth than its parent + 1 (which would escape max_depth)', () => {
    const t = fresh()
    const root = registerRoot(t.warden)
    const child = t.warden.admission.spawn(worker(t.warden, root.id), { reason: 'test' })
    expect(child.depth).toBe(1)
    const forged = issuedWithDepth(t, child, 0)
    expect(expectDomainError(() => t.warden.admission.register(forged), 'depth_exceeded').message).toMatch(/depth 0 is not the derived depth 1/)
  })

  it('registers a manifest whose depth is the derived one', () => {
    const t = fresh()
    const root = registerRoot(t.warden)
    const child = t.warden.admission.spawn(worker(t.warden, root.id), { reason: 'test' })
    expect(t.warden.admission.register(child).worker.depth).toBe(1)
  })
})
