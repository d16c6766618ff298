import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    // Native addons and worker threads don't mix; each file gets a process.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // The PostgreSQL tests are a project of their own so that their server
    // (test/postgres/setup.ts) starts only when one of them runs.
    projects: [
      { extends: true, test: { name: 'local', include: ['test/**/*.test.ts'], exclude: ['test/postgres/**'] } },
      { extends: true, test: { name: 'postgres', include: ['test/postgres/**/*.test.ts'], globalSetup: ['test/postgres/setup.ts'] } },
    ],
  },
})
