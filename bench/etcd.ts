// etcd as a reference lease service: a single member on 127.0.0.1 with a temporary data dir,
// leases granted and kept alive through its JSON gateway (etcd 3.4: /v3/lease/*).
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Api } from './lib/http.js'
import { freePort, startProcess, stopProcess, waitFor200, type Proc } from './lib/proc.js'

export const ETCD_INSTALL_HINT = 'apt-get install etcd-server   # Debian/Ubuntu; or put an etcd (>= 3.4) binary on PATH'

export function findEtcd(): { path: string; version: string } | null {
  try {
    const path = execFileSync('sh', ['-c', 'command -v etcd'], { encoding: 'utf8' }).trim()
    if (path === '') return null
    const version = /etcd Version: (\S+)/.exec(execFileSync(path, ['--version'], { encoding: 'utf8' }))?.[1] ?? 'unknown'
    return { path, version }
  } catch {
    return null
  }
}

export interface Etcd {
  url: string
  proc: Proc
  version: string
  /** The gateway prefix: /v3 (3.4+) or /v3beta (3.3). */
  prefix: string
  stop(): Promise<void>
}

export async function startEtcd(binary: { path: string; version: string }): Promise<Etcd> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-bench-etcd-'))
  const clientPort = await freePort()
  const peerPort = await freePort()
  const client = `http://127.0.0.1:${clientPort}`
  const peer = `http://127.0.0.1:${peerPort}`
  const proc = startProcess('etcd', binary.path, [
    '--name', 'bench',
    '--data-dir', join(dir, 'data'),
    '--listen-client-urls', client,
    '--advertise-client-urls', client,
    '--listen-peer-urls', peer,
    '--initial-advertise-peer-urls', peer,
    '--initial-cluster', `bench=${peer}`,
    '--initial-cluster-state', 'new',
    '--logger', 'zap',
    '--log-level', 'error',
  ])
  await waitFor200(`${client}/health`, proc, performance.now(), 30_000, 50)
  const api = new Api(client, 4)
  let prefix = '/v3'
  const probe = await api.call('POST', `${prefix}/lease/grant`, { body: { TTL: 60 } })
  if (probe.status === 404) prefix = '/v3beta'
  await api.close()
  return {
    url: client,
    proc,
    version: binary.version,
    prefix,
    async stop() {
      await stopProcess(proc, 'SIGTERM')
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Grants `count` leases of `ttlSeconds`; their ids (int64 as decimal strings). */
export async function grantLeases(etcd: Etcd, count: number, ttlSeconds: number): Promise<string[]> {
  const api = new Api(etcd.url, 16)
  try {
    const ids: string[] = []
    let started = 0
    const next = async (): Promise<void> => {
      while (started < count) {
        started++
        const granted = await api.expect<{ ID: string; TTL: string }>(200, 'POST', `${etcd.prefix}/lease/grant`, { body: { TTL: ttlSeconds } })
        ids.push(granted.ID)
      }
    }
    await Promise.all(Array.from({ length: 16 }, next))
    return ids
  } finally {
    await api.close()
  }
}
