// The repositories of one database, and the transaction that binds a decision to its audit record.
import { createAuditRepository, type AuditEntry } from './audit.js'
import type { Db } from './db.js'
import { createManifestRepository } from './manifests.js'
import {
  createContractRepository,
  createControllerStateRepository,
  createKillSwitchRepository,
  createSandboxRepository,
} from './singletons.js'
import { createWorkerRepository } from './workers.js'

export function createStore(db: Db, onAudit?: (entry: AuditEntry) => void) {
  let afterCommit: Array<() => void> | null = null
  return {
    db,
    workers: createWorkerRepository(db),
    manifests: createManifestRepository(db),
    audit: createAuditRepository(db, onAudit),
    killSwitch: createKillSwitchRepository(db),
    controllerState: createControllerStateRepository(db),
    contracts: createContractRepository(db),
    sandboxes: createSandboxRepository(db),
    /**
     * Runs `fn` in one IMMEDIATE transaction: all of it commits, or none of it. Callbacks given
     * to `afterCommit` inside it run once it has committed, and are dropped if it rolls back.
     */
    transaction<T>(fn: () => T): T {
      if (afterCommit !== null) return db.transaction(fn)() // nested: a savepoint of the outer one
      const queue: Array<() => void> = []
      afterCommit = queue
      let result: T
      try {
        result = db.transaction(fn).immediate()
      } finally {
        afterCommit = null
      }
      for (const callback of queue) callback()
      return result
    },
    /** Defers in-memory effects of a write until its transaction commits. */
    afterCommit(callback: () => void): void {
      if (afterCommit === null) callback()
      else afterCommit.push(callback)
    },
    /**
     * A transaction whose loss in a crash is harmless (lease renewals, the reaper's tick time):
     * committed without waiting for the disk, as SPEC §2.10 allows for heartbeats.
     */
    lazyTransaction<T>(fn: () => T): T {
      db.pragma('synchronous = NORMAL')
      try {
        return db.transaction(fn).immediate()
      } finally {
        db.pragma('synchronous = FULL')
      }
    },
  }
}

export type Store = ReturnType<typeof createStore>
export type { AuditEntry }
