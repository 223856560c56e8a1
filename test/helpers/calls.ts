// The steps end-to-end suites repeat, through the project's own WardenClient: register a root or
// a child, read the whole audit log or worker list, and catch a refusal as the WardenError it is
// (status, problem `code`, extras) so a test asserts on what the server answered.
import type { Lease, WardenClient } from '../../src/client/client.js'
import { WardenError } from '../../src/client/errors.js'
import type { AuditRecord, Manifest, WorkerSummary } from '../../src/schemas/index.js'
import type { AuditFilter, RootManifestRequest, WorkerListFilter } from '../../src/client/client.js'

export interface Registered extends Lease {
  manifest: Manifest
}

/** Registers `manifest` (failing the test unless it is accepted): its lease. */
export async function registerManifest(client: WardenClient, manifest: Manifest): Promise<Registered> {
  const { lease_token } = await client.register(manifest)
  return { worker_id: manifest.worker_id, lease_token, manifest }
}

/** Issues a root manifest and registers it. */
export async function registerRoot(client: WardenClient, request?: RootManifestRequest): Promise<Registered> {
  return registerManifest(client, await client.issueManifest(request))
}

/** Spawns from `parent` and registers the child. */
export async function registerChild(client: WardenClient, parent: Lease, reason = 'e2e'): Promise<Registered> {
  return registerManifest(client, await client.spawn(parent, { reason }))
}

/** The whole audit log matching `filter`, in seq order. */
export async function auditLog(client: WardenClient, filter: AuditFilter = {}): Promise<AuditRecord[]> {
  const records: AuditRecord[] = []
  for await (const record of client.auditRecords(filter)) records.push(record)
  return records
}

/** Every worker matching `filter`, following the cursor. */
export async function listWorkers(client: WardenClient, filter: Omit<WorkerListFilter, 'cursor'> = {}): Promise<WorkerSummary[]> {
  const items: WorkerSummary[] = []
  for await (const worker of client.workers(filter)) items.push(worker)
  return items
}

export type Outcome<T> = { ok: true; value: T; error?: undefined; status?: undefined; code?: undefined } | { ok: false; error: WardenError; status: number; code: string }

/**
 * A call's answer without throwing: the value, or the refusal with its status and code. No answer
 * at all (a killed server: status 0) still throws, as does anything that is not a WardenError.
 */
export async function outcome<T>(promise: Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await promise }
  } catch (error) {
    if (!(error instanceof WardenError) || error.status === 0) throw error
    return { ok: false, error, status: error.status, code: error.code }
  }
}

/** The WardenError a call fails with (a refusal, or status 0 when no answer came); fails the test when it succeeds. */
export async function rejection(promise: Promise<unknown>): Promise<WardenError> {
  let value: unknown
  try {
    value = await promise
  } catch (error) {
    if (error instanceof WardenError) return error
    throw error
  }
  throw new Error(`expected a WardenError, got ${JSON.stringify(value)}`)
}
