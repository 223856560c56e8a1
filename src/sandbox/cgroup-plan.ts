// Which cgroup files a sandbox gets, for which host layout — pure data, no fs here.
// Layouts in the wild: v2 only (controllers in cgroup.controllers), v1 only (one mount per
// controller), and hybrid (v1 controllers plus a cgroup2 mount without controllers, whose core
// files cgroup.procs/.freeze/.kill/.events and cpu.stat still work). Each limit comes from v2 when
// its controller is enabled there, else from its v1 hierarchy, else it is not enforced (and the
// driver says so). Freeze and kill come from cgroup2's core files when any cgroup2 mount exists.
import type { Resources } from '../schemas/index.js'

export const LIMIT_CONTROLLERS = ['memory', 'cpu', 'pids'] as const
export type LimitController = (typeof LIMIT_CONTROLLERS)[number]
export type V1Controller = LimitController | 'cpuacct' | 'freezer'
const V1_CONTROLLERS: readonly V1Controller[] = ['memory', 'cpu', 'cpuacct', 'pids', 'freezer']

/** Where this process sits in each hierarchy: mount point joined with its own cgroup path. */
export interface CgroupMounts {
  unified: string | null
  v1: Partial<Record<V1Controller, string>>
}

/** What the host offers, as the edge found it (mounts, plus files it checked for). */
export interface CgroupHost extends CgroupMounts {
  /** Controllers listed in the cgroup.controllers of `unified` (usable for children). */
  unifiedControllers: string[]
  /** Swap can be limited: v1 memory.memsw.* or v2 memory.swap.max exists. */
  swapAccounting: boolean
}

export type CgroupLayout = 'v2' | 'v1' | 'hybrid'

export interface CgroupNames {
  /** Top folder in each hierarchy, e.g. "warden". */
  top: string
  /** One folder per controller process: "<pid>-<start time>" so a reused pid is not mistaken. */
  controller: string
  worker: string
}

export interface FileWrite {
  file: string
  value: string
}

export interface CgroupPlan {
  /** Leaf directories to create, one per hierarchy used. */
  dirs: string[]
  /** Limit writes, in order (v1 memsw must follow memory.limit_in_bytes). */
  limits: FileWrite[]
  /** cgroup.procs files the launcher writes its own pid into before exec'ing the sandbox. */
  join: string[]
  /** A cgroup.procs listing every process of the sandbox. */
  members: string
  freeze: { mode: 'v2'; file: string; events: string } | { mode: 'v1'; file: string } | null
  kill: { mode: 'v2'; file: string } | { mode: 'signal' }
  usage: {
    cpu: { file: string; format: 'cpu.stat' | 'cpuacct.usage' } | null
    memory: string | null
    peak: string | null
    pids: string | null
    oom: string | null
  }
}

export interface Enforcement {
  layout: CgroupLayout
  source: Record<LimitController, 'v2' | 'v1' | null>
  freeze: 'v2' | 'v1' | null
  kill: 'v2' | 'signal' | null
  swap: boolean
}

export const CPU_PERIOD_US = 100_000
/** The kernel refuses a CFS quota under 1 ms. */
const MIN_CPU_QUOTA_US = 1_000

/** Parses /proc/self/mountinfo and /proc/self/cgroup into this process's cgroup directories. */
export function parseCgroupMounts(mountinfo: string, selfCgroup: string): CgroupMounts {
  const own = new Map<string, string>()
  for (const line of selfCgroup.split('\n')) {
    const match = /^(\d+):([^:]*):(.*)$/.exec(line.trim())
    if (!match) continue
    const [, id, controllers, path] = match as unknown as [string, string, string, string]
    if (id === '0' && controllers === '') own.set('', path)
    else for (const c of controllers.split(',')) own.set(c, path)
  }
  const result: CgroupMounts = { unified: null, v1: {} }
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ')
    if (sep < 0) continue
    const left = line.slice(0, sep).split(' ')
    const [fstype, , superOptions = ''] = line.slice(sep + 3).split(' ')
    const root = unescapeMount(left[3] ?? '/')
    const mountPoint = unescapeMount(left[4] ?? '')
    if (fstype === 'cgroup2') {
      const path = own.get('')
      if (path !== undefined && result.unified === null) result.unified = joinCgroup(mountPoint, root, path)
    } else if (fstype === 'cgroup') {
      const options = superOptions.split(',')
      for (const c of V1_CONTROLLERS) {
        const path = own.get(c)
        if (options.includes(c) && path !== undefined && result.v1[c] === undefined) {
          result.v1[c] = joinCgroup(mountPoint, root, path)
        }
      }
    }
  }
  return result
}

function unescapeMount(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)))
}

/** Mount point + own path, minus the mount's root (a cgroup namespace shows paths below it). */
function joinCgroup(mountPoint: string, root: string, path: string): string {
  const relative = root !== '/' && path.startsWith(root) ? path.slice(root.length) : path
  return (mountPoint + relative).replace(/\/+$/, '') || '/'
}

/** Which mechanism each guarantee uses on this host (null: not enforced here). */
export function enforcement(host: CgroupHost): Enforcement {
  const source = {} as Record<LimitController, 'v2' | 'v1' | null>
  for (const c of LIMIT_CONTROLLERS) {
    source[c] =
      host.unified !== null && host.unifiedControllers.includes(c) ? 'v2' : host.v1[c] !== undefined ? 'v1' : null
  }
  const usesV1 = LIMIT_CONTROLLERS.some((c) => source[c] === 'v1')
  const layout: CgroupLayout = host.unified === null ? 'v1' : usesV1 ? 'hybrid' : 'v2'
  const freeze = host.unified !== null ? 'v2' : host.v1.freezer !== undefined ? 'v1' : null
  const anyCgroup = host.unified !== null || Object.keys(host.v1).length > 0
  const kill = host.unified !== null ? 'v2' : anyCgroup ? 'signal' : null
  return { layout, source, freeze, kill, swap: source.memory !== null && host.swapAccounting }
}

/** The parent folders (top and controller) in every hierarchy the plan uses, top first. */
export function controllerDirs(host: CgroupHost, names: Omit<CgroupNames, 'worker'>): string[] {
  return hierarchyBases(host).flatMap((base) => [
    `${base}/${names.top}`,
    `${base}/${names.top}/${names.controller}`,
  ])
}

/** v2 parents must delegate the limit controllers to their children; one write per parent. */
export function subtreeControlWrites(host: CgroupHost, names: Omit<CgroupNames, 'worker'>): FileWrite[] {
  const e = enforcement(host)
  const v2 = LIMIT_CONTROLLERS.filter((c) => e.source[c] === 'v2')
  if (host.unified === null || v2.length === 0) return []
  const value = v2.map((c) => `+${c}`).join(' ')
  const top = `${host.unified}/${names.top}`
  return [host.unified, top, `${top}/${names.controller}`].map((dir) => ({
    file: `${dir}/cgroup.subtree_control`,
    value,
  }))
}

function hierarchyBases(host: CgroupHost): string[] {
  const e = enforcement(host)
  const bases: string[] = []
  if (host.unified !== null) bases.push(host.unified)
  for (const c of V1_CONTROLLERS) {
    const dir = host.v1[c]
    if (dir === undefined) continue
    const used =
      (c === 'memory' || c === 'cpu' || c === 'pids') ? e.source[c] === 'v1'
      : c === 'freezer' ? e.freeze === 'v1'
      : host.unified === null // cpuacct: cpu usage when there is no cgroup2 cpu.stat
    if (used && !bases.includes(dir)) bases.push(dir)
  }
  return bases
}

export function planCgroup(host: CgroupHost, names: CgroupNames, resources: Resources, pidsMax: number): CgroupPlan {
  const e = enforcement(host)
  const leaf = (base: string) => `${base}/${names.top}/${names.controller}/${names.worker}`
  const dirs = hierarchyBases(host).map(leaf)
  const u = host.unified !== null ? leaf(host.unified) : null
  const v1 = (c: V1Controller) => {
    const dir = host.v1[c]
    if (dir === undefined) throw new Error(`no v1 ${c} hierarchy`)
    return leaf(dir)
  }

  const memoryBytes = String(resources.memory_limit_mb * 1024 * 1024)
  const quota = String(Math.max(MIN_CPU_QUOTA_US, Math.round(resources.cpu_limit * CPU_PERIOD_US)))
  const limits: FileWrite[] = []
  if (e.source.memory === 'v2') {
    limits.push({ file: `${u}/memory.max`, value: memoryBytes })
    if (host.swapAccounting) limits.push({ file: `${u}/memory.swap.max`, value: '0' })
  } else if (e.source.memory === 'v1') {
    limits.push({ file: `${v1('memory')}/memory.limit_in_bytes`, value: memoryBytes })
    if (host.swapAccounting) limits.push({ file: `${v1('memory')}/memory.memsw.limit_in_bytes`, value: memoryBytes })
  }
  if (e.source.cpu === 'v2') {
    limits.push({ file: `${u}/cpu.max`, value: `${quota} ${CPU_PERIOD_US}` })
  } else if (e.source.cpu === 'v1') {
    limits.push({ file: `${v1('cpu')}/cpu.cfs_period_us`, value: String(CPU_PERIOD_US) })
    limits.push({ file: `${v1('cpu')}/cpu.cfs_quota_us`, value: quota })
  }
  if (e.source.pids === 'v2') limits.push({ file: `${u}/pids.max`, value: String(pidsMax) })
  else if (e.source.pids === 'v1') limits.push({ file: `${v1('pids')}/pids.max`, value: String(pidsMax) })

  const join = dirs.map((dir) => `${dir}/cgroup.procs`)
  const members = join[0]
  if (members === undefined) throw new Error('no cgroup hierarchy to place a sandbox in')

  const memoryDir = e.source.memory === 'v2' ? u : e.source.memory === 'v1' ? v1('memory') : null
  const pidsDir = e.source.pids === 'v2' ? u : e.source.pids === 'v1' ? v1('pids') : null
  return {
    dirs,
    limits,
    join,
    members,
    freeze:
      e.freeze === 'v2' ? { mode: 'v2', file: `${u}/cgroup.freeze`, events: `${u}/cgroup.events` }
      : e.freeze === 'v1' ? { mode: 'v1', file: `${v1('freezer')}/freezer.state` }
      : null,
    kill: u !== null ? { mode: 'v2', file: `${u}/cgroup.kill` } : { mode: 'signal' },
    usage: {
      cpu:
        u !== null ? { file: `${u}/cpu.stat`, format: 'cpu.stat' }
        : host.v1.cpuacct !== undefined ? { file: `${v1('cpuacct')}/cpuacct.usage`, format: 'cpuacct.usage' }
        : null,
      memory: memoryDir === null ? null : `${memoryDir}/${e.source.memory === 'v2' ? 'memory.current' : 'memory.usage_in_bytes'}`,
      peak: memoryDir === null ? null : `${memoryDir}/${e.source.memory === 'v2' ? 'memory.peak' : 'memory.max_usage_in_bytes'}`,
      pids: pidsDir === null ? null : `${pidsDir}/pids.current`,
      oom: memoryDir === null ? null : `${memoryDir}/${e.source.memory === 'v2' ? 'memory.events' : 'memory.oom_control'}`,
    },
  }
}

/** Reads `key value` lines (cpu.stat, memory.events, memory.oom_control, cgroup.events). */
export function readKeyed(text: string, key: string): number | null {
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/)
    if (k === key && v !== undefined) return Number(v)
  }
  return null
}
