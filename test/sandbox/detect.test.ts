import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { detectSandboxDriver } from '../../src/sandbox/detect.js'
import { SandboxUnavailableError, type LaunchSpec } from '../../src/sandbox/driver.js'
import { canRunSandboxes } from '../helpers/sandbox-lab.js'

const launch: LaunchSpec = {
  worker_id: 'w1',
  program: { command: ['/bin/true'] },
  resources: { cpu_limit: 1, memory_limit_mb: 64, network_policy: { allow_controller: false, allow_external: false } },
  env: {},
}

describe('detectSandboxDriver', () => {
  const dirs: string[] = []
  const options = (extra: Record<string, unknown> = {}) => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-detect-'))
    dirs.push(dir)
    return { workRoot: join(dir, 'sandboxes'), controllerSocket: join(dir, 'c.sock'), pidsMax: 32, cgroupRoot: `warden-detect-${process.pid}`, ...extra }
  }
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
  })

  it('none: declines with the reason, refuses every launch with sandbox_unavailable, enforces nothing', async () => {
    const driver = await detectSandboxDriver('none', options())
    expect(driver.status()).toEqual({
      driver: 'none',
      available: false,
      reason: 'disabled by WARDEN_SANDBOX=none',
      cgroup: null,
      enforces: { memory: false, cpu: false, pids: false, network: false, freeze: false, kill: false },
    })
    await expect(driver.launch(launch)).rejects.toBeInstanceOf(SandboxUnavailableError)
    await expect(driver.launch(launch)).rejects.toMatchObject({ code: 'sandbox_unavailable' })
    await expect(driver.freeze('w1')).rejects.toMatchObject({ code: 'sandbox_unavailable' })
    await expect(driver.kill(['w1'])).resolves.toBeUndefined()
    expect(driver.usage('w1')).toBeNull()
  })

  it('auto on a host without bubblewrap: the none driver, saying what is missing and how to add it, logged', async () => {
    const warnings: string[] = []
    const driver = await detectSandboxDriver(
      'auto',
      options({ bwrap: '/nonexistent/bwrap', log: { info: () => {}, warn: (_: object, msg?: string) => warnings.push(String(msg)) } }),
    )
    expect(driver.name).toBe('none')
    expect(driver.status().available).toBe(false)
    expect(driver.status().reason).toMatch(/bubblewrap is not installed.*apt-get install bubblewrap/)
    expect(warnings.join('\n')).toMatch(/bubblewrap is not installed/)
    await expect(driver.launch(launch)).rejects.toMatchObject({ code: 'sandbox_unavailable' })
  })

  it('process on a host that cannot enforce: a start-up error naming the cause and the fix', async () => {
    await expect(detectSandboxDriver('process', options({ bwrap: '/nonexistent/bwrap' }))).rejects.toThrow(
      /bubblewrap is not installed.*apt-get install bubblewrap/,
    )
  })

  it.skipIf(!canRunSandboxes)('auto on this host (root, bubblewrap, cgroups): the process driver, saying what it enforces', async () => {
    const driver = await detectSandboxDriver('auto', options())
    try {
      const status = driver.status()
      expect(status).toMatchObject({ driver: 'process', available: true, enforces: { kill: true, network: true } })
      expect(['v2', 'v1', 'hybrid']).toContain(status.cgroup)
      const unenforced = Object.entries(status.enforces).filter(([, on]) => !on)
      // Whatever is not enforced is named in the reason, never silently skipped.
      if (unenforced.length > 0) for (const [what] of unenforced) expect(status.reason).toContain(what)
      else expect(status.reason === null || /swap/.test(status.reason)).toBe(true)
    } finally {
      await driver.shutdown()
    }
  })
})
