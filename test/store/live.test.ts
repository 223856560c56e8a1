// "Live" is defined once (schemas/ LIVE_STATUSES); the store's SQL filter and the domain's isLive
// are both derived from it and must agree on every status there is.
import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import { isLive, LIVE_STATUSES, TERMINAL_STATUSES, WorkerStatusSchema } from '../../src/schemas/index.js'
import { liveSql } from '../../src/store/workers.js'

describe('live statuses', () => {
  it('partition every worker status into live and terminal', () => {
    expect([...LIVE_STATUSES, ...TERMINAL_STATUSES].sort()).toEqual([...WorkerStatusSchema.options].sort())
    expect(LIVE_STATUSES.filter((s) => (TERMINAL_STATUSES as readonly string[]).includes(s))).toEqual([])
  })

  it('the SQL filter and isLive agree on every status', () => {
    const db = new Database(':memory:')
    try {
      for (const status of WorkerStatusSchema.options) {
        const sqlSays = db.prepare(`SELECT ${liveSql('?')} AS live`).pluck().get(status)
        expect({ status, live: sqlSays === 1 }).toEqual({ status, live: isLive(status) })
      }
      expect(isLive(null)).toBe(false)
    } finally {
      db.close()
    }
  })
})
