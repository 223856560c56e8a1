import { describe, expect, it } from 'vitest'
import {
  bwrapArgv,
  exitFromStatus,
  exposedPaths,
  sandboxEnv,
  SOCKET_INSIDE,
  type BwrapPlanInput,
} from '../../src/sandbox/bwrap-plan.js'
import type { Resources } from '../../src/schemas/index.js'

const input: BwrapPlanInput = {
  bwrap: '/usr/bin/bwrap',
  workDir: '/var/lib/warden/sandboxes/w1',
  controllerSocket: '/var/lib/warden/warden.sock',
  allowExternal: false,
  hidePaths: ['/var/lib/warden/sandboxes', '/var/lib/warden'],
  exposePaths: [],
  command: ['node', 'worker.mjs', '--flag'],
  statusFd: 3,
  blockFd: 4,
}

describe('exposedPaths', () => {
  const host: Record<string, 'file' | 'dir'> = {
    '/opt/warden': 'dir',
    '/tmp/ci/warden': 'dir',
    '/tmp/ci/warden/test/fixtures/worker.mjs': 'file',
    '/tmp/loose.mjs': 'file',
    '/tmp/lab': 'dir',
    '/run/user/0/agent.mjs': 'file',
    '/usr/bin/node': 'file',
  }
  const exists = (path: string) => host[path] ?? null

  it('shows nothing extra when Warden and the program live outside /tmp and /run', () => {
    expect(exposedPaths(['/usr/bin/node', '/opt/agent/run.mjs', '--x'], '/opt/warden', exists)).toEqual([])
  })

  it('keeps a clone under /tmp visible, once, with the programs inside it', () => {
    expect(exposedPaths(['node', '/tmp/ci/warden/test/fixtures/worker.mjs'], '/tmp/ci/warden', exists)).toEqual(['/tmp/ci/warden'])
  })

  it("shows a script's folder, a named folder, or the file alone when it sits directly in /tmp or /run", () => {
    expect(exposedPaths(['node', '/tmp/loose.mjs', '/tmp/lab', '/run/user/0/agent.mjs', '/tmp/missing.mjs'], '/opt/warden', exists)).toEqual([
      '/tmp/loose.mjs',
      '/tmp/lab',
      '/run/user/0',
    ])
  })

  it('never re-exposes /tmp or /run whole', () => {
    expect(exposedPaths(['/tmp', '/run'], '/opt/warden', (path) => (path === '/tmp' || path === '/run' ? 'dir' : null))).toEqual([])
  })

  it('binds the exposed paths read-only after the private mounts and before the hidden folders', () => {
    const argv = bwrapArgv({ ...input, exposePaths: ['/tmp/ci/warden'] })
    const at = (flag: string, path: string) => argv.findIndex((arg, i) => arg === flag && argv[i + 1] === path)
    expect(at('--ro-bind', '/tmp/ci/warden')).toBeGreaterThan(at('--tmpfs', '/tmp'))
    expect(at('--ro-bind', '/tmp/ci/warden')).toBeLessThan(at('--tmpfs', '/var/lib/warden'))
    expect(argv[at('--ro-bind', '/tmp/ci/warden') + 2]).toBe('/tmp/ci/warden')
  })
})

describe('bwrapArgv', () => {
  it('isolates every namespace, drops every capability, shows the host read-only and the work folder writable', () => {
    expect(bwrapArgv(input)).toEqual([
      '/usr/bin/bwrap',
      '--die-with-parent',
      '--new-session',
      '--unshare-user',
      '--disable-userns',
      '--unshare-pid',
      '--unshare-ipc',
      '--unshare-uts',
      '--unshare-cgroup-try',
      '--unshare-net',
      '--cap-drop', 'ALL',
      '--ro-bind', '/', '/',
      '--dev', '/dev',
      '--proc', '/proc',
      '--tmpfs', '/tmp',
      '--tmpfs', '/run',
      '--tmpfs', '/var/lib/warden/sandboxes',
      '--tmpfs', '/var/lib/warden',
      '--bind', '/var/lib/warden/sandboxes/w1', '/var/lib/warden/sandboxes/w1',
      '--bind', '/var/lib/warden/warden.sock', SOCKET_INSIDE,
      '--chdir', '/var/lib/warden/sandboxes/w1',
      '--hostname', 'sandbox',
      '--json-status-fd', '3',
      '--block-fd', '4',
      '--',
      'node', 'worker.mjs', '--flag',
    ])
  })

  it('makes the init wait on the block fd only when asked (the driver moves it into its cgroups first)', () => {
    expect(bwrapArgv({ ...input, blockFd: null })).not.toContain('--block-fd')
  })

  it('shares the host network only with allow_external', () => {
    expect(bwrapArgv(input)).toContain('--unshare-net')
    expect(bwrapArgv({ ...input, allowExternal: true })).not.toContain('--unshare-net')
  })

  it('mounts no controller socket when the sandbox may not reach the controller', () => {
    const argv = bwrapArgv({ ...input, controllerSocket: null })
    expect(argv).not.toContain(SOCKET_INSIDE)
    expect(argv.filter((a) => a === '--bind')).toHaveLength(1)
  })

  it('hides folders before binding the work folder (a later mount covers an earlier one)', () => {
    const argv = bwrapArgv(input)
    const lastHide = argv.lastIndexOf('/var/lib/warden')
    const workBind = argv.indexOf('--bind')
    expect(lastHide).toBeGreaterThan(0)
    expect(workBind).toBeGreaterThan(lastHide)
  })

  it('passes a command that looks like an option to the sandbox, never to bubblewrap', () => {
    const argv = bwrapArgv({ ...input, command: ['--bind', '/', '/'] })
    expect(argv.slice(argv.indexOf('--') + 1)).toEqual(['--bind', '/', '/'])
  })
})

describe('sandboxEnv', () => {
  const resources: Resources = {
    cpu_limit: 1,
    memory_limit_mb: 64,
    network_policy: { allow_controller: true, allow_external: false },
  }

  it('is built from scratch: nothing of the controller environment gets in', () => {
    process.env.WARDEN_OPERATOR_TOKEN_TEST_LEAK = 'secret'
    try {
      const env = sandboxEnv({ program: { command: ['x'] }, env: { WARDEN_WORKER_ID: 'w1' }, resources }, '/w')
      expect(Object.values(env)).not.toContain('secret')
      expect(Object.keys(env).sort()).toEqual(['HOME', 'LANG', 'PATH', 'TMPDIR', 'WARDEN_URL', 'WARDEN_WORKER_ID'])
      expect(env.HOME).toBe('/w')
    } finally {
      delete process.env.WARDEN_OPERATOR_TOKEN_TEST_LEAK
    }
  })

  it("lets Warden's variables win over the program's, and WARDEN_URL point at the mounted socket", () => {
    const env = sandboxEnv(
      {
        program: { command: ['x'], env: { WARDEN_WORKER_ID: 'forged', WARDEN_URL: 'http://evil', MODE: 'a' } },
        env: { WARDEN_WORKER_ID: 'w1' },
        resources,
      },
      '/w',
    )
    expect(env).toMatchObject({ WARDEN_WORKER_ID: 'w1', WARDEN_URL: `unix:${SOCKET_INSIDE}`, MODE: 'a' })
  })

  it('sets no WARDEN_URL when the sandbox may not reach the controller', () => {
    const env = sandboxEnv(
      {
        program: { command: ['x'], env: { WARDEN_URL: 'http://elsewhere' } },
        env: {},
        resources: { ...resources, network_policy: { allow_controller: false, allow_external: false } },
      },
      '/w',
    )
    expect(env.WARDEN_URL).toBeUndefined()
  })
})

describe('exitFromStatus', () => {
  const names = { 9: 'SIGKILL', 15: 'SIGTERM' }
  it('reports a signal from node, a shell-style 128+n status, or a plain exit code', () => {
    expect(exitFromStatus(null, 'SIGKILL', names)).toEqual({ exit_code: null, signal: 'SIGKILL' })
    expect(exitFromStatus(137, null, names)).toEqual({ exit_code: null, signal: 'SIGKILL' })
    expect(exitFromStatus(3, null, names)).toEqual({ exit_code: 3, signal: null })
    expect(exitFromStatus(200, null, names)).toEqual({ exit_code: 200, signal: null })
  })
})
