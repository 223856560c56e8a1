// vitest globalSetup: the run gets a temp folder of its own (TMPDIR, inherited by the test
// workers), and fails if any test left a warden-* folder in it. Tests clean up what they create.
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'warden-vitest-'))
  // Like /tmp itself: other users (a test's `nobody`, a sandbox) may traverse it.
  chmodSync(dir, 0o1777)
  process.env.TMPDIR = dir
  return () => {
    const left = readdirSync(dir).filter((name) => name.startsWith('warden-'))
    rmSync(dir, { recursive: true, force: true })
    if (left.length > 0) throw new Error(`tests left temp folders behind (each test must remove what it creates): ${left.join(', ')}`)
  }
}
