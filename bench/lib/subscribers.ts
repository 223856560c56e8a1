// N subscribers of GET /v1/events in a process of their own, so that reading 100 streams does
// not share a CPU with the requests whose latency is measured. Commands, one per stdin line:
//   connect     opens N streams (each from now), prints "ready" once every one answered 200
//   disconnect K  waits (≤ 30 s) until every stream has K records, closes them and prints one JSON line: the fewest and most records a stream got,
//               how many seqs arrived out of order (a stream from now gets every record, so its
//               seqs must run with no gap or repeat), and this process's CPU seconds while connected
//   exit        exits
//   node --import tsx bench/lib/subscribers.ts URL TOKEN N
import { createInterface } from 'node:readline'
import { Pool } from 'undici'
import { SseParser } from '../../src/client/sse.js'

const [url, token, n] = process.argv.slice(2)

interface Stream {
  count: number
  last: number
  disordered: number
  pool: Pool
  controller: AbortController
}

async function open(): Promise<Stream> {
  const stream: Stream = { count: 0, last: -1, disordered: 0, pool: new Pool(url!, { connections: 1, bodyTimeout: 0 }), controller: new AbortController() }
  const parser = new SseParser({
    message: (m) => {
      if (m.event === 'overflow') return
      const seq = Number(m.id)
      if (stream.last !== -1 && seq !== stream.last + 1) stream.disordered++
      stream.last = seq
      stream.count++
    },
  })
  const response = await stream.pool.request({ method: 'GET', path: '/v1/events', headers: { authorization: `Bearer ${token}` }, signal: stream.controller.signal })
  if (response.statusCode !== 200) throw new Error(`GET /v1/events answered ${response.statusCode}`)
  response.body.setEncoding('utf8')
  response.body.on('data', (chunk: string) => parser.push(chunk))
  response.body.on('error', () => {})
  return stream
}

let streams: Stream[] = []
let since = process.cpuUsage()
for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'connect') {
    streams = await Promise.all(Array.from({ length: Number(n) }, open))
    since = process.cpuUsage()
    console.log('ready')
  } else if (line.startsWith('disconnect')) {
    const expected = Number(line.split(' ')[1] ?? 0)
    const deadline = Date.now() + 30_000
    while (streams.some((s) => s.count < expected) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
    const cpu = process.cpuUsage(since)
    const counts = streams.map((s) => s.count)
    const disordered = streams.reduce((sum, s) => sum + s.disordered, 0)
    for (const s of streams) {
      s.controller.abort()
      void s.pool.destroy()
    }
    streams = []
    console.log(JSON.stringify({ min: Math.min(...counts), max: Math.max(...counts), disordered, cpu_seconds: (cpu.user + cpu.system) / 1e6 }))
  } else if (line === 'exit') {
    process.exit(0)
  }
}
// stdin closed (the benchmark ended): nothing more to do.
process.exit(0)
