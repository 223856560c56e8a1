// Shared by the HTTP suites: the route table of SPEC §3, database snapshots, problem checks.
import type { InjectOptions, LightMyRequestResponse } from 'fastify'
import { expect } from 'vitest'
import type { Db } from '../../src/store/db.js'

export type Auth = 'none' | 'op' | 'worker'
export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE'

/** SPEC §3, one row per line of its table, in its order. */
export const SPEC_ROUTES = [
  { method: 'GET', path: '/healthz', auth: 'none' },
  { method: 'GET', path: '/readyz', auth: 'none' },
  { method: 'GET', path: '/metrics', auth: 'none' },
  { method: 'GET', path: '/docs', auth: 'none' },
  { method: 'GET', path: '/openapi.json', auth: 'none' },
  { method: 'GET', path: '/v1/contract', auth: 'op' },
  { method: 'PUT', path: '/v1/contract', auth: 'op' },
  { method: 'POST', path: '/v1/manifests', auth: 'op' },
  { method: 'POST', path: '/v1/workers', auth: 'none' },
  { method: 'POST', path: '/v1/workers/{id}/heartbeat', auth: 'worker' },
  { method: 'POST', path: '/v1/workers/{id}/spawn', auth: 'worker' },
  { method: 'DELETE', path: '/v1/workers/{id}', auth: 'worker' },
  { method: 'GET', path: '/v1/workers', auth: 'op' },
  { method: 'GET', path: '/v1/workers/{id}', auth: 'op' },
  { method: 'GET', path: '/v1/workers/{id}/lineage', auth: 'op' },
  { method: 'POST', path: '/v1/workers/{id}/quarantine', auth: 'op' },
  { method: 'DELETE', path: '/v1/workers/{id}/quarantine', auth: 'op' },
  { method: 'POST', path: '/v1/workers/{id}/kill', auth: 'op' },
  { method: 'GET', path: '/v1/kill-switch', auth: 'op' },
  { method: 'POST', path: '/v1/kill-switch', auth: 'op' },
  { method: 'DELETE', path: '/v1/kill-switch', auth: 'op' },
  { method: 'GET', path: '/v1/audit', auth: 'op' },
  { method: 'GET', path: '/v1/audit/verify', auth: 'op' },
  // Not in the §3 table: the counts the console (§6) shows first.
  { method: 'GET', path: '/v1/summary', auth: 'op' },
  { method: 'POST', path: '/v1/sandboxes', auth: 'op' },
  { method: 'GET', path: '/v1/sandbox-driver', auth: 'op' },
] as const satisfies ReadonlyArray<{ method: Method; path: string; auth: Auth }>

/**
 * Routes of SPEC §6 that the §3 table does not list and that inject cannot drive like the others
 * (an endless stream, static console files): tested by test/e2e/events.test.ts and test/browser/.
 */
export const STREAM_AND_CONSOLE_ROUTES = [
  { method: 'GET', path: '/v1/events', auth: 'op' },
  { method: 'GET', path: '/', auth: 'none' },
  { method: 'GET', path: '/console/:file', auth: 'none' },
] as const

export type SpecRoute = (typeof SPEC_ROUTES)[number]
/** "METHOD /path" of each row, exactly (not every method with every path). */
export type RouteKey = SpecRoute extends infer R ? (R extends { method: infer M extends string; path: infer P extends string } ? `${M} ${P}` : never) : never
export const routeKey = (route: { method: string; path: string }) => `${route.method} ${route.path}` as RouteKey

/** The concrete URL of a route for worker `id`. */
export const urlOf = (path: string, id = '') => path.replace('{id}', id)

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

/** An inject request; a `body` is sent as JSON with its content type. */
export function call(
  method: Method,
  url: string,
  options: { headers?: Record<string, string>; body?: unknown; query?: Record<string, string> } = {},
): InjectOptions {
  const headers: Record<string, string> = { ...options.headers }
  const request: InjectOptions = { method, url, headers }
  if (options.body !== undefined) {
    headers['content-type'] ??= 'application/json'
    request.payload = JSON.stringify(options.body)
  }
  if (options.query) request.query = options.query
  return request
}

export function jsonBody(payload: unknown): Pick<InjectOptions, 'headers' | 'payload'> {
  return { headers: { 'content-type': 'application/json' }, payload: JSON.stringify(payload) }
}

/** Every row of every table, in storage order: equal snapshots mean nothing changed at all. */
export function dbSnapshot(db: Db): Record<string, unknown[]> {
  const tables = db
    .prepare(`SELECT name, wr FROM pragma_table_list WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
    .all() as Array<{ name: string; wr: number }>
  // A WITHOUT ROWID table (wr = 1) has no rowid; a plain scan walks it in primary-key order.
  return Object.fromEntries(tables.map(({ name, wr }) => [name, db.prepare(`SELECT * FROM "${name}"${wr ? '' : ' ORDER BY rowid'}`).all()]))
}

export function auditCount(db: Db): number {
  return (db.prepare(`SELECT count(*) AS n FROM audit`).get() as { n: number }).n
}

export function auditHead(db: Db): string | null {
  return (db.prepare(`SELECT hash FROM audit ORDER BY seq DESC LIMIT 1`).get() as { hash: string } | undefined)?.hash ?? null
}

export interface Problem {
  type: string
  title: string
  status: number
  code: string
  detail: string
  instance: string
  request_id: string
  [extra: string]: unknown
}

/** Asserts an RFC 9457 problem document with `status` (and `code` when given); returns it. */
export function expectProblem(res: LightMyRequestResponse, status: number, code?: string): Problem {
  expect(res.statusCode, res.body.slice(0, 400)).toBe(status)
  return expectProblemShape(res, code)
}

/** Asserts the problem document shape whatever the status; returns it. */
export function expectProblemShape(res: LightMyRequestResponse, code?: string): Problem {
  expect(res.headers['content-type'], res.body.slice(0, 400)).toMatch(/^application\/problem\+json/)
  const problem = res.json<Problem>()
  expect(problem).toMatchObject({ type: expect.any(String), title: expect.any(String), status: res.statusCode, code: expect.any(String) })
  expect(typeof problem.detail).toBe('string')
  expect(problem.detail.length).toBeGreaterThan(0)
  expect(problem.request_id).toBe(res.headers['x-request-id'])
  if (code !== undefined) expect(problem.code, problem.detail).toBe(code)
  return problem
}
