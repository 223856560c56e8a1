// openapi/openapi.json is committed for readers and client generators; it must be exactly what
// the app serves now.
import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestApp, type TestApp } from '../helpers/harness.js'

const COMMITTED = resolve(import.meta.dirname, '..', '..', 'openapi', 'openapi.json')
const HOW_TO_FIX = 'openapi/openapi.json is stale: run npm run openapi and commit the result'

describe('openapi/openapi.json', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await createTestApp()
  })
  afterAll(() => t.close())

  it('equals the document the app generates now', () => {
    const generated = JSON.stringify(t.app.swagger(), null, 2) + '\n'
    expect(existsSync(COMMITTED), `openapi/openapi.json is missing: run npm run openapi`).toBe(true)
    const committed = readFileSync(COMMITTED, 'utf8')
    // Compare parsed first for a readable diff, then byte for byte (formatting included).
    expect(JSON.parse(committed), HOW_TO_FIX).toEqual(JSON.parse(generated))
    expect(committed === generated, HOW_TO_FIX).toBe(true)
  })

  it('is what GET /openapi.json serves', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/openapi.json' })
    expect(res.statusCode, res.body.slice(0, 300)).toBe(200)
    expect(existsSync(COMMITTED), `openapi/openapi.json is missing: run npm run openapi`).toBe(true)
    expect(res.json(), HOW_TO_FIX).toEqual(JSON.parse(readFileSync(COMMITTED, 'utf8')))
  })
})
