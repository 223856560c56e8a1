// The process driver for real, as root, against a hostile program (test/fixtures/hostile-sandbox.mjs)
// observed from outside: /proc, the cgroup files, and servers of the test's own.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { networkInterfaces } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createProcessDriver } from '../../src/sandbox/process-driver.js'
import { sleep, waitFor } from '../helpers/fixtures.js'
import { cgroupOf, cmdline, cpuTicks, escapees, markedPids, newMarker, readKey, readNumber, sandboxPids, stat } from '../helpers/proc.js'
import { canRunSandboxes, cgroupTops, childCgroups, CONTROLLER, createSandboxLab, HOSTILE, type SandboxLab } from '../helpers/sandbox-lab.js'

const PIDS_MAX = 48

describe.skipIf(!canRunSandboxes)('process driver against a hostile program (root, bubblewrap, cgroups)', () => {
  let lab: SandboxLab
  beforeAll(async () => {
    lab = await createSandboxLab({ pidsMax: PIDS_MAX })
  })
  afterAll(async () => {
    await lab?.close()
  })

  it('kill leaves no process of the sandbox, the double-forked setsid escapee included, and reports the exit once', async () => {
    const s = lab.spec('escape')
    const { pid } = await lab.driver.launch(s.launch)
    const escapee = await waitFor(
      'the escapee',
      async () =>
        escapees(s.marker).find((p) => p !== pid),
      10_000,
    )
    expect(stat(escapee)?.session).toBe(escapee) // setsid: leader of a session of its own
    const unified = cgroupOf(escapee, '')
    expect(unified).toContain(`/${lab.root}/`)
    expect(markedPids(s.marker).length).toBeGreaterThanOrEqual(4) // bwrap ×2, node, sh/escapee
    for (const p of sandboxPids(s.marker)) expect(cgroupOf(p, ''), cmdline(p)).toContain(`/${lab.root}/`)

    await lab.killAndCheckGone(s.worker_id, s.marker)
    await sleep(50)
    expect(lab.exits.filter((e) => e.worker_id === s.worker_id)).toEqual([
      { worker_id: s.worker_id, exit_code: null, signal: 'SIGKILL', oom: false },
    ])
    expect(lab.driver.usage(s.worker_id)).toBeNull()
    expect(existsSync(unified as string)).toBe(false)
  })

  it("runs the program's first instruction inside every cgroup of the sandbox", async () => {
    const worker_id = `t${randomBytes(8).toString('hex')}`
    const { pid } = await lab.driver.launch({
      worker_id,
      program: { command: ['/bin/sh', '-c', 'cat /proc/self/cgroup > at-start.txt; exec sleep 1000'] },
      resources: { cpu_limit: 1, memory_limit_mb: 64, network_policy: { allow_controller: false, allow_external: false } },
      env: {},
    })
    const file = join(lab.workRoot, worker_id, 'at-start.txt')
    const atStart = await waitFor('at-start.txt', async () => (existsSync(file) && readFileSync(file, 'utf8').includes('\n') ? readFileSync(file, 'utf8') : undefined), 10_000)
    const lines = atStart.trim().split('\n')
    for (const hierarchy of ['', 'memory', 'cpu', 'pids']) {
      const line = lines.find((l) => l.split(':')[1] === hierarchy)
      if (line === undefined || cgroupOf(pid, hierarchy) === null) continue
      expect(line, hierarchy || 'cgroup2').toContain(`/${lab.root}/`)
      expect(line).toContain(worker_id)
    }
    expect(lines.filter((l) => l.includes(worker_id)).length).toBeGreaterThanOrEqual(3)
    await lab.driver.kill([worker_id])
  })

  it('refuses a launch it cannot start without leaving a cgroup behind', async () => {
    const base = lab.spec('escape').launch
    const before = cgroupTops(lab.root).flatMap((top) => childCgroups(top).flatMap((ctl) => childCgroups(`${top}/${ctl}`)))
    await expect(lab.driver.launch({ ...base, program: { command: [] } })).rejects.toThrow(/command/)
    await expect(lab.driver.launch({ ...base, env: { BAD: 'nul\0byte' } })).rejects.toThrow(/cannot start/)
    await expect(lab.driver.launch({ ...base, worker_id: '../escape' })).rejects.toThrow(/invalid worker id/)
    const leaves = () => cgroupTops(lab.root).flatMap((top) => childCgroups(top).flatMap((ctl) => childCgroups(`${top}/${ctl}`)))
    await waitFor('no leftover cgroup', async () => (leaves().filter((leaf) => !before.includes(leaf)).length === 0 ? true : undefined), 2000)
    expect(lab.driver.usage(base.worker_id)).toBeNull()
  })

  it('reports the exit code when the program ends by itself, once, after its last process', async () => {
    const worker_id = `t${randomBytes(8).toString('hex')}`
    await lab.driver.launch({
      worker_id,
      program: { command: ['/bin/sh', '-c', 'exit 7'] },
      resources: { cpu_limit: 1, memory_limit_mb: 64, network_policy: { allow_controller: false, allow_external: false } },
      env: {},
    })
    const exit = await waitFor('the exit', async () => lab.exits.find((e) => e.worker_id === worker_id), 10_000)
    expect(exit).toEqual({ worker_id, exit_code: 7, signal: null, oom: false })
    await sleep(100)
    expect(lab.exits.filter((e) => e.worker_id === worker_id)).toHaveLength(1)
  })

  it('freeze stops every process from using CPU; thaw resumes them', async () => {
    const s = lab.spec('spin', { cpu_limit: 2 })
    await lab.driver.launch(s.launch)
    const spinners = await waitFor(
      'the spinners',
      async () => {
        const pids = markedPids(s.marker).filter((p) => cmdline(p).includes('hostile-spinner'))
        return pids.length >= 2 ? pids : undefined
      },
      10_000,
    )
    const all = markedPids(s.marker)
    await waitFor('CPU use', async () => (cpuTicks(spinners) > 0 ? true : undefined), 5000)

    await lab.driver.freeze(s.worker_id)
    const frozenAt = cpuTicks(all)
    await sleep(500)
    expect(cpuTicks(all)).toBe(frozenAt)
    expect(lab.driver.usage(s.worker_id)).not.toBeNull()

    await lab.driver.thaw(s.worker_id)
    const thawedAt = cpuTicks(all)
    await waitFor('CPU use after thaw', async () => (cpuTicks(all) > thawedAt + 10 ? true : undefined), 5000)
    await lab.killAndCheckGone(s.worker_id, s.marker)
  })

  it('kills a frozen sandbox as surely as a running one', async () => {
    const s = lab.spec('escape')
    await lab.driver.launch(s.launch)
    await waitFor('the escapee', async () => (escapees(s.marker).length > 0 ? true : undefined), 10_000)
    await lab.driver.freeze(s.worker_id)
    await lab.killAndCheckGone(s.worker_id, s.marker)
  })

  it('holds CPU to cpu_limit cores while the program busy-loops on every core', async () => {
    const s = lab.spec('spin', { cpu_limit: 0.5 })
    const { pid } = await lab.driver.launch(s.launch)
    await waitFor('the spinners', async () => (markedPids(s.marker).filter((p) => cmdline(p).includes('hostile-spinner')).length >= 2 ? true : undefined), 10_000)
    const cpuStat = `${cgroupOf(pid, '')}/cpu.stat`
    const usageBefore = readKey(cpuStat, 'usage_usec')
    const started = process.hrtime.bigint()
    await sleep(2500)
    const usageAfter = readKey(cpuStat, 'usage_usec')
    const wallUsec = Number(process.hrtime.bigint() - started) / 1000
    const cores = (usageAfter - usageBefore) / wallUsec
    expect(cores).toBeLessThanOrEqual(0.5 * 1.1)
    // It really spun (a broken spinner would pass the bound above vacuously); the floor is low
    // because this machine's two cores are shared with other work.
    expect(cores).toBeGreaterThan(0.1)
    expect(lab.driver.usage(s.worker_id)?.cpu_seconds).toBeGreaterThan(0.5)
    // Every process of it sits in a cgroup with the quota: the bound above holds because of the
    // kernel, not because this shared machine happened to be busy.
    for (const p of sandboxPids(s.marker)) {
      const v1 = cgroupOf(p, 'cpu')
      if (v1 !== null) expect(readNumber(`${v1}/cpu.cfs_quota_us`)).toBe(50_000)
      else expect(readFileSync(`${cgroupOf(p, '')}/cpu.max`, 'utf8').trim()).toBe('50000 100000')
    }
    await lab.killAndCheckGone(s.worker_id, s.marker)
  })

  it('never lets memory go above memory_limit_mb: the kernel kills inside the sandbox and the OOM is reported', async () => {
    const s = lab.spec('memory', { memory_limit_mb: 48 })
    const { pid } = await lab.driver.launch(s.launch)
    const memoryCgroup = cgroupOf(pid, 'memory') as string
    const seen = await lab.report<{ allocator: { signal: string | null } }>(s.workDir)
    expect(seen.allocator.signal).toBe('SIGKILL')
    expect(readNumber(`${memoryCgroup}/memory.max_usage_in_bytes`)).toBeLessThanOrEqual(48 * 1024 * 1024)
    expect(readKey(`${memoryCgroup}/memory.oom_control`, 'oom_kill')).toBeGreaterThanOrEqual(1)
    const usage = lab.driver.usage(s.worker_id)
    expect(usage?.oom_kills).toBeGreaterThanOrEqual(1)
    expect(usage?.memory_peak_bytes).toBeLessThanOrEqual(48 * 1024 * 1024)
    expect(usage?.memory_peak_bytes).toBeGreaterThan(32 * 1024 * 1024)
    await lab.killAndCheckGone(s.worker_id, s.marker)
    expect(lab.exits.find((e) => e.worker_id === s.worker_id)?.oom).toBe(true)
  })

  it('caps processes and threads at pidsMax however hard the program forks', async () => {
    const s = lab.spec('forks')
    const { pid } = await lab.driver.launch(s.launch)
    const seen = await lab.report<{ spawned: number; error: string }>(s.workDir)
    expect(seen.error).toBe('EAGAIN')
    expect(seen.spawned).toBeGreaterThan(10)
    const tasks = sandboxPids(s.marker).reduce((sum, p) => sum + (stat(p)?.threads ?? 0), 0)
    expect(tasks).toBeLessThanOrEqual(PIDS_MAX)
    expect(readNumber(`${cgroupOf(pid, 'pids')}/pids.current`)).toBeLessThanOrEqual(PIDS_MAX)
    expect(lab.driver.usage(s.worker_id)?.pids).toBeLessThanOrEqual(PIDS_MAX)
    await lab.killAndCheckGone(s.worker_id, s.marker)
  })

  it('keeps the host read-only outside the work folder, hides the data folder, holds no capability, cannot leave its cgroups or make a user namespace', async () => {
    const outside = join(lab.dir, 'outside.txt')
    const otherSandbox = join(lab.workRoot, 'other-worker.txt')
    const s = lab.spec('fs', {}, {
      HOSTILE_WRITE: ['/etc/warden-hostile', '/usr/warden-hostile', outside, otherSandbox, HOSTILE + '.pwned'].join(','),
      HOSTILE_READ: join(lab.secretDir, 'signing-key'),
    })
    const { pid } = await lab.driver.launch(s.launch)
    const seen = await lab.report<{
      writes: Record<string, string>
      reads: Record<string, string>
      leaveCgroup: Record<string, string>
      own: string
      tmp: string
      capabilities: string
      remount: number
      nestedUserns: number
    }>(s.workDir)
    expect(seen.nestedUserns).not.toBe(0)
    expect(seen.capabilities).toBe('0000000000000000')
    expect(seen.remount).not.toBe(0)
    for (const target of ['/etc/warden-hostile', '/usr/warden-hostile', HOSTILE + '.pwned']) {
      expect(seen.writes[target], target).toBe('EROFS')
    }
    // Under /tmp (private tmpfs) and other sandboxes' folders (covered by an empty tmpfs) a write
    // lands in the sandbox's own scratch space, never on the host.
    for (const target of ['/etc/warden-hostile', '/usr/warden-hostile', outside, otherSandbox, HOSTILE + '.pwned']) {
      expect(existsSync(target), target).toBe(false)
    }
    expect(seen.reads[join(lab.secretDir, 'signing-key')]).toBe('ENOENT')
    expect(Object.values(seen.leaveCgroup).every((r) => r !== 'ok')).toBe(true)
    expect(cgroupOf(pid, '')).toContain(`/${lab.root}/`)
    expect(seen.own).toBe('ok')
    expect(seen.tmp).toBe('ok')
    expect(readFileSync(join(s.workDir, 'inside.txt'), 'utf8')).toBe('mine')
    await lab.killAndCheckGone(s.worker_id, s.marker)
  })

  function hostTargets(port: number): string[] {
    const addresses = Object.values(networkInterfaces())
      .flat()
      .filter((a) => a !== undefined && a.family === 'IPv4')
      .map((a) => a!.address)
    return [...new Set(['127.0.0.1', ...addresses])].map((a) => `${a}:${port}`)
  }

  it('allow_external false: no connection reaches the host, the controller socket answers', async () => {
    const port = lab.tcpPort
    const before = lab.tcpConnections.length
    const s = lab.spec('net', {}, { HOSTILE_TCP: hostTargets(port).join(',') })
    await lab.driver.launch(s.launch)
    const seen = await lab.report<{ tcp: Record<string, string>; controller: string }>(s.workDir)
    expect(Object.keys(seen.tcp).length).toBeGreaterThanOrEqual(1)
    for (const [target, result] of Object.entries(seen.tcp)) expect(result, target).not.toBe('connected')
    expect(lab.tcpConnections.length).toBe(before)
    expect(seen.controller).toBe('reply:controller-ok')
    await lab.killAndCheckGone(s.worker_id, s.marker)
  })

  it('allow_external true: the same connection succeeds (the control case)', async () => {
    const port = lab.tcpPort
    const before = lab.tcpConnections.length
    const s = lab.spec(
      'net',
      { network_policy: { allow_controller: true, allow_external: true } },
      { HOSTILE_TCP: `127.0.0.1:${port}` },
    )
    await lab.driver.launch(s.launch)
    const seen = await lab.report<{ tcp: Record<string, string>; controller: string }>(s.workDir)
    expect(seen.tcp[`127.0.0.1:${port}`]).toBe('connected')
    expect(lab.tcpConnections.length).toBe(before + 1)
    expect(seen.controller).toBe('reply:controller-ok')
    await lab.killAndCheckGone(s.worker_id, s.marker)
  })

  it('a SIGKILLed controller takes its sandboxes with it; the next driver sweeps its cgroups', async () => {
    const crashRoot = `${lab.root}-crash`
    const marker = newMarker()
    lab.track(marker)
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', CONTROLLER, join(lab.dir, 'crash-sandboxes'), lab.socketPath, crashRoot, marker, HOSTILE, '2'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    )
    try {
      let out = ''
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
      await waitFor('the controller to launch', async () => (out.includes('"ready":true') ? true : undefined), 30_000)
      await waitFor(
        'both escapees',
        async () => (escapees(marker).length === 2 ? true : undefined),
        10_000,
      )
      const stale = cgroupTops(crashRoot).flatMap((top) => childCgroups(top).map((ctl) => `${top}/${ctl}`))
      expect(stale.length).toBeGreaterThan(0)

      child.kill('SIGKILL')
      await waitFor('no sandbox process left', async () => (markedPids(marker).length === 0 ? true : undefined), 1000, 5)
      // Nobody cleaned up after the dead controller: its cgroups are still there...
      expect(stale.every((d) => existsSync(d))).toBe(true)
      // ...until the next driver starts and sweeps them.
      const next = await createProcessDriver({ workRoot: join(lab.dir, 'crash-sandboxes'), controllerSocket: lab.socketPath, pidsMax: 8, cgroupRoot: crashRoot })
      expect(stale.filter((d) => existsSync(d))).toEqual([])
      await next.shutdown()
      expect(cgroupTops(crashRoot).filter((top) => existsSync(top))).toEqual([])
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    }
  })

  it('shutdown kills every sandbox and removes every cgroup it made', async () => {
    const a = lab.spec('escape')
    const b = lab.spec('spin', { cpu_limit: 0.2 })
    await lab.driver.launch(a.launch)
    await lab.driver.launch(b.launch)
    await waitFor('the escapee', async () => (escapees(a.marker).length > 0 ? true : undefined), 10_000)
    await lab.driver.shutdown()
    expect(markedPids(a.marker)).toEqual([])
    expect(markedPids(b.marker)).toEqual([])
    expect(cgroupTops(lab.root).filter((top) => existsSync(top))).toEqual([])
    await expect(lab.driver.launch(lab.spec('escape').launch)).rejects.toMatchObject({ code: 'sandbox_unavailable' })
  })
})
