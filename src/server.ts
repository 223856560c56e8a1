// The process: config, secrets, database, domain, HTTP, reaper, graceful shutdown.
import { performance } from 'node:perf_hooks'
import closeWithGrace from 'close-with-grace'
import pino from 'pino'
import { buildApp, REDACT } from './app.js'
import { loadConfig, loadSecrets, readContractFile, type Config } from './config.js'
import { systemClock } from './domain/clock.js'
import { createWarden } from './domain/index.js'
import { createSigner } from './domain/signing.js'
import { createMetrics } from './http/metrics.js'
import { DatabaseLockedError, openDatabase } from './store/db.js'
import { createStore } from './store/index.js'

const LEASE_FLUSH_INTERVAL_MS = 100
const LEASE_FLUSH_SLICE = 100
const DRAIN_CUTOFF_MS = 5_000

export async function start(config: Config) {
  const logger = pino({ level: config.WARDEN_LOG_LEVEL, redact: REDACT })
  const secrets = loadSecrets(config)
  if (secrets.files.length > 0) logger.info({ files: secrets.files }, 'secrets read from (or generated into) these files, mode 0600')

  let db
  try {
    db = openDatabase(config.WARDEN_DB)
  } catch (error) {
    if (error instanceof DatabaseLockedError) {
      logger.fatal(error.message)
      process.exit(2)
    }
    throw error
  }

  const metrics = createMetrics()
  const store = createStore(db, metrics.auditRecorded)
  const warden = createWarden({
    store,
    clock: systemClock,
    signer: createSigner(secrets.signingKey),
    contract: config.WARDEN_CONTRACT === undefined ? undefined : readContractFile(config.WARDEN_CONTRACT),
  })
  const resumed = warden.reaper.resume({ pid: process.pid })
  logger.info({ ...resumed, contract_version: warden.contracts.current().version }, 'controller started')

  const app = await buildApp({
    warden,
    operatorToken: secrets.operatorToken,
    metrics,
    logger,
    registerRateLimit: config.WARDEN_REGISTER_RATE_LIMIT,
  })

  const reaper = setInterval(() => {
    const started = performance.now()
    try {
      const result = warden.reaper.tick()
      metrics.reaperTick((performance.now() - started) / 1000, result)
      if (result.reaped + result.expired + result.manifests_expired > 0) app.log.info(result, 'reaper tick')
    } catch (error) {
      app.log.error({ err: error }, 'reaper tick failed')
    }
  }, config.WARDEN_REAPER_INTERVAL_MS)

  // Heartbeats renew leases in memory; this writes them back in small slices, so no slice holds
  // the event loop long, and none lags more than a fraction of the second SPEC §2.10 allows.
  let flushing = false
  const flushSlice = () => {
    if (warden.reaper.flushLeases(LEASE_FLUSH_SLICE) === LEASE_FLUSH_SLICE) setImmediate(flushSlice)
    else flushing = false
  }
  const flusher = setInterval(() => {
    if (flushing) return
    flushing = true
    flushSlice()
  }, LEASE_FLUSH_INTERVAL_MS)

  // Draining: answers already being written tell keep-alive clients to hang up, so close() is not
  // held open by their idle sockets; whatever still lingers after a while is cut.
  let draining = false
  app.addHook('onSend', async (_request, reply) => {
    if (draining) reply.header('connection', 'close')
  })

  const close = async () => {
    draining = true
    clearInterval(reaper)
    clearInterval(flusher)
    setTimeout(() => app.server.closeAllConnections(), DRAIN_CUTOFF_MS).unref()
    await app.close()
    warden.reaper.flushAllLeases()
    db.close()
  }

  const address = await app.listen({ host: config.WARDEN_HOST, port: config.WARDEN_PORT })
  app.log.info(`Warden listening on ${address}; Swagger UI at ${address}/docs`)
  return { app, address, close, warden }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  let config: Config
  try {
    config = loadConfig(process.env)
  } catch (error) {
    console.error((error as Error).message)
    process.exit(2)
  }
  const server = await start(config)
  closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
    if (err) server.app.log.error({ err }, 'closing after an error')
    else server.app.log.info({ signal }, 'draining and closing')
    await server.close()
  })
}
