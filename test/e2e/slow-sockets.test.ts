// SPEC §7: header, request and keep-alive timeouts and a connection cap, so slow or idle sockets
// cannot hold the server's resources. Attacked with real parallel sockets against a real server.
import { connect, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { registerRoot } from '../helpers/calls.js'
import { range, waitFor } from '../helpers/fixtures.js'
import { createServerTracker, testClient } from '../helpers/server.js'

const servers = createServerTracker()
const sockets: Socket[] = []
const timers: NodeJS.Timeout[] = []
afterEach(async () => {
  for (const timer of timers.splice(0)) clearInterval(timer)
  for (const socket of sockets.splice(0)) socket.destroy()
  await servers.cleanup()
})

interface Tracked {
  socket: Socket
  closedAt: number | null
}

/** A socket the test holds open; `trickle` sends one byte of it every 200 ms, forever. */
function open(url: string, first: string, trickle: string | null): Promise<Tracked> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) })
    sockets.push(socket)
    const tracked: Tracked = { socket, closedAt: null }
    socket.on('error', () => {})
    socket.on('data', () => {})
    socket.on('close', () => {
      tracked.closedAt = Date.now()
    })
    socket.once('connect', () => {
      if (first) socket.write(first)
      if (trickle !== null) {
        const timer = setInterval(() => {
          if (!socket.destroyed) socket.write(trickle)
        }, 200)
        timers.push(timer)
      }
      resolve(tracked)
    })
    socket.once('error', reject)
  })
}

const LIMITS = {
  WARDEN_HEADERS_TIMEOUT_MS: '1000',
  WARDEN_REQUEST_TIMEOUT_MS: '2000',
  WARDEN_KEEP_ALIVE_TIMEOUT_MS: '1000',
}

describe('slow and idle sockets (SPEC §7)', () => {
  it('closes slow-header, slow-body, silent and idle keep-alive sockets within their timeouts while workers keep heartbeating', async () => {
    const { server, client } = await servers.start({ env: LIMITS })
    const worker = await registerRoot(client)
    const started = Date.now()
    const slowHeader = range(300).map(() => open(server.url, 'POST /v1/workers HTTP/1.1\r\nHost: warden\r\nX-Slow: ', 'a'))
    const slowBody = range(300).map(() =>
      open(server.url, 'POST /v1/workers HTTP/1.1\r\nHost: warden\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{', ' '),
    )
    const silent = range(300).map(() => open(server.url, '', null))
    const idleKeepAlive = range(100).map(() => open(server.url, 'GET /healthz HTTP/1.1\r\nHost: warden\r\n\r\n', null))
    const all = await Promise.all([...slowHeader, ...slowBody, ...silent, ...idleKeepAlive])

    // The service stays available to real clients throughout.
    expect((await client.heartbeat(worker)).directive).toBe('continue')

    const lastClosed = await waitFor(
      'every attacking socket closed by the server',
      async () => (all.every((s) => s.closedAt !== null) ? Math.max(...all.map((s) => s.closedAt!)) : undefined),
      15_000,
      100,
    )
    const seconds = (lastClosed - started) / 1000
    console.log(`slow-socket attack: ${all.length} sockets, the last closed by the server after ${seconds.toFixed(1)} s`)
    expect((await client.heartbeat(worker)).directive).toBe('continue')
  }, 40_000)

  it('refuses sockets beyond WARDEN_MAX_CONNECTIONS at once and serves again when they go', async () => {
    const { server, client } = await servers.start({ env: { ...LIMITS, WARDEN_HEADERS_TIMEOUT_MS: '20000', WARDEN_REQUEST_TIMEOUT_MS: '20000', WARDEN_MAX_CONNECTIONS: '100' }, connections: 1 })
    const worker = await registerRoot(client)
    await client.close()
    const held = await Promise.all(range(200).map(() => open(server.url, '', null)))
    const refused = await waitFor(
      'the sockets over the cap closed',
      async () => {
        const closed = held.filter((s) => s.closedAt !== null).length
        return closed >= 100 ? closed : undefined
      },
      5_000,
    )
    console.log(`connection cap 100: ${refused} of 200 sockets closed at once`)
    expect(held.filter((s) => s.closedAt === null).length).toBeLessThanOrEqual(100)

    for (const s of held) s.socket.destroy()
    await waitFor('a request served once the held sockets are gone', async () => {
      const fresh = testClient(server.url, server.operatorToken, { connections: 1 })
      try {
        return (await fresh.heartbeat(worker)).directive === 'continue' ? true : undefined
      } catch {
        return undefined
      } finally {
        await fresh.close()
      }
    })
  }, 40_000)
})
