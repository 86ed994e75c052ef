import { defineConfig } from 'vitest/config';

// Model tests are CPU-heavy: a small pool keeps the 2-core CI machine responsive.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
