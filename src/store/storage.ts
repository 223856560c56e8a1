// The disk under the database: which driver errors mean "storage is failing", whether writes are
// failing now (readiness), and a reserve of space kept for the decisions that must commit on a
// full disk (the kill switch, kills): a ballast file released when a write hits SQLITE_FULL.
import { closeSync, openSync, statfsSync, statSync, unlinkSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'

/** Driver error codes that say the disk (not the statement) failed. */
const STORAGE_CODES = /^SQLITE_(FULL|IOERR|READONLY|CANTOPEN|NOLFS|PROTOCOL)/

export function isStorageFailure(error: unknown): error is Error & { code: string } {
  const code = error instanceof Error ? (error as { code?: unknown }).code : undefined
  return typeof code === 'string' && STORAGE_CODES.test(code)
}

export interface StorageHealth {
  /** The driver error of the last write that failed, while no write has succeeded since. */
  readonly failure: string | null
  failed(error: Error & { code: string }): void
  succeeded(): void
}

export function createStorageHealth(): StorageHealth {
  let failure: string | null = null
  return {
    get failure() {
      return failure
    },
    failed(error) {
      failure = `${error.code}: ${error.message}`
    },
    succeeded() {
      failure = null
    },
  }
}

export interface Reserve {
  readonly file: string | null
  readonly bytes: number
  /** True while the ballast file is in place. */
  present(): boolean
  /** Frees the reserve; true when there was one to free. */
  release(): boolean
  /** Puts the ballast back when the disk has room for it and as much again; true when in place. */
  restore(): boolean
}

/** No reserve (in-memory databases, tests). */
export const noReserve: Reserve = { file: null, bytes: 0, present: () => false, release: () => false, restore: () => false }

const CHUNK = 64 * 1024

export function createReserve(file: string, bytes: number): Reserve {
  const freeBytes = (): number => {
    const stats = statfsSync(dirname(file))
    return stats.bavail * stats.bsize
  }
  const write = (): boolean => {
    // Zeros written for real (not a sparse file), so the blocks are held, tmpfs included.
    let fd: number | null = null
    try {
      fd = openSync(file, 'w', 0o600)
      const chunk = Buffer.alloc(CHUNK)
      for (let written = 0; written < bytes; written += CHUNK) writeSync(fd, chunk, 0, Math.min(CHUNK, bytes - written))
      closeSync(fd)
      return true
    } catch {
      if (fd !== null) closeSync(fd)
      try {
        unlinkSync(file)
      } catch {
        // nothing to remove
      }
      return false
    }
  }
  const present = (): boolean => {
    try {
      return statSync(file).size >= bytes
    } catch {
      return false
    }
  }
  return {
    file,
    bytes,
    present,
    release() {
      try {
        unlinkSync(file)
        return true
      } catch {
        return false
      }
    },
    restore() {
      if (bytes === 0) return false
      if (present()) return true
      try {
        if (freeBytes() < 2 * bytes) return false
      } catch {
        return false
      }
      return write()
    },
  }
}
