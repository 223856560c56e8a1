// SPEC §3 Retries for POST /v1/sandboxes: a launch whose answer is lost after it committed (the
// connection cut once the request was written) is retried by the client with the same key, and
// there is one managed worker, one sandbox_launched record and one running program — counted in
// /proc, not from the controller's word.
import { randomBytes } from 'node:crypto'
import { afterAll, describe, expect, it } from 'vitest'
import { WardenClient, type RetryEvent } from '../../src/client/client.js'
import { startCutProxy, type CutProxy } from '../helpers/cut-proxy.js'
import { auditLog, listWorkers } from '../helpers/calls.js'
import { waitFor } from '../helpers/fixtures.js'
import { createServerTracker } from '../helpers/server.js'
import { cmdline, killMarked, markedPids, newMarker } from '../helpers/proc.js'
import { canRunSandboxes, removeCgroupTree } from '../helpers/sandbox-lab.js'

const servers = createServerTracker()
const root = `warden-e2e-idem-${process.pid}-${randomBytes(3).toString('hex')}`
const marker = newMarker()
let proxy: CutProxy | undefined
const clients: WardenClient[] = []

afterAll(async () => {
  await servers.cleanup()
  await proxy?.close()
  await Promise.allSettled(clients.map((client) => client.close()))
  killMarked(marker)
  removeCgroupTree(root)
})

describe.runIf(canRunSandboxes)('POST /v1/sandboxes with a lost answer', () => {
  it('is retried with the same key: one managed worker, one sandbox_launched record, one running program', async () => {
    const running = await servers.start({ env: { WARDEN_SANDBOX: 'process', WARDEN_SANDBOX_CGROUP: root, WARDEN_SANDBOX_PIDS_MAX: '64' } })
    proxy = await startCutProxy(running.server.url)
    const retries: RetryEvent[] = []
    const op = new WardenClient({
      url: proxy.url,
      token: running.server.operatorToken,
      circuitBreaker: false,
      retry: { retries: 5, baseDelayMs: 20, maxDelayMs: 100 },
      onRetry: (event) => retries.push(event),
    })
    clients.push(op)
    const program = { command: [process.execPath, '-e', 'setInterval(() => {}, 1000)'], env: { HOSTILE_MARKER: marker } }

    proxy.cutNext(1)
    const launch = await op.launchSandbox({ program })

    expect(proxy.lost).toHaveLength(1)
    expect(proxy.lost[0]).toMatchObject({ status: 201, body: { manifest: launch.manifest } })
    expect(retries.map((event) => event.error.code)).toEqual(['connection_failed'])
    const audit = (type: 'sandbox_launched' | 'worker_registered') => auditLog(running.client, { type })
    expect((await audit('sandbox_launched')).map((record) => record.worker_id)).toEqual([launch.worker.worker_id])
    expect((await audit('worker_registered')).map((record) => record.worker_id)).toEqual([launch.worker.worker_id])
    const workers = await listWorkers(running.client)
    expect(workers.map((worker) => worker.worker_id)).toEqual([launch.worker.worker_id])

    // One program running, seen from outside: node processes carrying the marker (not the bwrap around it).
    const programs = () => markedPids(marker).filter((pid) => cmdline(pid).startsWith(`${process.execPath} -e`))
    await waitFor('the program to run', async () => (programs().length > 0 ? true : undefined), 10_000)
    await new Promise((resolve) => setTimeout(resolve, 500))
    expect(programs()).toHaveLength(1)

    await running.client.kill(launch.worker.worker_id, { reason: 'test over' })
    await waitFor('the sandbox to end', async () => (markedPids(marker).length === 0 ? true : undefined), 5_000)
  })
})
