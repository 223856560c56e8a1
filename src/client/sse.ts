// A server-sent events parser (the WHATWG "event stream interpretation"), fed text chunks as they
// arrive: lines end in \n, \r\n or \r; a blank line dispatches; a line starting with ':' is a comment.

export interface SseMessage {
  /** The `id:` field; undefined when the message carried none. */
  id: string | undefined
  /** The `event:` field, 'message' when absent. */
  event: string
  data: string
}

export interface SseHandlers {
  message(message: SseMessage): void
  comment?(text: string): void
  retry?(ms: number): void
}

export class SseParser {
  private buffer = ''
  private data: string[] = []
  private event = ''
  private id: string | undefined = undefined
  private pendingCr = false

  constructor(private readonly handlers: SseHandlers) {}

  push(chunk: string): void {
    let text = chunk
    // A \r that ended the previous chunk already ended its line; a \n right after it is that same break.
    if (this.pendingCr && text.startsWith('\n')) text = text.slice(1)
    this.pendingCr = false
    this.buffer += text
    let start = 0
    for (;;) {
      const cr = this.buffer.indexOf('\r', start)
      const lf = this.buffer.indexOf('\n', start)
      if (cr === -1 && lf === -1) break
      const end = cr === -1 ? lf : lf === -1 ? cr : Math.min(cr, lf)
      this.line(this.buffer.slice(start, end))
      if (this.buffer[end] === '\r') {
        if (end + 1 === this.buffer.length) {
          this.pendingCr = true
          start = end + 1
          break
        }
        start = this.buffer[end + 1] === '\n' ? end + 2 : end + 1
      } else {
        start = end + 1
      }
    }
    this.buffer = this.buffer.slice(start)
  }

  private line(line: string): void {
    if (line === '') return this.dispatch()
    if (line.startsWith(':')) return this.handlers.comment?.(line.slice(1).trimStart())
    const colon = line.indexOf(':')
    const field = colon === -1 ? line : line.slice(0, colon)
    let value = colon === -1 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    if (field === 'data') this.data.push(value)
    else if (field === 'event') this.event = value
    else if (field === 'id' && !value.includes('\0')) this.id = value
    else if (field === 'retry' && /^[0-9]+$/.test(value)) this.handlers.retry?.(Number(value))
  }

  private dispatch(): void {
    if (this.data.length === 0) {
      this.event = ''
      return
    }
    const message: SseMessage = { id: this.id, event: this.event || 'message', data: this.data.join('\n') }
    this.data = []
    this.event = ''
    this.handlers.message(message)
  }
}
