// The table of admission rules, walked: every rule at every stage it names is made to refuse by
// a scenario of its own, and the decision names that rule's code in the error and in the audit.
// A rule added to the table without a scenario here fails this test.
import { describe, expect, it } from 'vitest'
import { admissionRules, type AdmissionStage } from '../../src/domain/admission-rules.js'
import type { ErrorCode } from '../../src/domain/errors.js'
import { createSigner } from '../../src/domain/signing.js'
import { hashToken } from '../../src/domain/tokens.js'
import type { AuditType, Resources } from '../../src/schemas/index.js'
import { registerRoot, SIGNING_KEY, type TestWarden, storeOf } from '../helpers/harness.js'
import { expectDomainError, lastAudit, SECOND, updateContract, wardenPerTest, worker } from './support.js'

const setup = wardenPerTest({ max_depth: 2, max_replicas: 5 })

const res = (cpu_limit: number, memory_limit_mb: number): Resources => ({
  cpu_limit,
  memory_limit_mb,
  network_policy: { allow_controller: true, allow_external: false },
})

/** Arranges a warden so that the attempt it returns is refused by exactly the named rule. */
type Scenario = (t: TestWarden) => () => unknown

const spawnFrom = (t: TestWarden, parentId: string, resources?: Resources) => () =>
  t.warden.admission.spawn(worker(t.warden, parentId), { reason: 'test', ...(resources ? { resources } : {}) })

const childManifest = (t: TestWarden, parentId: string) => t.warden.admission.spawn(worker(t.warden, parentId), { reason: 'test' })

const scenarios: Record<string, Scenario> = {
  'kill_switch_engaged/issue': (t) => {
    t.warden.killSwitch.engage('drill')
    return () => t.warden.admission.issueRoot({})
  },
  'kill_switch_engaged/spawn': (t) => {
    const root = registerRoot(t.warden)
    t.warden.killSwitch.engage('drill')
    return spawnFrom(t, root.id)
  },
  'kill_switch_engaged/register': (t) => {
    const manifest = t.warden.admission.issueRoot({})
    t.warden.killSwitch.engage('drill')
    return () => t.warden.admission.register(manifest)
  },
  'unknown_key/register': (t) => {
    const { signature: _s, key_id: _k, ...issued } = t.warden.admission.issueRoot({})
    const manifest = createSigner(Buffer.alloc(32, 7)).sign(issued)
    return () => t.warden.admission.register(manifest)
  },
  'invalid_signature/register': (t) => {
    const manifest = t.warden.admission.issueRoot({})
    return () => t.warden.admission.register({ ...manifest, depth: 1 })
  },
  'manifest_already_used/register': (t) => {
    const { manifest } = registerRoot(t.warden)
    return () => t.warden.admission.register(manifest)
  },
  'worker_terminated/spawn': (t) => {
    const root = registerRoot(t.warden)
    t.warden.transitions.kill(root.id, { cascade: true })
    return spawnFrom(t, root.id)
  },
  'parent_not_active/register': (t) => {
    const root = registerRoot(t.warden)
    const manifest = childManifest(t, root.id)
    t.warden.transitions.kill(root.id, { cascade: false })
    return () => t.warden.admission.register(manifest)
  },
  'manifest_expired/register': (t) => {
    const manifest = t.warden.admission.issueRoot({})
    t.clock.advance(300 * SECOND)
    return () => t.warden.admission.register(manifest)
  },
  'parent_quarantined/spawn': (t) => {
    const root = registerRoot(t.warden)
    t.warden.transitions.quarantine(root.id, 'look closer')
    return spawnFrom(t, root.id)
  },
  'parent_quarantined/register': (t) => {
    const root = registerRoot(t.warden)
    const manifest = childManifest(t, root.id)
    t.warden.transitions.quarantine(root.id, 'look closer')
    return () => t.warden.admission.register(manifest)
  },
  'depth_exceeded/spawn': (t) => {
    updateContract(t.warden, { max_depth: 0 })
    return spawnFrom(t, registerRoot(t.warden).id)
  },
  'depth_exceeded/register': (t) => {
    const manifest = childManifest(t, registerRoot(t.warden).id)
    updateContract(t.warden, { max_depth: 0 })
    return () => t.warden.admission.register(manifest)
  },
  'cooldown_active/spawn': (t) => {
    updateContract(t.warden, { cooldown_seconds: 10 })
    const root = registerRoot(t.warden)
    childManifest(t, root.id)
    return spawnFrom(t, root.id)
  },
  'resources_exceed_contract/issue': (t) => () => t.warden.admission.issueRoot({ resources: res(4, 256) }),
  'resources_exceed_contract/spawn': (t) => spawnFrom(t, registerRoot(t.warden, { resources: res(2, 256) }).id, res(3, 256)),
  'resources_exceed_contract/register': (t) => {
    const manifest = t.warden.admission.issueRoot({ resources: res(2, 256) })
    updateContract(t.warden, { max_resources: res(1, 2048), default_resources: res(0.5, 256) })
    return () => t.warden.admission.register(manifest)
  },
  'resources_exceed_parent/spawn': (t) => spawnFrom(t, registerRoot(t.warden, { resources: res(1, 256) }).id, res(1.5, 256)),
  // Defence in depth: only a holder of the signing key could present such a manifest, so the
  // scenario signs and records one as this controller would have, had it erred.
  'resources_exceed_parent/register': (t) => {
    const root = registerRoot(t.warden, { resources: res(1, 256) })
    const { signature: _s, key_id: _k, ...issued } = childManifest(t, root.id)
    const manifest = createSigner(SIGNING_KEY).sign({ ...issued, resources: res(1.5, 256) })
    const { signature, ...unsigned } = manifest
    storeOf(t.warden).db
      .prepare(`UPDATE manifests SET body = ?, signature_hash = ? WHERE worker_id = ?`)
      .run(JSON.stringify(unsigned), hashToken(signature), manifest.worker_id)
    return () => t.warden.admission.register(manifest)
  },
  'quota_exceeded/issue': (t) => {
    updateContract(t.warden, { max_replicas: 1 })
    t.warden.admission.issueRoot({})
    return () => t.warden.admission.issueRoot({})
  },
  'quota_exceeded/spawn': (t) => {
    updateContract(t.warden, { max_replicas: 1 })
    return spawnFrom(t, registerRoot(t.warden).id)
  },
  'quota_exceeded/register': (t) => {
    const manifest = t.warden.admission.issueRoot({})
    t.warden.admission.issueRoot({})
    updateContract(t.warden, { max_replicas: 1 })
    return () => t.warden.admission.register(manifest)
  },
  'stop_condition/issue': (t) => {
    updateContract(t.warden, { stop_conditions: [{ name: 'no-roots', description: '', expression: 'manifest.depth == 0' }] })
    return () => t.warden.admission.issueRoot({})
  },
  'stop_condition/spawn': (t) => {
    const root = registerRoot(t.warden)
    updateContract(t.warden, { stop_conditions: [{ name: 'no-children', description: '', expression: 'parent != null' }] })
    return spawnFrom(t, root.id)
  },
  'stop_condition/register': (t) => {
    const manifest = t.warden.admission.issueRoot({})
    updateContract(t.warden, { stop_conditions: [{ name: 'crowded', description: '', expression: 'active_count >= 0' }] })
    return () => t.warden.admission.register(manifest)
  },
}

const auditTypeOf: Record<AdmissionStage, AuditType> = {
  issue: 'manifest_denied',
  spawn: 'spawn_denied',
  register: 'registration_rejected',
}

const cases = admissionRules.flatMap((rule) => rule.stages.map((stage) => ({ code: rule.code, stage, key: `${rule.code}/${stage}` })))

describe('the table of admission rules', () => {
  it('has a scenario for every rule at every stage it names, and no scenario for a rule it lacks', () => {
    expect(Object.keys(scenarios).sort()).toEqual(cases.map((c) => c.key).sort())
  })

  it('holds each code once, so one entry is one rule', () => {
    const codes = admissionRules.map((rule) => rule.code)
    expect(new Set(codes).size).toBe(codes.length)
  })

  it.each(cases)('$key: refuses with $code and audits the refusal with that code (a manifest failing verification: counted, summarized)', ({ code, stage, key }) => {
    const t = setup()
    const attempt = scenarios[key]!(t)
    const before = lastAudit(t.warden).seq
    const error = expectDomainError(attempt, code as ErrorCode)
    if (code === 'unknown_key' || code === 'invalid_signature') {
      // SPEC §7: attacker-controlled, so no record of its own; the per-minute summary counts it.
      expect(lastAudit(t.warden).seq).toBe(before)
      t.warden.summarizeRejections(true)
      expect(lastAudit(t.warden)).toMatchObject({ type: 'registrations_rejected', actor: 'controller', data: { counts: { [code]: 1 } } })
      return
    }
    expect(lastAudit(t.warden)).toMatchObject({ type: auditTypeOf[stage], code, data: { detail: error.message } })
  })
})
