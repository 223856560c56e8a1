// Opening the database: WAL, full sync, one owning process, forward-only migrations.
import { mkdirSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'

export type Db = Database.Database


export class DatabaseLockedError extends Error {
  constructor(readonly file: string) {
    super(`database ${file} is already in use by another Warden process; one process owns one database file`)
    this.name = 'DatabaseLockedError'
  }
}

export interface OpenOptions {
  migrationsDir?: string
}

/**
 * Opens (creating it and its folder) and migrates the database. The process then holds an
 * exclusive lock on the file for as long as it stays open, so a second Warden on the same file
 * fails here instead of corrupting the first one's view.
 */
export function openDatabase(file: string, options: OpenOptions = {}): Db {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true })
  const db = new Database(file)
  try {
    db.pragma('busy_timeout = 0')
    db.pragma('locking_mode = EXCLUSIVE')
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = FULL')
    db.pragma('foreign_keys = ON')
    // Take the write lock now: in exclusive mode it is then held until close.
    db.exec('BEGIN IMMEDIATE; COMMIT')
  } catch (error) {
    db.close()
    if (error instanceof Error && 'code' in error && (error.code === 'SQLITE_BUSY' || error.code === 'SQLITE_LOCKED')) {
      throw new DatabaseLockedError(file)
    }
    throw error
  }
  migrate(db, options.migrationsDir ?? resolveMigrationsDir())
  return db
}

function resolveMigrationsDir(): string {
  // From src/store (tsx) or dist/src/store (compiled) the project root is two or three levels up.
  const here = dirname(fileURLToPath(import.meta.url))
  for (const up of ['../..', '../../..']) {
    const candidate = join(here, up, 'migrations')
    try {
      readdirSync(candidate)
      return candidate
    } catch {
      // try the next level
    }
  }
  throw new Error(`migrations folder not found from ${here}`)
}

/** Applies every numbered migration newer than `user_version`, each in its own transaction. */
export function migrate(db: Db, dir: string): number {
  const files = readdirSync(dir)
    .filter((name) => /^\d{4}-.+\.sql$/.test(name))
    .sort()
  const current = db.pragma('user_version', { simple: true }) as number
  const latest = files.length === 0 ? 0 : Number(files[files.length - 1]!.slice(0, 4))
  if (current > latest) {
    throw new Error(`database schema version ${current} is newer than this Warden (knows up to ${latest}); refusing to run`)
  }
  for (const name of files) {
    const version = Number(name.slice(0, 4))
    if (version <= current) continue
    const sql = readFileSync(join(dir, name), 'utf8')
    db.transaction(() => {
      db.exec(sql)
      db.pragma(`user_version = ${version}`)
    })()
  }
  return db.pragma('user_version', { simple: true }) as number
}

export function isMigrated(db: Db): boolean {
  try {
    return (db.pragma('user_version', { simple: true }) as number) > 0
  } catch {
    return false
  }
}
