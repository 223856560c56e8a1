// SPEC §7: the database, its WAL and the data folder are the owner's only, fixed on existing
// installs at start, and no outstanding manifest can be read out of the live database. Attacked
// as the issue did: an unprivileged local user (uid nobody) reading the files of a running server.
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createServerTracker } from '../helpers/server.js'

const servers = createServerTracker()
const parents: string[] = []
afterEach(async () => {
  await servers.cleanup()
  for (const dir of parents.splice(0)) rmSync(dir, { recursive: true, force: true })
})

/** A database path whose folder Warden has to create itself (under a 0755 parent, as ./data would be). */
function freshInstall(): { dir: string; dbFile: string } {
  const parent = mkdtempSync(join(tmpdir(), 'warden-modes-'))
  chmodSync(parent, 0o755)
  parents.push(parent)
  const dir = join(parent, 'data')
  return { dir, dbFile: join(dir, 'warden.db') }
}

const mode = (path: string) => statSync(path).mode & 0o777
const databaseFiles = (dbFile: string) => [dbFile, `${dbFile}-wal`, `${dbFile}-shm`].filter((path) => existsSync(path))

/** Reads a file as uid/gid nobody: the unprivileged local user of the attack. */
function readAsNobody(path: string) {
  return spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'cat', path], { encoding: 'latin1' })
}

describe('file modes and stored credentials (SPEC §7)', () => {
  it('keeps the folder 0700 and the database and WAL 0600, so another local user cannot read a live outstanding manifest', async () => {
    const { dir, dbFile } = freshInstall()
    const { client } = await servers.start({ dbFile })
    const { signature } = await client.issueManifest()

    expect(mode(dir)).toBe(0o700)
    const files = databaseFiles(dbFile)
    expect(files).toContain(`${dbFile}-wal`)
    for (const file of files) expect(mode(file), file).toBe(0o600)
    for (const secret of ['operator-token', 'signing-key']) expect(mode(join(dir, secret))).toBe(0o600)

    for (const file of files) {
      const attempt = readAsNobody(file)
      expect(attempt.status, `${file} readable by nobody`).not.toBe(0)
      expect(attempt.stdout).not.toContain(signature)
    }
    // Even with the files in hand (a backup, root), the bearer part is not there: only its digest.
    for (const file of files) expect(readFileSync(file, 'latin1'), file).not.toContain(signature)
  })

  it('fixes the modes of an existing install at start', async () => {
    const { dir, dbFile } = freshInstall()
    const first = await servers.start({ dbFile })
    await first.client.issueManifest()
    await first.server.kill('SIGKILL')
    chmodSync(dir, 0o755)
    for (const file of databaseFiles(dbFile)) chmodSync(file, 0o644)
    expect(readAsNobody(dbFile).status).toBe(0) // the old install's exposure

    await servers.start({ dbFile })
    expect(mode(dir)).toBe(0o700)
    for (const file of databaseFiles(dbFile)) expect(mode(file), file).toBe(0o600)
    expect(readAsNobody(dbFile).status).not.toBe(0)
  })
})
