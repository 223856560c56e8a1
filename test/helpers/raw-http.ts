// Raw HTTP for what WardenClient will not send on purpose: malformed or hand-built bodies, a
// wrong or missing token, odd headers, a response's headers and exact bytes. Everything an
// operator or worker does goes through WardenClient (calls.ts); this is for the attacks on it.
import { request } from 'undici'

export interface RawResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  /** Parsed JSON when the answer is JSON, else the text. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any
}

export async function rawRequest(
  url: string,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  path: string,
  options: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<RawResponse> {
  const headers: Record<string, string> = { ...options.headers }
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
  if (options.body !== undefined && headers['content-type'] === undefined) headers['content-type'] = 'application/json'
  const body = options.body === undefined || typeof options.body === 'string' ? options.body : JSON.stringify(options.body)
  const response = await request(new URL(path, url), { method, headers, body })
  const text = await response.body.text()
  const json = String(response.headers['content-type'] ?? '').includes('json') && text !== ''
  return { status: response.statusCode, headers: response.headers, body: json ? JSON.parse(text) : text }
}
