#!/usr/bin/env node
/**
 * Builds the root of the lab's systemd hosts (src/lab/systemd_root.ts) before
 * the tests start, once per machine: a first build takes minutes, longer than
 * a test's time limit, and every lab test file of the systemd kind would
 * otherwise wait for it. Run by `npm test` (pretest, after the build) and by
 * .ci/run. Does nothing where the systemd kind cannot run, or where the root
 * exists; under CI=true a machine that cannot build it is an error.
 */
import { systemdLabAvailability } from '../dist/lab/lab.js';
import { ensureSystemdRoot } from '../dist/lab/systemd_root.js';

const availability = systemdLabAvailability();
if (!availability.ok) {
  console.warn(`not building the systemd lab root: ${availability.reason}`);
  process.exit(process.env.CI === 'true' ? 1 : 0);
}
try {
  await ensureSystemdRoot({
    onBuild: (root) => console.log(`building the systemd lab root ${root} (once per machine, minutes)`),
  });
} catch (error) {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
}
