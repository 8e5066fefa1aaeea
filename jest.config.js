/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>'],
  testMatch: ['**/*.spec.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  transform: { '^.+\\.ts$': ['ts-jest', {}] },
  testTimeout: 60000,
  // Integration tests share one PostgreSQL and Redis; each file uses its own schema/prefix.
  maxWorkers: 1,
  // A leaked handle must never hang CI: jest exits when the run is over (leaks are fixed where found).
  forceExit: true,
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  reporters: ['default', '<rootDir>/test/support/summary.reporter.js'],
};
