// Managed workers end to end (SPEC §5, §2.12–2.13): a real server with the process driver, a
// rogue worker launched through the API that ignores its 410s and hides a setsid'ed escapee, and
// every decision observed from outside — /proc and the cgroup files, never the driver's word.
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { WardenClient } from '../../src/client/client.js'
import type { ContractInput, Manifest, WorkerView } from '../../src/schemas/index.js'
import { auditLog, listWorkers, outcome } from '../helpers/calls.js'
import { contract, range, sleep, waitFor } from '../helpers/fixtures.js'
import { killMarked, markedPids, newMarker, stat } from '../helpers/proc.js'
import { canRunSandboxes, cgroupTops, childCgroups, removeCgroupTree } from '../helpers/sandbox-lab.js'
import { createServerTracker, startServer, type Running } from '../helpers/server.js'

// The rogue's own report.json (written by test/fixtures/rogue-worker.mjs): read fields as they come.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any

const ROGUE = fileURLToPath(new URL('../fixtures/rogue-worker.mjs', import.meta.url))
/** SPEC §2.12: once a decision commits, no process of the sandbox is left within this. */
const GONE_WITHIN_MS = 1000

const markers: string[] = []
const roots: string[] = []

function managedEnv(extra: Record<string, string> = {}): Record<string, string> {
  const root = `warden-e2e-${process.pid}-${randomBytes(3).toString('hex')}`
  roots.push(root)
  return { WARDEN_SANDBOX: 'process', WARDEN_SANDBOX_CGROUP: root, WARDEN_SANDBOX_PIDS_MAX: '64', WARDEN_REAPER_INTERVAL_MS: '100', ...extra }
}

interface Rogue {
  id: string
  marker: string
  manifest: Manifest
  worker: WorkerView
  workDir: string
}

async function launchRogue(running: Running, env: Record<string, string> = {}): Promise<Rogue> {
  const marker = newMarker()
  markers.push(marker)
  const launched = await running.client.launchSandbox({ program: { command: [process.execPath, ROGUE], env: { HOSTILE_MARKER: marker, ...env } } })
  const id = launched.worker.worker_id
  return { id, marker, manifest: launched.manifest, worker: launched.worker, workDir: join(dirname(running.server.dbFile), 'sandboxes', id) }
}

const putContract = (client: WardenClient, overrides: Partial<ContractInput>) => client.putContract(contract(overrides))
const rogueProgram = (marker: string) => ({ program: { command: [process.execPath, ROGUE], env: { HOSTILE_MARKER: marker } } })
/** The lease token Warden gave a managed worker, read from its sandbox's environment. */
const leaseTokenOf = (pid: number) =>
  readFileSync(`/proc/${pid}/environ`, 'utf8')
    .split('\0')
    .find((entry) => entry.startsWith('WARDEN_LEASE_TOKEN='))!
    .slice('WARDEN_LEASE_TOKEN='.length)

async function report<T = Json>(rogue: Pick<Rogue, 'workDir'>, until: (seen: T) => boolean = () => true): Promise<T> {
  const file = join(rogue.workDir, 'report.json')
  return waitFor(
    `report of ${rogue.workDir}`,
    async () => {
      if (!existsSync(file)) return undefined
      const seen = JSON.parse(readFileSync(file, 'utf8')) as T
      return until(seen) ? seen : undefined
    },
    15_000,
    20,
  )
}

/** The escapee is running: the rogue's tree has more than one process, one in a session of its own. */
async function escapeeRunning(rogue: Rogue): Promise<number[]> {
  return waitFor('the escapee runs', async () => {
    const pids = markedPids(rogue.marker)
    const sessions = new Set(pids.map((pid) => stat(pid)?.session))
    return pids.length >= 3 && sessions.size >= 2 ? pids : undefined
  }, 15_000, 20)
}

/** Milliseconds until no process carrying `marker` is left, failing past SPEC's 1 s. */
async function goneWithin(marker: string, since: number): Promise<number> {
  await waitFor(`no process of ${marker} left within ${GONE_WITHIN_MS} ms`, async () => (markedPids(marker).length === 0 ? true : undefined), GONE_WITHIN_MS - (performance.now() - since), 5)
  return performance.now() - since
}

const status = async (client: WardenClient, id: string) => (await client.getWorker(id)).status

const servers = createServerTracker()
afterAll(async () => {
  await servers.cleanup()
  for (const marker of markers) killMarked(marker)
  for (const root of roots) removeCgroupTree(root)
})

describe.runIf(canRunSandboxes)('a rogue managed worker under every decision', () => {
  let running: Running
  beforeAll(async () => {
    running = await servers.start({ env: managedEnv() })
  }, 60_000)

  it('launched through the API: registered, running in its sandbox, heartbeating through the socket', async () => {
    const rogue = await launchRogue(running)
    expect(rogue.worker).toMatchObject({ status: 'active', managed: true, sandbox: { driver: 'process', state: 'running' } })
    const pid = rogue.worker.sandbox!.pid!
    expect(markedPids(rogue.marker)).toContain(pid)
    const seen = await report<{ heartbeats: Record<string, number> }>(rogue, (s) => (s.heartbeats['200'] ?? 0) > 0)
    expect(seen.heartbeats['200']).toBeGreaterThan(0)
    const view = await waitFor('usage read from the cgroup', async () => {
      const body = await running.client.getWorker(rogue.id)
      return (body.sandbox?.usage?.pids ?? 0) > 0 ? body : undefined
    })
    expect(view.sandbox!.usage!.memory_bytes).toBeGreaterThan(0)
    await running.client.kill(rogue.id)
  })

  it('kill: every process, the setsid escapee included, is gone within 1 s; the rogue ignored its 410 until then', async () => {
    const rogue = await launchRogue(running)
    await escapeeRunning(rogue)
    const sent = performance.now()
    const res = await running.client.kill(rogue.id, { reason: 'e2e kill' })
    expect(res.killed).toEqual([rogue.id])
    const ms = await goneWithin(rogue.marker, sent)
    const ended = await waitFor('sandbox ended', async () => {
      const body = await running.client.getWorker(rogue.id)
      return body.sandbox?.state === 'ended' ? body : undefined
    })
    expect(ended).toMatchObject({ status: 'killed', sandbox: { signal: 'SIGKILL' } })
    expect((await auditLog(running.client, { worker_id: rogue.id })).map((r) => r.type)).toEqual(
      expect.arrayContaining(['worker_registered', 'sandbox_launched', 'worker_killed', 'sandbox_exited']),
    )
    console.log(`kill -> last process gone: ${ms.toFixed(0)} ms`)
  })

  it('the kill switch ends every managed tree (children launched by Warden included) within 1 s', async () => {
    const parent = await launchRogue(running, { ROGUE_SPAWN: '1' })
    const seen = await report<{ spawn: { status: number; body: Manifest } | null }>(parent, (s) => s.spawn !== null)
    expect(seen.spawn?.status).toBe(201)
    const other = await launchRogue(running)
    await escapeeRunning(other)
    // The child runs the root's program, so it carries the root's marker: 2 rogue trees under it.
    await waitFor('the child runs', async () => (markedPids(parent.marker).length >= 6 ? true : undefined), 15_000)
    const sent = performance.now()
    const res = await running.client.engageKillSwitch('e2e drill')
    expect(res.engaged).toBe(true)
    const ms = Math.max(await goneWithin(parent.marker, sent), await goneWithin(other.marker, sent))
    console.log(`kill switch -> last process of 3 sandboxes gone: ${ms.toFixed(0)} ms`)
    expect(await status(running.client, seen.spawn!.body.worker_id)).toBe('killed')
    await running.client.disengageKillSwitch()
  })

  it('reap: a rogue that never heartbeats is reaped, and its processes are gone within 1 s of the reap', async () => {
    await putContract(running.client, { heartbeat_timeout_seconds: 1 })
    const rogue = await launchRogue(running, { ROGUE_HEARTBEAT: '0' })
    await escapeeRunning(rogue)
    await waitFor('reaped', async () => ((await status(running.client, rogue.id)) === 'reaped' ? true : undefined), 10_000, 10)
    const seenAt = performance.now()
    await goneWithin(rogue.marker, seenAt)
    await putContract(running.client, {})
  })

  it('expiry: a rogue past its lifetime is expired, and its processes are gone within 1 s', async () => {
    await putContract(running.client, { expiration_seconds: 2 })
    const rogue = await launchRogue(running)
    await escapeeRunning(rogue)
    await waitFor('expired', async () => ((await status(running.client, rogue.id)) === 'expired' ? true : undefined), 10_000, 10)
    await goneWithin(rogue.marker, performance.now())
    await putContract(running.client, {})
  })

  it('deregistration by the worker itself ends its sandbox too', async () => {
    const rogue = await launchRogue(running)
    await escapeeRunning(rogue)
    const token = leaseTokenOf(rogue.worker.sandbox!.pid!)
    const sent = performance.now()
    const res = await running.client.deregister({ worker_id: rogue.id, lease_token: token })
    expect(res.status).toBe('deregistered')
    await goneWithin(rogue.marker, sent)
  })

  it('quarantine freezes every process (no CPU time, never reaped while frozen); release thaws it with a fresh lease', async () => {
    await putContract(running.client, { heartbeat_timeout_seconds: 1 })
    const rogue = await launchRogue(running, { ROGUE_SPIN: '1' })
    await escapeeRunning(rogue)
    const cpu = () => markedPids(rogue.marker).reduce((sum, pid) => sum + (stat(pid)?.cpuTicks ?? 0), 0)
    const res = await running.client.quarantine(rogue.id, 'e2e freeze')
    expect(res.status).toBe('quarantined')
    await waitFor('frozen', async () => (await running.client.getWorker(rogue.id)).sandbox?.state === 'frozen', 5_000, 20)
    const frozenAt = cpu()
    // Three lease lengths: a worker that cannot heartbeat is not reaped, Warden holds its lease.
    await sleep(3_000)
    expect(cpu()).toBe(frozenAt)
    expect(await status(running.client, rogue.id)).toBe('quarantined')
    expect(markedPids(rogue.marker).length).toBeGreaterThanOrEqual(3)

    expect((await running.client.release(rogue.id)).status).toBe('active')
    await waitFor('thawed', async () => (await running.client.getWorker(rogue.id)).sandbox?.state === 'running', 5_000, 20)
    await waitFor('CPU time moves again', async () => (cpu() > frozenAt ? true : undefined), 5_000, 50)
    // It heartbeats again on its own and stays alive past a lease length.
    await sleep(1_500)
    expect(await status(running.client, rogue.id)).toBe('active')
    const types = (await auditLog(running.client, { worker_id: rogue.id })).map((r) => r.type)
    expect(types).toEqual(expect.arrayContaining(['worker_quarantined', 'sandbox_frozen', 'worker_released', 'sandbox_thawed']))
    expect(types).not.toContain('worker_reaped')
    await running.client.kill(rogue.id)
    await putContract(running.client, {})
  })

  it("spawn: the child runs the root's program with the child's state_snapshot; the parent cannot register it elsewhere", async () => {
    const parent = await launchRogue(running, { ROGUE_SPAWN: '1' })
    const seen = await report<{ spawn: { status: number; body: Manifest }; register_child: { status: number; body: Json } }>(
      parent,
      (s: Json) => s.register_child !== null,
    )
    expect(seen.spawn.status).toBe(201)
    const child = seen.spawn.body
    // The manifest it got is already used: Warden registered and launched it.
    expect(seen.register_child).toMatchObject({ status: 409, body: { code: 'manifest_already_used' } })
    const childView = await running.client.getWorker(child.worker_id)
    expect(childView).toMatchObject({ status: 'active', managed: true, parent_id: parent.id, depth: 1, sandbox: { state: 'running' } })
    const childReport = await report<{ worker_id: string; depth: number; state_snapshot: Json }>({
      workDir: join(dirname(running.server.dbFile), 'sandboxes', child.worker_id),
    })
    expect(childReport).toMatchObject({ worker_id: child.worker_id, depth: 1, state_snapshot: { generation: 1, from: parent.id } })
    const cmdline = readFileSync(`/proc/${childView.sandbox!.pid}/cmdline`, 'utf8').split('\0').filter(Boolean)
    expect(cmdline.slice(-2)).toEqual([process.execPath, ROGUE])
    await running.client.kill(parent.id, { cascade: true })
    await goneWithin(parent.marker, performance.now())
  })
})

describe.runIf(canRunSandboxes)('the controller ends however it ends', () => {
  it('SIGKILL of the controller: no process of any sandbox is left within 1 s; at restart the workers are exited (controller stopped)', async () => {
    const env = managedEnv()
    const first = await servers.start({ env })
    const rogues = [await launchRogue(first), await launchRogue(first)]
    for (const rogue of rogues) await escapeeRunning(rogue)
    const sent = performance.now()
    await first.server.kill('SIGKILL')
    for (const rogue of rogues) await goneWithin(rogue.marker, sent)

    const second = await startServer({ dbFile: first.server.dbFile, env })
    servers.track(second)
    const client = servers.client(second)
    {
      for (const rogue of rogues) {
        const body = await client.getWorker(rogue.id)
        expect(body).toMatchObject({ status: 'exited', reason: 'controller stopped', sandbox: { state: 'ended' } })
      }
      const exited = (await auditLog(client, { type: 'sandbox_exited' })).filter((r) => r.data.reason === 'controller stopped')
      expect(exited.map((r) => r.worker_id).sort()).toEqual(rogues.map((r) => r.id).sort())
      // The restarted controller removed the dead one's cgroups.
      const root = env.WARDEN_SANDBOX_CGROUP!
      for (const top of cgroupTops(root)) expect(childCgroups(top).filter((name) => !name.startsWith(`${second.pid}-`))).toEqual([])
    }
  })

  it('SIGTERM: the workers end exited (controller stopped) and every process is gone', async () => {
    const running = await servers.start({ env: managedEnv() })
    const rogue = await launchRogue(running)
    await escapeeRunning(rogue)
    const sent = performance.now()
    await running.server.kill('SIGTERM')
    await waitFor('all gone', async () => (markedPids(rogue.marker).length === 0 ? true : undefined), 5_000, 10)
    console.log(`SIGTERM -> last process gone: ${(performance.now() - sent).toFixed(0)} ms`)
  })
})

describe.runIf(canRunSandboxes)('the races of the existing suites, with managed workers', () => {
  let running: Running
  beforeAll(async () => {
    running = await servers.start({ env: managedEnv(), connections: 32 })
  }, 60_000)

  const liveSandboxes = async () =>
    (await listWorkers(running.client)).filter((w) => w.managed && (w.status === 'active' || w.status === 'quarantined'))

  it('quota: 12 parallel launches against max_replicas 3 start exactly 3 sandboxes', async () => {
    await putContract(running.client, { max_replicas: 3 })
    const marker = newMarker()
    markers.push(marker)
    const answers = await Promise.all(range(12).map(() => outcome(running.client.launchSandbox(rogueProgram(marker)))))
    expect(answers.filter((a) => a.ok)).toHaveLength(3)
    expect(answers.filter((a) => a.status === 403)).toHaveLength(9)
    expect(answers.filter((a) => a.status === 403).every((a) => a.code === 'quota_exceeded')).toBe(true)
    expect(await liveSandboxes()).toHaveLength(3)
    // From outside: exactly three rogue trees (their init processes) run.
    const inits = await waitFor('3 rogues', async () => {
      const roots = markedPids(marker).filter((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith(`${process.execPath}\0${ROGUE}`))
      return roots.length === 3 ? roots : undefined
    }, 10_000)
    expect(inits).toHaveLength(3)
    await running.client.engageKillSwitch()
    await goneWithin(marker, performance.now())
    await running.client.disengageKillSwitch()
  })

  it('cooldown and depth: 8 parallel spawns of one managed parent approve and launch exactly one child; the child may not spawn past max_depth', async () => {
    await putContract(running.client, { max_replicas: 20, cooldown_seconds: 60, max_depth: 1 })
    const parent = await launchRogue(running)
    const lease = { worker_id: parent.id, lease_token: leaseTokenOf(parent.worker.sandbox!.pid!) }
    const answers = await Promise.all(range(8).map((i) => outcome(running.client.spawn(lease, { reason: `race ${i}` }))))
    const approved = answers.flatMap((a) => (a.ok ? [a.value] : []))
    expect(approved).toHaveLength(1)
    expect(answers.filter((a) => !a.ok).map((a) => `${a.status} ${a.code}`)).toEqual(range(7).map(() => '429 cooldown_active'))
    const child = approved[0]!
    const childView = await running.client.getWorker(child.worker_id)
    expect(childView).toMatchObject({ managed: true, status: 'active', sandbox: { state: 'running' } })
    expect((await liveSandboxes()).length).toBe(2)

    const childLease = { worker_id: child.worker_id, lease_token: leaseTokenOf(childView.sandbox!.pid!) }
    const deeper = await Promise.all(range(4).map(() => outcome(running.client.spawn(childLease, { reason: 'deeper' }))))
    expect(deeper.map((a) => a.code)).toEqual(['depth_exceeded', 'depth_exceeded', 'depth_exceeded', 'depth_exceeded'])
    expect((await liveSandboxes()).length).toBe(2)
    await running.client.kill(parent.id)
    await goneWithin(parent.marker, performance.now())
  })

  it('kill switch engaged while launches are in flight: nothing launched survives, nothing launches after', async () => {
    await putContract(running.client, { max_replicas: 20, cooldown_seconds: 0, max_depth: 3 })
    const marker = newMarker()
    markers.push(marker)
    const launches = range(6).map(() => outcome(running.client.launchSandbox(rogueProgram(marker))))
    await sleep(30)
    const engaged = await running.client.engageKillSwitch('race')
    expect(engaged.engaged).toBe(true)
    const answers = await Promise.all(launches)
    for (const answer of answers) if (!answer.ok) expect(answer.status).toBe(403)
    // Launches that committed before the switch are killed once they run; none come after.
    await waitFor('every rogue gone', async () => (markedPids(marker).length === 0 ? true : undefined), 5_000, 10)
    await sleep(500)
    expect(markedPids(marker)).toEqual([])
    expect(await liveSandboxes()).toEqual([])
    const after = await outcome(running.client.launchSandbox(rogueProgram(marker)))
    expect(after.code).toBe('kill_switch_engaged')
    await running.client.disengageKillSwitch()
  })
})
