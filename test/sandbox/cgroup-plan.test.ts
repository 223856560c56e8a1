import { describe, expect, it } from 'vitest'
import {
  controllerDirs,
  enforcement,
  parseCgroupMounts,
  planCgroup,
  readKeyed,
  subtreeControlWrites,
  type CgroupHost,
} from '../../src/sandbox/cgroup-plan.js'
import { describe as describeStatus } from '../../src/sandbox/process-driver.js'
import type { Resources } from '../../src/schemas/index.js'

// This project's machines: v1 controllers, one mount each, plus cgroup2 without controllers.
const HYBRID_MOUNTINFO = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw`
const HYBRID_SELF = `9:name=systemd:/
8:pids:/
6:freezer:/
4:memory:/lab/7
2:cpuacct:/
1:cpu:/
0::/`

// A systemd host with the unified hierarchy only.
const V2_MOUNTINFO = `25 1 0:22 / /sys rw,nosuid - sysfs sysfs rw
30 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot`
const V2_SELF = '0::/system.slice/warden.service\n'

// An older host: v1 only, cpu and cpuacct co-mounted.
const V1_MOUNTINFO = `31 23 0:28 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755
33 31 0:30 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids`
const V1_SELF = `5:pids:/
4:freezer:/
3:memory:/
2:cpu,cpuacct:/`

const resources: Resources = {
  cpu_limit: 0.5,
  memory_limit_mb: 64,
  network_policy: { allow_controller: true, allow_external: false },
}
const names = { top: 'warden', controller: '100-42', worker: 'w1' }
const MB64 = String(64 * 1024 * 1024)

describe('parseCgroupMounts', () => {
  it('finds every v1 controller and the cgroup2 mount of a hybrid host, under this process own cgroup', () => {
    expect(parseCgroupMounts(HYBRID_MOUNTINFO, HYBRID_SELF)).toEqual({
      unified: '/sys/fs/cgroup/unified',
      v1: {
        cpu: '/sys/fs/cgroup/cpu',
        cpuacct: '/sys/fs/cgroup/cpuacct',
        memory: '/sys/fs/cgroup/memory/lab/7',
        freezer: '/sys/fs/cgroup/freezer',
        pids: '/sys/fs/cgroup/pids',
      },
    })
  })

  it('places a v2-only host under the service own cgroup', () => {
    expect(parseCgroupMounts(V2_MOUNTINFO, V2_SELF)).toEqual({
      unified: '/sys/fs/cgroup/system.slice/warden.service',
      v1: {},
    })
  })

  it('maps co-mounted v1 controllers (cpu,cpuacct) to the same folder', () => {
    const mounts = parseCgroupMounts(V1_MOUNTINFO, V1_SELF)
    expect(mounts.unified).toBeNull()
    expect(mounts.v1.cpu).toBe('/sys/fs/cgroup/cpu,cpuacct')
    expect(mounts.v1.cpuacct).toBe('/sys/fs/cgroup/cpu,cpuacct')
  })

  it('strips the mount root inside a cgroup namespace (a container sees its own cgroup as /)', () => {
    const mountinfo = '30 25 0:26 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw'
    expect(parseCgroupMounts(mountinfo, '0::/docker/abc/inner').unified).toBe('/sys/fs/cgroup/inner')
    expect(parseCgroupMounts(mountinfo, '0::/').unified).toBe('/sys/fs/cgroup')
  })
})

function hybridHost(): CgroupHost {
  return { ...parseCgroupMounts(HYBRID_MOUNTINFO, HYBRID_SELF), unifiedControllers: [], swapAccounting: true }
}

describe('planCgroup', () => {
  it('v2: limits, freeze, kill and usage all from the unified leaf', () => {
    const host: CgroupHost = {
      ...parseCgroupMounts(V2_MOUNTINFO, V2_SELF),
      unifiedControllers: ['cpuset', 'cpu', 'io', 'memory', 'pids'],
      swapAccounting: true,
    }
    const leaf = '/sys/fs/cgroup/system.slice/warden.service/warden/100-42/w1'
    expect(enforcement(host)).toEqual({
      layout: 'v2',
      source: { memory: 'v2', cpu: 'v2', pids: 'v2' },
      freeze: 'v2',
      kill: 'v2',
      swap: true,
    })
    expect(planCgroup(host, names, resources, 256)).toEqual({
      dirs: [leaf],
      limits: [
        { file: `${leaf}/memory.max`, value: MB64 },
        { file: `${leaf}/memory.swap.max`, value: '0' },
        { file: `${leaf}/cpu.max`, value: '50000 100000' },
        { file: `${leaf}/pids.max`, value: '256' },
      ],
      join: [`${leaf}/cgroup.procs`],
      members: `${leaf}/cgroup.procs`,
      freeze: { mode: 'v2', file: `${leaf}/cgroup.freeze`, events: `${leaf}/cgroup.events` },
      kill: { mode: 'v2', file: `${leaf}/cgroup.kill` },
      usage: {
        cpu: { file: `${leaf}/cpu.stat`, format: 'cpu.stat' },
        memory: `${leaf}/memory.current`,
        peak: `${leaf}/memory.peak`,
        pids: `${leaf}/pids.current`,
        oom: `${leaf}/memory.events`,
      },
    })
    const base = '/sys/fs/cgroup/system.slice/warden.service'
    expect(subtreeControlWrites(host, names)).toEqual([
      { file: `${base}/cgroup.subtree_control`, value: '+memory +cpu +pids' },
      { file: `${base}/warden/cgroup.subtree_control`, value: '+memory +cpu +pids' },
      { file: `${base}/warden/100-42/cgroup.subtree_control`, value: '+memory +cpu +pids' },
    ])
  })

  it('v1: limits per hierarchy, memsw so swap cannot stretch memory, freezer + signals for kill', () => {
    const host: CgroupHost = { ...parseCgroupMounts(V1_MOUNTINFO, V1_SELF), unifiedControllers: [], swapAccounting: true }
    const leaf = (h: string) => `/sys/fs/cgroup/${h}/warden/100-42/w1`
    expect(enforcement(host)).toMatchObject({ layout: 'v1', freeze: 'v1', kill: 'signal' })
    expect(planCgroup(host, names, resources, 64)).toEqual({
      dirs: [leaf('memory'), leaf('cpu,cpuacct'), leaf('pids'), leaf('freezer')],
      limits: [
        { file: `${leaf('memory')}/memory.limit_in_bytes`, value: MB64 },
        { file: `${leaf('memory')}/memory.memsw.limit_in_bytes`, value: MB64 },
        { file: `${leaf('cpu,cpuacct')}/cpu.cfs_period_us`, value: '100000' },
        { file: `${leaf('cpu,cpuacct')}/cpu.cfs_quota_us`, value: '50000' },
        { file: `${leaf('pids')}/pids.max`, value: '64' },
      ],
      join: [
        `${leaf('memory')}/cgroup.procs`,
        `${leaf('cpu,cpuacct')}/cgroup.procs`,
        `${leaf('pids')}/cgroup.procs`,
        `${leaf('freezer')}/cgroup.procs`,
      ],
      members: `${leaf('memory')}/cgroup.procs`,
      freeze: { mode: 'v1', file: `${leaf('freezer')}/freezer.state` },
      kill: { mode: 'signal' },
      usage: {
        cpu: { file: `${leaf('cpu,cpuacct')}/cpuacct.usage`, format: 'cpuacct.usage' },
        memory: `${leaf('memory')}/memory.usage_in_bytes`,
        peak: `${leaf('memory')}/memory.max_usage_in_bytes`,
        pids: `${leaf('pids')}/pids.current`,
        oom: `${leaf('memory')}/memory.oom_control`,
      },
    })
    expect(subtreeControlWrites(host, names)).toEqual([])
  })

  it('hybrid: v1 limits, cgroup2 core files for freeze, kill, cpu usage and emptiness', () => {
    const host = hybridHost()
    const u = '/sys/fs/cgroup/unified/warden/100-42/w1'
    const memory = '/sys/fs/cgroup/memory/lab/7/warden/100-42/w1'
    const cpu = '/sys/fs/cgroup/cpu/warden/100-42/w1'
    const pids = '/sys/fs/cgroup/pids/warden/100-42/w1'
    expect(enforcement(host)).toEqual({
      layout: 'hybrid',
      source: { memory: 'v1', cpu: 'v1', pids: 'v1' },
      freeze: 'v2',
      kill: 'v2',
      swap: true,
    })
    expect(planCgroup(host, names, resources, 256)).toEqual({
      dirs: [u, memory, cpu, pids],
      limits: [
        { file: `${memory}/memory.limit_in_bytes`, value: MB64 },
        { file: `${memory}/memory.memsw.limit_in_bytes`, value: MB64 },
        { file: `${cpu}/cpu.cfs_period_us`, value: '100000' },
        { file: `${cpu}/cpu.cfs_quota_us`, value: '50000' },
        { file: `${pids}/pids.max`, value: '256' },
      ],
      join: [`${u}/cgroup.procs`, `${memory}/cgroup.procs`, `${cpu}/cgroup.procs`, `${pids}/cgroup.procs`],
      members: `${u}/cgroup.procs`,
      freeze: { mode: 'v2', file: `${u}/cgroup.freeze`, events: `${u}/cgroup.events` },
      kill: { mode: 'v2', file: `${u}/cgroup.kill` },
      usage: {
        cpu: { file: `${u}/cpu.stat`, format: 'cpu.stat' },
        memory: `${memory}/memory.usage_in_bytes`,
        peak: `${memory}/memory.max_usage_in_bytes`,
        pids: `${pids}/pids.current`,
        oom: `${memory}/memory.oom_control`,
      },
    })
    expect(controllerDirs(host, names)).toEqual([
      '/sys/fs/cgroup/unified/warden',
      '/sys/fs/cgroup/unified/warden/100-42',
      '/sys/fs/cgroup/memory/lab/7/warden',
      '/sys/fs/cgroup/memory/lab/7/warden/100-42',
      '/sys/fs/cgroup/cpu/warden',
      '/sys/fs/cgroup/cpu/warden/100-42',
      '/sys/fs/cgroup/pids/warden',
      '/sys/fs/cgroup/pids/warden/100-42',
    ])
  })

  it('takes a controller from v2 when enabled there, the others from v1', () => {
    const host = { ...hybridHost(), unifiedControllers: ['memory'] }
    const e = enforcement(host)
    expect(e).toMatchObject({ layout: 'hybrid', source: { memory: 'v2', cpu: 'v1', pids: 'v1' } })
    const plan = planCgroup(host, names, resources, 8)
    expect(plan.limits.map((w) => w.file.split('/').pop())).toEqual([
      'memory.max',
      'memory.swap.max',
      'cpu.cfs_period_us',
      'cpu.cfs_quota_us',
      'pids.max',
    ])
    expect(plan.dirs).not.toContain('/sys/fs/cgroup/memory/lab/7/warden/100-42/w1')
  })

  it('writes no swap limit without swap accounting, and the status says swap is not limited', () => {
    const host = { ...hybridHost(), swapAccounting: false }
    const plan = planCgroup(host, names, resources, 8)
    expect(plan.limits.some((w) => w.file.includes('memsw'))).toBe(false)
    expect(describeStatus(enforcement(host)).reason).toMatch(/swap/)
  })

  it('reports each missing controller instead of skipping it silently', () => {
    const { pids: _pids, memory: _memory, ...v1 } = hybridHost().v1
    const host: CgroupHost = { ...hybridHost(), v1 }
    const plan = planCgroup(host, names, resources, 8)
    expect(plan.limits.map((w) => w.file.split('/').pop())).toEqual(['cpu.cfs_period_us', 'cpu.cfs_quota_us'])
    expect(plan.usage.memory).toBeNull()
    const status = describeStatus(enforcement(host))
    expect(status.enforces).toEqual({ memory: false, cpu: true, pids: false, network: true, freeze: true, kill: true })
    expect(status.reason).toMatch(/memory/)
    expect(status.reason).toMatch(/pids/)
    expect(describeStatus(enforcement(hybridHost())).reason).toBeNull()
  })

  it('rounds the CPU quota to whole microseconds, never under the kernel minimum of 1 ms', () => {
    const quota = (cpu_limit: number) =>
      planCgroup(hybridHost(), names, { ...resources, cpu_limit }, 8).limits.find((w) => w.file.endsWith('cfs_quota_us'))?.value
    expect(quota(1.5)).toBe('150000')
    expect(quota(0.333333)).toBe('33333')
    expect(quota(0.001)).toBe('1000')
    expect(quota(4)).toBe('400000')
  })
})

describe('readKeyed', () => {
  it('reads one counter out of a cgroup keyed file', () => {
    expect(readKeyed('oom_kill_disable 0\nunder_oom 0\noom_kill 3\n', 'oom_kill')).toBe(3)
    expect(readKeyed('usage_usec 1500\nuser_usec 1000\n', 'usage_usec')).toBe(1500)
    expect(readKeyed('populated 0\nfrozen 1\n', 'missing')).toBeNull()
  })
})
