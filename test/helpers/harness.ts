// In-process harness: a migrated in-memory database, a manual clock, the domain, and the app.
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { ManualClock } from '../../src/domain/clock.js'
import { DEFAULT_CONTRACT } from '../../src/domain/contract.js'
import { createWarden, type Warden, type WardenOptions } from '../../src/domain/index.js'
import { LeaseBook } from '../../src/domain/lease-book.js'
import type { SandboxPort } from '../../src/domain/sandbox.js'
import { createSigner } from '../../src/domain/signing.js'
import type { ContractInput, Manifest } from '../../src/schemas/index.js'
import { openDatabase } from '../../src/store/db.js'
import { createStore, type Store } from '../../src/store/index.js'
import { storeHooks } from '../../src/domain/store-hooks.js'

export const OPERATOR_TOKEN = 'test-operator-token-0123456789abcdef'
export const SIGNING_KEY = Buffer.from('test-signing-key-0123456789abcdef0123456789', 'utf8')

/**
 * What a test may look at behind a warden's public face: its tables and its lease book, to
 * assert what changed (or did not). The domain itself never hands these out.
 */
interface Inside {
  store: Store
  leases: LeaseBook
  clock: WardenOptions['clock']
}
const inside = new WeakMap<Warden, Inside>()

/** createWarden, remembering the store and lease book for storeOf / leasesOf. */
export function buildWarden(options: WardenOptions): Warden {
  const leases = options.leases ?? new LeaseBook()
  const warden = createWarden({ ...options, leases })
  inside.set(warden, { store: options.store, leases, clock: options.clock })
  return warden
}

const insideOf = (warden: Warden): Inside => {
  const found = inside.get(warden)
  if (!found) throw new Error('this warden was not built by the test harness (buildWarden)')
  return found
}
export const storeOf = (warden: Warden): Store => insideOf(warden).store
export const leasesOf = (warden: Warden): LeaseBook => insideOf(warden).leases
export const clockOf = (warden: Warden): WardenOptions['clock'] => insideOf(warden).clock

export interface TestWarden {
  warden: Warden
  clock: ManualClock
  close(): void
}

/** A fresh domain over a fresh `:memory:` database (or `file`), with a contract of `overrides`. */
export function createTestWarden(
  overrides: Partial<ContractInput> = {},
  file = ':memory:',
  clock = new ManualClock(),
  sandbox?: SandboxPort,
): TestWarden {
  const db = openDatabase(file)
  const warden = buildWarden({
    store: createStore(db, storeHooks),
    clock,
    signer: createSigner(SIGNING_KEY),
    contract: { ...DEFAULT_CONTRACT, cooldown_seconds: 0, ...overrides },
    ...(sandbox ? { sandbox } : {}),
  })
  warden.liveness.resume()
  return {
    warden,
    clock,
    close: () => {
      warden.liveness.flushAllLeases()
      db.close()
    },
  }
}

export interface TestApp extends TestWarden {
  app: FastifyInstance
  op: Record<string, string>
}

export async function createTestApp(overrides: Partial<ContractInput> = {}, sandbox?: SandboxPort): Promise<TestApp> {
  const base = createTestWarden(overrides, ':memory:', new ManualClock(), sandbox)
  const app = await buildApp({ warden: base.warden, operatorToken: OPERATOR_TOKEN })
  await app.ready()
  return {
    ...base,
    app,
    op: { authorization: `Bearer ${OPERATOR_TOKEN}` },
    close: () => {
      void app.close()
      base.close()
    },
  }
}

/** Issues a root manifest and registers it; returns the worker id, its lease token and manifest. */
export function registerRoot(warden: Warden, request: Parameters<Warden['admission']['issueRoot']>[0] = {}) {
  const manifest = warden.admission.issueRoot(request)
  const registration = warden.admission.register(manifest)
  return { id: manifest.worker_id, token: registration.lease_token, manifest, registration }
}

/** Spawns from `parentId` and registers the child. */
export function registerChild(warden: Warden, parentId: string, reason = 'test') {
  const parent = storeOf(warden).workers.get(parentId)!
  const manifest: Manifest = warden.admission.spawn(parent, { reason })
  const registration = warden.admission.register(manifest)
  return { id: manifest.worker_id, token: registration.lease_token, manifest, registration }
}

/** Slots taken per SPEC §2.1, counted straight from the tables. */
export function occupiedSlots(warden: Warden, now = clockOf(warden).now()): number {
  const db = storeOf(warden).db
  const live = db.prepare(`SELECT count(*) AS n FROM worker_states WHERE status IN ('active','quarantined')`).get() as { n: number }
  const outstanding = db.prepare(`SELECT count(*) AS n FROM manifests WHERE status = 'outstanding' AND expires_at > ?`).get(now) as { n: number }
  return live.n + outstanding.n
}
