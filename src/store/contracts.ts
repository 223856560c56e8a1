// SQL for the contracts table: every version of the contract, the newest current.
import type { ContractInput } from '../schemas/index.js'
import type { Db } from './db.js'

export interface StoredContract {
  version: number
  /** As stored; the domain validates it again before use. */
  input: unknown
  updated_at: number
}

export function createContractRepository(db: Db) {
  const current = db.prepare<[], { version: number; body: string; updated_at: number }>(
    `SELECT version, body, updated_at FROM contracts ORDER BY version DESC LIMIT 1`,
  )
  const insert = db.prepare(`INSERT INTO contracts (version, body, updated_at, actor) VALUES (?, ?, ?, ?)`)
  return {
    current(): StoredContract | undefined {
      const row = current.get()
      return row && { version: row.version, input: JSON.parse(row.body) as unknown, updated_at: row.updated_at }
    },
    insert(version: number, input: ContractInput, at: number, actor: string): void {
      insert.run(version, JSON.stringify(input), at, actor)
    },
  }
}
