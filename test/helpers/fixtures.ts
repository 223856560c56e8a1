// The one set of test fixtures every suite shares: the contract, the bounded wait, the temp
// database folder. (The in-process warden and app: harness.ts; a real server process:
// server.ts.)
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DEFAULT_CONTRACT } from '../../src/domain/contract.js'
import type { ContractInput } from '../../src/schemas/index.js'

/** The default contract with no cooldown (tests that exercise cooldown set one), changed by `overrides`. */
export function contract(overrides: Partial<ContractInput> = {}): ContractInput {
  return { ...DEFAULT_CONTRACT, cooldown_seconds: 0, ...overrides }
}

export const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms))

/**
 * Polls `check` until it returns something other than undefined, null or false, and returns
 * that; fails naming `what` after `timeoutMs`. For what a test cannot await directly (another
 * process, a log line); never a stand-in for a clock the test could inject.
 */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  timeoutMs = 20_000,
  everyMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined && value !== null && value !== false) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(everyMs)
  }
}

/** A fresh folder holding `warden.db` (not yet created); `cleanup` removes the folder. */
export function tempDbFile(): { file: string; dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'warden-test-'))
  return { file: join(dir, 'warden.db'), dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

export const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i)
