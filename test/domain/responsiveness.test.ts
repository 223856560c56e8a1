// SPEC §2.14 / §7 in the domain: stop conditions run under a time budget and fail closed past it;
// what can be refused statically is refused when the contract is set; a stall of the event loop
// does not run lease time; the audit chain verifies in slices with the same verdicts.
import { describe, expect, it } from 'vitest'
import { createAuditVerifier, verifyChain } from '../../src/domain/audit-chain.js'
import { ManualClock, type LoopWatch } from '../../src/domain/clock.js'
import { DEFAULT_CONTRACT, parseContractInput } from '../../src/domain/contract.js'
import { type Warden } from '../../src/domain/index.js'
import { createSigner } from '../../src/domain/signing.js'
import { CEL_LIMITS, compileCondition, evaluateConditions } from '../../src/domain/stop-conditions.js'
import { openDatabase } from '../../src/store/db.js'
import { createStore } from '../../src/store/index.js'
import { storeHooks } from '../../src/domain/store-hooks.js'
import { buildWarden, registerRoot, SIGNING_KEY, storeOf } from '../helpers/harness.js'
import { LeaseBook } from '../../src/domain/lease-book.js'
import { auditSince, expectDomainError, lastAudit, updateContract, wardenPerTest } from './support.js'

const literal = (n: number) => `[${Array.from({ length: n }, (_, i) => i).join(',')}]`
const condition = (expression: string) => ({ name: 'c', description: '', expression })
const compiled = (expression: string) => {
  const result = compileCondition(condition(expression))
  if (typeof result === 'string') throw new Error(result)
  return result
}
const context = (snapshot: Record<string, unknown>) => ({
  manifest: { depth: 0, state_snapshot: snapshot },
  active_count: 1,
  contract: {},
  parent: null,
})
/** Doubles in a snapshot: a quadratic condition over them costs seconds without a budget. */
const QUADRATIC = 'manifest.state_snapshot.xs.all(a, manifest.state_snapshot.xs.all(b, a + b >= 0.0)) == false'
const xs = Array.from({ length: 3000 }, (_, i) => i)

describe('stop conditions under a budget (SPEC §7)', () => {
  it('refuses comprehensions nested deeper than the limit when the contract is set (the four nested all() of the issue)', () => {
    const l = literal(60)
    const four = `${l}.all(a, ${l}.all(b, ${l}.all(c, ${l}.all(d, a + b + c + d >= 0))))`
    const error = expectDomainError(() => parseContractInput({ ...DEFAULT_CONTRACT, stop_conditions: [condition(four)] }), 'invalid_contract')
    expect(error.message).toMatch(/stop_conditions\.0\.expression nests comprehensions 4 deep; at most 2/)
  })

  it('refuses big list literals, big literal iteration products and matches()', () => {
    expect(compileCondition(condition(`${literal(CEL_LIMITS.listElements + 1)}.size() > 0`))).toMatch(/list of 65 elements/)
    expect(compileCondition(condition(`${literal(64)}.all(a, ${literal(64)}.exists(b, a == b))`))).not.toBeTypeOf('string')
    expect(compileCondition(condition(`${literal(64)}.all(a, ${literal(64)}.all(b, [1,2,3].exists(c, a + b == c)))`))).toMatch(
      /nests comprehensions 3 deep/,
    )
    expect(compileCondition(condition(`'x'.matches('(a+)+$')`))).toMatch(/may not use matches/)
  })

  it('fails closed, with the reason, when an evaluation runs past its budget', () => {
    const verdict = evaluateConditions([compiled(QUADRATIC)], context({ xs }) as never, 5)
    expect(verdict).toEqual({ triggered: true, condition: 'c', error: 'evaluation exceeded its budget of 5 ms' })
  })

  it('evaluates the same condition normally when it fits the budget', () => {
    expect(evaluateConditions([compiled(QUADRATIC)], context({ xs: [1, 2, 3] }) as never, 50)).toEqual({ triggered: false })
    expect(evaluateConditions([compiled('active_count >= 1')], context({}) as never, 5)).toMatchObject({ triggered: true, error: null })
  })

  const t = wardenPerTest()
  it('denies a spawn whose stop condition runs out of budget, auditing the reason', () => {
    const { warden } = t()
    updateContract(warden, { stop_conditions: [condition(`has(manifest.state_snapshot.xs) && ${QUADRATIC}`)] })
    const parent = registerRoot(warden)
    const seq = lastAudit(warden).seq
    const error = expectDomainError(() => warden.admission.spawn({ worker_id: parent.id }, { reason: 'big', state_snapshot: { xs } }), 'stop_condition')
    expect(error.message).toMatch(/exceeded its budget of 10 ms/)
    const [denied] = auditSince(warden, seq)
    expect(denied).toMatchObject({ type: 'spawn_denied', code: 'stop_condition', data: { evaluation_error: 'evaluation exceeded its budget of 10 ms' } })
  })
})

describe('a stall of the event loop (SPEC §2.14)', () => {
  /** A loop watch the test drives: a stall is reported once, as the real one does. */
  function stallingWatch() {
    let pending = 0
    const watch: LoopWatch = {
      takeStall() {
        const stall = pending
        pending = 0
        return stall
      },
    }
    return { watch, stall: (ms: number) => (pending += ms) }
  }

  function wardenWith(watch: LoopWatch) {
    const clock = new ManualClock()
    const db = openDatabase(':memory:')
    const warden = buildWarden({
      store: createStore(db, storeHooks),
      leases: new LeaseBook(watch),
      clock,
      signer: createSigner(SIGNING_KEY),
      contract: { ...DEFAULT_CONTRACT, heartbeat_timeout_seconds: 3, expiration_seconds: null },
    })
    warden.liveness.resume()
    return { warden, clock, close: () => db.close() }
  }

  it('reaps no worker whose lease ran out only during the stall, and its queued heartbeat then continues', () => {
    const { watch, stall } = stallingWatch()
    const { warden, clock, close } = wardenWith(watch)
    const healthy = registerRoot(warden)
    clock.advance(500)
    warden.liveness.heartbeat(healthy.id)
    // The loop stalls for 11.6 s (the issue's CEL stall); the reaper's timer runs first after it.
    clock.advance(11_600)
    stall(11_500)
    expect(warden.liveness.tick().reaped).toBe(0)
    expect(warden.liveness.heartbeat(healthy.id).directive).toBe('continue')
    close()
  })

  it('still reaps a silent worker after the lease it had left before the stall', () => {
    const { watch, stall } = stallingWatch()
    const { warden, clock, close } = wardenWith(watch)
    const silent = registerRoot(warden)
    clock.advance(1_000)
    clock.advance(11_600)
    stall(11_600)
    expect(warden.liveness.tick().reaped).toBe(0)
    clock.advance(1_999)
    expect(warden.liveness.tick().reaped).toBe(0)
    clock.advance(2)
    expect(warden.liveness.tick().reaped).toBe(1)
    expect(storeOf(warden).workers.get(silent.id)!.status).toBe('reaped')
    close()
  })

  it('reaps after a stall the same way without a loop watch (the control: the stall alone would have reaped)', () => {
    const { warden, clock, close } = wardenWith({ takeStall: () => 0 })
    registerRoot(warden)
    clock.advance(12_600)
    expect(warden.liveness.tick().reaped).toBe(1)
    close()
  })
})

describe('sliced audit verification', () => {
  const t = wardenPerTest()
  const sliced = (warden: Warden) => {
    const verifier = createAuditVerifier(storeOf(warden))
    let steps = 1
    while (!verifier.step(0)) steps++
    return { result: verifier.result(), steps }
  }

  it('agrees with the whole-chain verification, in many small steps', () => {
    const { warden } = t({ max_replicas: 1000 })
    for (let i = 0; i < 250; i++) warden.admission.issueRoot({})
    const { result, steps } = sliced(warden)
    expect(result).toEqual(verifyChain(storeOf(warden).audit.iterate(), storeOf(warden).audit.head()))
    expect(result.ok).toBe(true)
    expect(steps).toBeGreaterThan(2)
  })

  it.each([
    ['an edited record', `UPDATE audit SET actor = 'forged' WHERE seq = 120`, 120],
    ['a removed record', `DELETE FROM audit WHERE seq = 150`, 151],
    ['a removed tail', `DELETE FROM audit WHERE seq > 200`, 201],
  ])('finds %s at the same seq', (_what, sql, seq) => {
    const { warden } = t({ max_replicas: 1000 })
    for (let i = 0; i < 250; i++) warden.admission.issueRoot({})
    storeOf(warden).db.exec(sql)
    const whole = verifyChain(storeOf(warden).audit.iterate(), storeOf(warden).audit.head())
    expect(sliced(warden).result).toEqual(whole)
    expect(whole.first_invalid_seq).toBe(seq)
  })

  it('finds a record appended beyond the head', () => {
    const { warden } = t()
    for (let i = 0; i < 5; i++) warden.admission.issueRoot({})
    const db = storeOf(warden).db
    db.exec(`INSERT INTO audit SELECT seq + 1, at, type, actor, worker_id, parent_id, code, data, hash, hash FROM audit WHERE seq = (SELECT max(seq) FROM audit)`)
    const head = storeOf(warden).audit.head()
    expect(sliced(warden).result).toMatchObject({ ok: false, first_invalid_seq: head.seq + 1 })
  })
})
