// SPEC §7: start-up failures print one line naming the cause and the fix, and exit with status 2
// (no stack trace, and no "controller started" for a start that cannot happen). Each is caused
// for real: a read-only mount, a missing or broken contract file, a port held by another socket.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createServerTracker } from '../helpers/server.js'
import { mountTmpfs, type Tmpfs } from '../helpers/tmpfs.js'

const servers = createServerTracker()
const cleanups: Array<() => void> = []
const disks: Tmpfs[] = []
afterEach(async () => {
  for (const disk of disks) disk.remount('rw')
  await servers.cleanup()
  for (const disk of disks.splice(0)) disk.unmount()
  for (const cleanup of cleanups.splice(0).reverse()) cleanup()
})

const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-startup-'))
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

const SECRETS = { WARDEN_OPERATOR_TOKEN: 'startup-test-operator-token', WARDEN_SIGNING_KEY: 'startup-test-signing-key-0123456789abcdef' }

/** Runs the server to its end (it must not start), bounded; its exit status and every line it printed. */
async function runToExit(env: Record<string, string>): Promise<{ code: number | null; lines: string[] }> {
  const failure = await servers.failToStart({ env, timeoutMs: 20_000 })
  return { code: failure.exit?.code ?? null, lines: failure.logs.filter((line) => line.trim() !== '') }
}

/** The one line a failed start must print: cause and fix, no stack. */
function expectOneLine(result: { code: number | null; lines: string[] }, cause: RegExp) {
  const problems = result.lines.filter((line) => line.startsWith('warden:'))
  expect(result.code, result.lines.join('\n')).toBe(2)
  expect(problems, result.lines.join('\n')).toHaveLength(1)
  expect(problems[0]).toMatch(cause)
  expect(problems[0]).toMatch(/; fix: /)
  expect(result.lines.join('\n')).not.toMatch(/^\s+at /m)
  expect(result.lines.join('\n')).not.toContain('controller started')
}

const mounted = (): Tmpfs => {
  const disk = mountTmpfs(4096)
  if (typeof disk === 'string') throw new Error(disk)
  disks.push(disk)
  return disk
}
const probe = mountTmpfs(1024)
const cannotMount = typeof probe === 'string' ? probe : null
if (typeof probe !== 'string') probe.unmount()
if (cannotMount) console.warn(`read-only start-up tests skipped: ${cannotMount}`)

describe('start-up failures (SPEC §7)', () => {
  it.skipIf(cannotMount !== null)('a database on a read-only mount: one line naming the file and the fix, exit 2', async () => {
    const disk = mounted()
    const dbFile = join(disk.dir, 'data', 'warden.db')
    const first = await servers.start({ dbFile })
    await first.server.kill('SIGTERM')
    disk.remount('ro')
    expectOneLine(await runToExit({ WARDEN_DB: dbFile }), new RegExp(`database ${dbFile} cannot be opened for writing.*EROFS|read-only`))
  }, 40_000)

  it.skipIf(cannotMount !== null)('a read-only folder for a new database: one line, exit 2', async () => {
    const disk = mounted()
    disk.remount('ro')
    const dbFile = join(disk.dir, 'warden.db')
    expectOneLine(await runToExit({ WARDEN_DB: dbFile, ...SECRETS }), new RegExp(`database ${dbFile} cannot be opened for writing`))
    expectOneLine(await runToExit({ WARDEN_DB: dbFile }), new RegExp(`secret files in ${disk.dir}`))
  }, 40_000)

  it('a missing, unparsable or invalid WARDEN_CONTRACT: one line, exit 2', async () => {
    const dir = tempDir()
    const env = { WARDEN_DB: join(dir, 'warden.db'), ...SECRETS }
    expectOneLine(await runToExit({ ...env, WARDEN_CONTRACT: join(dir, 'missing.json') }), /WARDEN_CONTRACT .*missing\.json does not exist/)
    writeFileSync(join(dir, 'broken.json'), '{"max_depth": ')
    expectOneLine(await runToExit({ ...env, WARDEN_CONTRACT: join(dir, 'broken.json') }), /WARDEN_CONTRACT .*broken\.json cannot be read as JSON/)
    writeFileSync(join(dir, 'invalid.json'), JSON.stringify({ max_depth: -1 }))
    expectOneLine(await runToExit({ ...env, WARDEN_CONTRACT: join(dir, 'invalid.json') }), /WARDEN_CONTRACT .*invalid\.json is not a valid contract: .*max_depth/)
  }, 60_000)

  it('a port already in use: one line, exit 2, before "controller started" and before anything is audited', async () => {
    const holder: Server = createServer()
    await new Promise<void>((done) => holder.listen({ host: '127.0.0.1', port: 0 }, done))
    cleanups.push(() => holder.close())
    const port = (holder.address() as { port: number }).port
    const dbFile = join(tempDir(), 'warden.db')
    expectOneLine(await runToExit({ WARDEN_DB: dbFile, WARDEN_PORT: String(port), ...SECRETS }), new RegExp(`address 127\\.0\\.0\\.1:${port} is already in use`))
    // Nothing was started: the next good start is the first controller_started in the log.
    const { client } = await servers.start({ dbFile, env: SECRETS })
    const started = await client.listAudit({ type: 'controller_started' })
    expect(started.items).toHaveLength(1)
  }, 40_000)
})
