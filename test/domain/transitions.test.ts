// Worker states (SPEC §1): shutdown, quarantine, release, kill with cascade, terminal states that
// never come back, and the sandbox record each move keeps.
import { describe, expect, it } from 'vitest'
import type { Warden } from '../../src/domain/index.js'
import { registerChild, registerRoot, storeOf, type TestWarden } from '../helpers/harness.js'
import {
  auditSeq,
  auditRecords,
  auditSince,
  expectDomainError,
  lastAudit,
  manifestStatus,
  SECOND,
  worker,
  wardenPerTest,
} from './support.js'


const setup = wardenPerTest({ heartbeat_timeout_seconds: 30, expiration_seconds: 3600 })

const iso = (ms: number) => new Date(ms).toISOString()
const sandboxOf = (warden: Warden, id: string) => storeOf(warden).sandboxes.get(id)


describe('deregister', () => {
  it('ends the worker as deregistered with its reason and audits it', () => {
    const { warden, clock } = setup()
    const { id } = registerRoot(warden)
    clock.advance(SECOND)
    const view = warden.transitions.deregister(id, 'job done')
    expect(view).toMatchObject({ worker_id: id, status: 'deregistered', reason: 'job done', ended_at: iso(clock.now()) })
    expect(lastAudit(warden)).toMatchObject({ type: 'worker_deregistered', actor: `worker:${id}`, worker_id: id, data: { reason: 'job done' } })
  })

  it('is harmless to repeat: same answer, no new record, no change', () => {
    const { warden, clock } = setup()
    const { id } = registerRoot(warden)
    const first = warden.transitions.deregister(id, 'bye')
    const head = auditSeq(warden)
    clock.advance(5 * SECOND)
    expect(warden.transitions.deregister(id, 'bye again')).toEqual(first)
    expect(auditSeq(warden)).toBe(head)
  })

  it('leaves a killed worker killed', () => {
    const { warden } = setup()
    const { id } = registerRoot(warden)
    warden.transitions.kill(id, { reason: 'stop', cascade: true })
    expect(warden.transitions.deregister(id, 'bye').status).toBe('killed')
    expect(worker(warden, id)).toMatchObject({ status: 'killed', reason: 'stop' })
  })
})

describe('quarantine and release', () => {
  it('moves active -> quarantined -> active with reasons and one audit record per transition', () => {
    const { warden } = setup()
    const { id } = registerRoot(warden)
    const head = auditSeq(warden)
    expect(warden.transitions.quarantine(id, 'suspicious output')).toMatchObject({ status: 'quarantined', reason: 'suspicious output' })
    expect(worker(warden, id)).toMatchObject({ status: 'quarantined', reason: 'suspicious output' })
    // Repeating either transition is harmless and not recorded twice.
    warden.transitions.quarantine(id, 'again')
    expect(worker(warden, id).reason).toBe('suspicious output')
    expect(warden.transitions.release(id)).toMatchObject({ status: 'active', reason: null })
    warden.transitions.release(id)
    expect(auditSince(warden, head).map((r) => [r.type, r.actor, r.worker_id, r.data])).toEqual([
      ['worker_quarantined', 'operator', id, { reason: 'suspicious output' }],
      ['worker_released', 'operator', id, {}],
    ])
  })

  it('cannot quarantine or release a terminal worker', () => {
    const { warden } = setup()
    const { id } = registerRoot(warden)
    warden.transitions.kill(id, { cascade: true })
    expectDomainError(() => warden.transitions.quarantine(id, 'late'), 'worker_terminated')
    expectDomainError(() => warden.transitions.release(id), 'worker_terminated')
    expect(worker(warden, id).status).toBe('killed')
  })

  it('reaps rather than quarantines a worker whose lease already ran out', () => {
    const { warden, clock } = setup()
    const { id } = registerRoot(warden)
    clock.advance(31 * SECOND)
    expectDomainError(() => warden.transitions.quarantine(id, 'late'), 'worker_terminated')
    expect(worker(warden, id).status).toBe('reaped')
  })
})

describe('kill', () => {
  function tree(warden: Warden) {
    const root = registerRoot(warden).id
    const c1 = registerChild(warden, root).id
    const c2 = registerChild(warden, root).id
    const g1 = registerChild(warden, c1).id
    const g2 = registerChild(warden, c1).id
    return { root, c1, c2, g1, g2 }
  }

  it('kills the worker and its live descendants (quarantined ones included) when cascade is true', () => {
    const { warden } = setup()
    const { root, c1, c2, g1, g2 } = tree(warden)
    warden.transitions.quarantine(g1, 'inspect')
    warden.transitions.deregister(g2, 'done')

    const result = warden.transitions.kill(c1, { reason: 'runaway', cascade: true })
    expect(result.killed.sort()).toEqual([c1, g1].sort())
    expect(result.worker).toMatchObject({ worker_id: c1, status: 'killed', reason: 'runaway' })
    expect(worker(warden, g1)).toMatchObject({ status: 'killed', reason: `ancestor ${c1} killed: runaway` })
    expect(worker(warden, g2).status).toBe('deregistered')
    expect(worker(warden, root).status).toBe('active')
    expect(worker(warden, c2).status).toBe('active')
    expect(auditRecords(warden, 'worker_killed').map((r) => r.worker_id).sort()).toEqual([c1, g1].sort())
  })

  it('kills only the worker when cascade is false, and a later cascade reaches the live descendants', () => {
    const { warden } = setup()
    const { root, c1, c2, g1, g2 } = tree(warden)
    expect(warden.transitions.kill(root, { cascade: false }).killed).toEqual([root])
    expect(worker(warden, root)).toMatchObject({ status: 'killed', reason: 'killed' })
    for (const id of [c1, c2, g1, g2]) expect(worker(warden, id).status).toBe('active')

    expect(warden.transitions.kill(root, { reason: 'clean up', cascade: true }).killed.sort()).toEqual([c1, c2, g1, g2].sort())
    expect(worker(warden, root).reason).toBe('killed')
  })

  it('cascades through a descendant that already ended to the live ones below it', () => {
    const { warden } = setup()
    const { root, c1, c2, g1, g2 } = tree(warden)
    warden.transitions.deregister(c1, 'done')
    expect(warden.transitions.kill(root, { reason: 'all of it', cascade: true }).killed.sort()).toEqual([root, c2, g1, g2].sort())
    expect(worker(warden, c1).status).toBe('deregistered')
    expect(worker(warden, g1).status).toBe('killed')
  })

  it('is harmless to repeat on a killed worker', () => {
    const { warden } = setup()
    const { id } = registerRoot(warden)
    warden.transitions.kill(id, { reason: 'once', cascade: true })
    const head = auditSeq(warden)
    expect(warden.transitions.kill(id, { reason: 'twice', cascade: true }).killed).toEqual([])
    expect(worker(warden, id).reason).toBe('once')
    expect(auditSeq(warden)).toBe(head)
  })

  it('voids the outstanding manifests of every worker it kills', () => {
    const { warden } = setup()
    const { root, c1 } = tree(warden)
    const fromRoot = warden.admission.spawn(worker(warden, root), { reason: 'x' })
    const fromChild = warden.admission.spawn(worker(warden, c1), { reason: 'x' })
    warden.transitions.kill(root, { cascade: true })
    expect(manifestStatus(warden, fromRoot.worker_id)).toBe('voided')
    expect(manifestStatus(warden, fromChild.worker_id)).toBe('voided')
  })

  it('throws worker_not_found for an unknown worker', () => {
    const { warden } = setup()
    expectDomainError(() => warden.transitions.kill('1'.repeat(32), { cascade: true }), 'worker_not_found')
  })
})


describe('sandbox record', () => {
  const endings: Array<[string, string, (t: TestWarden, ids: { root: string; child: string }) => string]> = [
    ['deregistered', 'done', (t, { child }) => (t.warden.transitions.deregister(child, 'done'), child)],
    ['killed', 'stop it', (t, { child }) => (t.warden.transitions.kill(child, { reason: 'stop it', cascade: false }), child)],
    [
      'killed by cascade',
      '',
      (t, { root, child }) => {
        t.warden.transitions.kill(root, { reason: 'tree', cascade: true })
        return child
      },
    ],
    [
      'reaped by the reaper',
      'heartbeat timeout',
      (t, { child }) => {
        t.clock.advance(30 * SECOND)
        t.warden.liveness.tick()
        return child
      },
    ],
    [
      'reaped at its heartbeat',
      'heartbeat timeout',
      (t, { child }) => {
        t.clock.advance(30 * SECOND)
        expectDomainError(() => t.warden.liveness.heartbeat(child), 'worker_terminated')
        return child
      },
    ],
    [
      'expired',
      'lifetime over',
      (t, { root, child }) => {
        t.clock.advance(25 * SECOND)
        t.warden.liveness.heartbeat(root)
        t.warden.liveness.heartbeat(child)
        t.clock.advance(15 * SECOND)
        t.warden.liveness.tick()
        return child
      },
    ],
    ['killed by the kill switch', 'kill_switch', (t, { child }) => (t.warden.killSwitch.engage('drill'), child)],
  ]

  for (const [label, expectedReason, end] of endings) {
    it(`goes running -> stopped with the worker's reason when the worker is ${label}`, () => {
      const t = setup({ expiration_seconds: 40 })
      const root = registerRoot(t.warden).id
      const child = registerChild(t.warden, root).id
      expect(sandboxOf(t.warden, child)).toMatchObject({ status: 'running', driver: 'external', launched_at: t.clock.now(), stopped_at: null })
      expect(JSON.parse(sandboxOf(t.warden, child)!.resources)).toEqual(worker(t.warden, child).resources)

      const id = end(t, { root, child })
      const row = worker(t.warden, id)
      expect(['active', 'quarantined']).not.toContain(row.status)
      expect(sandboxOf(t.warden, id)).toMatchObject({ status: 'stopped', stopped_at: row.ended_at, stop_reason: row.reason })
      if (expectedReason) expect(row.reason).toBe(expectedReason)
    })
  }
})

