// The Worker runtime against a real server: the heartbeat loop, directives (suspend, 410
// terminate), perform, maybeReplicate, shutdown, expiry, and what it does when the controller
// goes away (and comes back).
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { WardenClient } from '../../src/client/client.js'
import { WardenError, type StopReason } from '../../src/client/errors.js'
import { Worker, type WorkerEvent, type WorkerOptions } from '../../src/client/worker.js'
import type { ServerProcess } from '../helpers/server.js'
import { contract, operatorClient, realServer, rejection, resetWorkers, restart, stopServer, waitFor } from './support.js'

const started: Worker[] = []

/** Starts a worker from a fresh root manifest, recording its events and its onTerminate call. */
async function startWorker(op: WardenClient, url: string, options: Partial<WorkerOptions> = {}) {
  const events: Array<WorkerEvent & { at: number }> = []
  const terminated: Array<{ reason: StopReason; detail: string }> = []
  const worker = await Worker.start(await op.issueManifest(), {
    url,
    onEvent: (event) => events.push({ ...event, at: Date.now() }),
    onTerminate: (reason, detail) => void terminated.push({ reason, detail }),
    ...options,
  })
  started.push(worker)
  return { worker, events, terminated }
}

afterEach(async () => {
  await Promise.all(started.splice(0).map((worker) => worker.shutdown('test over').catch(() => null)))
})

describe('Worker with a live controller', () => {
  let server: ServerProcess
  let op: WardenClient
  beforeAll(async () => {
    server = await realServer()
    op = operatorClient(server.url)
  })
  afterAll(async () => {
    await op?.close()
    await stopServer(server)
  })
  beforeEach(async () => {
    // Heartbeats every 0.5 s.
    await op.putContract(contract({ heartbeat_timeout_seconds: 1.5 }))
    await resetWorkers(op)
  })

  it('registers and keeps its lease with heartbeats at the interval the controller answers', async () => {
    const { worker, events } = await startWorker(op, server.url)
    expect(worker.state).toBe('running')
    expect(worker.depth).toBe(0)
    expect(events[0]).toMatchObject({ type: 'registered' })
    await waitFor('four heartbeats', () => events.filter((event) => event.type === 'heartbeat').length >= 4, 10_000)
    // Past the 1.5 s lease of the registration: only the heartbeats kept it alive.
    const view = await op.getWorker(worker.id)
    expect(view.status).toBe('active')
    expect(view.last_heartbeat_at).not.toBeNull()
    expect(worker.state).toBe('running')
  })

  it('suspend pauses perform (and aborts the task in flight); a release resumes it', async () => {
    const { worker, events } = await startWorker(op, server.url)
    expect(await worker.perform(async () => 'done')).toBe('done')

    let aborted: unknown
    const running = worker.perform(
      (signal) =>
        new Promise((resolve) =>
          signal.addEventListener('abort', () => {
            aborted = signal.reason
            resolve('stopped')
          }),
        ),
    )
    await op.quarantine(worker.id, 'inspect it')
    await waitFor('suspended', () => worker.state === 'suspended', 3_000)
    expect(await running).toBe('stopped')
    expect(aborted).toMatchObject({ code: 'worker_suspended' })
    expect(await rejection(worker.perform(() => 'never'))).toMatchObject({ code: 'worker_suspended' })
    const denied = await worker.maybeReplicate('while suspended')
    expect(denied).toMatchObject({ approved: false, code: 'parent_quarantined' })

    await op.release(worker.id)
    await waitFor('resumed', () => worker.state === 'running', 3_000)
    expect(events.map((event) => event.type)).toEqual(expect.arrayContaining(['suspended', 'resumed']))
    expect(await worker.perform(() => 42)).toBe(42)
  })

  it('a 410 terminate stops everything and runs onTerminate(reason) once', async () => {
    const { worker, terminated } = await startWorker(op, server.url)
    let aborted = false
    const running = worker.perform((signal) => new Promise((resolve) => signal.addEventListener('abort', () => resolve((aborted = true)))))
    await op.kill(worker.id, { reason: 'operator says stop' })
    expect(await worker.done).toMatchObject({ reason: 'killed' })
    await running
    expect(aborted).toBe(true)
    expect(terminated).toHaveLength(1)
    expect(terminated[0]!.reason).toBe('killed')
    expect(worker.state).toBe('terminated')
    const refused = await rejection(worker.perform(() => 'never'))
    expect(refused).toBeInstanceOf(WardenError)
    expect(refused).toMatchObject({ code: 'worker_terminated', reason: 'killed' })
    expect(await worker.maybeReplicate('after death')).toMatchObject({ approved: false, code: 'worker_terminated' })
    expect(await worker.shutdown()).toBeNull()
  })

  it('the kill switch reaches every worker as terminate with reason kill_switch', async () => {
    const a = await startWorker(op, server.url)
    const b = await startWorker(op, server.url)
    await op.engageKillSwitch('drill')
    try {
      expect(await a.worker.done).toMatchObject({ reason: 'kill_switch' })
      expect(await b.worker.done).toMatchObject({ reason: 'kill_switch' })
    } finally {
      await op.disengageKillSwitch()
    }
  })

  it('maybeReplicate returns the child manifest, which starts a child worker, or a typed denial', async () => {
    await op.putContract(contract({ heartbeat_timeout_seconds: 1.5, max_depth: 1, cooldown_seconds: 30 }))
    const { worker } = await startWorker(op, server.url)
    const approved = await worker.maybeReplicate('split the work', { part: 2 })
    if (!approved.approved) throw new Error(`denied: ${approved.code}`)
    expect(approved.manifest).toMatchObject({ parent_id: worker.id, depth: 1, state_snapshot: { part: 2 } })

    const cooldown = await worker.maybeReplicate('again')
    expect(cooldown).toMatchObject({ approved: false, code: 'cooldown_active' })
    if (!cooldown.approved) expect(cooldown.retry_after).toBeGreaterThan(0)

    const child = await Worker.start(approved.manifest, { url: server.url })
    started.push(child)
    expect(child.parentId).toBe(worker.id)
    expect(child.state_snapshot).toEqual({ part: 2 })
    expect(await child.maybeReplicate('deeper')).toMatchObject({ approved: false, code: 'depth_exceeded' })
  })

  it('shutdown deregisters with the reason and stops', async () => {
    const { worker, terminated } = await startWorker(op, server.url)
    const view = await worker.shutdown('work finished')
    expect(view).toMatchObject({ status: 'deregistered', reason: 'work finished' })
    expect(terminated).toEqual([{ reason: 'deregistered', detail: 'work finished' }])
    expect((await op.getWorker(worker.id)).status).toBe('deregistered')
  })

  it('refuses to perform once its lifetime is over', async () => {
    await op.putContract(contract({ heartbeat_timeout_seconds: 3, expiration_seconds: 0.5 }))
    const { worker } = await startWorker(op, server.url)
    expect(await worker.perform(() => 'in time')).toBe('in time')
    expect(await worker.done).toMatchObject({ reason: 'expired' })
    expect(await rejection(worker.perform(() => 'too late'))).toMatchObject({ code: 'worker_expired' })
  })

  it('registration denials surface from Worker.start', async () => {
    const manifest = await op.issueManifest()
    const first = await Worker.start(manifest, { url: server.url })
    started.push(first)
    expect(await rejection(Worker.start(manifest, { url: server.url }))).toMatchObject({ code: 'manifest_already_used', status: 409 })
  })
})

describe('Worker when the controller goes away', () => {
  let server: ServerProcess | undefined
  afterEach(async () => {
    await stopServer(server)
    server = undefined
  })

  it('keeps trying with backoff and stops itself once its lease has surely ended', async () => {
    server = await realServer()
    const op = operatorClient(server.url)
    await op.putContract(contract({ heartbeat_timeout_seconds: 1.2 }))
    const { worker, events, terminated } = await startWorker(op, server.url, { reconnect: { baseDelayMs: 50 } })
    await op.close()
    await waitFor('a heartbeat', () => events.some((event) => event.type === 'heartbeat'), 3_000)
    await server.kill('SIGKILL')
    const killedAt = Date.now()

    const { reason } = await worker.done
    expect(reason).toBe('lease_lost')
    expect(terminated[0]!.reason).toBe('lease_lost')
    const unreachable = events.filter((event) => event.type === 'controller_unreachable')
    expect(unreachable.length).toBeGreaterThanOrEqual(2)
    // It stopped no earlier than a full lease after the last renewal it heard.
    const lastBeat = events.filter((event) => event.type === 'heartbeat').at(-1)!
    const stoppedAt = events.find((event) => event.type === 'terminated')!.at
    expect(stoppedAt - lastBeat.at).toBeGreaterThanOrEqual(1_200 - 50)
    expect(stoppedAt).toBeGreaterThan(killedAt)
    expect(await rejection(worker.perform(() => 'no'))).toMatchObject({ code: 'worker_terminated', reason: 'lease_lost' })
  })

  it('rides out a controller restart inside its lease and carries on', async () => {
    server = await realServer()
    const op = operatorClient(server.url)
    await op.putContract(contract({ heartbeat_timeout_seconds: 9 }))
    const { worker, events } = await startWorker(op, server.url, { reconnect: { baseDelayMs: 50, maxDelayMs: 200 } })
    await op.close()
    await server.kill('SIGKILL')
    await waitFor('the outage noticed', () => events.some((event) => event.type === 'controller_unreachable'), 5_000)
    server = await restart(server)
    await waitFor('the controller found again', () => events.some((event) => event.type === 'controller_reachable'), 8_000)
    expect(worker.state).toBe('running')
    const again = operatorClient(server.url)
    expect((await again.getWorker(worker.id)).status).toBe('active')
    expect(await worker.shutdown('done')).toMatchObject({ status: 'deregistered' })
    await again.close()
  })
})
