// The demo's rogue worker (SPEC §2.12): launched by Warden in a sandbox, it ignores every 410,
// hides a setsid'ed escapee out of its process tree, forks until refused, lets a child allocate
// past the memory limit, and tries to reach the outside. What each attempt got goes to
// report.json in its work folder, for the demo to show.
import { spawn } from 'node:child_process'
import { renameSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { WardenClient } from '../client/client.js'
import { WardenError } from '../client/errors.js'

const seen = {
  heartbeats: {} as Record<string, number>,
  escapee: 'not tried',
  forks: { spawned: 0, refused: null as string | null },
  memory: { allocator: 'running' as string },
  network: {} as Record<string, string>,
}
const report = () => {
  writeFileSync('report.json.tmp', JSON.stringify(seen))
  renameSync('report.json.tmp', 'report.json')
}

function connect(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port })
    const done = (result: string) => {
      socket.destroy()
      resolve(result)
    }
    socket.setTimeout(2000, () => done('timed out'))
    socket.once('connect', () => done('CONNECTED'))
    socket.once('error', (error: NodeJS.ErrnoException) => done(error.code ?? String(error)))
  })
}

const client = new WardenClient({ url: process.env.WARDEN_URL!, retry: false, circuitBreaker: false })
const lease = { worker_id: process.env.WARDEN_WORKER_ID!, lease_token: process.env.WARDEN_LEASE_TOKEN! }

// 1. Ignore the controller: heartbeat forever, whatever it answers.
setInterval(() => {
  client.heartbeat(lease).then(
    () => void (seen.heartbeats['200'] = (seen.heartbeats['200'] ?? 0) + 1),
    (error: unknown) => {
      const status = error instanceof WardenError ? String(error.status) : 'unreachable'
      seen.heartbeats[status] = (seen.heartbeats[status] ?? 0) + 1
    },
  )
  report()
}, 300)

// One attempt after the other, so each shows on its own: the outside, memory, the tree, forks.
// 2. Reach the outside: a public address, and the controller's TCP port on the host.
const targets: Array<[string, number]> = [['1.1.1.1', 443]]
const tcp = process.env.ROGUE_CONTROLLER_TCP
if (tcp) targets.push([tcp.slice(0, tcp.lastIndexOf(':')), Number(tcp.slice(tcp.lastIndexOf(':') + 1))])
for (const [host, port] of targets) seen.network[`${host}:${port}`] = 'trying'
report()
for (const [host, port] of targets) seen.network[`${host}:${port}`] = await connect(host, port)
report()

// 3. Allocate past the memory limit, in a child.
await new Promise<void>((resolve) => {
  const allocator = spawn(process.execPath, ['-e', 'const a = []; for (;;) a.push(Buffer.alloc(1 << 20, 1))'], { stdio: 'ignore' })
  allocator.on('exit', (code, signal) => {
    seen.memory.allocator = signal ? `killed by ${signal}` : `exited ${code}`
    report()
    resolve()
  })
  allocator.on('error', (error) => {
    seen.memory.allocator = `could not start: ${error.message}`
    resolve()
  })
})

// 4. Escape the process tree: a double-forked, setsid'ed grandchild.
spawn('/bin/sh', ['-c', "setsid sh -c 'while :; do sleep 1; done' rogue-escapee &"], { stdio: 'ignore', detached: true }).unref()
seen.escapee = 'started (setsid, reparented)'
report()

// 5. Fork until the kernel refuses.
const fork = () => {
  if (seen.forks.spawned >= 2000) return
  const child = spawn('/bin/sleep', ['3600'], { stdio: 'ignore' })
  child.once('spawn', () => {
    seen.forks.spawned++
    fork()
  })
  child.once('error', (error: NodeJS.ErrnoException) => {
    seen.forks.refused = error.code ?? String(error)
    report()
  })
}
fork()
