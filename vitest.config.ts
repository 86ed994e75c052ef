import { defineConfig } from 'vitest/config';

// Model tests are CPU-heavy: a small pool keeps the 2-core CI machine responsive.
export default defineConfig({
  // One graphql module for everyone: vite would load graphql's ESM build for our sources while
  // type-graphql, Apollo and graphql-ws require the CommonJS one ("another module or realm").
  resolve: { alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }] },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
