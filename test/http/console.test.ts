// GET / and /console/*: the console's files, from an allowlist read at start, under a strict CSP.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestApp, type TestApp } from '../helpers/harness.js'

describe('console static files', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await createTestApp()
  })
  afterAll(() => t.close())

  it('serves the page at / with a CSP that allows nothing but Warden itself', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/' })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8')
    const csp = String(res.headers['content-security-policy'])
    expect(csp).toContain("default-src 'none'")
    expect(csp).toContain("script-src 'self'")
    expect(csp).toContain("connect-src 'self'")
    expect(csp).toContain("frame-ancestors 'none'")
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|https?:/)
    expect(res.headers['x-content-type-options']).toBe('nosniff')
    // No external resource and no inline script in the page.
    expect(res.body).not.toMatch(/(src|href)="(https?:)?\/\//)
    expect(res.body).not.toMatch(/<script(?![^>]*\bsrc=)/)
  })

  it('serves the modules and styles the page loads, with their types', async () => {
    for (const [file, type] of [
      ['app.js', 'text/javascript; charset=utf-8'],
      ['api.js', 'text/javascript; charset=utf-8'],
      ['tree.js', 'text/javascript; charset=utf-8'],
      ['console.css', 'text/css; charset=utf-8'],
    ]) {
      const res = await t.app.inject({ method: 'GET', url: `/console/${file}` })
      expect(res.statusCode, file).toBe(200)
      expect(res.headers['content-type']).toBe(type)
      expect(res.body).not.toMatch(/https?:\/\/(?!127\.0\.0\.1)[a-z]/i)
    }
  })

  it('answers 4xx for anything outside the allowlist, traversal included, without touching the filesystem', async () => {
    for (const url of ['/console/nope.js', '/console/index.html', '/console/..%2f..%2fpackage.json', '/console/../../package.json', '/console/%2e%2e%2fapp.js', '/console/APP.JS']) {
      const res = await t.app.inject({ method: 'GET', url })
      expect(res.statusCode, url).toBeGreaterThanOrEqual(400)
      expect(res.statusCode, url).toBeLessThan(500)
      expect(res.body).not.toContain('"name": "warden"')
    }
  })
})
