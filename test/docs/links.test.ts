// A clone must hold everything the README points to: no links outside the repository.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'

const ROOT = resolve(import.meta.dirname, '..', '..')
const documents = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join('docs', f))]

describe('the documentation', () => {
  it.each(documents)('%s links only to files inside the repository that exist', (document) => {
    const text = readFileSync(join(ROOT, document), 'utf8')
    const targets = [...text.matchAll(/\]\(([^)\s#]+)(?:#[^)]*)?\)/g)].map((m) => m[1]!).filter((t) => !/^[a-z]+:/.test(t))
    for (const target of targets) {
      const path = resolve(ROOT, dirname(document), target)
      expect(relative(ROOT, path).startsWith('..'), `${document} links ${target}, outside the repository`).toBe(false)
      expect(existsSync(path), `${document} links ${target}, which does not exist`).toBe(true)
    }
  })

  it('the README points to the product contract in docs/ and reads the audit log newest first', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
    expect(readme).toContain('](docs/contract.md)')
    expect(readme).toMatch(/\/v1\/audit\?order=desc/)
    expect(readFileSync(join(ROOT, 'docs', 'contract.md'), 'utf8')).toMatch(/^# Warden/)
  })
})
