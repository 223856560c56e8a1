// Talking to Warden: JSON calls with the operator token, and the audit event stream read with
// fetch (EventSource cannot send an Authorization header, and a token in a URL ends up in logs).

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail ?? `HTTP ${status}`)
    this.status = status
    this.problem = problem ?? null
  }
}

export function createApi(token) {
  const headers = { authorization: `Bearer ${token}` }

  async function call(method, path, body) {
    const init = { method, headers: { ...headers } }
    if (body !== undefined) {
      init.headers['content-type'] = 'application/json'
      init.body = JSON.stringify(body)
    }
    const res = await fetch(path, init)
    const text = await res.text()
    const data = text === '' ? null : safeJson(text)
    if (!res.ok) throw new ApiError(res.status, data)
    return data
  }

  return {
    get: (path) => call('GET', path),
    post: (path, body) => call('POST', path, body),
    put: (path, body) => call('PUT', path, body),
    del: (path) => call('DELETE', path),
    /** Every worker, page after page (the list is bounded to 1000 a page), each page handed to onPage. */
    async allWorkers(onPage, max = 100_000) {
      let count = 0
      let cursor = null
      do {
        const page = await call('GET', `/v1/workers?limit=1000${cursor ? `&cursor=${cursor}` : ''}`)
        onPage(page.items)
        count += page.items.length
        cursor = page.next_cursor
      } while (cursor && count < max)
      return { count, truncated: cursor !== null }
    },
    /**
     * Follows GET /v1/events from `afterSeq`, calling onRecord for each record in order and
     * reconnecting (after an overflow at once, after an error with a back-off) from the last seq
     * seen, so nothing is missed or repeated. Returns a stop function.
     */
    follow(afterSeq, { onRecord, onState }) {
      let last = afterSeq
      let stopped = false
      let controller = null
      let delay = 500
      const run = async () => {
        while (!stopped) {
          controller = new AbortController()
          try {
            const res = await fetch(`/v1/events?after_seq=${last}`, {
              headers: { ...headers, accept: 'text/event-stream' },
              signal: controller.signal,
              cache: 'no-store',
            })
            if (res.status === 401) {
              onState('unauthorized')
              return
            }
            if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`)
            onState('live')
            delay = 500
            const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
            const parser = createSseParser((message) => {
              if (message.event === 'overflow') {
                last = JSON.parse(message.data).resume_after_seq
                return
              }
              const record = JSON.parse(message.data)
              if (record.seq <= last) return
              last = record.seq
              onRecord(record)
            })
            for (;;) {
              const { value, done } = await reader.read()
              if (done) break
              parser(value)
            }
          } catch (error) {
            if (stopped) return
            onState('reconnecting', error)
          }
          if (stopped) return
          onState('reconnecting')
          await new Promise((r) => setTimeout(r, delay))
          delay = Math.min(delay * 2, 10_000)
        }
      }
      void run()
      return () => {
        stopped = true
        controller?.abort()
      }
    },
  }
}

function safeJson(text) {
  try {
    return JSON.parse(text)
  } catch {
    return { detail: text.slice(0, 200) }
  }
}

/** The server-sent events format: fields per line, a blank line dispatches, ':' starts a comment. */
export function createSseParser(onMessage) {
  let buffer = ''
  let data = []
  let event = ''
  let id
  return (chunk) => {
    buffer += chunk
    const lines = buffer.split(/\r\n|\r|\n/)
    buffer = lines.pop() ?? ''
    for (const line of lines) {
      if (line === '') {
        if (data.length > 0) onMessage({ id, event: event || 'message', data: data.join('\n') })
        data = []
        event = ''
        continue
      }
      if (line.startsWith(':')) continue
      const colon = line.indexOf(':')
      const field = colon === -1 ? line : line.slice(0, colon)
      let value = colon === -1 ? '' : line.slice(colon + 1)
      if (value.startsWith(' ')) value = value.slice(1)
      if (field === 'data') data.push(value)
      else if (field === 'event') event = value
      else if (field === 'id') id = value
    }
  }
}
