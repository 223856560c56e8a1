// An operator in Swagger UI: authorize with the operator token, pull the kill switch with an
// empty body, and get 200. Real Chromium, a real server on 127.0.0.1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openBrowser, type Browser } from '../helpers/browser.js'
import { createTestApp, OPERATOR_TOKEN, registerRoot, storeOf, type TestApp } from '../helpers/harness.js'

describe('Swagger UI at /docs', () => {
  let t: TestApp
  let browser: Browser
  let base: string
  beforeAll(async () => {
    t = await createTestApp()
    base = await t.app.listen({ host: '127.0.0.1', port: 0 })
    browser = await openBrowser()
  })
  afterAll(async () => {
    await browser?.close()
    t?.close()
  })

  it('engages the kill switch from Execute with an empty body after Authorize with the operator token', async () => {
    const { id } = registerRoot(t.warden)
    const { page } = browser
    await page.goto(`${base}/docs`)
    expect(await page.title()).toMatch(/^Warden/)
    await page.getByRole('heading', { name: /Warden/ }).first().waitFor()

    // Authorize: the operatorToken scheme takes the bearer token.
    await page.getByRole('button', { name: /authorize/i }).first().click()
    // Swagger UI's modal has no dialog role: find it by its class, then by roles inside.
    const scheme = page.locator('.modal-ux .auth-container').filter({ hasText: 'operatorToken' })
    await scheme.getByRole('textbox').fill(OPERATOR_TOKEN)
    await scheme.getByRole('button', { name: 'Apply credentials' }).click()
    await scheme.getByRole('button', { name: 'Remove authorization' }).waitFor()
    await scheme.getByRole('button', { name: 'Close' }).click()

    // POST /v1/kill-switch: open it, empty the example body, Execute.
    const operation = page.locator('#operations-kill-switch-engageKillSwitch')
    await operation.locator('.opblock-summary').click()
    const tryItOut = operation.getByRole('button', { name: /try it out/i })
    if (await tryItOut.isVisible()) await tryItOut.click()
    const body = operation.locator('textarea.body-param__text')
    await body.fill('')
    await operation.getByRole('button', { name: 'Execute' }).click()

    const status = operation.locator('.live-responses-table .response .response-col_status').first()
    await status.waitFor()
    await browser.screenshot('swagger-ui-kill-switch', operation)
    expect((await status.innerText()).trim()).toBe('200')
    const answer = await operation.locator('.live-responses-table .response .microlight').first().innerText()
    expect(JSON.parse(answer)).toMatchObject({ engaged: true, terminated: 1 })

    // The server agrees: engaged, and the worker alive before is terminated.
    expect(t.warden.killSwitch.state().engaged).toBe(true)
    expect(storeOf(t.warden).workers.get(id)!.status).toBe('killed')
  })
})
