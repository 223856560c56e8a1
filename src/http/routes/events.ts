// GET /v1/events: the audit log as server-sent events (SPEC §6). The hub does the streaming;
// this route authenticates, parses where to start, and hands the socket over.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { DomainError } from '../../domain/errors.js'
import type { EventHub } from '../../events/hub.js'
import { EventsQuerySchema } from '../../schemas/index.js'
import { operatorSecurity, problems } from '../schemas.js'

function lastEventId(header: string | string[] | undefined): number | null {
  if (header === undefined) return null
  const value = Array.isArray(header) ? header.at(-1)! : header
  if (!/^[0-9]{1,15}$/.test(value.trim())) {
    throw new DomainError('validation_failed', `header Last-Event-ID must be a whole number (a seq), got ${JSON.stringify(value.slice(0, 40))}`)
  }
  return Number(value.trim())
}

export const eventRoutes: FastifyPluginAsyncZod<{ hub: EventHub }> = async (app, { hub }) => {
  app.addHook('onRequest', app.requireOperator)

  app.get('/v1/events', {
    schema: {
      operationId: 'streamEvents',
      tags: ['audit'],
      summary: 'Audit records as server-sent events, live',
      description:
        'Each audit record is one event: `id:` its seq, `event:` its type, `data:` the record as JSON. ' +
        'Starts after `Last-Event-ID` (or `after_seq`; default: from now), so a reconnect resumes with nothing ' +
        'lost or repeated. A comment line arrives at least every 15 s. A consumer that falls behind gets an ' +
        '`overflow` event whose `id` and `resume_after_seq` name where to resume, and is disconnected.',
      security: operatorSecurity,
      querystring: EventsQuerySchema,
      response: {
        200: {
          description: 'An endless text/event-stream',
          content: { 'text/event-stream': { schema: z.string().describe('id: <seq>\\nevent: <type>\\ndata: <AuditRecord JSON>\\n\\n …') } },
        },
        ...problems(400, 401),
      },
    },
    handler: async (request, reply) => {
      const { type, worker_id, after_seq } = request.query
      const start = lastEventId(request.headers['last-event-id']) ?? after_seq ?? null
      const types = type === undefined ? null : new Set<string>(Array.isArray(type) ? type : [type])
      reply.hijack()
      const res = reply.raw
      res.writeHead(200, {
        ...(reply.getHeaders() as Record<string, string>),
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-store, no-transform',
        'x-accel-buffering': 'no',
        // A stream is never followed by another request on its connection: ending it ends the socket.
        connection: 'close',
      })
      res.socket?.setNoDelay(true)
      hub.subscribe(res, { types, workerId: worker_id ?? null }, start)
    },
  })
}
