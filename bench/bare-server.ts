// The HTTP ceiling: a bare Fastify 5 server with one route that has the heartbeat's request and
// response schemas (params, optional body, 200 response, through fastify-type-provider-zod as in
// Warden) and no work behind it: no auth, no lease book, no hooks, no logging. It also answers
// GET /loop-delay (outside the measured route) for the event-loop comparison.
// Usage: tsx bench/bare-server.ts <port>
import { monitorEventLoopDelay } from 'node:perf_hooks'
import Fastify from 'fastify'
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod'
import { WorkerParamsSchema } from '../src/http/schemas.js'
import { HeartbeatRequestSchema, HeartbeatResponseSchema, LIMITS } from '../src/schemas/index.js'

const port = Number(process.argv[2] ?? 0)
const app = Fastify({ logger: false, bodyLimit: LIMITS.bodyBytes, routerOptions: { maxParamLength: 128 } }).withTypeProvider<ZodTypeProvider>()
app.setValidatorCompiler(validatorCompiler)
app.setSerializerCompiler(serializerCompiler)

app.get('/healthz', async () => ({ status: 'ok' }))

// Event-loop delay since the previous call, measured as prom-client does for Warden's /metrics
// (monitorEventLoopDelay, 10 ms resolution, reset on every read), for a like-for-like comparison.
const loopDelay = monitorEventLoopDelay({ resolution: 10 })
loopDelay.enable()
app.get('/loop-delay', async () => {
  const answer = { p99_ms: loopDelay.percentile(99) / 1e6, max_ms: loopDelay.max / 1e6 }
  loopDelay.reset()
  return answer
})

app.post('/v1/workers/:id/heartbeat', {
  schema: {
    params: WorkerParamsSchema,
    body: HeartbeatRequestSchema.optional(),
    response: { 200: HeartbeatResponseSchema },
  },
  handler: async () => {
    const now = Date.now()
    return {
      directive: 'continue' as const,
      lease_expires_at: new Date(now + 600_000).toISOString(),
      expires_at: null,
      heartbeat_interval_seconds: 200,
      heartbeat_timeout_seconds: 600,
    }
  },
})

await app.listen({ host: '127.0.0.1', port })
// Closing the server lets the process end by itself (so --cpu-prof can write its profile).
const close = () => void app.close()
process.once('SIGTERM', close)
process.once('SIGINT', close)
