// An operator in the console at GET /: real Chromium, a real server on 127.0.0.1, workers driven
// through the HTTP API while the page watches. Elements are found by role and accessible name;
// each step leaves a screenshot under test/screenshots/.
import type { Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openBrowser, type Browser } from '../helpers/browser.js'
import { createTestApp, OPERATOR_TOKEN, type TestApp, storeOf } from '../helpers/harness.js'
import type { WardenClient } from '../../src/client/client.js'
import { outcome } from '../helpers/calls.js'
import { testClient } from '../helpers/server.js'

const TIMEOUT = 15_000

describe('the operations console at GET /', () => {
  let t: TestApp
  let browser: Browser
  let page: Page
  let base: string
  let client: WardenClient
  const workers: Array<{ id: string; token: string }> = []

  beforeAll(async () => {
    t = await createTestApp({ max_depth: 2, max_replicas: 50 })
    t.clock.set(Date.now()) // the console counts denials of the last minutes by the browser's clock
    base = await t.app.listen({ host: '127.0.0.1', port: 0 })
    client = testClient(base, OPERATOR_TOKEN, { connections: 4 })
    browser = await openBrowser()
    page = browser.page
    await page.setViewportSize({ width: 1366, height: 768 }) // a laptop
  })
  afterAll(async () => {
    await browser?.close()
    await client?.close()
    t?.close()
  })

  async function registerRoot() {
    const manifest = await client.issueManifest()
    const registered = await client.register(manifest)
    const worker = { id: manifest.worker_id, token: registered.lease_token }
    workers.push(worker)
    return worker
  }

  /** The registered child, or the refusal's status and code. */
  async function spawn(parent: { id: string; token: string }) {
    const manifest = await outcome(client.spawn({ worker_id: parent.id, lease_token: parent.token }, { reason: 'grow' }))
    if (!manifest.ok) return { status: manifest.status, code: manifest.code }
    const registered = await client.register(manifest.value)
    const worker = { id: manifest.value.worker_id, token: registered.lease_token }
    workers.push(worker)
    return worker
  }

  const row = (id: string) => page.getByRole('treeitem', { name: new RegExp(`^${id}`) })
  const auditFeed = () => page.getByRole('list', { name: 'Audit feed, newest first' })

  it('refuses a wrong token with a clear message and shows nothing of the fleet', async () => {
    await page.goto(`${base}/`)
    expect(await page.title()).toBe('Warden console')
    await page.getByLabel('Operator token').fill('not-the-operator-token')
    await page.getByRole('button', { name: 'Sign in' }).click()
    const message = page.getByRole('alert').filter({ hasText: 'refused this token' })
    await message.waitFor({ timeout: TIMEOUT })
    expect(await message.innerText()).toContain('401')
    expect(await page.getByRole('tree', { name: 'Worker lineage' }).isVisible()).toBe(false)
    await browser.screenshot('console-1-wrong-token')
  })

  it('signs in with the operator token and keeps it for the session only', async () => {
    await page.getByLabel('Operator token').fill(OPERATOR_TOKEN)
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.getByRole('tree', { name: 'Worker lineage' }).waitFor({ timeout: TIMEOUT })
    await page.getByRole('status').filter({ hasText: /^live$/ }).waitFor({ timeout: TIMEOUT })
    expect(await page.evaluate('Object.keys(sessionStorage)')).toEqual(['warden.operator-token'])
    expect(await page.evaluate('Object.keys(localStorage)')).toEqual([])
    await browser.screenshot('console-2-signed-in')
  })

  it('shows workers registered through the API in the tree without a reload, with the denials', async () => {
    const navigations: string[] = []
    page.on('framenavigated', (frame) => navigations.push(frame.url()))
    const a = await registerRoot()
    const b = await registerRoot()
    const a1 = (await spawn(a)) as { id: string; token: string }
    const a11 = (await spawn(a1)) as { id: string; token: string }
    await spawn(a)
    const denied = await spawn(a11) // depth 3 > max_depth 2
    expect(denied).toMatchObject({ status: 403, code: 'depth_exceeded' })
    for (const w of [a, b, a1, a11]) await row(w.id).waitFor({ timeout: TIMEOUT })
    expect(await row(a11.id).getAttribute('aria-level')).toBe('3')
    expect(await row(a.id).innerText()).toContain('active')
    await page.getByRole('list', { name: 'Denials by code' }).filter({ hasText: 'depth_exceeded' }).waitFor({ timeout: TIMEOUT })
    await page.getByText('5 of 50').waitFor({ timeout: TIMEOUT })
    expect(navigations).toEqual([])
    await browser.screenshot('console-3-live-tree')
  })

  it('quarantines and kills from the worker panel, and the tree and the audit feed follow', async () => {
    const [a, b] = workers
    await row(b!.id).click()
    await page.getByRole('button', { name: 'Quarantine' }).click()
    await row(b!.id).filter({ hasText: 'quarantined' }).waitFor({ timeout: TIMEOUT })
    await auditFeed().getByText('worker_quarantined').waitFor({ timeout: TIMEOUT })
    expect(storeOf(t.warden).workers.get(b!.id)!.status).toBe('quarantined')
    await browser.screenshot('console-4-quarantined')

    await page.getByRole('button', { name: 'Release' }).click()
    await row(b!.id).filter({ hasText: 'active' }).waitFor({ timeout: TIMEOUT })

    // Kill a's child a1 without cascade: its own child stays active.
    const a1 = workers[2]!
    const a11 = workers[3]!
    await row(a1.id).click()
    await page.getByRole('checkbox', { name: /cascade/ }).uncheck()
    await page.getByRole('button', { name: 'Kill worker' }).click()
    await row(a1.id).filter({ hasText: 'killed' }).waitFor({ timeout: TIMEOUT })
    await auditFeed().getByText('worker_killed').first().waitFor({ timeout: TIMEOUT })
    expect(await row(a11.id).innerText()).toContain('active')
    expect(storeOf(t.warden).workers.get(a11.id)!.status).toBe('active')

    // Kill a with cascade: every live descendant goes too.
    await row(a!.id).click()
    expect(await page.getByRole('checkbox', { name: /cascade/ }).isChecked()).toBe(true)
    await page.getByRole('button', { name: 'Kill worker' }).click()
    await row(a!.id).filter({ hasText: 'killed' }).waitFor({ timeout: TIMEOUT })
    await row(a11.id).filter({ hasText: 'killed' }).waitFor({ timeout: TIMEOUT })
    await browser.screenshot('console-5-killed')
  })

  it('shows the server’s validation message beside the contract field', async () => {
    const field = page.getByLabel('Max depth')
    await field.fill('-1')
    await page.getByRole('button', { name: 'Save contract' }).click()
    const message = page.getByText('max_depth must be >= 0, got -1')
    await message.waitFor({ timeout: TIMEOUT })
    // Beside the field: it is the field's description, and the field is marked invalid.
    expect(await message.getAttribute('id')).toBe(await field.getAttribute('aria-describedby'))
    expect(await field.getAttribute('aria-invalid')).toBe('true')
    expect(t.warden.contracts.current().max_depth).toBe(2)
    await browser.screenshot('console-6-contract-error', page.getByRole('region', { name: /Contract/ }))
    await field.fill('2')
  })

  it('engages the kill switch after a confirmation: every worker terminated, a banner across the page', async () => {
    await page.getByRole('button', { name: 'Engage kill switch', exact: true }).click()
    const dialog = page.getByRole('dialog', { name: 'Engage the kill switch?' })
    await dialog.waitFor({ timeout: TIMEOUT })
    expect(t.warden.killSwitch.state().engaged).toBe(false) // nothing happens before confirming
    await browser.screenshot('console-7-kill-switch-confirm')
    await dialog.getByRole('button', { name: 'Terminate every worker' }).click()

    await page.getByRole('alert').filter({ hasText: 'KILL SWITCH ENGAGED' }).waitFor({ timeout: TIMEOUT })
    for (const w of workers) await row(w.id).filter({ hasText: /killed/ }).waitFor({ timeout: TIMEOUT })
    const rows = await page.getByRole('treeitem').allInnerTexts()
    expect(rows.length).toBe(workers.length)
    for (const text of rows) expect(text).not.toMatch(/\b(active|quarantined)\b/)
    expect(t.warden.killSwitch.state().engaged).toBe(true)
    await browser.screenshot('console-8-kill-switch-engaged')
  })
})
