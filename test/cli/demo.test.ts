// `warden demo` end to end with a small contract: as many workers as the contract allows, each its
// own OS process, every one of them gone after the kill switch, and an audit chain that verifies.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DemoSummary } from '../../src/cli/demo-view.js'
import type { WardenClient } from '../../src/client/client.js'
import type { WorkerSummary } from '../../src/schemas/index.js'
import type { ServerProcess } from '../helpers/server.js'
import { contract, OPERATOR_TOKEN, operatorClient, realServer, stopServer } from '../client/support.js'
import { binary } from './support.js'

/** Root plus three children at depth 1: depth, cooldown, a stop condition and the quota all bite. */
const SMALL = contract({
  max_depth: 1,
  max_replicas: 4,
  cooldown_seconds: 0.5,
  heartbeat_timeout_seconds: 3,
  manifest_ttl_seconds: 10,
  stop_conditions: [
    {
      name: 'work_before_replication',
      description: 'two units of work first',
      expression: 'has(manifest.state_snapshot.parent_work_done) && manifest.state_snapshot.parent_work_done < 2',
    },
  ],
})

const tempDirs: string[] = []
afterAll(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

function contractFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'warden-demo-test-'))
  tempDirs.push(dir)
  const file = join(dir, 'contract.json')
  writeFileSync(file, JSON.stringify(SMALL))
  return file
}

function gone(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return false
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH'
  }
}

function checkSummary(summary: DemoSummary) {
  expect(summary.registered).toBe(SMALL.max_replicas)
  expect(summary.workers_by_depth).toEqual({ 0: 1, 1: 3 })
  expect(summary.workers.every((worker) => worker.depth <= SMALL.max_depth)).toBe(true)
  expect(summary.denials.depth_exceeded).toBeGreaterThan(0)
  expect(summary.denials.stop_condition).toBeGreaterThan(0)
  expect(summary.kill_switch).toEqual({ engaged: true, terminated: SMALL.max_replicas })
  expect(summary.processes).toMatchObject({ started: 4, exited: 4, exited_after_kill_switch: 4, forced: 0, still_running: 0 })
  expect(summary.audit).toMatchObject({ ok: true, first_invalid_seq: null })
  // Each worker stopped on its own, told by the controller, and every process is really gone.
  for (const worker of summary.workers) {
    expect(worker).toMatchObject({ status: 'killed', reason: 'kill_switch', stop_reason: 'kill_switch', exit_code: 0, exit_signal: null })
    expect(gone(worker.pid!), `pid ${worker.pid}`).toBe(true)
  }
  expect(new Set(summary.workers.map((worker) => worker.pid)).size).toBe(4)
}

describe('warden demo', () => {
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

  it('against WARDEN_URL: the workers the contract allows, all exited after the kill switch, audit verified', async () => {
    const result = await binary(
      ['demo', '--no-sandbox', '--json', '--contract', contractFile(), '--work-ms', '150', '--settle', '1', '--duration', '30'],
      { WARDEN_URL: server.url, WARDEN_OPERATOR_TOKEN: OPERATOR_TOKEN },
      50_000,
    )
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    const summary = JSON.parse(result.stdout) as DemoSummary
    checkSummary(summary)

    // The controller's own record agrees.
    const workers: WorkerSummary[] = []
    for await (const worker of op.workers()) workers.push(worker)
    expect(workers).toHaveLength(SMALL.max_replicas)
    expect(workers.every((worker) => worker.status === 'killed' && worker.reason === 'kill_switch')).toBe(true)
    expect(new Set(workers.map((worker) => worker.worker_id))).toEqual(new Set(summary.workers.map((worker) => worker.worker_id)))
    expect((await op.verifyAudit()).ok).toBe(true)
    expect((await op.getKillSwitch()).engaged).toBe(true)
    const denied = await op.listAudit({ type: 'spawn_denied', limit: 1000 })
    expect(denied.items.some((record) => record.code === 'quota_exceeded' || record.code === 'depth_exceeded')).toBe(true)
  })

  it('with its own controller (npx warden demo), human output ends with the summary', async () => {
    const result = await binary(['demo', '--no-sandbox', '--contract', contractFile(), '--work-ms', '150', '--settle', '1', '--duration', '30'], {}, 50_000)
    expect(result.code).toBe(0)
    expect(result.stdout).toContain('(started by the demo)')
    expect(result.stdout).toMatch(/spawn approved: child [0-9a-f]{8} at depth 1/)
    expect(result.stdout).toMatch(/spawn denied: (depth_exceeded|stop_condition work_before_replication)/)
    expect(result.stdout).toContain('kill switch ENGAGED: 4 workers terminated')
    const summary = result.stdout.slice(result.stdout.indexOf('Summary'))
    expect(summary).toMatch(/workers\s+4 registered \(max_replicas 4, max_depth 1\)/)
    expect(summary).toMatch(/by depth\s+depth 0: 1, depth 1: 3/)
    expect(summary).toMatch(/processes\s+4 started, 4 exited \(4 after the kill switch\)/)
    expect(summary).toMatch(/audit chain\s+verified/)
    for (const pid of [...result.stdout.matchAll(/process (\d+) exited/g)].map((match) => Number(match[1]))) {
      expect(gone(pid), `pid ${pid}`).toBe(true)
    }
  })
})
