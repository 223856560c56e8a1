// SPEC §2.9: every decision is audited in the transaction of the change it records, and the
// hash chain finds any edited, removed or reordered record.
import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { GENESIS_HASH } from '../../src/domain/audit-chain.js'
import type { Warden } from '../../src/domain/index.js'
import { canonicalJson } from '../../src/domain/signing.js'
import type { AuditRecord } from '../../src/schemas/index.js'
import { registerChild, registerRoot, type TestWarden, storeOf } from '../helpers/harness.js'
import { auditSeq, auditRecords, auditSince, expectDomainError, SECOND, updateContract, worker, wardenPerTest } from './support.js'

const setup = wardenPerTest({
    max_replicas: 4,
    cooldown_seconds: 5,
    heartbeat_timeout_seconds: 30,
    manifest_ttl_seconds: 10,
    expiration_seconds: 100,
  })

type Step = [label: string, run: () => void, expected: Array<[type: AuditRecord['type'], code: string | null]>]

/** A realistic run touching every decision type; each step is checked against the records it adds. */
function realisticSteps(t: TestWarden): Step[] {
  const { warden, clock } = t
  const ids: Record<string, string> = {}
  const spawn = (parent: string) => warden.admission.spawn(worker(warden, parent), { reason: 'grow' })
  let replay: ReturnType<typeof registerRoot>['manifest']
  let stale: ReturnType<typeof registerRoot>['manifest']
  return [
    ['register root a', () => void (ids.a = registerRoot(warden).id), [['manifest_issued', null], ['worker_registered', null]]],
    [
      'spawn and register child c',
      () => {
        const child = registerChild(warden, ids.a!)
        ids.c = child.id
        replay = child.manifest
      },
      [['spawn_approved', null], ['worker_registered', null]],
    ],
    ['spawn inside the cooldown', () => void expectDomainError(() => spawn(ids.a!), 'cooldown_active'), [['spawn_denied', 'cooldown_active']]],
    ['replay c', () => void expectDomainError(() => warden.admission.register(replay), 'manifest_already_used'), [['registration_rejected', 'manifest_already_used']]],
    ['register root b', () => void (ids.b = registerRoot(warden).id), [['manifest_issued', null], ['worker_registered', null]]],
    ['issue root d (outstanding)', () => void (stale = warden.admission.issueRoot({})), [['manifest_issued', null]]],
    ['issue over quota', () => void expectDomainError(() => warden.admission.issueRoot({}), 'quota_exceeded'), [['manifest_denied', 'quota_exceeded']]],
    ['heartbeat a (no decision)', () => void warden.liveness.heartbeat(ids.a!), []],
    ['quarantine b', () => void warden.transitions.quarantine(ids.b!, 'inspect'), [['worker_quarantined', null]]],
    ['release b', () => void warden.transitions.release(ids.b!), [['worker_released', null]]],
    [
      'let d pass its TTL and tick',
      () => {
        clock.advance(11 * SECOND)
        warden.liveness.heartbeat(ids.a!)
        warden.liveness.heartbeat(ids.b!)
        warden.liveness.heartbeat(ids.c!)
        warden.liveness.tick()
      },
      [['manifest_expired', 'manifest_expired']],
    ],
    ['register d too late', () => void expectDomainError(() => warden.admission.register(stale), 'manifest_expired'), [['registration_rejected', 'manifest_expired']]],
    ['deregister b', () => void warden.transitions.deregister(ids.b!, 'finished'), [['worker_deregistered', 'deregistered']]],
    ['kill c', () => void warden.transitions.kill(ids.c!, { reason: 'misbehaving', cascade: true }), [['worker_killed', 'killed']]],
    ['change the contract', () => void updateContract(warden, { max_replicas: 6 }), [['contract_updated', null]]],
    [
      'a goes silent and is reaped',
      () => {
        clock.advance(30 * SECOND)
        warden.liveness.tick()
      },
      [['worker_reaped', 'reaped']],
    ],
    [
      'e outlives its lifetime',
      () => {
        ids.e = registerRoot(warden).id
        for (let i = 0; i < 3; i++) {
          clock.advance(25 * SECOND)
          warden.liveness.heartbeat(ids.e)
        }
        clock.advance(25 * SECOND)
        warden.liveness.tick()
      },
      [['manifest_issued', null], ['worker_registered', null], ['worker_expired', 'expired']],
    ],
    ['register f', () => void (ids.f = registerRoot(warden).id), [['manifest_issued', null], ['worker_registered', null]]],
    ['engage the kill switch', () => void warden.killSwitch.engage('drill'), [['kill_switch_engaged', 'kill_switch']]],
    ['issue while engaged', () => void expectDomainError(() => warden.admission.issueRoot({}), 'kill_switch_engaged'), [['manifest_denied', 'kill_switch_engaged']]],
    ['disengage the kill switch', () => void warden.killSwitch.disengage(), [['kill_switch_disengaged', null]]],
  ]
}

function runRealistic(t: TestWarden): void {
  for (const [, run] of realisticSteps(t)) run()
}

describe('every decision is audited', () => {
  it('records exactly the expected audit records for each step of a realistic run', () => {
    const t = setup()
    expect(auditRecords(t.warden).map((r) => r.type)).toEqual(['contract_updated', 'controller_started'])
    for (const [label, run, expected] of realisticSteps(t)) {
      const before = auditSeq(t.warden)
      run()
      expect(
        auditSince(t.warden, before).map((r) => [r.type, r.code]),
        label,
      ).toEqual(expected)
    }
    expect(t.warden.queries.verifyAudit().ok).toBe(true)
  })

  it('names the worker, parent, actor and reason in the records', () => {
    const t = setup()
    const { warden } = t
    const root = registerRoot(warden)
    const child = registerChild(warden, root.id)
    warden.transitions.kill(child.id, { reason: 'misbehaving', cascade: true })
    const approved = auditRecords(warden, 'spawn_approved')[0]!
    expect(approved).toMatchObject({ actor: `worker:${root.id}`, worker_id: child.id, parent_id: root.id, data: { depth: 1, reason: 'test' } })
    expect(auditRecords(warden, 'worker_killed')[0]).toMatchObject({ actor: 'operator', worker_id: child.id, data: { reason: 'misbehaving' } })
    expect(auditRecords(warden, 'worker_registered')[1]).toMatchObject({ actor: `worker:${child.id}`, worker_id: child.id })
  })

  it('names every worker the kill switch terminated in its record', () => {
    const t = setup()
    const a = registerRoot(t.warden)
    const b = registerRoot(t.warden)
    t.warden.killSwitch.engage('drill')
    const record = auditRecords(t.warden, 'kill_switch_engaged')[0]!
    expect(record.data).toMatchObject({ reason: 'drill', terminated: 2 })
    expect([...(record.data.worker_ids as string[])].sort()).toEqual([a.id, b.id].sort())
  })

  it('records the contract version and the new contract in contract_updated', () => {
    const t = setup()
    updateContract(t.warden, { max_depth: 1 })
    const records = auditRecords(t.warden, 'contract_updated')
    expect(records.map((r) => (r.data as { version: number }).version)).toEqual([1, 2])
    expect(records[1]!.data).toMatchObject({ contract: { max_depth: 1 } })
  })
})

describe('the chain', () => {
  it('verifies after a realistic run: seqs 1..n, each linked to the one before, hash = sha256(prev_hash ‖ canonical record)', () => {
    const t = setup()
    runRealistic(t)
    const records = auditRecords(t.warden)
    expect(records.map((r) => r.seq)).toEqual(records.map((_, i) => i + 1))
    let prev = GENESIS_HASH
    for (const record of records) {
      expect(record.prev_hash).toBe(prev)
      const { hash, ...rest } = record
      expect(hash).toBe(createHash('sha256').update(record.prev_hash).update(canonicalJson(rest)).digest('hex'))
      prev = hash
    }
    expect(t.warden.queries.verifyAudit()).toEqual({ ok: true, records: records.length, head_hash: prev, first_invalid_seq: null })
  })
})

describe('tampering is detected', () => {
  /** Applies `sql` inside a transaction, verifies, and rolls back, so one run serves many edits. */
  function verifyWith(warden: Warden, edit: () => void) {
    const db = storeOf(warden).db
    db.exec('BEGIN')
    try {
      edit()
      return warden.queries.verifyAudit()
    } finally {
      db.exec('ROLLBACK')
    }
  }

  const otherType = (type: string) => (type === 'worker_killed' ? 'worker_reaped' : 'worker_killed')
  const edits: Record<string, (r: AuditRecord) => unknown> = {
    at: (r) => new Date(Date.parse(r.at) + 1).toISOString(),
    type: (r) => otherType(r.type),
    actor: (r) => (r.actor === 'operator' ? 'controller' : 'operator'),
    worker_id: (r) => (r.worker_id === null ? 'f'.repeat(32) : null),
    parent_id: (r) => (r.parent_id === null ? 'e'.repeat(32) : r.parent_id.replace(/^./, (c) => (c === '0' ? '1' : '0'))),
    code: (r) => (r.code === null ? 'forged' : null),
    data: (r) => JSON.stringify({ ...r.data, forged: true }),
    prev_hash: (r) => r.prev_hash.replace(/^./, (c) => (c === '0' ? '1' : '0')),
    hash: (r) => r.hash.replace(/.$/, (c) => (c === '0' ? '1' : '0')),
  }

  it('finds an edit of any single column of any record, at that record', () => {
    const t = setup()
    runRealistic(t)
    const records = auditRecords(t.warden)
    expect(records.length).toBeGreaterThan(25)
    for (const record of records) {
      for (const [column, edit] of Object.entries(edits)) {
        const result = verifyWith(t.warden, () => {
          storeOf(t.warden).db.prepare(`UPDATE audit SET ${column} = ? WHERE seq = ?`).run(edit(record), record.seq)
        })
        expect(result, `${column} of seq ${record.seq}`).toMatchObject({ ok: false, first_invalid_seq: record.seq })
      }
    }
    expect(t.warden.queries.verifyAudit().ok).toBe(true)
  })

  it('finds a data edit that changes one nested value only', () => {
    const t = setup()
    runRealistic(t)
    const record = auditRecords(t.warden, 'kill_switch_engaged')[0]!
    const data = { ...record.data, terminated: (record.data.terminated as number) - 1 }
    const result = verifyWith(t.warden, () => {
      storeOf(t.warden).db.prepare(`UPDATE audit SET data = ? WHERE seq = ?`).run(JSON.stringify(data), record.seq)
    })
    expect(result).toMatchObject({ ok: false, first_invalid_seq: record.seq })
  })

  it('finds a record moved out of sequence by editing its seq', () => {
    const t = setup()
    runRealistic(t)
    const n = auditSeq(t.warden)
    const result = verifyWith(t.warden, () => {
      storeOf(t.warden).db.prepare(`UPDATE audit SET seq = ? WHERE seq = 7`).run(n + 100)
    })
    expect(result).toMatchObject({ ok: false, first_invalid_seq: 8 })
  })

  it('finds a record deleted from the middle, at the record after the gap', () => {
    const t = setup()
    runRealistic(t)
    for (const seq of [1, 2, 10, 20]) {
      const result = verifyWith(t.warden, () => void storeOf(t.warden).db.prepare(`DELETE FROM audit WHERE seq = ?`).run(seq))
      expect(result, `deleting ${seq}`).toMatchObject({ ok: false, first_invalid_seq: seq + 1 })
    }
  })

  it('finds the deletion of the newest records (truncation of the tail)', () => {
    const t = setup()
    runRealistic(t)
    const n = auditSeq(t.warden)
    const result = verifyWith(t.warden, () => void storeOf(t.warden).db.prepare(`DELETE FROM audit WHERE seq >= ?`).run(n - 1))
    // SPEC §2.9: "verification finds any edited, removed or reordered record".
    expect(result.ok).toBe(false)
  })

  it('finds two records whose contents were swapped, at the earlier one', () => {
    const t = setup()
    runRealistic(t)
    const records = auditRecords(t.warden)
    const columns = ['at', 'type', 'actor', 'worker_id', 'parent_id', 'code', 'data', 'prev_hash', 'hash'] as const
    const write = storeOf(t.warden).db.prepare(
      `UPDATE audit SET ${columns.map((c) => `${c} = @${c}`).join(', ')} WHERE seq = @seq`,
    )
    const asRow = (r: AuditRecord, seq: number) => ({ ...r, seq, data: JSON.stringify(r.data) })
    for (const [i, j] of [
      [3, 4],
      [5, 12],
      [records.length - 1, records.length],
    ] as const) {
      const a = records[i - 1]!
      const b = records[j - 1]!
      const result = verifyWith(t.warden, () => {
        write.run(asRow(b, i))
        write.run(asRow(a, j))
      })
      expect(result, `swap ${i} and ${j}`).toMatchObject({ ok: false, first_invalid_seq: i })
    }
  })

  it('finds two records reordered by swapping their seqs', () => {
    const t = setup()
    runRealistic(t)
    const result = verifyWith(t.warden, () => {
      const db = storeOf(t.warden).db
      db.prepare(`UPDATE audit SET seq = -1 WHERE seq = 6`).run()
      db.prepare(`UPDATE audit SET seq = 6 WHERE seq = 9`).run()
      db.prepare(`UPDATE audit SET seq = 9 WHERE seq = -1`).run()
    })
    expect(result).toMatchObject({ ok: false, first_invalid_seq: 6 })
  })
})

describe('a decision and its audit record share one transaction', () => {
  const snapshotState = (warden: Warden) => {
    const db = storeOf(warden).db
    return {
      workers: db.prepare(`SELECT * FROM workers ORDER BY seq`).all(),
      manifests: db.prepare(`SELECT * FROM manifests ORDER BY worker_id`).all(),
      sandboxes: db.prepare(`SELECT * FROM sandboxes ORDER BY worker_id`).all(),
      killSwitch: db.prepare(`SELECT * FROM kill_switch`).all(),
      contracts: db.prepare(`SELECT * FROM contracts`).all(),
    }
  }

  it('a denial changes no state but leaves its audit record', () => {
    const t = setup()
    const root = registerRoot(t.warden)
    const child = registerChild(t.warden, root.id)
    t.warden.admission.issueRoot({})
    t.warden.admission.issueRoot({})
    const before = snapshotState(t.warden)
    const head = auditSeq(t.warden)

    expectDomainError(() => t.warden.admission.issueRoot({}), 'quota_exceeded')
    expectDomainError(() => t.warden.admission.spawn(worker(t.warden, root.id), { reason: 'again' }), 'cooldown_active')
    expectDomainError(() => t.warden.admission.register(child.manifest), 'manifest_already_used')

    expect(snapshotState(t.warden)).toEqual(before)
    expect(auditSince(t.warden, head).map((r) => [r.type, r.code])).toEqual([
      ['manifest_denied', 'quota_exceeded'],
      ['spawn_denied', 'cooldown_active'],
      ['registration_rejected', 'manifest_already_used'],
    ])
    expect(t.warden.queries.verifyAudit().ok).toBe(true)
  })

  it('a state change whose audit record cannot be written does not happen', () => {
    const t = setup()
    const { warden } = t
    const root = registerRoot(warden)
    const pending = warden.admission.issueRoot({})
    const before = snapshotState(warden)
    const head = auditSeq(warden)

    storeOf(warden).db.exec(`CREATE TRIGGER audit_down BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'audit unavailable'); END`)
    expect(() => warden.transitions.kill(root.id, { reason: 'x', cascade: true })).toThrow(/audit unavailable/)
    expect(() => warden.transitions.quarantine(root.id, 'x')).toThrow(/audit unavailable/)
    expect(() => warden.transitions.deregister(root.id, 'x')).toThrow(/audit unavailable/)
    expect(() => warden.admission.register(pending)).toThrow(/audit unavailable/)
    expect(() => warden.admission.issueRoot({})).toThrow(/audit unavailable/)
    expect(() => warden.killSwitch.engage('x')).toThrow(/audit unavailable/)
    expect(() => updateContract(warden, { max_depth: 1 })).toThrow(/audit unavailable/)
    t.clock.advance(60 * SECOND)
    expect(() => warden.liveness.tick()).toThrow(/audit unavailable/)
    storeOf(warden).db.exec(`DROP TRIGGER audit_down`)

    expect(snapshotState(warden)).toEqual(before)
    expect(warden.contracts.view().max_depth).toBe(3)
    expect(auditSeq(warden)).toBe(head)
    expect(warden.queries.verifyAudit().ok).toBe(true)
  })
})
