/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test', '<rootDir>/destinations', '<rootDir>/transforms', '<rootDir>/src'],
  testMatch: ['**/*.test.ts'],
  globalSetup: '<rootDir>/test/helpers/global-setup.ts',
  setupFiles: ['<rootDir>/test/helpers/plain-output.ts'],
  // Type errors are caught once by `npm run typecheck`; transpiling each file alone keeps jest fast on 2 cores.
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  reporters: ['default', '<rootDir>/test/helpers/summary-reporter.js'],
  // Many tests chain several CLI runs, each compiling TypeScript on start: on a loaded 2-core machine a
  // minute was not always enough. A hang still fails, at three minutes.
  testTimeout: 180000,
  maxWorkers: 2,
};
