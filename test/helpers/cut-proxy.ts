// A TCP proxy of the test's own on 127.0.0.1 that loses answers: for the next N connections on
// which the server starts answering, the proxy keeps the answer (for the test to read) and resets
// the client's socket instead of passing it on. The request had been written in full and the
// server had decided: exactly the "answer lost after commit" a retry must survive.
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net'

export interface LostAnswer {
  status: number
  body: unknown
}

export interface CutProxy {
  url: string
  /** Cut the next `n` answers. */
  cutNext(n: number): void
  /** The answers cut so far, parsed. */
  readonly lost: LostAnswer[]
  close(): Promise<void>
}

/** How long the proxy keeps reading a cut answer before it resets the client (answers are small). */
const COLLECT_MS = 100

export async function startCutProxy(target: string): Promise<CutProxy> {
  const { hostname, port } = new URL(target)
  let cuts = 0
  const lost: LostAnswer[] = []
  const sockets = new Set<Socket>()

  const server: Server = createServer((client) => {
    const upstream = connect({ host: hostname, port: Number(port) })
    sockets.add(client).add(upstream)
    const drop = () => {
      client.destroy()
      upstream.destroy()
    }
    client.on('close', () => (sockets.delete(client), upstream.destroy()))
    upstream.on('close', () => (sockets.delete(upstream), client.destroy()))
    client.on('error', drop)
    upstream.on('error', drop)
    client.pipe(upstream)

    let cutting: Buffer[] | null = null
    upstream.on('data', (chunk: Buffer) => {
      if (cutting) return void cutting.push(chunk)
      if (cuts === 0) return void client.write(chunk)
      cuts -= 1
      cutting = [chunk]
      setTimeout(() => {
        lost.push(parseResponse(Buffer.concat(cutting!).toString('utf8')))
        client.resetAndDestroy()
        upstream.destroy()
      }, COLLECT_MS)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))

  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cutNext(n) {
      cuts = n
    },
    lost,
    async close() {
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

function parseResponse(raw: string): LostAnswer {
  const [head = '', ...rest] = raw.split('\r\n\r\n')
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0)
  const text = rest.join('\r\n\r\n')
  let body: unknown = text
  try {
    body = JSON.parse(text)
  } catch {
    // left as text
  }
  return { status, body }
}
