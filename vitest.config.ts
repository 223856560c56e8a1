import { availableParallelism } from 'node:os'
import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/temp-guard.ts', 'test/helpers/global-cgroups.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Most suites spend their time waiting on real child processes (servers, sandboxes, Chromium),
    // so files run one per core plus one. vitest's default (cores − 1) runs one file at a time on
    // a 2-core machine: the whole suite took 463 s that way, 238 s with three at a time.
    maxWorkers: availableParallelism() + 1,
    minWorkers: 1,
    // `npm test` passes --coverage; a bare `npx vitest run` skips it (faster while working).
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts'],
      reporter: ['text-summary', 'html'],
      reportsDirectory: 'coverage',
    },
  },
})
