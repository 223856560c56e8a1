// SQL for the audit table. Appending links each record to the one before it.
import type { AuditQuery, AuditRecord, AuditType } from '../schemas/index.js'
import type { Db } from './db.js'

export interface AuditEntry {
  type: AuditType
  actor: string
  worker_id?: string | null
  parent_id?: string | null
  code?: string | null
  data?: Record<string, unknown>
}

interface AuditRow extends Omit<AuditRecord, 'data'> {
  data: string
}

const fromRow = (row: AuditRow): AuditRecord => ({ ...row, data: JSON.parse(row.data) })

/** The chain's hash of a record, given by the domain (audit-chain.ts). */
export type RecordHash = (record: Omit<AuditRecord, 'hash'>) => string

export function createAuditRepository(db: Db, recordHash: RecordHash, onAppend: (entry: AuditEntry) => void = () => {}) {
  const head = db.prepare<[], { seq: number; hash: string }>(`SELECT seq, hash FROM audit_head WHERE id = 1`)
  const moveHead = db.prepare(`UPDATE audit_head SET seq = @seq, hash = @hash WHERE id = 1`)
  const insert = db.prepare(`
    INSERT INTO audit (seq, at, type, actor, worker_id, parent_id, code, data, prev_hash, hash)
    VALUES (@seq, @at, @type, @actor, @worker_id, @parent_id, @code, @data, @prev_hash, @hash)`)
  const all = db.prepare<[], AuditRow>(`SELECT * FROM audit ORDER BY seq`)
  const page = db.prepare<[number, number, number], AuditRow>(`SELECT * FROM audit WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?`)
  const countAfter = db.prepare<[number], number>(`SELECT count(*) FROM audit WHERE seq > ?`).pluck()
  const after = db.prepare<[number, number], AuditRow>(`SELECT * FROM audit WHERE seq > ? ORDER BY seq LIMIT ?`)
  // One statement per combination of filters and order, prepared on first use and kept.
  const listStatements = new Map<string, ReturnType<typeof db.prepare<[Omit<AuditQuery, 'order'>], AuditRow>>>()
  const listStatement = (query: AuditQuery) => {
    const where = ['seq > @after_seq']
    if (query.before_seq !== undefined) where.push('seq < @before_seq')
    if (query.type !== undefined) where.push('type = @type')
    if (query.worker_id !== undefined) where.push('(worker_id = @worker_id OR parent_id = @worker_id)')
    const sql = `SELECT * FROM audit WHERE ${where.join(' AND ')} ORDER BY seq ${query.order === 'desc' ? 'DESC' : 'ASC'} LIMIT @limit`
    let statement = listStatements.get(sql)
    if (!statement) {
      statement = db.prepare<[Omit<AuditQuery, 'order'>], AuditRow>(sql)
      listStatements.set(sql, statement)
    }
    return statement
  }

  return {
    /** Must run inside the transaction of the change it records. */
    append(entry: AuditEntry, at: string): AuditRecord {
      const last = head.get()!
      const unhashed = {
        seq: last.seq + 1,
        at,
        type: entry.type,
        actor: entry.actor,
        worker_id: entry.worker_id ?? null,
        parent_id: entry.parent_id ?? null,
        code: entry.code ?? null,
        data: (entry.data ?? {}) as AuditRecord['data'],
        prev_hash: last.hash,
      }
      const record: AuditRecord = { ...unhashed, hash: recordHash(unhashed) }
      insert.run({ ...record, data: JSON.stringify(record.data) })
      moveHead.run({ seq: record.seq, hash: record.hash })
      onAppend(entry)
      return record
    },
    list(query: AuditQuery): AuditRecord[] {
      const { order: _order, ...params } = query
      return listStatement(query).all(params).map(fromRow)
    },
    /** Up to `limit` records after `seq`, in order: the event stream's slices. */
    after(seq: number, limit: number): AuditRecord[] {
      return after.all(seq, limit).map(fromRow)
    },
    /** The newest record as the last append left it: `seq` 0 before the first one. */
    head(): { seq: number; hash: string } {
      return head.get()!
    },
    /** Records after `afterSeq` up to `upToSeq`, in order: a page of a scan sliced over turns of the loop. */
    page(afterSeq: number, upToSeq: number, limit: number): AuditRecord[] {
      return page.all(afterSeq, upToSeq, limit).map(fromRow)
    },
    countAfter(seq: number): number {
      return countAfter.get(seq)!
    },
    *iterate(): Generator<AuditRecord> {
      for (const row of all.iterate()) yield fromRow(row)
    },
  }
}

export type AuditRepository = ReturnType<typeof createAuditRepository>
