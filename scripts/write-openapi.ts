// Writes openapi/openapi.json: the document the app serves at /openapi.json, generated from
// the route schemas. test/http/openapi.test.ts fails when the committed file is stale.
// Usage: npm run openapi
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { buildApp } from '../src/app.js'
import { ManualClock } from '../src/domain/clock.js'
import { createWarden } from '../src/domain/index.js'
import { createSigner } from '../src/domain/signing.js'
import { openDatabase } from '../src/store/db.js'
import { createStore } from '../src/store/index.js'
import { storeHooks } from '../src/domain/store-hooks.js'

const OUTPUT = resolve(import.meta.dirname, '..', 'openapi', 'openapi.json')

// Nothing here reaches the document: the database is in memory and thrown away, and the
// token and key are placeholders that never serve a request.
const db = openDatabase(':memory:')
const warden = createWarden({
  store: createStore(db, storeHooks),
  clock: new ManualClock(),
  signer: createSigner(Buffer.alloc(32, 1)),
})
const app = await buildApp({ warden, operatorToken: 'openapi-generator-placeholder-token' })
try {
  await app.ready()
  const text = JSON.stringify(app.swagger(), null, 2) + '\n'
  mkdirSync(dirname(OUTPUT), { recursive: true })
  writeFileSync(OUTPUT, text)
  console.log(`wrote ${OUTPUT} (${Buffer.byteLength(text)} bytes)`)
} finally {
  await app.close()
  db.close()
}
