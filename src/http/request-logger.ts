// Fastify gives every request a child of the process logger carrying its request id. Making a pino
// child serializes and redacts its bindings (a few µs, issue #12's heartbeat profile), and at the
// level a busy controller runs at (warn) most requests write no line at all. So a request's logger
// here becomes that child only when it first writes a line at an enabled level: the lines, their
// bindings and their redaction are pino's own, exactly as before.
import type { FastifyBaseLogger } from 'fastify'
import type { Bindings, ChildLoggerOptions, Logger } from 'pino'

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'
type Write = (this: FastifyBaseLogger, ...args: unknown[]) => void

export class LazyRequestLogger implements FastifyBaseLogger {
  #child: FastifyBaseLogger | undefined

  constructor(
    private readonly parent: Logger,
    private readonly bindings: Bindings,
    private readonly options: ChildLoggerOptions,
  ) {}

  /** The real child, made on first use and kept. */
  private get child_(): FastifyBaseLogger {
    return (this.#child ??= this.parent.child(this.bindings, this.options))
  }

  private write(level: Level, args: unknown[]): void {
    const target = this.#child ?? (this.parent.isLevelEnabled(level) ? this.child_ : undefined)
    if (target) (target[level] as Write).apply(target, args)
  }

  get level(): string {
    return this.#child?.level ?? this.parent.level
  }
  set level(level: string) {
    this.child_.level = level
  }

  fatal(...args: unknown[]): void {
    this.write('fatal', args)
  }
  error(...args: unknown[]): void {
    this.write('error', args)
  }
  warn(...args: unknown[]): void {
    this.write('warn', args)
  }
  info(...args: unknown[]): void {
    this.write('info', args)
  }
  debug(...args: unknown[]): void {
    this.write('debug', args)
  }
  trace(...args: unknown[]): void {
    this.write('trace', args)
  }
  silent(): void {}

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.child_.child(bindings, options)
  }
}

/**
 * Fastify's `childLoggerFactory`: lazy for a pino parent at the route's inherited level; a route
 * with a level or serializers of its own gets pino's child at once, as Fastify would make it.
 */
export function lazyChildLogger(logger: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  const parent = logger as Partial<Logger>
  if (typeof parent.isLevelEnabled !== 'function' || options.level !== undefined || options.serializers !== undefined) {
    return logger.child(bindings, options)
  }
  return new LazyRequestLogger(logger as Logger, bindings, options)
}
