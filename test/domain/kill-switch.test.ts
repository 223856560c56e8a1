// SPEC §2.6 the kill switch: every live worker terminated in the engaging transaction, harmless to
// repeat, audited both ways, and still engaged after a restart. (Admission while engaged: admission-rules.test.ts.)
import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../src/domain/clock.js'
import { createTestWarden, registerChild, registerRoot, storeOf } from '../helpers/harness.js'
import {
  auditSeq,
  expectDomainError,
  lastAudit,
  manifestStatus,
  SECOND,
  tempDbFile,
  worker,
  wardenPerTest,
} from './support.js'


const setup = wardenPerTest({ heartbeat_timeout_seconds: 30, expiration_seconds: 3600 })

const iso = (ms: number) => new Date(ms).toISOString()


describe('kill switch', () => {
  it('terminates every live worker in one go, voids outstanding manifests and blocks heartbeats', () => {
    const { warden, clock } = setup()
    const a = registerRoot(warden).id
    const b = registerRoot(warden).id
    const c = registerChild(warden, a).id
    const done = registerRoot(warden).id
    warden.transitions.deregister(done, 'finished')
    warden.transitions.quarantine(b, 'inspect')
    const pending = warden.admission.issueRoot({})
    clock.advance(SECOND)

    const state = warden.killSwitch.engage('incident 42')
    expect(state).toEqual({ engaged: true, engaged_at: iso(clock.now()), reason: 'incident 42', terminated: 3, manifests_voided: 1 })
    for (const id of [a, b, c]) {
      expect(worker(warden, id)).toMatchObject({ status: 'killed', reason: 'kill_switch', ended_at: clock.now() })
      expect(expectDomainError(() => warden.liveness.heartbeat(id), 'worker_terminated').extras.reason).toBe('kill_switch')
    }
    expect(worker(warden, done).status).toBe('deregistered')
    expect(manifestStatus(warden, pending.worker_id)).toBe('voided')
    expect(storeOf(warden).workers.countLive()).toBe(0)
  })

  it('is harmless to engage twice: nothing more terminated, the first engagement kept, one record', () => {
    const { warden, clock } = setup()
    registerRoot(warden)
    const first = warden.killSwitch.engage('first')
    const head = auditSeq(warden)
    clock.advance(SECOND)
    const second = warden.killSwitch.engage('second')
    expect(second).toEqual({ ...first, terminated: 0, manifests_voided: 0 })
    expect(warden.killSwitch.state()).toEqual({ engaged: true, engaged_at: first.engaged_at, reason: 'first' })
    expect(auditSeq(warden)).toBe(head)
  })

  it('disengages with an audit record while the workers stay terminated', () => {
    const { warden, clock } = setup()
    const { id } = registerRoot(warden)
    const engaged = warden.killSwitch.engage('drill')
    clock.advance(SECOND)
    expect(warden.killSwitch.disengage()).toEqual({ engaged: false, engaged_at: null, reason: null })
    expect(lastAudit(warden)).toMatchObject({
      type: 'kill_switch_disengaged',
      actor: 'operator',
      data: { engaged_at: engaged.engaged_at, reason: 'drill' },
    })
    expect(worker(warden, id).status).toBe('killed')
    expectDomainError(() => warden.liveness.heartbeat(id), 'worker_terminated')
    // Disengaging again changes nothing and records nothing.
    const head = auditSeq(warden)
    warden.killSwitch.disengage()
    expect(auditSeq(warden)).toBe(head)
  })

  it('survives a restart: still engaged, workers still terminated, nothing issued', () => {
    const { file, cleanup } = tempDbFile()
    try {
      const clock = new ManualClock()
      const first = createTestWarden({}, file, clock)
      const { id } = registerRoot(first.warden)
      const pending = first.warden.admission.issueRoot({})
      first.warden.killSwitch.engage('persist me')
      first.close()

      clock.advance(60 * SECOND)
      const second = createTestWarden({}, file, clock)
      try {
        expect(second.warden.killSwitch.state()).toMatchObject({ engaged: true, reason: 'persist me' })
        expect(worker(second.warden, id)).toMatchObject({ status: 'killed', reason: 'kill_switch' })
        expectDomainError(() => second.warden.admission.issueRoot({}), 'kill_switch_engaged')
        expectDomainError(() => second.warden.admission.register(pending), 'kill_switch_engaged')
        expectDomainError(() => second.warden.liveness.heartbeat(id), 'worker_terminated')
        expect(second.warden.queries.verifyAudit().ok).toBe(true)
      } finally {
        second.close()
      }
    } finally {
      cleanup()
    }
  })
})

