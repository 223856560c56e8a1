// warden serve: the controller, exactly as `npm start` runs it.
import type { Command } from './command.js'
import { EXIT } from './context.js'

export const serveCommands: Command[] = [
  {
    name: ['serve'],
    summary: 'Run the controller (same as npm start); configured by the WARDEN_* environment',
    details: [
      'WARDEN_HOST / WARDEN_PORT (127.0.0.1 / 8080), WARDEN_DB (./data/warden.db), WARDEN_OPERATOR_TOKEN,',
      'WARDEN_SIGNING_KEY, WARDEN_CONTRACT, WARDEN_REAPER_INTERVAL_MS, WARDEN_REGISTER_RATE_LIMIT, WARDEN_LOG_LEVEL.',
      'SIGTERM or SIGINT drains in-flight requests and closes the database.',
    ],
    async run(ctx) {
      // Loaded here so the other commands do not pay for the server's modules.
      const [{ loadConfig }, { start }, { default: closeWithGrace }] = await Promise.all([
        import('../config.js'),
        import('../server.js'),
        import('close-with-grace'),
      ])
      let config
      try {
        config = loadConfig(ctx.io.env)
      } catch (error) {
        ctx.err((error as Error).message)
        return EXIT.usage
      }
      const server = await start(config)
      return new Promise<number>((resolve) => {
        closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
          if (err) server.app.log.error({ err }, 'closing after an error')
          else server.app.log.info({ signal }, 'draining and closing')
          await server.close()
          resolve(EXIT.ok)
        })
      })
    },
  },
]
