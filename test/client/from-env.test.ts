// Managed workers' side of SPEC §5: a worker process started from WARDEN_URL (a Unix socket here),
// WARDEN_WORKER_ID, WARDEN_LEASE_TOKEN and WARDEN_MANIFEST, against a real server listening on a
// Unix socket; frozen (SIGSTOP) past its lease while its lease is held for it, and thawed, it
// carries on instead of concluding its lease is lost.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { WardenClient } from '../../src/client/client.js'
import { Worker } from '../../src/client/worker.js'
import type { ServerProcess } from '../helpers/server.js'
import { contract, operatorClient, realServer, resetWorkers, stopServer, waitFor } from './support.js'

const ROOT = resolve(import.meta.dirname, '..', '..')

interface WorkerProcess {
  child: ChildProcess
  events: Array<{ type: string; [key: string]: unknown }>
  exited: Promise<number | null>
}

const children: WorkerProcess[] = []

/** Starts test/fixtures/env-worker.ts with exactly the environment a sandbox gets. */
function startWorkerProcess(env: Record<string, string>): WorkerProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test', 'fixtures', 'env-worker.ts')], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const events: WorkerProcess['events'] = []
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      events.push(JSON.parse(line))
    } catch {
      events.push({ type: 'output', line })
    }
  })
  createInterface({ input: child.stderr! }).on('line', (line) => events.push({ type: 'stderr', line }))
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)))
  const started = { child, events, exited }
  children.push(started)
  return started
}

describe('Worker.fromEnv against a server on a Unix socket', () => {
  let dir: string
  let server: ServerProcess
  let op: WardenClient
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-sock-'))
    server = await realServer({ WARDEN_HOST: `unix:${join(dir, 'warden.sock')}` })
    op = operatorClient(server.url)
  })
  afterEach(async () => {
    for (const worker of children.splice(0)) {
      if (worker.child.exitCode === null && worker.child.signalCode === null) {
        process.kill(worker.child.pid!, 'SIGCONT')
        process.kill(worker.child.pid!, 'SIGKILL')
      }
      await worker.exited
    }
  })
  afterAll(async () => {
    await op?.close()
    await stopServer(server)
    rmSync(dir, { recursive: true, force: true })
  })

  it('serves on the socket: the URL is unix:/path and the client speaks to it', async () => {
    expect(server.url).toBe(`unix:${join(dir, 'warden.sock')}`)
    expect(await op.health()).toEqual({ status: 'ok' })
  })

  it('a process started from WARDEN_* heartbeats on its given lease, survives a freeze past its lease, and stops on a kill', async () => {
    await op.putContract(contract({ heartbeat_timeout_seconds: 1.5 }))
    await resetWorkers(op)
    const manifest = await op.issueManifest({ state_snapshot: { task: 'managed' } })
    const { lease_token: token } = await op.register(manifest)
    const lease = { worker_id: manifest.worker_id, lease_token: token }
    const worker = startWorkerProcess({
      WARDEN_URL: server.url,
      WARDEN_WORKER_ID: manifest.worker_id,
      WARDEN_LEASE_TOKEN: token,
      WARDEN_MANIFEST: JSON.stringify(manifest),
    })
    const count = (type: string) => worker.events.filter((event) => event.type === type).length
    // The process takes longer to boot (tsx) than its 1.5 s lease: the lease is held for it meanwhile.
    await waitFor('the worker process to attach', async () => count('attached') > 0 || void (await op.heartbeat(lease)), 15_000)
    await waitFor('two heartbeats of the worker process', () => count('heartbeat') >= 2, 10_000)
    expect(worker.events.find((event) => event.type === 'attached')).toMatchObject({ worker_id: manifest.worker_id, directive: 'continue' })
    expect(worker.events.find((event) => event.type === 'started')).toMatchObject({ worker_id: manifest.worker_id, depth: 0, state: 'running' })

    // Frozen for more than twice its 1.5 s lease, while the controller keeps the lease alive (as
    // it does for a quarantined, frozen sandbox). On waking every timer is overdue at once.
    process.kill(worker.child.pid!, 'SIGSTOP')
    const frozenUntil = Date.now() + 4_000
    while (Date.now() < frozenUntil) {
      await op.heartbeat(lease)
      await new Promise((resolve) => setTimeout(resolve, 300))
    }
    const beatsBefore = count('heartbeat')
    process.kill(worker.child.pid!, 'SIGCONT')
    await waitFor('heartbeats after the thaw', () => count('heartbeat') >= beatsBefore + 3, 10_000)
    expect(worker.events.filter((event) => event.type === 'terminated')).toEqual([])
    expect((await op.getWorker(manifest.worker_id)).status).toBe('active')

    await op.kill(manifest.worker_id, { reason: 'test over' })
    expect(await worker.exited).toBe(0)
    expect(worker.events.find((event) => event.type === 'exit')).toMatchObject({ reason: 'killed' })
  })

  it('without a lease token it registers WARDEN_MANIFEST itself (over the socket, with a key)', async () => {
    await resetWorkers(op)
    const manifest = await op.issueManifest()
    const worker = await Worker.fromEnv({ env: { WARDEN_URL: server.url, WARDEN_MANIFEST: JSON.stringify(manifest) } })
    try {
      expect(worker.registration?.worker.worker_id).toBe(manifest.worker_id)
      expect((await op.getWorker(manifest.worker_id)).status).toBe('active')
    } finally {
      await worker.shutdown('test over')
    }
  })

  it('refuses an environment that does not name a worker', async () => {
    await expect(Worker.fromEnv({ env: { WARDEN_URL: server.url } })).rejects.toThrow(/WARDEN_MANIFEST/)
    await expect(Worker.fromEnv({ env: { WARDEN_MANIFEST: '{}' } })).rejects.toThrow(/WARDEN_URL/)
    const manifest = await op.issueManifest()
    await expect(
      Worker.fromEnv({ env: { WARDEN_URL: server.url, WARDEN_MANIFEST: JSON.stringify(manifest), WARDEN_WORKER_ID: 'f'.repeat(32) } }),
    ).rejects.toThrow(/WARDEN_WORKER_ID/)
    await expect(Worker.fromEnv({ env: { WARDEN_URL: 'unix:relative.sock', WARDEN_MANIFEST: JSON.stringify(manifest) } })).rejects.toThrow(/absolute/)
  })
})
