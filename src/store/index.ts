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
  return {
    db,
    workers: createWorkerRepository(db),
    manifests: createManifestRepository(db),
    audit: createAuditRepository(db, onAudit),
    killSwitch: createKillSwitchRepository(db),
    controllerState: createControllerStateRepository(db),
    contracts: createContractRepository(db),
    sandboxes: createSandboxRepository(db),
    /** Runs `fn` in one IMMEDIATE transaction: all of it commits, or none of it. */
    transaction<T>(fn: () => T): T {
      return db.transaction(fn).immediate()
    },
  }
}

export type Store = ReturnType<typeof createStore>
export type { AuditEntry }
