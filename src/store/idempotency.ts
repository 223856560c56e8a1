// SQL for the idempotency_keys table: the first answer to a keyed request, per caller.
import type { Db } from './db.js'

export interface IdempotencyRow {
  caller: string
  key: string
  body_digest: Buffer
  status: number
  answer: string
  created_at: number
}

export function createIdempotencyRepository(db: Db) {
  const get = db.prepare<[string, string], IdempotencyRow>(`SELECT * FROM idempotency_keys WHERE caller = ? AND key = ?`)
  // A key past its window may still be in the table until the sweeper reaches it: replaced here.
  const put = db.prepare(`
    INSERT INTO idempotency_keys (caller, key, body_digest, status, answer, created_at)
    VALUES (@caller, @key, @body_digest, @status, @answer, @created_at)
    ON CONFLICT (caller, key) DO UPDATE SET
      body_digest = excluded.body_digest, status = excluded.status, answer = excluded.answer, created_at = excluded.created_at`)
  const sweep = db.prepare(`
    DELETE FROM idempotency_keys WHERE rowid IN (
      SELECT rowid FROM idempotency_keys WHERE created_at <= ? ORDER BY created_at LIMIT ?)`)
  const count = db.prepare<[], { n: number }>(`SELECT count(*) AS n FROM idempotency_keys`)

  return {
    get(caller: string, key: string): IdempotencyRow | undefined {
      return get.get(caller, key)
    },
    put(row: IdempotencyRow): void {
      put.run(row)
    },
    /** Deletes up to `limit` keys created at or before `cutoff`; how many it deleted. */
    sweep(cutoff: number, limit: number): number {
      return sweep.run(cutoff, limit).changes
    },
    count(): number {
      return count.get()!.n
    },
  }
}

export type IdempotencyRepository = ReturnType<typeof createIdempotencyRepository>
