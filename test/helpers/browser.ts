// Debian's Chromium driven by playwright-core (never a downloaded browser), for browser tests.
// Usage:
//   const browser = await openBrowser()
//   try { await browser.page.goto(url); ... await browser.screenshot('name') } finally { await browser.close() }
// A missing Chromium is a failure, not a skip: CI installs the apt package `chromium`.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core'

export const CHROMIUM_PATH = '/usr/bin/chromium'
/** Screenshots are kept here (git-ignored) for a person to look at after a run. */
export const SCREENSHOT_DIR = resolve(import.meta.dirname, '..', 'screenshots')

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
]

export interface Browser {
  context: BrowserContext
  page: Page
  /** Saves a PNG of the page (or of `target` alone) under test/screenshots/ and returns its path. */
  screenshot(name: string, target?: Locator): Promise<string>
  /** Closes Chromium and removes its profile folder. */
  close(): Promise<void>
}

export async function openBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`${CHROMIUM_PATH} is missing: install Debian's Chromium (apt-get install chromium); browser tests need it`)
  }
  const profile = mkdtempSync(join(tmpdir(), 'warden-browser-'))
  let context: BrowserContext
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: FLAGS,
      viewport: { width: 1280, height: 900 },
    })
  } catch (error) {
    rmSync(profile, { recursive: true, force: true })
    throw error
  }
  const page = context.pages()[0] ?? (await context.newPage())
  return {
    context,
    page,
    async screenshot(name, target) {
      mkdirSync(SCREENSHOT_DIR, { recursive: true })
      const path = join(SCREENSHOT_DIR, `${name}.png`)
      await (target ?? page).screenshot({ path })
      return path
    },
    async close() {
      await context.close()
      rmSync(profile, { recursive: true, force: true })
    },
  }
}
