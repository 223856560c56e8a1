// A small tmpfs of the test's own, for attacks that need a real full (or read-only) disk. Mounted
// by the test, unmounted and removed in cleanup; where mounting is impossible (not root, no
// mount(8)) the reason is returned so the test can skip and print it.
import { execFileSync } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface Tmpfs {
  dir: string
  /** Writes zeros into `name` until the disk is full; the bytes written. */
  fill(name?: string): number
  /** Frees what fill() took. */
  unfill(name?: string): void
  remount(options: string): void
  unmount(): void
}

export function mountTmpfs(sizeKiB: number): Tmpfs | string {
  const dir = mkdtempSync(join(tmpdir(), 'warden-tmpfs-'))
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k,mode=0700`, 'tmpfs', dir], { stdio: 'pipe' })
  } catch (error) {
    rmSync(dir, { recursive: true, force: true })
    return `cannot mount a tmpfs here (${(error as Error).message.split('\n')[0]})`
  }
  let mounted = true
  return {
    dir,
    fill(name = 'filler') {
      const fd = openSync(join(dir, name), 'a')
      const chunk = Buffer.alloc(4096)
      let written = 0
      try {
        for (;;) written += writeSync(fd, chunk)
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error
      } finally {
        closeSync(fd)
      }
      return written
    },
    unfill(name = 'filler') {
      unlinkSync(join(dir, name))
    },
    remount(options) {
      execFileSync('mount', ['-o', `remount,${options}`, dir], { stdio: 'pipe' })
    },
    unmount() {
      if (!mounted) return
      execFileSync('umount', [dir], { stdio: 'pipe' })
      mounted = false
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
