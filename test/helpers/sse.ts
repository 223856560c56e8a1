// Subscribing to GET /v1/events over a real socket, for tests: every message and comment is
// recorded in arrival order; `until` waits for a condition on what has arrived.
import { request } from 'node:http'
import type { IncomingHttpHeaders } from 'node:http'
import { SseParser, type SseMessage } from '../../src/client/sse.js'

export interface SseSubscription {
  status: number
  headers: IncomingHttpHeaders
  messages: SseMessage[]
  comments: string[]
  /** The raw body text, for responses that are not a stream (401 problems). */
  body: string
  /** Resolves when the server ends the response. */
  ended: Promise<void>
  /** Waits until `check()` is true; fails with `what` after `timeoutMs`. */
  until(what: string, check: () => boolean, timeoutMs?: number): Promise<void>
  close(): void
}

export function subscribe(baseUrl: string, path: string, headers: Record<string, string> = {}): Promise<SseSubscription> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, baseUrl), { headers: { accept: 'text/event-stream', ...headers }, agent: false }, (res) => {
      let notify = () => {}
      const messages: SseMessage[] = []
      const comments: string[] = []
      const parser = new SseParser({
        message: (m) => messages.push(m),
        comment: (c) => comments.push(c),
      })
      const sub: SseSubscription = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        messages,
        comments,
        body: '',
        ended: new Promise<void>((done) => {
          res.on('end', done)
          res.on('close', done)
          res.on('error', () => done())
        }),
        until(what, check, timeoutMs = 15_000) {
          return new Promise<void>((done, fail) => {
            if (check()) return done()
            const timer = setTimeout(() => {
              notify = () => {}
              fail(new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${messages.length} messages so far)`))
            }, timeoutMs)
            notify = () => {
              if (!check()) return
              clearTimeout(timer)
              notify = () => {}
              done()
            }
          })
        },
        close: () => req.destroy(),
      }
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        sub.body += chunk.length < 4096 && sub.body.length < 65536 ? chunk : ''
        parser.push(chunk)
        notify()
      })
      res.on('end', () => notify())
      resolve(sub)
    })
    req.on('error', reject)
    req.end()
  })
}

/** The seqs of the audit records among `messages` (overflow and other non-record events left out). */
export function seqs(messages: SseMessage[]): number[] {
  return messages.filter((m) => m.event !== 'overflow').map((m) => Number(m.id))
}
