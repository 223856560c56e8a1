// The layers of STYLE.md, held by the linter: each forbidden import, written into a file of the
// folder that forbids it, fails `eslint` with no-restricted-imports; the allowed ones pass.
import { ESLint } from 'eslint'
import { describe, expect, it } from 'vitest'

const eslint = new ESLint({ cwd: new URL('../..', import.meta.url).pathname })

async function restrictedImports(filePath: string, specifier: string): Promise<string[]> {
  const [result] = await eslint.lintText(`import '${specifier}'\n`, { filePath })
  return result!.messages.filter((message) => message.ruleId === 'no-restricted-imports').map((message) => message.message)
}

const forbidden: Array<[folder: string, specifier: string]> = [
  ['src/domain', 'fastify'],
  ['src/domain', 'fastify-plugin'],
  ['src/domain', '@fastify/rate-limit'],
  ['src/domain', '../http/plugins/errors.js'],
  ['src/domain', '../app.js'],
  ['src/domain', '../sandbox/process-driver.js'],
  ['src/domain', 'node:child_process'],
  ['src/domain', 'child_process'],
  ['src/domain', 'node:fs'],
  ['src/domain', 'node:fs/promises'],
  ['src/store', '../domain/errors.js'],
  ['src/client', '../domain/errors.js'],
  ['src/client', '../store/index.js'],
  ['src/sandbox', '../http/metrics.js'],
]

const allowed: Array<[folder: string, specifier: string]> = [
  ['src/domain', '../schemas/index.js'],
  ['src/domain', '../store/index.js'],
  ['src/domain', './sandbox.js'],
  ['src/domain', 'node:crypto'],
  ['src/store', '../schemas/index.js'],
  ['src/client', '../schemas/index.js'],
  ['src/http', '../domain/index.js'],
]

describe('layers the linter holds', () => {
  it.each(forbidden)('%s may not import %s', async (folder, specifier) => {
    expect(await restrictedImports(`${folder}/layer-probe.ts`, specifier)).toHaveLength(1)
  })

  it.each(allowed)('%s may import %s', async (folder, specifier) => {
    expect(await restrictedImports(`${folder}/layer-probe.ts`, specifier)).toEqual([])
  })
})
