import { defineConfig } from 'vitest/config';

/**
 * Tests that measure how quickly the server answers while it works on something heavy (event-loop
 * stalls): they run after the rest, one file at a time, so that no other test file competes for
 * the machine's cores while they measure.
 */
const RUN_ALONE = ['test/contract/large-prompt.test.ts', 'test/contract/large-accepted-prompt.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // On CI, also write a JSON report, from which .ci/run prints a plain closing line.
    reporters: process.env.CI ? ['default', ['json', { outputFile: '.ci/test-results.json' }]] : ['default'],
    projects: [
      {
        extends: true,
        test: { name: 'suite', include: ['src/**/*.test.ts', 'test/**/*.test.ts'], exclude: RUN_ALONE, sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        test: { name: 'alone', include: RUN_ALONE, fileParallelism: false, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
