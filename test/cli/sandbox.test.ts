// `warden sandbox launch -- PROGRAM` and `warden workers ls` with managed workers, against a real
// server running the process driver.
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync, rmdirSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { waitFor } from '../helpers/fixtures.js'
import { createServerTracker, type Running } from '../helpers/server.js'
import { canRunSandboxes, cgroupTops, childCgroups } from '../helpers/sandbox-lab.js'
import { cli } from './support.js'

const servers = createServerTracker()
const root = `warden-cli-${process.pid}-${randomBytes(3).toString('hex')}`
let running: Running
let env: NodeJS.ProcessEnv

beforeAll(async () => {
  if (!canRunSandboxes) return
  running = await servers.start({ env: { WARDEN_SANDBOX: 'process', WARDEN_SANDBOX_CGROUP: root } })
  env = { WARDEN_URL: running.server.url, WARDEN_OPERATOR_TOKEN: running.server.operatorToken, PATH: process.env.PATH }
}, 60_000)

afterAll(async () => {
  await servers.cleanup()
  for (const top of cgroupTops(root)) {
    for (const ctl of childCgroups(top)) {
      for (const leaf of childCgroups(`${top}/${ctl}`)) rmdirSync(`${top}/${ctl}/${leaf}`, { recursive: false })
      rmdirSync(`${top}/${ctl}`)
    }
    try {
      rmdirSync(top)
    } catch {
      // never made
    }
  }
})

describe.runIf(canRunSandboxes)('warden sandbox', () => {
  it('launch -- node <relative script>: runs it managed with the resources given; workers ls shows its sandbox', async () => {
    // A relative path from this folder: the CLI makes it absolute (the sandbox starts elsewhere).
    const launched = await cli(
      ['sandbox', 'launch', '--cpu', '0.25', '--memory-mb', '96', '--state', '{"task":"cli"}', '--json', '--', 'node', 'test/fixtures/rogue-worker.mjs'],
      env,
    )
    expect(launched.code, launched.stderr).toBe(0)
    const { worker } = JSON.parse(launched.stdout)
    expect(worker).toMatchObject({
      status: 'active',
      managed: true,
      state_snapshot: { task: 'cli' },
      resources: { cpu_limit: 0.25, memory_limit_mb: 96 },
      sandbox: { driver: 'process', state: 'running' },
    })
    const cmdline = readFileSync(`/proc/${worker.sandbox.pid}/cmdline`, 'utf8').split('\0').filter(Boolean)
    expect(cmdline.slice(-2)).toEqual([process.execPath, `${process.cwd()}/test/fixtures/rogue-worker.mjs`])

    const listed = await waitFor('usage in the list', async () => {
      const ls = await cli(['workers', 'ls'], env)
      const line = ls.lines.find((l) => l.startsWith(worker.worker_id))
      return line && /\d+ pids/.test(line) ? line : undefined
    })
    expect(listed).toMatch(/running\s+[\d.]+s cpu, [\d.]+ (KiB|MiB), \d+ pids/)

    const driver = await cli(['sandbox', 'driver'], env)
    expect(driver.stdout).toMatch(/driver\s+process/)
    expect((await cli(['workers', 'kill', worker.worker_id], env)).code).toBe(0)
    await waitFor('its first process is gone', async () => (existsSync(`/proc/${worker.sandbox.pid}`) ? undefined : true), 5_000, 10)
  })

  it('launch without a program is a usage error', async () => {
    const result = await cli(['sandbox', 'launch'], env)
    expect(result.code).toBe(2)
  })
})
