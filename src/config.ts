// WARDEN_* environment, read once by server.ts. Secrets have no defaults in code: when not
// given they are generated once and saved beside the database with mode 0600.
import { randomBytes } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { z } from 'zod'
import { describeIssues } from './schemas/issues.js'

const ConfigSchema = z.object({
  /** A host name or address, or unix:/absolute/path to serve on a Unix socket (mode 0600). */
  WARDEN_HOST: z
    .string()
    .min(1)
    .refine((host) => !host.startsWith('unix:') || host.startsWith('unix:/'), 'a unix: listen address needs an absolute socket path')
    .default('127.0.0.1'),
  WARDEN_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  WARDEN_DB: z.string().min(1).default('./data/warden.db'),
  WARDEN_OPERATOR_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  WARDEN_SIGNING_KEY: z
    .string()
    .refine((key) => Buffer.byteLength(key) >= 32, 'must be at least 32 bytes')
    .optional(),
  WARDEN_CONTRACT: z.string().min(1).optional(),
  WARDEN_REAPER_INTERVAL_MS: z.coerce.number().int().min(10).max(60_000).default(1000),
  /** Registrations (the one open write endpoint) per minute per client address; 0 turns the limit off. */
  WARDEN_REGISTER_RATE_LIMIT: z.coerce.number().int().min(0).default(1200),
  /** Disk space (MiB) held in a ballast file beside the database, released so the kill switch and kills commit on a full disk. */
  WARDEN_DISK_RESERVE_MB: z.coerce.number().int().min(0).max(4096).default(32),
  /** Socket limits (SPEC §7): slow or idle clients cannot hold sockets indefinitely. */
  WARDEN_HEADERS_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(10_000),
  WARDEN_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(30_000),
  WARDEN_KEEP_ALIVE_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(5_000),
  WARDEN_MAX_CONNECTIONS: z.coerce.number().int().min(1).max(1_000_000).default(8192),
  /**
   * Test hook only (SPEC §2.10 crash tests): holds back the reply to every request carrying an
   * Idempotency-Key for this long after its decision committed, so a test can kill the process
   * between commit and reply. 0, the default, turns it off.
   */
  WARDEN_TEST_REPLY_DELAY_MS: z.coerce.number().int().min(0).max(600_000).default(0),
  /** Managed workers (SPEC §5): `process` insists, `none` declines, `auto` uses `process` where this host can enforce it. */
  WARDEN_SANDBOX: z.enum(['auto', 'process', 'none']).default('auto'),
  /** Per-sandbox work folders; default `sandboxes` beside the database. */
  WARDEN_SANDBOX_DIR: z.string().min(1).optional(),
  /** Processes and threads per sandbox. */
  WARDEN_SANDBOX_PIDS_MAX: z.coerce.number().int().min(8).max(1_000_000).default(256),
  /** Name of Warden's cgroup folder in each hierarchy (tests give each server its own). */
  WARDEN_SANDBOX_CGROUP: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 _ . -').default('warden'),
  /** The most one stop-condition evaluation may take before it fails closed (SPEC §7). */
  WARDEN_CEL_BUDGET_MS: z.coerce.number().int().min(1).max(1000).default(10),
  WARDEN_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
})

export type Config = z.infer<typeof ConfigSchema>

export function loadConfig(env: NodeJS.ProcessEnv): Config {
  const set = Object.fromEntries(Object.entries(env).filter(([key, value]) => key.startsWith('WARDEN_') && value !== ''))
  const parsed = ConfigSchema.safeParse(set, { reportInput: true })
  if (!parsed.success) throw new Error(`invalid configuration: ${describeIssues(parsed.error.issues)}`)
  return parsed.data
}

export interface Secrets {
  operatorToken: string
  signingKey: Buffer
  /** Files written or read, for the start-up log line. */
  files: string[]
}

/** The folder secrets live in: beside the database, or ./data for an in-memory one. */
export function secretsDir(config: Config): string {
  return config.WARDEN_DB === ':memory:' ? resolve('data') : dirname(resolve(config.WARDEN_DB))
}

/** Where the sandboxes' work folders go: WARDEN_SANDBOX_DIR, or `sandboxes` beside the database. */
export function sandboxDir(config: Config): string {
  return config.WARDEN_SANDBOX_DIR !== undefined ? resolve(config.WARDEN_SANDBOX_DIR) : join(secretsDir(config), 'sandboxes')
}

export function loadSecrets(config: Config): Secrets {
  const dir = secretsDir(config)
  const files: string[] = []
  const secret = (given: string | undefined, name: string): string => {
    if (given !== undefined) return given
    const file = join(dir, name)
    files.push(file)
    if (existsSync(file)) return readFileSync(file, 'utf8').trim()
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    const value = randomBytes(32).toString('base64url')
    writeFileSync(file, value + '\n', { mode: 0o600, flag: 'wx' })
    chmodSync(file, 0o600)
    return value
  }
  return {
    operatorToken: secret(config.WARDEN_OPERATOR_TOKEN, 'operator-token'),
    signingKey: Buffer.from(secret(config.WARDEN_SIGNING_KEY, 'signing-key'), 'utf8'),
    files,
  }
}

/** The JSON of a contract file; the file system's or the parser's error as it is (start-up explains it). */
export function readContractFile(path: string): unknown {
  return JSON.parse(readFileSync(path, 'utf8'))
}
