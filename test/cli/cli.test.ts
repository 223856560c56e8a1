// The `warden` commands against a real server: output for people and for scripts (--json), and
// exit codes scripts can rely on.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { WardenClient } from '../../src/client/client.js'
import { COMMANDS } from '../../src/cli/index.js'
import type { Manifest, WorkerSummary } from '../../src/schemas/index.js'
import type { ServerProcess } from '../helpers/server.js'
import { contract, OPERATOR_TOKEN, operatorClient, realServer, resetWorkers, restart, stopServer, waitFor } from '../client/support.js'
import { binary, cli, startBin } from './support.js'

let server: ServerProcess
let op: WardenClient
let env: NodeJS.ProcessEnv
const tempDirs: string[] = []
/** A temp folder removed after the suite. */
const tempDir = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  tempDirs.push(dir)
  return dir
}

beforeAll(async () => {
  server = await realServer()
  op = operatorClient(server.url)
  env = { WARDEN_URL: server.url, WARDEN_OPERATOR_TOKEN: OPERATOR_TOKEN }
})
afterAll(async () => {
  await op?.close()
  await stopServer(server)
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})
beforeEach(async () => {
  await op.putContract(contract())
  await resetWorkers(op)
})

/** A registered root and one registered child, made with the client. */
async function family() {
  const rootManifest = await op.issueManifest()
  const root = await op.register(rootManifest)
  const childManifest = await op.spawn({ worker_id: rootManifest.worker_id, lease_token: root.lease_token }, { reason: 'cli test' })
  await op.register(childManifest)
  return { root: rootManifest.worker_id, child: childManifest.worker_id }
}

describe('help and usage', () => {
  it('every command answers --help with its usage and exit 0', async () => {
    for (const command of COMMANDS) {
      const result = await cli([...command.name, '--help'], {})
      expect(result.code, command.name.join(' ')).toBe(0)
      expect(result.stdout).toContain(`Usage: warden ${command.name.join(' ')}`)
      expect(result.stdout).toContain('Exit codes:')
    }
    const top = await cli(['--help'], {})
    expect(top.code).toBe(0)
    for (const command of COMMANDS) expect(top.stdout).toContain(command.name.join(' '))
    expect((await cli(['workers', '--help'], {})).stdout).toContain('warden workers <ls|get|kill>')
  })

  it('exits 2 on usage errors', async () => {
    expect((await cli([], {})).code).toBe(2)
    expect((await cli(['frobnicate'], {})).code).toBe(2)
    expect((await cli(['workers'], {})).code).toBe(2)
    expect((await cli(['workers', 'kill'], env)).stderr).toContain('missing ID')
    const unknown = await cli(['kill-switch', '--bogus'], env)
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toBe('warden kill-switch: unknown option --bogus\nSee: warden kill-switch --help\n')
    expect((await cli(['--bogus', 'kill-switch'], env)).stderr).toMatch(/^warden: unknown option --bogus\n/)
    expect((await cli(['kill-switch', '--url'], env)).stderr).toContain('--url needs a value')
    expect((await cli(['kill-switch', 'explode'], env)).code).toBe(2)
    expect((await cli(['workers', 'ls', '--status', 'sleeping'], env)).code).toBe(2)
    expect((await cli(['workers', 'get', 'not-an-id'], env)).code).toBe(2)
  })
})

describe('connection and credentials', () => {
  it('reads the token file beside WARDEN_DB when no token is given', async () => {
    // Written the way the server writes it (this suite's server got its token from the environment).
    const dir = tempDir('warden-cli-')
    writeFileSync(join(dir, 'operator-token'), OPERATOR_TOKEN + '\n')
    const fromFile = await cli(['kill-switch', 'status', '--json'], { WARDEN_URL: server.url, WARDEN_DB: join(dir, 'warden.db') })
    expect(fromFile.code).toBe(0)
    expect(JSON.parse(fromFile.stdout)).toEqual({ engaged: false, engaged_at: null, reason: null })
  })

  it('exits 4 without a token or with a wrong one, 3 when the controller cannot be reached', async () => {
    const empty = tempDir('warden-cli-')
    const none = await cli(['kill-switch'], { WARDEN_URL: server.url, WARDEN_DB: join(empty, 'warden.db') })
    expect(none.code).toBe(4)
    expect(none.stderr).toContain('no operator token')
    const wrong = await cli(['kill-switch', '--json'], { WARDEN_URL: server.url, WARDEN_OPERATOR_TOKEN: 'not-the-token-0123456789' })
    expect(wrong.code).toBe(4)
    expect(JSON.parse(wrong.stderr)).toMatchObject({ error: { code: 'unauthorized', status: 401 }, exit_code: 4 })
    const down = await cli(['kill-switch', '--url', 'http://127.0.0.1:9'], env)
    expect(down.code).toBe(3)
    expect(down.stderr).toContain('connection_failed')
  })

  it('says a token was rejected, naming where it came from, apart from a missing one', async () => {
    const wrongEnv = await cli(['kill-switch'], { WARDEN_URL: server.url, WARDEN_OPERATOR_TOKEN: 'not-the-token-0123456789' })
    expect(wrongEnv.code).toBe(4)
    expect(wrongEnv.stderr).toBe(`warden kill-switch: token rejected: ${server.url} did not accept the operator token from WARDEN_OPERATOR_TOKEN\n`)
    const wrongFlag = await cli(['--token', 'nope-0123456789', 'kill-switch'], { WARDEN_URL: server.url })
    expect(wrongFlag.stderr).toContain('did not accept the operator token from --token')
    const dir = tempDir('warden-cli-')
    writeFileSync(join(dir, 'operator-token'), 'stale-token-0123456789\n')
    const wrongFile = await cli(['kill-switch'], { WARDEN_URL: server.url, WARDEN_DB: join(dir, 'warden.db') })
    expect(wrongFile.stderr).toContain(`from ${join(dir, 'operator-token')}`)
    const missing = await cli(['kill-switch'], { WARDEN_URL: server.url, WARDEN_DB: join(dir, 'none', 'warden.db') })
    expect(missing.stderr).toMatch(/^warden kill-switch: no operator token: /)
    expect(missing.stderr).not.toContain('rejected')
  })

  it('names a connection failure and its cause once', async () => {
    const down = await cli(['kill-switch', '--url', 'http://127.0.0.1:9'], env)
    expect(down.stderr).toMatch(/^warden kill-switch: connection_failed: cannot reach http:\/\/127\.0\.0\.1:9\S*: .*ECONNREFUSED/)
    expect(down.stderr.match(/connection_failed/g)).toHaveLength(1)
  })

  it('takes global options before the command as well as after it', async () => {
    const before = await cli(['--url', server.url, '--token', OPERATOR_TOKEN, '--json', 'kill-switch', 'status'], {})
    expect(before.code, before.stderr).toBe(0)
    expect(JSON.parse(before.stdout)).toMatchObject({ engaged: false })
    const equals = await cli([`--url=${server.url}`, `--token=${OPERATOR_TOKEN}`, 'kill-switch', 'status', '--json'], {})
    expect(equals.code, equals.stderr).toBe(0)
    const after = await cli(['kill-switch', 'status', '--json', '--url', server.url, '--token', OPERATOR_TOKEN], {})
    expect(after.stdout).toBe(before.stdout)
    const bin = await binary(['--token', OPERATOR_TOKEN, '--url', server.url, 'kill-switch', 'status'], {})
    expect(bin.code, bin.stderr).toBe(0)
    expect(bin.stdout).toBe('kill switch: disengaged\n')
  })

  it('help names WARDEN_URL and WARDEN_PORT, the defaults the CLI really uses', async () => {
    const top = await cli(['--help'], {})
    expect(top.stdout).toContain('Usage: warden [global options] <command> [options]')
    expect(top.stdout).toMatch(/--url URL .*WARDEN_URL.*WARDEN_PORT.*8080/)
  })
})

describe('kill-switch', () => {
  it('shows status, engages with a reason and disengages, as text and JSON', async () => {
    await family()
    expect((await cli(['kill-switch'], env)).stdout).toBe('kill switch: disengaged\n')
    const engaged = await cli(['kill-switch', 'engage', '--reason', 'cli drill'], env)
    expect(engaged.code).toBe(0)
    expect(engaged.lines[0]).toMatch(/^kill switch: ENGAGED since \S+ \(cli drill\)$/)
    expect(engaged.lines[1]).toBe('2 worker(s) terminated, 0 outstanding manifest(s) voided')
    const status = JSON.parse((await cli(['kill-switch', 'status', '--json'], env)).stdout)
    expect(status).toMatchObject({ engaged: true, reason: 'cli drill' })
    const issue = await cli(['manifest', 'issue'], env)
    expect(issue.code).toBe(1)
    expect(issue.stderr).toContain('kill_switch_engaged (403)')
    const off = await cli(['kill-switch', 'disengage', '--json'], env)
    expect(JSON.parse(off.stdout)).toEqual({ engaged: false, engaged_at: null, reason: null })
  })
})

describe('manifest and workers', () => {
  it('issues a manifest a worker can register with', async () => {
    const result = await cli(['manifest', 'issue', '--json', '--state', '{"goal":"index"}', '--memory', '128'], env)
    expect(result.code).toBe(0)
    const manifest = JSON.parse(result.stdout) as Manifest
    expect(manifest).toMatchObject({ depth: 0, parent_id: null, state_snapshot: { goal: 'index' }, resources: { memory_limit_mb: 128 } })
    expect((await op.register(manifest)).worker.worker_id).toBe(manifest.worker_id)
    expect((await cli(['manifest', 'issue', '--state', '[1]'], env)).code).toBe(2)
  })

  it('lists workers as a table, as JSON and as an indented lineage tree', async () => {
    const { root, child } = await family()
    const table = await cli(['workers', 'ls'], env)
    expect(table.code).toBe(0)
    expect(table.lines[0]).toMatch(/^WORKER\s+PARENT\s+DEPTH\s+STATUS\s+REASON\s+REGISTERED\s+HEARTBEAT\s+SANDBOX\s+USAGE$/)
    expect(table.stdout).toContain(root)
    expect(table.lines.find((line) => line.startsWith(child))).toMatch(new RegExp(`^${child}\\s+${root.slice(0, 8)}\\s+1\\s+active`))
    expect(table.lines.at(-1)).toMatch(/worker\(s\), \d+ live$/)

    const json = JSON.parse((await cli(['workers', 'ls', '--json', '--status', 'active'], env)).stdout) as WorkerSummary[]
    expect(json.map((worker) => worker.worker_id).sort()).toEqual([root, child].sort())

    const tree = await cli(['workers', 'ls', '--tree', '--status', 'active'], env)
    const rootLine = tree.lines.findIndex((line) => line.startsWith(root))
    expect(rootLine).toBeGreaterThanOrEqual(0)
    expect(tree.lines[rootLine + 1]).toMatch(new RegExp(`^└─ ${child}  d1  active`))

    const byDepth = JSON.parse((await cli(['workers', 'ls', '--json', '--depth', '1', '--status', 'active'], env)).stdout) as WorkerSummary[]
    expect(byDepth.map((worker) => worker.worker_id)).toEqual([child])
  })

  it('shows one worker by a unique id prefix; exits 5 for an unknown one', async () => {
    const { root } = await family()
    const shown = await cli(['workers', 'get', root.slice(0, 12)], env)
    expect(shown.code).toBe(0)
    expect(shown.stdout).toContain(`worker          ${root}`)
    expect(shown.stdout).toContain('children        1')
    expect((await cli(['workers', 'get', 'f'.repeat(32)], env)).code).toBe(5)
  })

  it('kills with cascade by default and alone with --no-cascade', async () => {
    const first = await family()
    const alone = await cli(['workers', 'kill', first.root, '--no-cascade', '--json'], env)
    expect(JSON.parse(alone.stdout).killed).toEqual([first.root])
    expect((await op.getWorker(first.child)).status).toBe('active')

    const second = await family()
    const cascade = await cli(['workers', 'kill', second.root, '--reason', 'enough'], env)
    expect(cascade.lines[0]).toBe('killed 2 worker(s):')
    expect(cascade.stdout).toContain(`${second.child} (descendant)`)
    expect((await op.getWorker(second.child)).reason).toContain('enough')
  })

  it('quarantines and releases', async () => {
    const { root } = await family()
    const held = await cli(['quarantine', root, '--reason', 'looks odd'], env)
    expect(held.stdout).toBe(`${root} is quarantined (looks odd)\n`)
    expect((await op.getWorker(root)).status).toBe('quarantined')
    expect((await cli(['release', root], env)).stdout).toBe(`${root} is active\n`)
    await op.kill(root)
    const gone = await cli(['quarantine', root], env)
    expect(gone.code).toBe(1)
    expect(gone.stderr).toContain('worker_terminated (410)')
  })
})

describe('contract', () => {
  it('gets the contract and sets one from a file (including one saved by get --json)', async () => {
    const shown = await cli(['contract', 'get'], env)
    expect(shown.stdout).toMatch(/max_depth\s+3/)
    const saved = (await cli(['contract', 'get', '--json'], env)).stdout
    const dir = tempDir('warden-cli-')
    const file = join(dir, 'contract.json')
    writeFileSync(file, JSON.stringify({ ...JSON.parse(saved), max_depth: 4 }))
    const set = await cli(['contract', 'set', file, '--json'], env)
    expect(set.code).toBe(0)
    expect(JSON.parse(set.stdout)).toMatchObject({ max_depth: 4, version: JSON.parse(saved).version + 1 })

    writeFileSync(file, JSON.stringify({ ...JSON.parse(saved), max_depth: -1 }))
    const invalid = await cli(['contract', 'set', file], env)
    expect(invalid.code).toBe(1)
    expect(invalid.stderr).toContain('max_depth must be >= 0, got -1')
    expect((await cli(['contract', 'set', join(dir, 'missing.json')], env)).code).toBe(2)
  })
})

describe('audit', () => {
  it('tails the last records as text and as NDJSON', async () => {
    await family()
    const text = await cli(['audit', 'tail', '-n', '3'], env)
    expect(text.lines).toHaveLength(4)
    expect(text.lines[0]).toMatch(/^\s+SEQ TIME \(UTC\)\s+TYPE\s+CODE\s+WORKER\s+DATA$/)
    expect(text.lines.at(-1)).toMatch(/^\s+\d+ \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z worker_registered/)
    // The last three, in order, ending at the newest.
    const seqs = text.lines.slice(1).map((line) => Number(line.trim().split(' ')[0]))
    const head = (await op.listAudit({ order: 'desc', limit: 1 })).items[0]!.seq
    expect(seqs).toEqual([head - 2, head - 1, head])
    const ndjson = await cli(['audit', 'tail', '-n', '2', '--json', '--type', 'worker_registered'], env)
    const records = ndjson.lines.map((line) => JSON.parse(line))
    expect(records).toHaveLength(2)
    expect(records.every((record) => record.type === 'worker_registered')).toBe(true)
    expect(records[1].seq).toBeGreaterThan(records[0].seq)
  })

  it('follows new records until interrupted', async () => {
    const controller = new AbortController()
    let output = ''
    const following = cli(['audit', 'tail', '-n', '1', '--follow', '--json'], env, {
      signal: controller.signal,
      onOutput: (text) => (output += text),
    })
    // The last existing record printed: the follower has read to the end and now streams.
    await waitFor('the tail', () => output.length > 0, 5_000)
    const { root } = await family()
    await waitFor('the new records', () => output.includes(`"worker_id":"${root}"`), 5_000)
    controller.abort()
    const result = await following
    expect(result.code).toBe(0)
    expect(result.lines.map((line) => JSON.parse(line).type)).toEqual(
      expect.arrayContaining(['manifest_issued', 'worker_registered', 'spawn_approved']),
    )
    // Tail then stream: every seq once, in order, no gap between the two.
    const seqs = result.lines.map((line) => JSON.parse(line).seq as number)
    expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i))
  })

  it('verifies the chain: exit 0 when intact', async () => {
    const ok = await cli(['audit', 'verify'], env)
    expect(ok.code).toBe(0)
    expect(ok.stdout).toMatch(/^audit chain verified: \d+ records, head [0-9a-f]{64}\n$/)
  })
})

describe('audit verify on a tampered database', () => {
  let tampered: ServerProcess | undefined
  afterAll(async () => stopServer(tampered))

  it('exits 1 and names the first invalid record', async () => {
    tampered = await realServer()
    const api = operatorClient(tampered.url)
    await api.issueManifest()
    await api.close()
    await tampered.kill('SIGTERM')
    const db = new Database(tampered.dbFile)
    db.prepare(`UPDATE audit SET data = '{"edited":true}' WHERE seq = 2`).run()
    db.close()
    tampered = await restart(tampered)
    const result = await cli(['audit', 'verify', '--json'], { WARDEN_URL: tampered.url, WARDEN_OPERATOR_TOKEN: OPERATOR_TOKEN })
    expect(result.code).toBe(1)
    expect(JSON.parse(result.stdout)).toMatchObject({ ok: false, first_invalid_seq: 2 })
  })
})

describe('the bin', () => {
  it('runs as `warden` with the same output and exit codes', async () => {
    const version = await binary(['--version'], {})
    expect(version.code).toBe(0)
    expect(version.stdout).toMatch(/^\d+\.\d+\.\d+\n$/)
    const status = await binary(['kill-switch', 'status', '--json'], env)
    expect(status.code).toBe(0)
    expect(JSON.parse(status.stdout)).toMatchObject({ engaged: false })
    const bad = await binary(['workers', 'get', 'f'.repeat(32)], env)
    expect(bad.code).toBe(5)
  })

  it('serves the controller until SIGTERM (warden serve)', async () => {
    const dir = tempDir('warden-serve-')
    const serve = startBin(['serve'], { WARDEN_PORT: '0', WARDEN_HOST: '127.0.0.1', WARDEN_DB: join(dir, 'warden.db') })
    try {
      const [, url] = await serve.waitForLine(/Warden listening on (http:\/\/[^;]+);/, 30_000)
      const token = readFileSync(join(dir, 'operator-token'), 'utf8').trim()
      const status = await cli(['kill-switch', '--json'], { WARDEN_URL: url, WARDEN_DB: join(dir, 'warden.db') })
      expect(JSON.parse(status.stdout)).toMatchObject({ engaged: false })
      expect(token.length).toBeGreaterThan(16)
    } finally {
      process.kill(serve.child.pid!, 'SIGTERM')
    }
    expect(await serve.exited).toEqual({ code: 0, signal: null })
  })
})
