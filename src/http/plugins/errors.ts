// One place turns every failure into an RFC 9457 problem document with a stable `code`.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { z } from 'zod'
import { DomainError, statusByCode, titleByStatus, type ErrorCode, type ProblemExtras } from '../../domain/errors.js'
import { describeIssues } from '../../schemas/issues.js'

/** A request part that failed its zod schema; fastify reports it as FST_ERR_VALIDATION. */
export class RequestValidationError extends Error {
  readonly statusCode = 400
  readonly code = 'FST_ERR_VALIDATION'
  constructor(
    readonly issues: z.core.$ZodIssue[],
    readonly part = '',
  ) {
    super(describeIssues(issues, part))
  }
}

/** Fastify's own 4xx errors, by their code. */
const codeByFastifyCode: Record<string, ErrorCode> = {
  FST_ERR_VALIDATION: 'validation_failed',
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'validation_failed',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'validation_failed',
  FST_ERR_CTP_INVALID_JSON_BODY: 'validation_failed',
  FST_ERR_BAD_URL: 'validation_failed',
  FST_ERR_ASYNC_CONSTRAINT: 'validation_failed',
}

/** The problem code each reply was answered with, for the request log line. */
const problemCodes = new WeakMap<FastifyReply, ErrorCode>()
export const problemCodeOf = (reply: FastifyReply): ErrorCode | undefined => problemCodes.get(reply)

export function sendProblem(reply: FastifyReply, request: FastifyRequest, code: ErrorCode, detail: string, extras: ProblemExtras = {}) {
  const status = statusByCode[code]
  problemCodes.set(reply, code)
  if (typeof extras.retry_after === 'number') reply.header('retry-after', String(extras.retry_after))
  return reply
    .code(status)
    .type('application/problem+json')
    .send({
      type: 'about:blank',
      title: titleByStatus[status] ?? 'Error',
      status,
      code,
      detail,
      instance: request.url,
      request_id: request.id,
      ...extras,
    })
}

export const errorsPlugin = fp(async function errors(app: FastifyInstance) {
  app.setErrorHandler((error: FastifyError | DomainError | RequestValidationError, request, reply) => {
    if (error instanceof DomainError) return sendProblem(reply, request, error.code, error.message, error.extras)
    if (error instanceof RequestValidationError || error.code === 'FST_ERR_VALIDATION') {
      const issues = error instanceof RequestValidationError ? error.issues : []
      return sendProblem(reply, request, 'validation_failed', error.message, {
        errors: issues.map((issue) => [error instanceof RequestValidationError ? error.part : '', ...issue.path.map(String)].filter(Boolean).join('.') || '(root)'),
      })
    }
    const mapped = error.code === undefined ? undefined : codeByFastifyCode[error.code]
    if (mapped) return sendProblem(reply, request, mapped, error.message)
    const status = (error as FastifyError).statusCode
    if (status !== undefined && status >= 400 && status < 500) {
      const code: ErrorCode =
        status === 413 ? 'payload_too_large' : status === 415 ? 'unsupported_media_type' : status === 429 ? 'rate_limited' : 'validation_failed'
      return sendProblem(reply, request, code, error.message)
    }
    request.log.error({ err: error }, 'unhandled error')
    return sendProblem(reply, request, 'internal_error', 'the controller failed to handle this request; see its log for the request id')
  })

  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, request, 'not_found', `no route ${request.method} ${request.url.split('?')[0]}`),
  )
})
