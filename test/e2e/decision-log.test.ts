// One log line per committed decision, in order, written in slices after the commit.
import { describe, expect, it } from 'vitest'
import { logDecisions } from '../../src/decision-log.js'
import { createTestWarden, storeOf } from '../helpers/harness.js'
import { waitFor } from '../helpers/fixtures.js'

describe('logDecisions', () => {
  it('writes one line per audit record after it commits, in seq order, none twice, off the committing call', async () => {
    const t = createTestWarden({ max_replicas: 10_000 })
    try {
      const lines: Array<{ decision: string; seq: number; worker_id?: string }> = []
      const log = { info: (line: object) => void lines.push(line as never), warn: (line: object) => void lines.push(line as never) }
      const stop = logDecisions(storeOf(t.warden), log as never)
      const ids: string[] = []
      for (let i = 0; i < 1200; i++) ids.push(t.warden.admission.issueRoot({}).worker_id)
      expect(lines).toHaveLength(0) // nothing written inside the committing calls
      await waitFor('every line', async () => (lines.length >= 1200 ? true : undefined), 10_000, 5)
      expect(lines.map((l) => l.decision)).toEqual(ids.map(() => 'manifest_issued'))
      expect(lines.map((l) => l.worker_id)).toEqual(ids)
      const seqs = lines.map((l) => l.seq)
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b))
      expect(new Set(seqs).size).toBe(1200)

      t.warden.killSwitch.engage('drill')
      await waitFor('the kill switch line', async () => lines.find((l) => l.decision === 'kill_switch_engaged'))
      expect(lines).toHaveLength(1201 + lines.filter((l) => l.decision === 'manifest_expired').length)
      stop()
    } finally {
      t.close()
    }
  })
})
