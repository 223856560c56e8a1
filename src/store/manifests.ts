// SQL for the manifests table.
import type { Db } from './db.js'

export type ManifestStatus = 'outstanding' | 'registered' | 'expired' | 'rejected' | 'voided'

export interface ManifestRow {
  worker_id: string
  parent_id: string | null
  depth: number
  /** The manifest as issued, without its signature (a bearer credential is never stored). */
  body: string
  /** SHA-256 of the signature. */
  signature_hash: Buffer | null
  issued_at: number
  expires_at: number
  status: ManifestStatus
}

export function createManifestRepository(db: Db) {
  const insert = db.prepare(`
    INSERT INTO manifests (worker_id, parent_id, depth, body, signature_hash, issued_at, expires_at, status)
    VALUES (@worker_id, @parent_id, @depth, @body, @signature_hash, @issued_at, @expires_at, 'outstanding')`)
  const get = db.prepare<[string], ManifestRow>(`SELECT * FROM manifests WHERE worker_id = ?`)
  const countOutstanding = db.prepare<[number], { n: number }>(
    `SELECT count(*) AS n FROM manifests WHERE status = 'outstanding' AND expires_at > ?`,
  )
  const setStatus = db.prepare(`UPDATE manifests SET status = @status WHERE worker_id = @worker_id AND status = 'outstanding'`)
  const due = db.prepare<[number, number], { worker_id: string; parent_id: string | null }>(`
    SELECT worker_id, parent_id FROM manifests WHERE status = 'outstanding' AND expires_at <= ? ORDER BY expires_at LIMIT ?`)
  const voidAll = db.prepare(`UPDATE manifests SET status = 'voided' WHERE status = 'outstanding'`)
  const outstandingKeys = db.prepare<[], { worker_id: string; parent_id: string | null; key_id: string | null }>(
    `SELECT worker_id, parent_id, json_extract(body, '$.key_id') AS key_id FROM manifests WHERE status = 'outstanding'`,
  )
  const outstandingOf = db.prepare<[string], { worker_id: string; parent_id: string | null }>(
    `SELECT worker_id, parent_id FROM manifests WHERE status = 'outstanding' AND parent_id = ?`,
  )

  return {
    insert(row: Omit<ManifestRow, 'status'>): void {
      insert.run(row)
    },
    get(workerId: string): ManifestRow | undefined {
      return get.get(workerId)
    },
    /** Outstanding manifests still inside their TTL: each holds a quota slot. */
    countOutstanding(now: number): number {
      return countOutstanding.get(now)!.n
    },
    /** Closes an outstanding manifest; false when it was no longer outstanding. */
    close(workerId: string, status: Exclude<ManifestStatus, 'outstanding'>): boolean {
      return setStatus.run({ worker_id: workerId, status }).changes === 1
    },
    due(now: number, limit: number) {
      return due.all(now, limit)
    },
    voidAll(): number {
      return voidAll.run().changes
    },
    /** Every outstanding manifest with the key it was signed with. */
    outstandingKeys() {
      return outstandingKeys.all()
    },
    outstandingOf(parentId: string) {
      return outstandingOf.all(parentId)
    },
  }
}

export type ManifestRepository = ReturnType<typeof createManifestRepository>
