// N subscribers of GET /v1/events in a process of their own, so that reading 100 streams does
// not share a CPU with the requests whose latency is measured. Prints "ready" once every stream
// is open. On a line on stdin it prints one JSON line and exits: the fewest records any stream
// received, and how many streams saw a seq out of order (a gap or a repeat: each stream starts
// from now and gets every record, so its seqs must run without a gap), and its own CPU seconds since
// it was ready.
//   node --import tsx bench/lib/subscribers.ts URL TOKEN N
import { createInterface } from 'node:readline'
import { Pool } from 'undici'
import { SseParser } from '../../src/client/sse.js'

const [url, token, n] = process.argv.slice(2)
const counts: number[] = []
const last: number[] = []
let disordered = 0
await Promise.all(
  Array.from({ length: Number(n) }, async (_, i) => {
    counts[i] = 0
    last[i] = -1
    const pool = new Pool(url!, { connections: 1, bodyTimeout: 0 })
    const parser = new SseParser({
      message: (m) => {
        if (m.event === 'overflow') return
        const seq = Number(m.id)
        if (last[i] !== -1 && seq !== last[i]! + 1) disordered++
        last[i] = seq
        counts[i]!++
      },
    })
    const response = await pool.request({ method: 'GET', path: '/v1/events', headers: { authorization: `Bearer ${token}` } })
    if (response.statusCode !== 200) throw new Error(`GET /v1/events answered ${response.statusCode}`)
    response.body.setEncoding('utf8')
    response.body.on('data', (chunk: string) => parser.push(chunk))
  }),
)
const atReady = process.cpuUsage()
console.log('ready')
createInterface({ input: process.stdin }).once('line', () => {
  const cpu = process.cpuUsage(atReady)
  console.log(JSON.stringify({ min: Math.min(...counts), max: Math.max(...counts), disordered, cpu_seconds: (cpu.user + cpu.system) / 1e6 }))
  process.exit(0)
})
