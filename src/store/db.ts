// Opening the database: WAL, full sync, one owning process, forward-only migrations.
import { createHash } from 'node:crypto'
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'

/**
 * The database connection. An interface rather than an alias, so declaration files can name it
 * (tsc --declaration cannot name better-sqlite3's own namespace from the store's return types).
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface Db extends Database.Database {}


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
  if (file !== ':memory:') {
    secureDataFolder(dirname(file))
    // Created 0600 before SQLite opens it: SQLite gives its -wal and -shm the database's mode.
    closeSync(openSync(file, 'a', 0o600))
    secureDatabaseFiles(file)
  }
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

/**
 * The data folder is the owner's only (0700), created so or fixed at start. A shared folder
 * (sticky or world-writable, like /tmp) or the root is left alone: it is not Warden's to change.
 */
export function secureDataFolder(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const mode = statSync(dir).mode & 0o7777
  if (mode & 0o1000 || mode & 0o002 || resolve(dir) === '/') return
  if ((mode & 0o077) !== 0) chmodSync(dir, mode & 0o700)
}

/** The database and its -wal, -shm and reserve files are readable by the owner only (0600). */
export function secureDatabaseFiles(file: string): void {
  for (const path of [file, `${file}-wal`, `${file}-shm`, `${file}-journal`, `${file}.reserve`]) {
    if (!existsSync(path)) continue
    if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600)
  }
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

/**
 * Applies every numbered migration not applied yet, in order, each in its own transaction, and
 * records each one applied (a number that lands later than a higher one is still applied).
 * `user_version` follows the highest applied; a database knowing a migration this code does not
 * is refused.
 */
export function migrate(db: Db, dir: string): number {
  const files = readdirSync(dir)
    .filter((name) => /^\d{4}-.+\.sql$/.test(name))
    .sort()
  const known = new Set(files.map((name) => Number(name.slice(0, 4))))
  // Functions migrations may call: a digest, so a secret can be replaced by its hash in place.
  db.function('warden_sha256', { deterministic: true }, (value: unknown) =>
    value === null || value === undefined ? null : createHash('sha256').update(String(value), 'utf8').digest(),
  )
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT`)
  const applied = new Set(db.prepare<[], number>(`SELECT version FROM schema_migrations`).pluck().all())
  const userVersion = db.pragma('user_version', { simple: true }) as number
  if (applied.size === 0 && userVersion > 0) {
    // A database from before this table: everything up to user_version was applied in order.
    const record = db.prepare(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`)
    for (const name of files) {
      const version = Number(name.slice(0, 4))
      if (version <= userVersion) {
        record.run(version, name, Date.now())
        applied.add(version)
      }
    }
  }
  const unknown = [...applied].filter((version) => !known.has(version))
  if (userVersion > Math.max(0, ...known) || unknown.length > 0) {
    throw new Error(
      `database schema has migration ${Math.max(userVersion, ...unknown)}, newer than this Warden (knows ${[...known].join(', ') || 'none'}); refusing to run`,
    )
  }
  const record = db.prepare(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`)
  for (const name of files) {
    const version = Number(name.slice(0, 4))
    if (applied.has(version)) continue
    const sql = readFileSync(join(dir, name), 'utf8')
    // What a migration deletes (e.g. a secret replaced by its hash) is overwritten, not just unlinked.
    db.pragma('secure_delete = ON')
    db.transaction(() => {
      db.exec(sql)
      record.run(version, name, Date.now())
      applied.add(version)
      db.pragma(`user_version = ${Math.max(...applied)}`)
    })()
    db.pragma('secure_delete = OFF')
    db.pragma('wal_checkpoint(TRUNCATE)')
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
