// SPEC §2.8 over HTTP: every route of §3, every kind of wrong credential, and proof that a
// refused request changed nothing.
import { createHash } from 'node:crypto'
import type { InjectOptions } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEFAULT_CONTRACT } from '../../src/domain/contract.js'
import { createTestApp, OPERATOR_TOKEN, registerChild, registerRoot, type TestApp, storeOf } from '../helpers/harness.js'
import {
  auditCount,
  auditHead,
  bearer,
  call,
  dbSnapshot,
  expectProblem,
  jsonBody,
  routeKey,
  SPEC_ROUTES,
  STREAM_AND_CONSOLE_ROUTES,
  urlOf,
  type RouteKey,
  type SpecRoute,
} from './support.js'
import { createFakeSandbox } from '../helpers/fake-sandbox.js'

interface Ctx {
  t: TestApp
  target: { id: string; token: string }
  other: { id: string; token: string }
  child: { id: string; token: string }
}

async function setup(): Promise<Ctx> {
  const t = await createTestApp({ max_replicas: 100 }, createFakeSandbox())
  const target = registerRoot(t.warden)
  const child = registerChild(t.warden, target.id)
  const other = registerRoot(t.warden)
  return { t, target, other, child }
}

/** A request each route accepts when the credential is right, and the status it then answers. */
const FIXTURES: Record<RouteKey, (ctx: Ctx) => { request: InjectOptions; status: number }> = {
  'GET /healthz': () => ({ request: {}, status: 200 }),
  'GET /readyz': () => ({ request: {}, status: 200 }),
  'GET /metrics': () => ({ request: {}, status: 200 }),
  'GET /docs': () => ({ request: {}, status: 200 }),
  'GET /openapi.json': () => ({ request: {}, status: 200 }),
  'GET /v1/contract': () => ({ request: {}, status: 200 }),
  'PUT /v1/contract': () => ({ request: jsonBody({ ...DEFAULT_CONTRACT, max_replicas: 50 }), status: 200 }),
  'POST /v1/manifests': () => ({ request: jsonBody({}), status: 201 }),
  // A fresh manifest each time: one registers only once.
  'POST /v1/workers': ({ t }) => ({ request: jsonBody(t.warden.admission.issueRoot({})), status: 201 }),
  'POST /v1/workers/{id}/heartbeat': () => ({ request: {}, status: 200 }),
  'POST /v1/workers/{id}/spawn': () => ({ request: jsonBody({ reason: 'grow' }), status: 201 }),
  'DELETE /v1/workers/{id}': () => ({ request: { query: { reason: 'done' } }, status: 200 }),
  'GET /v1/workers': () => ({ request: {}, status: 200 }),
  'GET /v1/workers/{id}': () => ({ request: {}, status: 200 }),
  'GET /v1/workers/{id}/lineage': () => ({ request: {}, status: 200 }),
  'POST /v1/workers/{id}/quarantine': () => ({ request: jsonBody({ reason: 'look closer' }), status: 200 }),
  'DELETE /v1/workers/{id}/quarantine': () => ({ request: {}, status: 200 }),
  'POST /v1/workers/{id}/kill': () => ({ request: jsonBody({ cascade: false }), status: 200 }),
  'GET /v1/kill-switch': () => ({ request: {}, status: 200 }),
  'POST /v1/kill-switch': () => ({ request: {}, status: 200 }),
  'DELETE /v1/kill-switch': () => ({ request: {}, status: 200 }),
  'GET /v1/audit': () => ({ request: {}, status: 200 }),
  'GET /v1/audit/verify': () => ({ request: {}, status: 200 }),
  'GET /v1/summary': () => ({ request: {}, status: 200 }),
  'POST /v1/sandboxes': () => ({ request: jsonBody({ program: { command: ['node', 'worker.mjs'] } }), status: 201 }),
  'GET /v1/sandbox-driver': () => ({ request: {}, status: 200 }),
}

interface Credential {
  label: string
  headers: (ctx: Ctx, right: string) => Record<string, string>
}

const MALFORMED: Credential[] = [
  { label: 'a bare "Bearer"', headers: () => ({ authorization: 'Bearer' }) },
  { label: '"Bearer " with no token', headers: () => ({ authorization: 'Bearer ' }) },
  { label: 'the right token without a scheme', headers: (_ctx, right) => ({ authorization: right }) },
  { label: 'the right token under Basic', headers: (_ctx, right) => ({ authorization: `Basic ${Buffer.from(`x:${right}`).toString('base64')}` }) },
  { label: 'the right token under another scheme', headers: (_ctx, right) => ({ authorization: `Token ${right}` }) },
  { label: 'the right token with a trailing word', headers: (_ctx, right) => ({ authorization: `Bearer ${right} extra` }) },
  { label: 'the right token quoted', headers: (_ctx, right) => ({ authorization: `Bearer "${right}"` }) },
  { label: 'the right token plus one character', headers: (_ctx, right) => bearer(`${right}x`) },
  { label: 'the right token minus its last character', headers: (_ctx, right) => bearer(right.slice(0, -1)) },
  { label: 'the right token in upper case', headers: (_ctx, right) => bearer(right.toUpperCase()) },
  { label: 'a 600-character token', headers: () => bearer('a'.repeat(600)) },
]

const COMMON: Credential[] = [
  { label: 'no Authorization header', headers: () => ({}) },
  { label: 'a wrong token', headers: () => bearer('not-the-token-0123456789') },
]

/** Authorization headers that are not the one credential a route wants, by the route's auth. */
const WRONG_CREDENTIALS: Record<'op' | 'worker', Credential[]> = {
  op: [
    ...COMMON,
    { label: "a worker's lease token", headers: (ctx) => bearer(ctx.target.token) },
    { label: "the target's child's lease token", headers: (ctx) => bearer(ctx.child.token) },
    ...MALFORMED,
  ],
  worker: [
    ...COMMON,
    { label: 'the operator token', headers: () => bearer(OPERATOR_TOKEN) },
    { label: "another live worker's lease token", headers: (ctx) => bearer(ctx.other.token) },
    { label: "the worker's own child's lease token", headers: (ctx) => bearer(ctx.child.token) },
    ...MALFORMED,
  ],
}

const rightToken = (route: SpecRoute, ctx: Ctx) => (route.auth === 'op' ? OPERATOR_TOKEN : ctx.target.token)

function requestFor(route: SpecRoute, ctx: Ctx, headers: Record<string, string>): InjectOptions {
  const { request } = FIXTURES[routeKey(route)](ctx)
  return {
    ...request,
    method: route.method,
    url: urlOf(route.path, ctx.target.id),
    headers: { ...(request.headers as Record<string, string> | undefined), ...headers },
  }
}

/** The routes the app serves, read from its router (Swagger UI's own assets aside). */
function servedRoutes(printed: string): string[] {
  const stack: string[] = []
  const routes: string[] = []
  for (const line of printed.split('\n')) {
    const match = /^([\s│├└─]*?)([^\s│├└─].*) \(([A-Z, ]+)\)$/.exec(line)
    if (!match) continue
    const level = match[1]!.length / 4
    stack.length = level
    stack.push(match[2]!)
    const path = stack.join('').replace(/\/:id/g, '/{id}')
    for (const method of match[3]!.split(', ')) if (method !== 'HEAD') routes.push(`${method} ${path}`)
  }
  return routes.filter((route) => !route.startsWith('GET /docs/')).sort()
}

describe('the route table under test', () => {
  it('is exactly the set of routes the app serves', async () => {
    const { app, close } = await createTestApp()
    try {
      const served = servedRoutes(app.printRoutes({ commonPrefix: false }))
      expect(served).toEqual([...SPEC_ROUTES, ...STREAM_AND_CONSOLE_ROUTES].map(routeKey).sort())
    } finally {
      close()
    }
  })
})

const table = (auth: (a: SpecRoute['auth']) => boolean) =>
  SPEC_ROUTES.filter((route) => auth(route.auth)).map((route) => [`${routeKey(route)} (${route.auth} auth)`, route] as const)

describe.each(table((auth) => auth !== 'none'))('%s', (_name, route) => {
  let ctx: Ctx
  beforeAll(async () => {
    ctx = await setup()
  })
  afterAll(() => ctx.t.close())

  it.each(WRONG_CREDENTIALS[route.auth as 'op' | 'worker'])('refuses $label with 401 unauthorized and changes nothing', async (credential) => {
    const { t, target } = ctx
    const headers = credential.headers(ctx, rightToken(route, ctx))
    const before = dbSnapshot(storeOf(t.warden).db)
    const auditBefore = { count: auditCount(storeOf(t.warden).db), head: auditHead(storeOf(t.warden).db) }
    const workerBefore = storeOf(t.warden).workers.get(target.id)

    const res = await t.app.inject(requestFor(route, ctx, headers))

    expectProblem(res, 401, 'unauthorized')
    expect({ count: auditCount(storeOf(t.warden).db), head: auditHead(storeOf(t.warden).db) }).toEqual(auditBefore)
    const workerAfter = storeOf(t.warden).workers.get(target.id)
    expect(workerAfter?.status).toBe(workerBefore?.status)
    expect(workerAfter?.lease_expires_at).toBe(workerBefore?.lease_expires_at)
    expect(workerAfter?.last_heartbeat_at).toBe(workerBefore?.last_heartbeat_at)
    expect(dbSnapshot(storeOf(t.warden).db)).toEqual(before)
  })

  it(`accepts the right ${route.auth === 'op' ? 'operator token' : "worker's own lease token"}`, async () => {
    const { t } = ctx
    const res = await t.app.inject(requestFor(route, ctx, bearer(rightToken(route, ctx))))
    expect(res.statusCode, res.body.slice(0, 300)).toBe(FIXTURES[routeKey(route)](ctx).status)
  })
})

describe.each(table((auth) => auth === 'none'))('%s', (_name, route) => {
  let ctx: Ctx
  beforeAll(async () => {
    ctx = await setup()
  })
  afterAll(() => ctx.t.close())

  it('answers without any token', async () => {
    const res = await ctx.t.app.inject(requestFor(route, ctx, {}))
    expect(res.statusCode, res.body.slice(0, 300)).toBe(FIXTURES[routeKey(route)](ctx).status)
  })

  it('ignores a wrong Authorization header', async () => {
    const res = await ctx.t.app.inject(requestFor(route, ctx, bearer('not-the-token')))
    expect(res.statusCode).not.toBe(401)
    expect(res.statusCode).toBeLessThan(400)
  })
})

describe('worker lease tokens act only for their own worker', () => {
  it('lets no worker heartbeat, spawn or shut down for another, even its parent or child', async () => {
    const { t, target, other, child } = await setup()
    try {
      const before = dbSnapshot(storeOf(t.warden).db)
      for (const [actor, victim] of [
        [child, target],
        [target, child],
        [other, target],
        [target, other],
      ] as const) {
        for (const [method, path, body] of [
          ['POST', '/v1/workers/{id}/heartbeat', undefined],
          ['POST', '/v1/workers/{id}/spawn', { reason: 'impersonate' }],
          ['DELETE', '/v1/workers/{id}', undefined],
        ] as const) {
          const res = await t.app.inject(call(method, urlOf(path, victim.id), { headers: bearer(actor.token), body }))
          expectProblem(res, 401, 'unauthorized')
        }
      }
      expect(dbSnapshot(storeOf(t.warden).db)).toEqual(before)
    } finally {
      t.close()
    }
  })
})

describe('lease tokens never leak', () => {
  it('appear in no GET response, no audit record and no database column; only their hash is stored', async () => {
    const { t, target, other, child } = await setup()
    try {
      const { app, op, warden } = t
      // Exercise the routes that write audit records about workers.
      await app.inject(call('POST', `/v1/workers/${target.id}/heartbeat`, { headers: bearer(target.token) }))
      await app.inject(call('POST', `/v1/workers/${target.id}/spawn`, { headers: bearer(target.token), body: { reason: 'grow' } }))
      await app.inject(call('POST', `/v1/workers/${other.id}/quarantine`, { headers: op, body: { reason: 'watch' } }))
      await app.inject(call('POST', `/v1/workers/${child.id}/kill`, { headers: op }))
      const registered = await app.inject(call('POST', '/v1/workers', { body: warden.admission.issueRoot({}) }))
      expect(registered.statusCode).toBe(201)
      const fresh = registered.json<{ worker: { worker_id: string }; lease_token: string }>()

      const tokens = [target.token, other.token, child.token, fresh.lease_token]
      const workers = [target.id, other.id, child.id, fresh.worker.worker_id]
      const bodies: string[] = []
      for (const route of SPEC_ROUTES.filter((r) => r.method === 'GET')) {
        for (const id of route.path.includes('{id}') ? workers : ['']) {
          const res = await app.inject({ method: 'GET', url: urlOf(route.path, id), headers: op })
          bodies.push(res.body)
        }
      }
      const audit = await app.inject({ method: 'GET', url: '/v1/audit?limit=1000', headers: op })
      expect(audit.statusCode).toBe(200)
      bodies.push(audit.body)
      const everyCell = JSON.stringify(dbSnapshot(storeOf(warden).db), (_key, value: unknown) =>
        Buffer.isBuffer(value) ? value.toString('hex') : value,
      )

      for (const token of tokens) {
        for (const body of bodies) expect(body).not.toContain(token)
        expect(everyCell).not.toContain(token)
      }
      for (const [index, id] of workers.entries()) {
        const stored = storeOf(warden).workers.get(id)!.lease_token_hash
        expect(stored.equals(createHash('sha256').update(tokens[index]!).digest())).toBe(true)
        for (const body of bodies) expect(body).not.toContain(stored.toString('hex'))
      }
    } finally {
      t.close()
    }
  })
})
