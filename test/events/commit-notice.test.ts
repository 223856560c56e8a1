// The store's notice to the event hub: once per committed transaction that appended audit
// records, after the commit, never for a rollback.
import { describe, expect, it } from 'vitest'
import { createTestWarden, storeOf } from '../helpers/harness.js'

describe('store.onAuditCommitted', () => {
  it('notifies once per committed transaction, after the commit, with the new head seq', () => {
    const { warden, close } = createTestWarden()
    try {
      const store = storeOf(warden)
      const seen: Array<{ seq: number; inTransaction: boolean }> = []
      store.onAuditCommitted((seq) => seen.push({ seq, inTransaction: store.db.inTransaction }))
      const start = store.audit.head().seq
      store.transaction(() => {
        store.audit.append({ type: 'contract_updated', actor: 'test' }, new Date().toISOString())
        store.audit.append({ type: 'contract_updated', actor: 'test' }, new Date().toISOString())
        expect(seen).toEqual([])
      })
      expect(seen).toEqual([{ seq: start + 2, inTransaction: false }])
      warden.admission.issueRoot({})
      expect(seen.map((s) => s.seq)).toEqual([start + 2, start + 3])
    } finally {
      close()
    }
  })

  it('says nothing for a transaction that rolls back, and nothing when no record was appended', () => {
    const { warden, close } = createTestWarden()
    try {
      const store = storeOf(warden)
      const seen: number[] = []
      const stop = store.onAuditCommitted((seq) => seen.push(seq))
      expect(() =>
        store.transaction(() => {
          store.audit.append({ type: 'contract_updated', actor: 'test' }, new Date().toISOString())
          throw new Error('roll back')
        }),
      ).toThrow('roll back')
      store.transaction(() => store.workers.countByStatus())
      expect(seen).toEqual([])
      warden.admission.issueRoot({})
      expect(seen).toHaveLength(1)
      stop()
      warden.admission.issueRoot({})
      expect(seen).toHaveLength(1)
    } finally {
      close()
    }
  })
})
