// The v1 path (no cgroup2: v1 freezer + SIGKILL of every task instead of cgroup.kill, cpuacct for
// CPU time), run on this hybrid host by telling the driver to ignore its cgroup2 mount. The same
// hostile program, observed from outside.
import { existsSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sleep, waitFor } from '../helpers/fixtures.js'
import { cgroupOf, cmdline, cpuTicks, escapees, markedPids } from '../helpers/proc.js'
import { canRunSandboxes, createSandboxLab, type SandboxLab } from '../helpers/sandbox-lab.js'

const hasV1Freezer = existsSync('/sys/fs/cgroup/freezer/cgroup.procs')

describe.skipIf(!canRunSandboxes || !hasV1Freezer)('process driver on cgroup v1 only (freezer + signals)', () => {
  let lab: SandboxLab
  beforeAll(async () => {
    lab = await createSandboxLab({ pidsMax: 48, ignoreCgroup2: true })
  })
  afterAll(async () => {
    await lab?.close()
  })

  it('says it runs on v1 and still enforces everything', () => {
    expect(lab.driver.status()).toMatchObject({
      driver: 'process',
      available: true,
      cgroup: 'v1',
      enforces: { memory: true, cpu: true, pids: true, network: true, freeze: true, kill: true },
    })
  })

  it('kill leaves no process, the setsid escapee included, without cgroup.kill', async () => {
    const s = lab.spec('escape')
    const { pid } = await lab.driver.launch(s.launch)
    const escapee = await waitFor(
      'the escapee',
      async () => escapees(s.marker).find((p) => p !== pid),
      10_000,
    )
    const unified = cgroupOf(escapee, '')
    expect(unified).not.toContain(lab.root) // really not placed in cgroup2
    expect(cgroupOf(escapee, 'freezer')).toContain(`/${lab.root}/`)
    await lab.killAndCheckGone(s.worker_id, s.marker)
    await sleep(50)
    expect(lab.exits.filter((e) => e.worker_id === s.worker_id)).toEqual([
      { worker_id: s.worker_id, exit_code: null, signal: 'SIGKILL', oom: false },
    ])
  })

  it('freeze stops CPU time through the v1 freezer, thaw resumes, and a frozen sandbox can still be killed', async () => {
    const s = lab.spec('spin', { cpu_limit: 2 })
    await lab.driver.launch(s.launch)
    await waitFor('the spinners', async () => (markedPids(s.marker).filter((p) => cmdline(p).includes('hostile-spinner')).length >= 2 ? true : undefined), 10_000)
    const all = markedPids(s.marker)
    await lab.driver.freeze(s.worker_id)
    const frozenAt = cpuTicks(all)
    await sleep(500)
    expect(cpuTicks(all)).toBe(frozenAt)
    expect(lab.driver.usage(s.worker_id)?.cpu_seconds).toBeGreaterThan(0)

    await lab.driver.thaw(s.worker_id)
    const thawedAt = cpuTicks(all)
    await waitFor('CPU use after thaw', async () => (cpuTicks(all) > thawedAt + 10 ? true : undefined), 5000)

    await lab.driver.freeze(s.worker_id)
    await lab.killAndCheckGone(s.worker_id, s.marker)
  })

  it('reports an exit code of a program that ends by itself', async () => {
    const s = lab.spec('no-such-mode')
    await lab.driver.launch(s.launch)
    const exit = await waitFor('the exit', async () => lab.exits.find((e) => e.worker_id === s.worker_id), 10_000)
    expect(exit).toEqual({ worker_id: s.worker_id, exit_code: 2, signal: null, oom: false })
  })
})
