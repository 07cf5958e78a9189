/** The lab for tests: src/lab plus `describeLab`, which knows about jest. */
import { labAvailability, systemdLabAvailability } from '../../src/lab/lab.js';
import type { Lab, LabHost, LabHostKind, SshdUnitMode } from '../../src/lab/lab.js';
import type { ConnectionSpec } from '../../src/transport/types.js';

export * from '../../src/lab/lab.js';

/** A kind of lab host, as startLab takes it. */
export interface LabKind {
  kind: LabHostKind;
  sshdUnit?: SshdUnitMode;
}

export const PLAIN: LabKind = { kind: 'plain' };
export const SYSTEMD_SERVICE: LabKind = { kind: 'systemd', sshdUnit: 'service' };
export const SYSTEMD_SOCKET: LabKind = { kind: 'systemd', sshdUnit: 'socket' };

/** "plain", "systemd/ssh.service", "systemd/ssh.socket": for test names. */
export function kindLabel(kind: LabKind): string {
  return kind.kind === 'plain' ? 'plain' : `systemd/ssh.${kind.sshdUnit ?? 'service'}`;
}

/**
 * beforeAll's time limit where a lab of the systemd kind starts: its first
 * start on a machine builds the root (minutes; `npm test` builds it first).
 */
export const LAB_START_TIMEOUT_MS = 45 * 60_000;

/**
 * Use instead of `describe` in lab tests. Where no lab can run the tests are
 * skipped with the reason in their name, except under CI=true, where a missing
 * lab is a failure: CI must not pass by running nothing. (The time limit for
 * lab tests — bring-up, libwrap's 5 s pause — is jest.config.js's testTimeout.)
 */
export function describeLab(name: string, body: () => void, kind: LabKind = PLAIN): void {
  const availability = kind.kind === 'systemd' ? systemdLabAvailability() : labAvailability();
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

/** describeLab once per kind of host, named "NAME [kind]". */
export function describeLabKinds(
  name: string,
  kinds: readonly LabKind[],
  body: (kind: LabKind) => void,
): void {
  for (const kind of kinds) describeLab(`${name} [${kindLabel(kind)}]`, () => body(kind), kind);
}

/** How a test connects to `host` as root with the lab's key, its host key checked. */
export function labConnectionSpec(lab: Lab, host: LabHost): ConnectionSpec {
  return {
    hostName: host.name,
    connection: 'ssh',
    address: host.address,
    port: 22,
    user: 'root',
    privateKeyFile: lab.privateKeyFile,
    become: false,
    knownHostsFile: lab.knownHostsFile,
    acceptNewHostKeys: false,
    connectTimeoutMs: 30_000,
    commandTimeoutMs: 120_000,
    keepaliveIntervalMs: 15_000,
  };
}
