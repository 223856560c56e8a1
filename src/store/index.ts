// The repositories of one database, and the transaction that binds a decision to its audit record.
import { createAuditRepository, type AuditEntry, type RecordHash } from './audit.js'
import { createContractRepository } from './contracts.js'
import { createControllerStateRepository } from './controller-state.js'
import type { Db } from './db.js'
import { createIdempotencyRepository } from './idempotency.js'
import { createKillSwitchRepository } from './kill-switch.js'
import { createManifestRepository } from './manifests.js'
import { createStorageHealth, isStorageFailure, noReserve, type Reserve } from './storage.js'
import { createSandboxRepository } from './sandboxes.js'
import { createWorkerRepository } from './workers.js'

/** What the store needs from the rules above it, handed in so the store imports nothing from them. */
export interface StoreHooks {
  /** The audit chain's hash of a record (SPEC §2.9). */
  recordHash: RecordHash
  /** The error a failing write becomes (the domain's storage_unavailable, a 503). */
  storageError: (detail: string) => Error
}

export interface StoreOptions extends StoreHooks {
  /** Called for each audit record appended (metrics). */
  onAudit?: (entry: AuditEntry) => void
  /** Space kept for the decisions that must commit on a full disk. */
  reserve?: Reserve
}

export interface TransactionOptions {
  /**
   * A decision that must commit even on a full disk (the kill switch, a kill): when the disk is
   * full, the reserve is released and the transaction tried once more.
   */
  critical?: boolean
}

export function createStore(db: Db, options: StoreOptions) {
  const { onAudit } = options
  let afterCommit: Array<() => void> | null = null
  const health = createStorageHealth()
  const reserve = options.reserve ?? noReserve

  /** Runs a write; a failing disk becomes the domain's storage_unavailable (503) and fails readiness. */
  function write<T>(run: () => T, critical = false): T {
    try {
      const result = run()
      health.succeeded()
      return result
    } catch (error) {
      if (!isStorageFailure(error)) throw error
      health.failed(error)
      if (critical && reserve.release()) return write(run, false)
      throw options.storageError(`the database cannot be written (${error.code}); free disk space or fix the storage`)
    }
  }

  // Prepared once: the lease flusher switches to lazy commits and back several times a second.
  const lazySync = db.prepare('PRAGMA synchronous = NORMAL')
  const fullSync = db.prepare('PRAGMA synchronous = FULL')

  const headListeners = new Set<(seq: number) => void>()
  let headNotice = false
  const noticeHead = () => {
    headNotice = false
    const seq = audit.head().seq
    for (const listener of headListeners) listener(seq)
  }
  const audit = createAuditRepository(db, options.recordHash, (entry) => {
    onAudit?.(entry)
    // One notice per transaction, after it commits (the first append queues it).
    if (headListeners.size > 0 && !headNotice) {
      headNotice = true
      deferUntilCommit(noticeHead)
    }
  })
  const deferUntilCommit = (callback: () => void) => {
    if (afterCommit === null) callback()
    else afterCommit.push(callback)
  }
  return {
    db,
    workers: createWorkerRepository(db, deferUntilCommit),
    manifests: createManifestRepository(db),
    audit,
    /**
     * Calls `listener` with the audit head's seq after each committed transaction that appended
     * audit records: a synchronous notice, no I/O; listeners read the records themselves.
     * Returns the unsubscribe function.
     */
    onAuditCommitted(listener: (seq: number) => void): () => void {
      headListeners.add(listener)
      return () => headListeners.delete(listener)
    },
    killSwitch: createKillSwitchRepository(db),
    controllerState: createControllerStateRepository(db),
    contracts: createContractRepository(db),
    sandboxes: createSandboxRepository(db),
    idempotency: createIdempotencyRepository(db),
    /**
     * Runs `fn` in one IMMEDIATE transaction: all of it commits, or none of it. Callbacks given
     * to `afterCommit` inside it run once it has committed, and are dropped if it rolls back.
     */
    transaction<T>(fn: () => T, options: TransactionOptions = {}): T {
      if (afterCommit !== null) return db.transaction(fn)() // nested: a savepoint of the outer one
      let queue: Array<() => void> = []
      const result = write(() => {
        queue = []
        afterCommit = queue
        try {
          return db.transaction(fn).immediate()
        } finally {
          afterCommit = null
          headNotice = false // a rolled-back transaction (or a failed attempt) leaves no notice pending
        }
      }, options.critical)
      for (const callback of queue) callback()
      return result
    },
    /** Defers in-memory effects of a write until its transaction commits. */
    afterCommit: deferUntilCommit,
    /**
     * A transaction whose loss in a crash is harmless (lease renewals, the reaper's tick time):
     * committed without waiting for the disk, as SPEC §2.10 allows for heartbeats.
     */
    lazyTransaction<T>(fn: () => T): T {
      return write(() => {
        lazySync.run()
        try {
          return db.transaction(fn).immediate()
        } finally {
          fullSync.run()
        }
      })
    },
    /** Whether writes are failing now (readiness), and why. */
    health,
    reserve,
  }
}

export type Store = ReturnType<typeof createStore>
export type { AuditEntry, RecordHash }
