// The operations console (SPEC §6): static files from src/console, served by Warden itself under
// a strict Content-Security-Policy. The files are read once at start into an allowlist, so no
// request path ever reaches the filesystem.
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, extname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyReply } from 'fastify'
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
}

/** Nothing but Warden itself: no CDN, no inline script or style, no framing. */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')

/** src/console from src/http/plugins (tsx) or dist/src/http/plugins (compiled): the package ships src. */
export function resolveConsoleDir(): string {
  const here = dirname(fileURLToPath(import.meta.url))
  for (const up of ['../../console', '../../../../src/console']) {
    const candidate = join(here, up)
    try {
      readFileSync(join(candidate, 'index.html'))
      return candidate
    } catch {
      // try the next layout
    }
  }
  throw new Error(`console files (src/console/index.html) not found from ${here}`)
}

interface Asset {
  body: Buffer
  type: string
}

function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>()
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)]
    if (type !== undefined) assets.set(name, { body: readFileSync(join(dir, name)), type })
  }
  return assets
}

export const consoleRoutes: FastifyPluginAsyncZod<{ dir?: string }> = async (app, options) => {
  const assets = loadAssets(options.dir ?? resolveConsoleDir())
  const send = (reply: FastifyReply, asset: Asset) =>
    reply
      .header('content-type', asset.type)
      .header('content-security-policy', CONSOLE_CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('cross-origin-opener-policy', 'same-origin')
      // Always revalidate: a new Warden version must not run an old console.
      .header('cache-control', 'no-cache')
      .send(asset.body)

  app.get('/', { schema: { hide: true } }, async (_request, reply) => send(reply, assets.get('index.html')!))

  app.get(
    '/console/:file',
    { schema: { hide: true, params: z.strictObject({ file: z.string().regex(/^[a-z0-9-]+\.(js|css|svg)$/) }) } },
    async (request, reply) => {
      const asset = assets.get(request.params.file)
      if (asset === undefined) return reply.callNotFound()
      return send(reply, asset)
    },
  )
}
