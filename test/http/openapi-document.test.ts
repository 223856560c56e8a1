// What a reader of /docs meets: optional bodies sendable empty, one schema per shape, every
// response described, the real problem codes, and examples the API itself would accept.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import * as wire from '../../src/schemas/index.js'
import { createTestApp, registerRoot, type TestApp } from '../helpers/harness.js'

type Operation = {
  summary?: string
  requestBody?: { required?: boolean }
  responses: Record<string, { description: string; content?: Record<string, unknown> }>
}
type Document = {
  info: { title: string }
  paths: Record<string, Record<string, Operation>>
  components: { schemas: Record<string, { examples?: unknown[]; enum?: unknown[]; properties?: Record<string, unknown> }> }
}

/** SPEC §3: the routes whose body is optional. */
const SPEC_OPTIONAL_BODIES = ['POST /v1/manifests', 'POST /v1/workers/{id}/heartbeat', 'POST /v1/workers/{id}/kill', 'POST /v1/kill-switch']

describe('the OpenAPI document', () => {
  let t: TestApp
  let doc: Document
  const operations: Array<{ key: string; method: string; path: string; op: Operation }> = []
  beforeAll(async () => {
    t = await createTestApp()
    doc = t.app.swagger() as unknown as Document
    for (const [path, methods] of Object.entries(doc.paths))
      for (const [method, op] of Object.entries(methods)) operations.push({ key: `${method.toUpperCase()} ${path}`, method: method.toUpperCase(), path, op })
  })
  afterAll(() => t.close())

  it('marks requestBody.required false on every route that accepts an empty body, and true on the others', async () => {
    const withBody = operations.filter((o) => o.op.requestBody)
    expect(withBody.length).toBeGreaterThan(SPEC_OPTIONAL_BODIES.length)
    const acceptsEmpty: string[] = []
    for (const { key, method, path, op } of withBody) {
      // A fresh app and worker per route: killing or engaging must not spoil the next one.
      const app = await createTestApp()
      try {
        const { id, token } = registerRoot(app.warden)
        const auth = path.startsWith('/v1/workers/{id}/') && !path.endsWith('/quarantine') && !path.endsWith('/kill') ? token : 'op'
        const headers = auth === 'op' ? app.op : { authorization: `Bearer ${auth}` }
        const url = path.replace('{id}', id)
        // Empty, as curl sends it and as Swagger UI sends it (with a JSON content type).
        const bare = await app.app.inject({ method: method as 'POST', url, headers })
        const typed = await app.app.inject({ method: method as 'POST', url, headers: { ...headers, 'content-type': 'application/json' }, payload: '' })
        expect(bare.statusCode === 400, `${key}: bare ${bare.statusCode}, typed ${typed.statusCode}`).toBe(typed.statusCode === 400)
        const accepted = bare.statusCode < 300
        if (!accepted) expect(bare.statusCode, `${key}: ${bare.body}`).toBe(400)
        if (accepted) acceptsEmpty.push(key)
        expect(op.requestBody!.required, `${key} ${accepted ? 'accepts' : 'refuses'} an empty body`).toBe(!accepted)
      } finally {
        app.close()
      }
    }
    expect(acceptsEmpty.sort()).toEqual([...SPEC_OPTIONAL_BODIES].sort())
  })

  it('gives every operation a summary and every response a description of its own', () => {
    for (const { key, op } of operations) {
      expect(op.summary, key).toBeTruthy()
      for (const [status, response] of Object.entries(op.responses)) {
        expect(response.description, `${key} ${status}`).not.toBe('Default Response')
        expect(response.description.length, `${key} ${status}`).toBeGreaterThan(2)
      }
    }
  })

  it('sends problems as application/problem+json, documented so', () => {
    for (const { key, op } of operations)
      for (const [status, response] of Object.entries(op.responses))
        if (Number(status) >= 400) expect(Object.keys(response.content ?? {}), `${key} ${status}`).toEqual(['application/problem+json'])
  })

  it('has one schema per shape: no Input twins, no anonymous __shared', () => {
    const names = Object.keys(doc.components.schemas)
    expect(names.filter((n) => n.endsWith('Input') || n.startsWith('__'))).toEqual([])
    expect(names).toEqual(expect.arrayContaining(['Contract', 'ContractSpec', 'Manifest', 'Worker', 'Problem', 'ErrorCode']))
    expect(JSON.stringify(doc)).not.toMatch(/Input"|__shared|9007199254740991/)
  })

  it('lists the real problem codes as an enum', () => {
    expect(doc.components.schemas.ErrorCode!.enum).toEqual(wire.ErrorCodeSchema.options)
    expect(doc.components.schemas.Problem!.properties!.code).toEqual({ $ref: '#/components/schemas/ErrorCode' })
    expect(wire.ErrorCodeSchema.options).toEqual(expect.arrayContaining(['quota_exceeded', 'worker_terminated', 'kill_switch_engaged']))
  })

  it('gives every object schema an example, and every example passes its own schema', () => {
    let checked = 0
    for (const [name, value] of Object.entries(wire)) {
      if (!(value instanceof z.ZodType)) continue
      const meta = value.meta() as { id?: string; examples?: unknown[] } | undefined
      if (!meta?.id) continue
      expect(meta.examples, `${name} has no example`).toBeInstanceOf(Array)
      expect(doc.components.schemas[meta.id]?.examples, `${meta.id} in the document`).toEqual(meta.examples)
      for (const example of meta.examples!) {
        const result = value.safeParse(example)
        expect(result.success, `${name} example: ${result.error?.message}`).toBe(true)
        checked++
      }
    }
    expect(checked).toBeGreaterThan(25)
  })

  it('is titled Warden, and so is the Swagger UI page', async () => {
    expect(doc.info.title).toBe('Warden')
    const page = await t.app.inject({ method: 'GET', url: '/docs/' })
    expect(page.statusCode).toBe(200)
    expect(page.body).toMatch(/<title>Warden[^<]*<\/title>/)
    const init = await t.app.inject({ method: 'GET', url: '/docs/static/swagger-initializer.js' })
    expect(init.body).toContain('"layout":"BaseLayout"')
  })
})
