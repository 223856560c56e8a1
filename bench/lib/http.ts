// A small JSON client over one undici pool per server, and a Prometheus text reader.
import { Pool } from 'undici'

export interface JsonResponse<T = unknown> {
  status: number
  body: T
}

export class Api {
  readonly pool: Pool
  constructor(
    readonly url: string,
    connections = 64,
  ) {
    this.pool = new Pool(url, { connections, pipelining: 1, headersTimeout: 60_000, bodyTimeout: 60_000 })
  }

  async call<T = unknown>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, options: { token?: string; body?: unknown } = {}): Promise<JsonResponse<T>> {
    const headers: Record<string, string> = {}
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
    if (options.body !== undefined) headers['content-type'] = 'application/json'
    const response = await this.pool.request({
      method,
      path,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    })
    const text = await response.body.text()
    let body: unknown = text
    if ((response.headers['content-type'] ?? '').toString().includes('json')) body = JSON.parse(text)
    return { status: response.statusCode, body: body as T }
  }

  async expect<T = unknown>(status: number, method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, options: { token?: string; body?: unknown } = {}): Promise<T> {
    const response = await this.call<T>(method, path, options)
    if (response.status !== status) {
      throw new Error(`${method} ${path}: expected ${status}, got ${response.status}: ${JSON.stringify(response.body).slice(0, 500)}`)
    }
    return response.body
  }

  close(): Promise<void> {
    return this.pool.close()
  }
}

/** The value of one sample of a Prometheus text exposition (labels matched exactly, in any order). */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels)
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!match || match[1] !== name) continue
    const found = Object.fromEntries([...(match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]))
    if (wanted.every(([key, value]) => found[key] === value) && Object.keys(found).length === wanted.length) return Number(match[3])
  }
  return 0
}
