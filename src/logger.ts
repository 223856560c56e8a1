// The process logger: pino, pretty on a terminal (pino-pretty), JSON lines otherwise (for
// collectors). Request lines carry method, URL and, on a problem answer, its `code`.
import type { FastifyReply } from 'fastify'
import pino, { type Logger } from 'pino'
import pretty from 'pino-pretty'
import { problemCodeOf } from './http/plugins/errors.js'

export const REDACT = ['req.headers.authorization', 'lease_token', '*.lease_token', 'operatorToken', 'signingKey']

/** Fastify logs the reply as `res` on "request completed": say what was asked and what came back. */
function serializeReply(reply: FastifyReply) {
  const code = problemCodeOf(reply)
  return {
    method: reply.request?.method,
    url: reply.request?.url,
    statusCode: reply.statusCode,
    ...(code === undefined ? {} : { code }),
  }
}

export function createLogger(options: { level: string; pretty: boolean; destination?: NodeJS.WritableStream }): Logger {
  const settings = { level: options.level, redact: REDACT, serializers: { res: serializeReply } }
  if (!options.pretty) return options.destination ? pino(settings, options.destination) : pino(settings)
  // Synchronous, in this thread: the last lines before exit ("closed") are never lost.
  const stream = pretty({
    sync: true,
    colorize: true,
    translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l o',
    ignore: 'pid,hostname',
    singleLine: true,
    ...(options.destination ? { destination: options.destination } : {}),
  })
  return pino(settings, stream)
}
