// N subscribers of GET /v1/events in a process of their own, so that reading 100 streams does
// not share a CPU with the requests whose latency is measured. Prints "ready" once every stream
// is open, and the fewest records any stream received when it gets a line on stdin, then exits.
//   node --import tsx bench/lib/subscribers.ts URL TOKEN N
import { createInterface } from 'node:readline'
import { Pool } from 'undici'
import { SseParser } from '../../src/client/sse.js'

const [url, token, n] = process.argv.slice(2)
const counts: number[] = []
await Promise.all(
  Array.from({ length: Number(n) }, async (_, i) => {
    counts[i] = 0
    const pool = new Pool(url!, { connections: 1, bodyTimeout: 0 })
    const parser = new SseParser({ message: (m) => m.event !== 'overflow' && counts[i]!++ })
    const response = await pool.request({ method: 'GET', path: '/v1/events', headers: { authorization: `Bearer ${token}` } })
    if (response.statusCode !== 200) throw new Error(`GET /v1/events answered ${response.statusCode}`)
    response.body.setEncoding('utf8')
    response.body.on('data', (chunk: string) => parser.push(chunk))
  }),
)
console.log('ready')
createInterface({ input: process.stdin }).once('line', () => {
  console.log(`min ${Math.min(...counts)}`)
  process.exit(0)
})
