// Start-up failures (SPEC §7): each becomes one line naming the cause and the fix, and exit
// status 2, instead of a stack trace.
import { createServer } from 'node:net'
import { DomainError } from './domain/errors.js'
import { DatabaseLockedError } from './store/db.js'

export class StartupError extends Error {
  constructor(
    readonly problem: string,
    readonly fix: string,
  ) {
    super(`${problem}; fix: ${fix}`)
    this.name = 'StartupError'
  }
}

const errorCode = (error: unknown): string | undefined => {
  const code = error instanceof Error ? (error as { code?: unknown }).code : undefined
  return typeof code === 'string' ? code : undefined
}

const firstLine = (error: unknown): string => (error instanceof Error ? error.message : String(error)).split('\n')[0]!

const STORAGE = /^(SQLITE_(READONLY|CANTOPEN|IOERR|FULL|PERM|NOTADB|CORRUPT)|EROFS|EACCES|EPERM|ENOSPC|ENOTDIR|EISDIR)/

/** Runs one start-up step; what it throws becomes a StartupError naming the cause and the fix. */
export function step<T>(what: 'secrets' | 'database' | 'contract' | 'resume', run: () => T, subject: string): T {
  try {
    return run()
  } catch (error) {
    throw explain(what, error, subject)
  }
}

function explain(what: 'secrets' | 'database' | 'contract' | 'resume', error: unknown, subject: string): Error {
  if (error instanceof StartupError) return error
  const code = errorCode(error)
  const why = code ? `${code}: ${firstLine(error)}` : firstLine(error)
  if (error instanceof DatabaseLockedError) {
    return new StartupError(error.message, 'stop the other Warden process, or set WARDEN_DB to another file')
  }
  if (what === 'secrets') {
    return new StartupError(
      `cannot read or create the secret files in ${subject} (${why})`,
      `make ${subject} writable by this user, or set WARDEN_OPERATOR_TOKEN and WARDEN_SIGNING_KEY`,
    )
  }
  if (what === 'contract') {
    if (error instanceof DomainError) {
      return new StartupError(`WARDEN_CONTRACT ${subject} is not a valid contract: ${firstLine(error)}`, 'correct the file, or unset WARDEN_CONTRACT to keep the stored contract')
    }
    if (code === 'ENOENT') return new StartupError(`WARDEN_CONTRACT ${subject} does not exist`, 'point WARDEN_CONTRACT at a JSON contract file, or unset it')
    return new StartupError(`WARDEN_CONTRACT ${subject} cannot be read as JSON (${why})`, 'correct the file, or unset WARDEN_CONTRACT')
  }
  if (code !== undefined && STORAGE.test(code)) {
    if (code === 'SQLITE_FULL' || code === 'ENOSPC') {
      return new StartupError(`the disk holding ${subject} is full (${why})`, 'free disk space, or set WARDEN_DB to a file on another disk')
    }
    return new StartupError(
      `database ${subject} cannot be opened for writing (${why})`,
      `make ${subject} and its folder writable by this user (a read-only mount or file will not do), or set WARDEN_DB to a writable path`,
    )
  }
  if (error instanceof DomainError && error.code === 'storage_unavailable') {
    return new StartupError(`database ${subject} cannot be written (${firstLine(error)})`, 'free disk space or fix the storage, then start again')
  }
  if (/newer than this Warden/.test(firstLine(error))) {
    return new StartupError(firstLine(error), 'run the Warden version that wrote this database, or a newer one')
  }
  return error instanceof Error ? error : new Error(String(error))
}

/** Fails with one line when the listen address cannot be bound, before anything is started or logged as started. */
export async function checkAddress(host: string, port: number): Promise<void> {
  if (port === 0) return
  await new Promise<void>((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()))
  }).catch((error: unknown) => {
    throw listenError(error, host, port)
  })
}

export function listenError(error: unknown, host: string, port: number): Error {
  const code = errorCode(error)
  const where = `${host}:${port}`
  if (code === 'EADDRINUSE') return new StartupError(`address ${where} is already in use`, 'stop the process listening there, or set WARDEN_PORT (or WARDEN_HOST) to a free address')
  if (code === 'EACCES') return new StartupError(`not permitted to listen on ${where}`, 'use a port above 1023, or run with the right to bind it')
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') return new StartupError(`cannot listen on ${where}: no such local address`, 'set WARDEN_HOST to an address of this machine, e.g. 127.0.0.1')
  return error instanceof Error ? error : new Error(String(error))
}
