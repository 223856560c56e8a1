// A request's logger is pino's child only once it writes a line: the lines must be the same as
// Fastify's own children write (request id bound, tokens redacted), at every level.
import { PassThrough } from 'node:stream'
import Fastify from 'fastify'
import { describe, expect, it } from 'vitest'
import { lazyChildLogger } from '../../src/http/request-logger.js'
import { createLogger } from '../../src/logger.js'

async function serve(level: string) {
  const out = new PassThrough()
  const lines: Array<Record<string, unknown>> = []
  out.on('data', (chunk: Buffer) => chunk.toString().split('\n').filter(Boolean).forEach((line) => lines.push(JSON.parse(line))))
  const logger = createLogger({ level, pretty: false, destination: out })
  let children = 0
  // Counts every pino child made from here on (children inherit this own property of the root).
  const child = logger.child
  logger.child = function (this: typeof logger, ...args: Parameters<typeof child>) {
    children++
    return child.apply(this, args)
  } as typeof logger.child
  const app = Fastify({ loggerInstance: logger, childLoggerFactory: lazyChildLogger, genReqId: () => 'req-fixed' })
  app.get('/quiet', async () => ({ ok: true }))
  app.get('/loud', async (request) => {
    request.log.warn({ lease_token: 'secret-token' }, 'something to see')
    request.log.debug('below the level')
    return { ok: true }
  })
  app.get('/nested', async (request) => {
    request.log.child({ part: 'inner' }).warn('from a grandchild')
    return { ok: true }
  })
  await app.ready()
  children = 0
  const settle = async () => {
    logger.flush?.()
    await new Promise((done) => setImmediate(done))
  }
  return { app, lines, settle, children: () => children }
}

describe('the lazy request logger', () => {
  it('makes no pino child for a request that writes no line at the running level', async () => {
    const t = await serve('warn')
    expect((await t.app.inject({ url: '/quiet' })).statusCode).toBe(200)
    await t.settle()
    expect(t.children()).toBe(0)
    expect(t.lines).toEqual([])
    await t.app.close()
  })

  it('writes an enabled line with the request id bound and the token redacted, and skips disabled levels', async () => {
    const t = await serve('warn')
    await t.app.inject({ url: '/loud' })
    await t.settle()
    expect(t.children()).toBe(1)
    expect(t.lines).toEqual([expect.objectContaining({ level: 40, msg: 'something to see', reqId: 'req-fixed', lease_token: '[Redacted]' })])
    await t.app.close()
  })

  it("at info, Fastify's request lines carry the request id, as before", async () => {
    const t = await serve('info')
    await t.app.inject({ url: '/quiet' })
    await t.settle()
    const messages = t.lines.filter((line) => line.reqId === 'req-fixed').map((line) => line.msg)
    expect(messages).toEqual(['incoming request', 'request completed'])
    await t.app.close()
  })

  it('hands out real children of the request logger, bindings included', async () => {
    const t = await serve('warn')
    await t.app.inject({ url: '/nested' })
    await t.settle()
    expect(t.lines).toEqual([expect.objectContaining({ msg: 'from a grandchild', reqId: 'req-fixed', part: 'inner' })])
    await t.app.close()
  })
})
