// A tiny undici client for end-to-end tests: one Pool per server, JSON in and out, and the
// Warden calls the e2e suites repeat. Every response is returned, never thrown, so tests can
// assert on 4xx problems; only transport failures (a killed server) reject.
import { Pool } from 'undici'
import { contract } from './fixtures.js'
import type { AuditRecord, ContractInput, Manifest } from '../../src/schemas/index.js'

export interface ApiResponse<T = Json> {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: T
}

// Bodies are parsed JSON; tests read the fields they assert on.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any

export interface RequestOptions {
  token?: string | undefined
  body?: unknown
  query?: Record<string, string | number | undefined>
  headers?: Record<string, string>
}

export interface ApiClient {
  readonly url: string
  readonly operatorToken: string
  request<T = Json>(method: string, path: string, options?: RequestOptions): Promise<ApiResponse<T>>
  /** Operator-authenticated request. */
  op<T = Json>(method: string, path: string, body?: unknown, query?: RequestOptions['query']): Promise<ApiResponse<T>>
  close(): Promise<void>
  destroy(): Promise<void>
}

/** `connections` bounds the sockets, so that many requests really run in parallel. */
export function createClient(url: string, operatorToken: string, options: { connections?: number } = {}): ApiClient {
  const pool = new Pool(url, { connections: options.connections ?? 64, pipelining: 1 })

  async function request<T>(method: string, path: string, { token, body, query, headers: extra }: RequestOptions = {}): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { ...extra }
    if (token !== undefined) headers.authorization = `Bearer ${token}`
    if (body !== undefined) headers['content-type'] = 'application/json'
    const pairs = Object.entries(query ?? {}).flatMap(([k, v]): Array<[string, string]> => (v === undefined ? [] : [[k, String(v)]]))
    const search = pairs.length > 0 ? `?${new URLSearchParams(pairs).toString()}` : ''
    const response = await pool.request({
      method: method as 'GET',
      path: path + search,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    const text = await response.body.text()
    const type = String(response.headers['content-type'] ?? '')
    return {
      status: response.statusCode,
      headers: response.headers,
      body: (type.includes('json') && text !== '' ? JSON.parse(text) : text) as T,
    }
  }

  return {
    url,
    operatorToken,
    request,
    op: (method, path, body, query) => request(method, path, { token: operatorToken, body, query }),
    close: () => pool.close(),
    destroy: () => pool.destroy(),
  }
}


export async function putContract(client: ApiClient, overrides: Partial<ContractInput>): Promise<ApiResponse> {
  const response = await client.op('PUT', '/v1/contract', contract(overrides))
  if (response.status !== 200) throw new Error(`PUT /v1/contract answered ${response.status}: ${JSON.stringify(response.body)}`)
  return response
}

export interface Registered {
  id: string
  token: string
  manifest: Manifest
}

export const issueRoot = (client: ApiClient, body?: unknown) => client.op<Json>('POST', '/v1/manifests', body)
export const register = (client: ApiClient, manifest: Manifest) => client.request('POST', '/v1/workers', { body: manifest })
export const spawn = (client: ApiClient, worker: Pick<Registered, 'id' | 'token'>, reason = 'e2e') =>
  client.request('POST', `/v1/workers/${worker.id}/spawn`, { token: worker.token, body: { reason } })
export const heartbeat = (client: ApiClient, worker: Pick<Registered, 'id' | 'token'>) =>
  client.request('POST', `/v1/workers/${worker.id}/heartbeat`, { token: worker.token })
export const getWorker = (client: ApiClient, id: string) => client.op('GET', `/v1/workers/${id}`)

function expectStatus(response: ApiResponse, status: number, what: string): void {
  if (response.status !== status) throw new Error(`${what} answered ${response.status}: ${JSON.stringify(response.body)}`)
}

/** Registers `manifest`, failing loudly unless it is accepted. */
export async function registerManifest(client: ApiClient, manifest: Manifest): Promise<Registered> {
  const response = await register(client, manifest)
  expectStatus(response, 201, `registering ${manifest.worker_id}`)
  return { id: manifest.worker_id, token: response.body.lease_token, manifest }
}

/** Issues a root manifest and registers it. */
export async function registerRoot(client: ApiClient): Promise<Registered> {
  const issued = await issueRoot(client)
  expectStatus(issued, 201, 'POST /v1/manifests')
  return registerManifest(client, issued.body)
}

/** Spawns from `parent` and registers the child. */
export async function registerChild(client: ApiClient, parent: Registered): Promise<Registered> {
  const issued = await spawn(client, parent)
  expectStatus(issued, 201, `spawn from ${parent.id}`)
  return registerManifest(client, issued.body)
}

/** The whole audit log (or the part after `afterSeq`), in seq order, page by page. */
export async function auditLog(client: ApiClient, query: { type?: string; worker_id?: string; after_seq?: number } = {}): Promise<AuditRecord[]> {
  const records: AuditRecord[] = []
  let after = query.after_seq ?? 0
  for (;;) {
    const page = await client.op('GET', '/v1/audit', undefined, { ...query, after_seq: after, limit: 1000 })
    expectStatus(page, 200, 'GET /v1/audit')
    records.push(...(page.body.items as AuditRecord[]))
    if (page.body.next_after_seq === null) return records
    after = page.body.next_after_seq
  }
}

/** Every worker with `status` (all when omitted), following the cursor. */
export async function listWorkers(client: ApiClient, status?: string): Promise<Json[]> {
  const items: Json[] = []
  let cursor: string | undefined
  for (;;) {
    const page = await client.op('GET', '/v1/workers', undefined, { status, limit: 1000, cursor })
    expectStatus(page, 200, 'GET /v1/workers')
    items.push(...page.body.items)
    if (page.body.next_cursor === null) return items
    cursor = page.body.next_cursor
  }
}

export async function verifyAudit(client: ApiClient): Promise<{ ok: boolean; records: number; head_hash: string | null; first_invalid_seq: number | null }> {
  const response = await client.op('GET', '/v1/audit/verify')
  expectStatus(response, 200, 'GET /v1/audit/verify')
  return response.body
}

export { contract, sleep, waitFor } from './fixtures.js'
