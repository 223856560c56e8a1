import js from '@eslint/js'
import tseslint from 'typescript-eslint'

// Layers (STYLE.md "Layers the linter holds"): which folder may import what. Each entry is one
// folder's forbidden imports; a test (test/lint/layers.test.ts) proves each one fails a file that
// breaks it.
const forbid = (patterns) => ({ 'no-restricted-imports': ['error', { patterns }] })
const nodeIo = ['node:child_process', 'child_process', 'node:fs', 'node:fs/*', 'fs', 'fs/*']
export const layers = {
  'src/domain/**': [
    { group: ['fastify', 'fastify-*', '@fastify/*'], message: 'the domain knows no HTTP: routes call it' },
    { group: ['**/http/**', '**/app.js'], message: 'the domain imports nothing from the HTTP edge' },
    { group: ['**/sandbox/**'], message: 'the domain reaches sandbox drivers only through its port (domain/sandbox.ts)' },
    { group: nodeIo, message: 'the domain does no process or file I/O: pass it in' },
  ],
  'src/store/**': [{ group: ['**/domain/**'], message: 'the store imports nothing from the domain: hand it what it needs (StoreHooks)' }],
  'src/client/**': [{ group: ['**/domain/**', '**/store/**'], message: 'the client ships alone: wire shapes come from schemas/' }],
  'src/sandbox/**': [{ group: ['**/http/**', '**/app.js'], message: 'sandbox drivers import nothing from the HTTP edge' }],
}

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'data/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': ['error', { allow: ['error', 'warn'] }],
    },
  },
  ...Object.entries(layers).map(([folder, patterns]) => ({ files: [folder], rules: forbid(patterns) })),
  {
    files: ['scripts/**', 'test/**', 'bench/**', 'src/cli/**'],
    rules: { 'no-console': 'off' },
  },
  {
    // The console runs in the browser as plain ES modules (no build step).
    files: ['src/console/**/*.js'],
    languageOptions: {
      globals: Object.fromEntries(
        ['window', 'document', 'location', 'sessionStorage', 'fetch', 'performance', 'setTimeout', 'clearTimeout',
          'setInterval', 'requestAnimationFrame', 'structuredClone', 'AbortController', 'TextDecoderStream', 'console']
          .map((name) => [name, 'readonly']),
      ),
    },
  },
)
