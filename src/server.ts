// The process: config, secrets, database, domain, HTTP, reaper, graceful shutdown.
import { chmodSync, lstatSync, unlinkSync } from 'node:fs'
import { connect } from 'node:net'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { loadConfig, loadSecrets, readContractFile, secretsDir, type Config } from './config.js'
import { systemClock } from './domain/clock.js'
import { DomainError } from './domain/errors.js'
import { createWarden } from './domain/index.js'
import { parseContractInput } from './domain/contract.js'
import { createSigner } from './domain/signing.js'
import { createMetrics } from './http/metrics.js'
import { openDatabase } from './store/db.js'
import { createStore } from './store/index.js'
import { storeHooks } from './domain/store-hooks.js'
import { logDecisions } from './decision-log.js'
import { createLogger } from './logger.js'
import { createReserve, isStorageFailure, noReserve } from './store/storage.js'
import { chooseDriver, controllerSocket, describeDriver } from './sandbox-host.js'
import { createLoopMonitor } from './loop-watch.js'
import { checkAddress, listenError, StartupError, step } from './startup.js'

// Renewals reach the database within ~0.6 s (SPEC §2.10 allows 1 s): every 500 ms, in key order
// (LeaseBook.takeRenewals), in slices of ~2 ms with a yield between. In key order a short slice
// rewrites only the pages of its own key range, so short slices cost no more CPU than one long
// commit and keep the loop free: 10 ms slices of renewals in arrival order gave a heartbeat p99 of
// 15.5 ms, 2 ms slices in key order 11.9 ms at the same CPU per heartbeat (bench, issue #12).
const LEASE_FLUSH_INTERVAL_MS = 500
const LEASE_FLUSH_SLICE = 20_000
const LEASE_FLUSH_BUDGET_MS = 2
const DRAIN_CUTOFF_MS = 5_000
/** Sandbox usage is read (and OOM kills audited) this often. */
const SANDBOX_POLL_INTERVAL_MS = 1_000
/** Expired idempotency keys are swept this often, in slices small enough to keep the loop free. */
const KEY_SWEEP_INTERVAL_MS = 60_000
const KEY_SWEEP_SLICE = 100

export async function start(config: Config) {
  const logger = createLogger({ level: config.WARDEN_LOG_LEVEL, pretty: process.stdout.isTTY === true })
  const secrets = step('secrets', () => loadSecrets(config), secretsDir(config))
  if (secrets.files.length > 0) logger.info({ files: secrets.files }, 'secrets read from (or generated into) these files, mode 0600')
  const contractFile = config.WARDEN_CONTRACT
  const contract = contractFile === undefined ? undefined : step('contract', () => readContractFile(contractFile), contractFile)
  if (contract !== undefined) step('contract', () => parseContractInput(contract), contractFile!)

  const db = step('database', () => openDatabase(config.WARDEN_DB), config.WARDEN_DB)

  const metrics = createMetrics()
  const loop = createLoopMonitor()
  metrics.observeLoop(loop.takeLongestBlock)
  const reserve =
    config.WARDEN_DB === ':memory:' || config.WARDEN_DISK_RESERVE_MB === 0
      ? noReserve
      : createReserve(`${config.WARDEN_DB}.reserve`, config.WARDEN_DISK_RESERVE_MB * 1024 * 1024)
  if (reserve !== noReserve && !reserve.restore()) {
    logger.warn({ file: reserve.file, bytes: reserve.bytes }, 'no room for the disk reserve yet; the kill switch may fail on a full disk until there is')
  }
  const store = createStore(db, { ...storeHooks, onAudit: metrics.auditRecorded, reserve })
  // Managed workers (SPEC §5): the socket sandboxes reach the API through, and the driver.
  const socket = controllerSocket(config)
  const driver = await chooseDriver(config, socket.path, logger)
  const driverStatus = driver.status()
  logger[driverStatus.available ? 'info' : 'warn']({ sandbox: driverStatus, socket: socket.path }, describeDriver(driverStatus))
  const warden = step(
    'database',
    () =>
      createWarden({
        store,
        clock: systemClock,
        signer: createSigner(secrets.signingKey),
        contract,
        sandbox: driver,
        report: (message, error) => logger.error({ err: error }, message),
        celBudgetMs: config.WARDEN_CEL_BUDGET_MS,
        loop,
      }),
    config.WARDEN_DB,
  )
  driver.onExit((exit) => {
    try {
      warden.sandboxes.ended(exit)
    } catch (error) {
      logger.error({ err: error, exit }, 'the end of a sandbox could not be recorded')
    }
  })
  // The address is checked before the controller starts (and says so), so a port in use is one
  // line and exit 2, not a start followed by a crash.
  // WARDEN_HOST=unix:/path serves on a Unix socket instead; a socket file left by a dead process is removed.
  const socketPath = config.WARDEN_HOST.startsWith('unix:') ? config.WARDEN_HOST.slice('unix:'.length) : null
  if (socketPath === null) await checkAddress(config.WARDEN_HOST, config.WARDEN_PORT)
  else await removeStaleSocket(socketPath)

  const app = await buildApp({
    warden,
    operatorToken: secrets.operatorToken,
    metrics,
    logger,
    registerRateLimit: config.WARDEN_REGISTER_RATE_LIMIT,
    server: {
      headersTimeoutMs: config.WARDEN_HEADERS_TIMEOUT_MS,
      requestTimeoutMs: config.WARDEN_REQUEST_TIMEOUT_MS,
      keepAliveTimeoutMs: config.WARDEN_KEEP_ALIVE_TIMEOUT_MS,
      maxConnections: config.WARDEN_MAX_CONNECTIONS,
    },
  })

  // Background tasks never end the process: a failing tick is logged and simply runs again on
  // the next interval (a full disk is retried until space returns).
  const failures = createFailureLog(app.log)
  // A large reap runs one batch per turn of the loop, so heartbeats are answered in between.
  let reaping = false
  let stopped = false
  const reapSlice = () => {
    if (stopped) return
    const started = performance.now()
    let more = false
    try {
      const { more: pending, ...result } = warden.liveness.tickSlice()
      more = pending
      metrics.reaperTick((performance.now() - started) / 1000, result)
      if (result.reaped + result.expired + result.manifests_expired > 0) app.log.info(result, 'reaper tick')
      failures.recovered('reaper tick')
    } catch (error) {
      failures.failed('reaper tick', error)
    }
    if (more) setImmediate(reapSlice)
    else reaping = false
  }
  const reaper = setInterval(() => {
    if (!reaping) {
      reaping = true
      reapSlice()
    }
    if (!reserve.present() && store.health.failure === null && reserve.restore()) app.log.info({ file: reserve.file }, 'disk reserve restored')
    try {
      warden.summarizeRejections()
      failures.recovered('rejection summary')
    } catch (error) {
      failures.failed('rejection summary', error)
    }
  }, config.WARDEN_REAPER_INTERVAL_MS)

  // Heartbeats renew leases in memory; this writes them back in small slices, so no slice holds
  // the event loop long, and none lags more than a fraction of the second SPEC §2.10 allows.
  let flushing = false
  const flushSlice = () => {
    let written: number
    const deadline = performance.now() + LEASE_FLUSH_BUDGET_MS
    let outOfTime = false
    try {
      written = warden.liveness.flushLeases(LEASE_FLUSH_SLICE, () => (outOfTime = performance.now() >= deadline))
      failures.recovered('lease flush')
    } catch (error) {
      failures.failed('lease flush', error)
      written = 0
    }
    if (written === LEASE_FLUSH_SLICE || (outOfTime && written > 0)) setImmediate(flushSlice)
    else flushing = false
  }
  const flusher = setInterval(() => {
    if (flushing) return
    flushing = true
    flushSlice()
  }, LEASE_FLUSH_INTERVAL_MS)

  // Idempotency keys past their 24 h: deleted a slice at a time, yielding between slices.
  let sweeping = false
  let closed = false
  const sweepSlice = () => {
    if (closed) return
    let deleted: number
    try {
      deleted = warden.idempotency.sweep(KEY_SWEEP_SLICE)
      failures.recovered('idempotency key sweep')
    } catch (error) {
      failures.failed('idempotency key sweep', error)
      deleted = 0
    }
    if (deleted === KEY_SWEEP_SLICE) setImmediate(sweepSlice)
    else sweeping = false
  }
  const sweeper = setInterval(() => {
    if (sweeping) return
    sweeping = true
    sweepSlice()
  }, KEY_SWEEP_INTERVAL_MS)

  // Usage of every live sandbox, read from its cgroup; an OOM kill inside one is audited.
  const sandboxPoller = setInterval(() => {
    try {
      warden.sandboxes.poll()
      failures.recovered('sandbox usage poll')
    } catch (error) {
      failures.failed('sandbox usage poll', error)
    }
  }, SANDBOX_POLL_INTERVAL_MS)

  if (config.WARDEN_TEST_REPLY_DELAY_MS > 0) {
    app.log.warn({ delay_ms: config.WARDEN_TEST_REPLY_DELAY_MS }, 'TEST HOOK: replies to keyed requests are held back after their decision commits')
    app.addHook('onSend', async (request) => {
      if (request.headers['idempotency-key'] !== undefined) await sleep(config.WARDEN_TEST_REPLY_DELAY_MS)
    })
  }

  // Draining: answers already being written tell keep-alive clients to hang up, so close() is not
  // held open by their idle sockets; whatever still lingers after a while is cut.
  let draining = false
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (draining) reply.header('connection', 'close')
    done(null, payload)
  })

  const close = async () => {
    draining = true
    stopped = true
    clearInterval(reaper)
    clearInterval(flusher)
    clearInterval(sweeper)
    clearInterval(sandboxPoller)
    closed = true
    loop.stop()
    setTimeout(() => app.server.closeAllConnections(), DRAIN_CUTOFF_MS).unref()
    await Promise.all([app.close(), socket.close()])
    // No sandbox outlives its controller: their workers end `exited` (controller stopped), then
    // every process is killed and every cgroup removed.
    try {
      const { exited } = warden.sandboxes.reconcile()
      if (exited > 0) app.log.info({ exited }, 'managed workers ended with the controller')
    } catch (error) {
      app.log.error({ err: error }, 'managed workers could not be recorded as ended')
    }
    await driver.shutdown()
    try {
      warden.summarizeRejections(true)
    } catch (error) {
      app.log.error({ err: error }, 'the last rejection summaries could not be written')
    }
    try {
      warden.liveness.flushAllLeases()
    } catch (error) {
      // Lost renewals are covered by the restart rule of SPEC §2.7.
      app.log.error({ err: error }, 'lease renewals could not be written before closing')
    }
    db.close()
    app.log.info('closed')
  }

  const resumed = step('resume', () => warden.liveness.resume({ pid: process.pid, sandbox_driver: driverStatus.driver }), config.WARDEN_DB)
  // The sandboxes of the previous controller died with it (SPEC §5): their workers end `exited`.
  const reconciled = step('resume', () => warden.sandboxes.reconcile(), config.WARDEN_DB)
  logger.info({ ...resumed, managed_exited: reconciled.exited, contract_version: warden.contracts.current().version }, 'controller started')
  const killSwitch = warden.killSwitch.state()
  if (killSwitch.engaged) {
    logger.warn(
      { engaged_at: killSwitch.engaged_at, reason: killSwitch.reason },
      `the kill switch is ENGAGED (since ${killSwitch.engaged_at}, reason: ${killSwitch.reason ?? 'none given'}): ` +
        'no manifest is issued and no worker registers or spawns until an operator disengages it (DELETE /v1/kill-switch)',
    )
  }
  logDecisions(store, app.log)
  loop.start()
  let address: string
  try {
    if (socketPath === null) {
      address = await app.listen({ host: config.WARDEN_HOST, port: config.WARDEN_PORT })
    } else {
      await app.listen({ path: socketPath })
      chmodSync(socketPath, 0o600)
      address = `unix:${socketPath}`
    }
  } catch (error) {
    throw socketPath === null
      ? listenError(error, config.WARDEN_HOST, config.WARDEN_PORT)
      : new StartupError(`cannot listen on ${config.WARDEN_HOST}: ${(error as Error).message}`, 'remove the file there, or set WARDEN_HOST to another unix:/path')
  }
  try {
    await socket.listen((req, res) => app.routing(req, res))
  } catch (error) {
    throw new StartupError(`cannot listen on the controller socket ${socket.path}: ${(error as Error).message}`, 'check that folder is writable by the controller')
  }
  app.log.info({ socket: socket.path }, 'sandboxes reach the API on this Unix socket')
  app.log.info(`Warden listening on ${address}; Swagger UI at ${address}/docs`)
  return { app, address, close, warden }
}

/** A socket file left by a process that is gone is removed; one that still answers is in use. */
async function removeStaleSocket(path: string): Promise<void> {
  try {
    if (!lstatSync(path).isSocket()) return // listen() then fails with EADDRINUSE, naming the path
  } catch {
    return
  }
  const alive = await new Promise<boolean>((resolve) => {
    const probe = connect({ path })
    probe.once('connect', () => (probe.destroy(), resolve(true)))
    probe.once('error', () => resolve(false))
  })
  if (alive) throw new StartupError(`socket ${path} is in use by another process`, 'stop that process, or set WARDEN_HOST to another unix:/path')
  unlinkSync(path)
}

/** Logs a background task's failure once when it starts failing and once when it recovers. */
function createFailureLog(log: { error: (obj: object, msg: string) => void; info: (msg: string) => void }) {
  const failing = new Set<string>()
  return {
    failed(task: string, error: unknown) {
      if (failing.has(task)) return
      failing.add(task)
      log.error({ err: error }, `${task} failed; retrying every interval`)
    },
    recovered(task: string) {
      if (failing.delete(task)) log.info(`${task} recovered`)
    },
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  let config: Config
  try {
    config = loadConfig(process.env)
  } catch (error) {
    console.error(`warden: ${(error as Error).message}; fix: correct these WARDEN_* variables (see the README's configuration table)`)
    process.exit(2)
  }
  let server: Awaited<ReturnType<typeof start>>
  try {
    server = await start(config)
  } catch (error) {
    if (!(error instanceof StartupError)) throw error
    console.error(`warden: cannot start: ${error.message}`)
    process.exit(2)
  }
  // A storage failure that escapes somewhere is logged, not fatal (SPEC §2.14): the process must
  // keep the ability to stop workers. Any other uncaught error drains and exits.
  const closer = closeWithGrace({ delay: 10_000, skip: ['uncaughtException', 'unhandledRejection'] }, async ({ signal, err }) => {
    if (err) server.app.log.error({ err }, 'closing after an error')
    else server.app.log.info({ signal }, 'draining and closing')
    await server.close()
  })
  const onUncaught = (error: unknown) => {
    if (isStorageFailure(error) || (error instanceof DomainError && error.code === 'storage_unavailable')) {
      server.app.log.error({ err: error }, 'storage failure outside a request; carrying on')
      return
    }
    server.app.log.fatal({ err: error }, 'uncaught error; draining and closing')
    closer.uninstall()
    setTimeout(() => process.exit(1), 10_000).unref()
    void server
      .close()
      .catch(() => {})
      .finally(() => process.exit(1))
  }
  process.on('uncaughtException', onUncaught)
  process.on('unhandledRejection', onUncaught)
}
