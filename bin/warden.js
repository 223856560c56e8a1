#!/usr/bin/env node
// `warden` / `npx warden`: the TypeScript source through tsx on a checkout (always current, no
// build needed after npm install), else the compiled CLI in dist/ (an install without dev tools).
import { existsSync } from 'node:fs'
import process from 'node:process'
import { URL } from 'node:url'

const source = new URL('../src/cli/index.ts', import.meta.url)
const built = new URL('../dist/src/cli/index.js', import.meta.url)

async function load() {
  if (existsSync(source)) {
    try {
      const { register } = await import('tsx/esm/api')
      register()
      return await import(source.href)
    } catch (error) {
      if (error?.code !== 'ERR_MODULE_NOT_FOUND' || !existsSync(built)) throw error
    }
  }
  if (existsSync(built)) return import(built.href)
  process.stderr.write('warden: neither src/cli/index.ts with tsx nor dist/src/cli/index.js was found; run npm install (and npm run build)\n')
  process.exit(2)
}

const cli = await load()
await cli.main()
