// Where a server's CPU went, out of a V8 .cpuprofile (node --cpu-prof): self time by function and
// by package, as shares of the busy (non-idle) time.
import { readFileSync } from 'node:fs'
import { relative } from 'node:path'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
}

interface CpuProfile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

export interface HotSpot {
  name: string
  busyPercent: number
}

export interface ProfileSummary {
  file: string
  busyMs: number
  idleMs: number
  top: HotSpot[]
  byPackage: HotSpot[]
}

function packageOf(where: string, functionName: string): string {
  if (where.startsWith('node_modules/')) {
    const parts = where.split('/')
    return parts[1]!.startsWith('@') ? `${parts[1]}/${parts[2]}` : parts[1]!
  }
  if (where.startsWith('node:')) return 'node core'
  if (where === '') return functionName.startsWith('(') ? functionName : 'native'
  const parts = where.split('/')
  // dist/src/domain/x.js → src/domain; bench/bare-server.ts → bench
  return parts[0] === 'dist' ? parts.slice(1, 3).join('/') : parts.slice(0, Math.min(2, parts.length - 1)).join('/') || where
}

export function summarizeProfile(file: string, root: string, limit = 25): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const self = new Map<string, number>()
  const packages = new Map<string, number>()
  let busy = 0
  let idle = 0
  profile.samples.forEach((id, index) => {
    const delta = profile.timeDeltas[index] ?? 0
    const frame = byId.get(id)?.callFrame
    if (!frame) return
    if (frame.functionName === '(idle)') {
      idle += delta
      return
    }
    const url = frame.url.replace(/^file:\/\//, '')
    const where = url.startsWith('/') ? relative(root, url) : url
    const name = `${frame.functionName || '(anonymous)'}${where ? ` ${where.replace(/^node_modules\//, '')}:${frame.lineNumber + 1}` : ''}`
    self.set(name, (self.get(name) ?? 0) + delta)
    const pkg = packageOf(where, frame.functionName)
    packages.set(pkg, (packages.get(pkg) ?? 0) + delta)
    busy += delta
  })
  const rank = (map: Map<string, number>, n: number): HotSpot[] =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, us]) => ({ name, busyPercent: (100 * us) / busy }))
  return { file, busyMs: busy / 1000, idleMs: idle / 1000, top: rank(self, limit), byPackage: rank(packages, 15) }
}
