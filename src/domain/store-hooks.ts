// What the store is handed from the domain (it imports nothing from here): the audit chain's
// record hash and the error a failing write becomes.
import type { StoreHooks } from '../store/index.js'
import { recordHash } from './audit-chain.js'
import { DomainError } from './errors.js'

export const storeHooks: StoreHooks = {
  recordHash,
  storageError: (detail) => new DomainError('storage_unavailable', detail),
}
