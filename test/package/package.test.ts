// The client as a package other projects install (issue #13): `npm pack` builds a tarball; a
// fresh project outside the repository installs it, type-checks a TypeScript worker against its
// .d.ts files (and fails on a wrong one: the types are real), and runs a plain-JavaScript worker,
// with no build step of its own, against a real server. The temp folder is removed afterwards.
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WardenClient } from '../../src/client/client.js'
import { DEFAULT_CONTRACT } from '../../src/domain/contract.js'
import { startServer, stopServer, type ServerProcess } from '../helpers/server.js'

const run = promisify(execFile)
const ROOT = resolve(import.meta.dirname, '..', '..')
const version = (name: string) => (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version
const OPERATOR_TOKEN = 'package-test-operator-token-0123456789'

const TS_WORKER = `
import { WardenClient, Worker, WardenError, type Manifest, type ReplicationResult, type WorkerEvent } from 'warden/client'

const op = new WardenClient({ url: process.env.WARDEN_TEST_URL!, token: process.env.WARDEN_TEST_TOKEN })
const manifest: Manifest = await op.issueManifest({ state_snapshot: { from: 'typescript' } })
const events: WorkerEvent['type'][] = []
const worker = await Worker.start(manifest, { url: process.env.WARDEN_TEST_URL!, onEvent: (event) => void events.push(event.type) })
const result: ReplicationResult = await worker.maybeReplicate('typed')
const error: WardenError | null = result.approved ? null : result.error
console.log(JSON.stringify({ worker: worker.id, approved: result.approved, error: error?.code ?? null, events }))
await worker.shutdown('done')
await op.close()
`

// Must not type-check: the url is a string, and a Manifest has no field 'name'.
const TS_WRONG = `
import { WardenClient, type Manifest } from 'warden/client'
new WardenClient({ url: 8080 })
const m: Manifest = { name: 'x' }
void m
`

const JS_WORKER = `
import { WardenClient, Worker } from 'warden/client'

const op = new WardenClient({ url: process.env.WARDEN_TEST_URL, token: process.env.WARDEN_TEST_TOKEN })
const manifest = await op.issueManifest({ state_snapshot: { from: 'javascript' } })
const worker = await Worker.start(manifest, { url: process.env.WARDEN_TEST_URL })
await new Promise((resolve) => setTimeout(resolve, 1200))
const view = await op.getWorker(worker.id)
const child = await worker.maybeReplicate('plain js')
await worker.shutdown('done')
const after = await op.getWorker(worker.id)
console.log(JSON.stringify({ worker: worker.id, status: view.status, heartbeat: view.last_heartbeat_at !== null, child: child.approved ? child.manifest.parent_id : null, after: after.status }))
await op.close()
`

describe('the packed client in a fresh project', () => {
  let project: string
  let server: ServerProcess
  let tarball: string

  beforeAll(async () => {
    project = mkdtempSync(join(tmpdir(), 'warden-consumer-'))
    const packed = await run('npm', ['pack', '--pack-destination', project, '--loglevel=error'], { cwd: ROOT, maxBuffer: 16 * 2 ** 20 })
    tarball = packed.stdout.trim().split('\n').at(-1)!
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }, null, 2))
    // --ignore-scripts: the client needs none of the server's native modules (better-sqlite3's
    // install script would compile SQLite, or fetch a prebuilt binary this machine cannot reach).
    await run(
      'npm',
      ['install', `./${tarball}`, `typescript@${version('typescript')}`, `@types/node@${version('@types/node')}`, '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts', '--loglevel=error'],
      { cwd: project, maxBuffer: 16 * 2 ** 20 },
    )
    server = await startServer({ env: { WARDEN_OPERATOR_TOKEN: OPERATOR_TOKEN } })
    // Heartbeats every 0.5 s, so the tiny worker is seen renewing its lease.
    const op = new WardenClient({ url: server.url, token: OPERATOR_TOKEN })
    await op.putContract({ ...DEFAULT_CONTRACT, heartbeat_timeout_seconds: 1.5, cooldown_seconds: 0 })
    await op.close()
  }, 600_000)

  afterAll(async () => {
    await stopServer(server)
    if (project) rmSync(project, { recursive: true, force: true })
  })

  const env = () => ({ PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', WARDEN_TEST_URL: server.url, WARDEN_TEST_TOKEN: OPERATOR_TOKEN })

  it('is named warden-x.y.z.tgz and ships the built client with its .d.ts, no TypeScript sources or tests', async () => {
    expect(tarball).toMatch(/^warden-\d+\.\d+\.\d+\.tgz$/)
    const installed = join(project, 'node_modules', 'warden')
    const client = readdirSync(join(installed, 'dist', 'src', 'client'))
    expect(client).toEqual(expect.arrayContaining(['index.js', 'index.d.ts', 'client.d.ts', 'worker.d.ts']))
    expect(readdirSync(installed)).not.toContain('test')
    expect(readdirSync(join(installed, 'dist', 'src', 'client')).filter((name) => name.endsWith('.ts') && !name.endsWith('.d.ts'))).toEqual([])
  })

  it('type-checks a TypeScript worker against the package types, and refuses a wrong one', async () => {
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: false, types: ['node'] },
        files: ['worker.ts'],
      }),
    )
    writeFileSync(join(project, 'worker.ts'), TS_WORKER)
    await run(join(project, 'node_modules', '.bin', 'tsc'), ['-p', '.'], { cwd: project })

    writeFileSync(join(project, 'wrong.ts'), TS_WRONG)
    const wrong = await run(join(project, 'node_modules', '.bin', 'tsc'), ['--noEmit', '--strict', '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022', 'wrong.ts'], { cwd: project }).then(
      () => '',
      (error: { stdout: string }) => error.stdout,
    )
    expect(wrong).toMatch(/wrong\.ts\(3,\d+\): error TS2322/)
    expect(wrong).toMatch(/wrong\.ts\(4,\d+\): error TS2353/)
  }, 120_000)

  it('runs a plain-JavaScript worker against a real server: registers, heartbeats, replicates, shuts down', async () => {
    writeFileSync(join(project, 'worker.mjs'), JS_WORKER)
    const { stdout } = await run(process.execPath, ['worker.mjs'], { cwd: project, env: env(), timeout: 60_000 })
    const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>
    expect(result).toMatchObject({ status: 'active', heartbeat: true, child: result.worker, after: 'deregistered' })
  }, 120_000)
})
