// The process as an operator runs it: `npm start` under a supervisor, its log, its health check.
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { PassThrough } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { createLogger } from '../../src/logger.js'
import { waitFor } from '../helpers/fixtures.js'
import { rawRequest } from '../helpers/raw-http.js'
import { createServerTracker } from '../helpers/server.js'

const ROOT = resolve(import.meta.dirname, '..', '..')
const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'))
const json = (lines: string[]) => lines.flatMap((line) => (line.startsWith('{') ? [JSON.parse(line) as Record<string, unknown>] : []))

describe('npm start', () => {
  const dirs: string[] = []
  const pids: number[] = []
  afterEach(() => {
    for (const pid of pids.splice(0)) if (alive(pid)) process.kill(pid, 'SIGKILL')
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
  })

  it('lets SIGTERM to the npm process reach the server: it drains, closes the database and exits', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-npm-start-'))
    dirs.push(dir)
    const db = join(dir, 'warden.db')
    const npm = spawn('npm', ['start'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', WARDEN_DB: db, WARDEN_HOST: '127.0.0.1', WARDEN_PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    pids.push(npm.pid!)
    const exited = new Promise<number | null>((done) => npm.once('exit', (code) => done(code)))
    const lines: string[] = []
    for (const stream of [npm.stdout!, npm.stderr!]) createInterface({ input: stream }).on('line', (line) => lines.push(line))

    // The build (prestart) runs first: allow it time.
    const listening = await waitFor('the server to listen', async () => json(lines).find((l) => String(l.msg).startsWith('Warden listening')), 110_000)
    const serverPid = listening.pid as number
    pids.push(serverPid)
    expect(serverPid).not.toBe(npm.pid)
    expect(alive(serverPid)).toBe(true)
    expect(existsSync(`${db}-wal`)).toBe(true)

    process.kill(npm.pid!, 'SIGTERM')
    await waitFor('the server process to end', async () => (alive(serverPid) ? undefined : true), 20_000)
    await exited
    const messages = json(lines).map((l) => l.msg)
    expect(messages).toContain('draining and closing')
    expect(messages.at(-1), lines.slice(-5).join('\n')).toBe('closed')
    // SQLite removes the WAL when the last connection closes cleanly.
    expect(existsSync(`${db}-wal`)).toBe(false)
  }, 150_000)
})

describe('the server log', () => {
  const servers = createServerTracker()
  afterEach(() => servers.cleanup())

  it('has method, URL and status on request lines, the problem code on 4xx, one line per decision, a final "closed", and a start-up warning while the kill switch is engaged', async () => {
    const { server, client } = await servers.start()
    await client.issueManifest()
    expect((await client.engageKillSwitch('drill')).engaged).toBe(true)
    // A wrong token on purpose: the client only sends the one it was given.
    const wrong = await rawRequest(server.url, 'GET', '/v1/kill-switch', { token: 'wrong' })
    expect(wrong.status).toBe(401)

    await waitFor('the 401 line', async () => json(server.logs).find((l) => (l.res as { statusCode?: number } | undefined)?.statusCode === 401))
    const lines = json(server.logs)
    const completed = lines.filter((l) => l.msg === 'request completed').map((l) => l.res)
    expect(completed).toContainEqual({ method: 'POST', url: '/v1/manifests', statusCode: 201 })
    expect(completed).toContainEqual({ method: 'GET', url: '/v1/kill-switch', statusCode: 401, code: 'unauthorized' })
    expect(lines.filter((l) => l.decision === 'manifest_issued')).toHaveLength(1)
    const engaged = lines.filter((l) => l.decision === 'kill_switch_engaged')
    expect(engaged).toHaveLength(1)
    expect(engaged[0]).toMatchObject({ msg: 'kill switch engaged', actor: 'operator', reason: 'drill' })

    await server.kill('SIGTERM')
    expect(json(server.logs).at(-1)?.msg).toBe('closed')

    const restarted = await servers.start({ dbFile: server.dbFile })
    const warning = json(restarted.server.logs).find((l) => l.level === 40 && /kill switch is ENGAGED/.test(String(l.msg)))
    expect(warning, restarted.server.logs.join('\n')).toMatchObject({ reason: 'drill' })
    expect(warning!.engaged_at).toMatch(/^\d{4}-\d{2}-\d{2}T/)
  })
})

describe('createLogger', () => {
  const capture = async (pretty: boolean) => {
    const out = new PassThrough()
    const chunks: string[] = []
    out.on('data', (chunk: Buffer) => chunks.push(chunk.toString()))
    const logger = createLogger({ level: 'info', pretty, destination: out })
    logger.info({ worker_id: 'abc' }, 'worker killed')
    logger.flush?.()
    await new Promise((done) => setImmediate(done))
    return chunks.join('')
  }

  it('writes JSON lines when not on a terminal', async () => {
    const text = await capture(false)
    expect(JSON.parse(text.trim())).toMatchObject({ level: 30, msg: 'worker killed', worker_id: 'abc' })
  })

  it('writes readable lines with a dated, zoned time on a terminal', async () => {
    const text = await capture(true)
    expect(() => JSON.parse(text.trim())).toThrow()
    expect(text).toMatch(/^\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} [+-]\d{4}\] .*INFO.*worker killed/)
    expect(text).toContain('worker_id')
  })
})

describe('the Dockerfile health check', () => {
  const servers = createServerTracker()
  afterEach(() => servers.cleanup())

  it('probes /readyz on WARDEN_PORT', async () => {
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
    const command = /^HEALTHCHECK .*? CMD (.+)$/m.exec(dockerfile)?.[1]
    expect(command).toBeDefined()
    const { server } = await servers.start()
    const port = new URL(server.url).port
    const run = (env: Record<string, string>) =>
      new Promise<number | null>((done) => spawn('sh', ['-c', command!], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: 'ignore' }).once('exit', done))
    expect(await run({ WARDEN_PORT: port })).toBe(0)
    await server.kill('SIGTERM')
    expect(await run({ WARDEN_PORT: port })).toBe(1)
  })
})
