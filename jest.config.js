// One ESM set-up for the whole project: sources are ES modules (p-queue and
// yargs ship ESM only), ts-jest compiles them in isolatedModules mode and jest
// runs them with --experimental-vm-modules (set by the npm scripts).
const common = {
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true }] },
  testEnvironment: 'node',
};

/** @type {import('jest').Config} */
export default {
  // Only read at the top level. Lab tests start real sshd/iptables/fail2ban in
  // network namespaces; unit tests that run real shells also need headroom on 2 cores.
  testTimeout: 120000,
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/test/unit/**/*.test.ts'],
      setupFiles: ['<rootDir>/test/support/isolated_backups.ts'],
    },
    {
      ...common,
      displayName: 'lab',
      testMatch: ['<rootDir>/test/lab/**/*.test.ts'],
      globalSetup: '<rootDir>/test/support/fresh_build.mjs',
    },
  ],
};
