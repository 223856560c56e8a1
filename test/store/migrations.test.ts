// The migration runner: each file applied once, in order, recorded; a number landing later than a
// higher one is still applied; 0004 replaces stored manifest signatures by their digest in place.
import { createHash } from 'node:crypto'
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { ManualClock } from '../../src/domain/clock.js'
import { DEFAULT_CONTRACT } from '../../src/domain/contract.js'
import { createSigner } from '../../src/domain/signing.js'
import { openDatabase } from '../../src/store/db.js'
import { createStore } from '../../src/store/index.js'
import { storeHooks } from '../../src/domain/store-hooks.js'
import { SIGNING_KEY, buildWarden } from '../helpers/harness.js'

const MIGRATIONS = resolve(import.meta.dirname, '..', '..', 'migrations')
const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-migrate-'))
  dirs.push(dir)
  return dir
}

/** A migrations folder holding the project's files numbered up to `upTo`. */
function migrationsUpTo(upTo: number): string {
  const dir = tempDir()
  for (const name of readdirSync(MIGRATIONS)) if (Number(name.slice(0, 4)) <= upTo) copyFileSync(join(MIGRATIONS, name), join(dir, name))
  return dir
}

describe('migrations', () => {
  it('applies a migration whose number lands after a higher one was applied, and records each', () => {
    const folder = migrationsUpTo(3)
    writeFileSync(join(folder, '0006-later.sql'), 'CREATE TABLE later_six (x INTEGER) STRICT;')
    const file = join(tempDir(), 'warden.db')
    openDatabase(file, { migrationsDir: folder }).close()

    writeFileSync(join(folder, '0005-landed-late.sql'), 'CREATE TABLE late_five (x INTEGER) STRICT;')
    const db = openDatabase(file, { migrationsDir: folder })
    const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).pluck().all()
    expect(tables).toEqual(expect.arrayContaining(['late_five', 'later_six']))
    expect(db.prepare(`SELECT version FROM schema_migrations ORDER BY version`).pluck().all()).toEqual([1, 2, 3, 5, 6])
    expect(db.pragma('user_version', { simple: true })).toBe(6)
    db.close()
  })

  it('refuses a database that applied a migration this code does not know', () => {
    const file = join(tempDir(), 'warden.db')
    openDatabase(file).close()
    const folder = migrationsUpTo(3)
    expect(() => openDatabase(file, { migrationsDir: folder })).toThrow(/newer than this Warden/)
  })

  it('0004 replaces the signature of every stored manifest by its SHA-256, leaving no copy in the file, and the manifest still registers', () => {
    const file = join(tempDir(), 'warden.db')
    const signer = createSigner(SIGNING_KEY)
    const now = Date.parse('2026-01-01T00:00:00.000Z')
    const manifest = signer.sign({
      worker_id: 'a'.repeat(32),
      parent_id: null,
      depth: 0,
      state_snapshot: {},
      resources: DEFAULT_CONTRACT.default_resources,
      issued_at: new Date(now).toISOString(),
      expires_at: new Date(now + 300_000).toISOString(),
    })
    // A database as version 3 wrote it: the signed manifest, signature included, in the body.
    const old = openDatabase(file, { migrationsDir: migrationsUpTo(3) })
    old
      .prepare(`INSERT INTO manifests (worker_id, parent_id, depth, body, issued_at, expires_at, status) VALUES (?, NULL, 0, ?, ?, ?, 'outstanding')`)
      .run(manifest.worker_id, JSON.stringify(manifest), now, now + 300_000)
    old.close()
    expect(readFileSync(file, 'latin1')).toContain(manifest.signature)

    const db = openDatabase(file)
    const row = db.prepare(`SELECT body, signature_hash FROM manifests`).get() as { body: string; signature_hash: Buffer }
    expect(JSON.parse(row.body)).not.toHaveProperty('signature')
    expect(row.signature_hash.equals(createHash('sha256').update(manifest.signature).digest())).toBe(true)
    for (const path of [file, `${file}-wal`]) {
      let bytes = ''
      try {
        bytes = readFileSync(path, 'latin1')
      } catch {
        continue
      }
      expect(bytes, path).not.toContain(manifest.signature)
    }

    const warden = buildWarden({ store: createStore(db, storeHooks), clock: new ManualClock(now + 1000), signer, contract: DEFAULT_CONTRACT })
    warden.liveness.resume()
    expect(warden.admission.register(manifest).worker.worker_id).toBe(manifest.worker_id)
    db.close()
  })
})
