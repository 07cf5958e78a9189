/** The lab for tests: src/lab plus `describeLab`, which knows about jest. */
import { labAvailability } from '../../src/lab/lab.js';

export * from '../../src/lab/lab.js';

/**
 * Use instead of `describe` in lab tests. Where no lab can run the tests are
 * skipped with the reason in their name, except under CI=true, where a missing
 * lab is a failure: CI must not pass by running nothing. (The time limit for
 * lab tests — bring-up, libwrap's 5 s pause — is jest.config.js's testTimeout.)
 */
export function describeLab(name: string, body: () => void): void {
  const availability = labAvailability();
  if (availability.ok) {
    describe(name, body);
  } else if (process.env.CI === 'true') {
    describe(name, () => {
      it('runs on a machine that can host the lab', () => {
        throw new Error(`lab tests cannot run here: ${availability.reason}`);
      });
    });
  } else {
    console.warn(`skipping lab tests "${name}": ${availability.reason}`);
    describe.skip(`${name} (skipped: ${availability.reason})`, body);
  }
}
