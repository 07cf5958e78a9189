/**
 * What a host pays for a run is mostly the processes its scripts start (a
 * few milliseconds of CPU each, on every host of the fleet): these tests
 * count them, on this machine's real sh and sshd, under strace.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { planHost, type BoundTask } from '../../../src/executor/host_run.js';
import { sshdConfigResource } from '../../../src/resources/sshd_config.js';
import type { ResourceKind } from '../../../src/resources/types.js';
import { canTraceExecs, tracedShell } from '../../support/local_sh.js';

const haveSshd = fs.existsSync('/usr/sbin/sshd');

function sshdTask(file: string, name: string, settings: Record<string, string | number>): BoundTask {
  return {
    play: 'p',
    name,
    resource: sshdConfigResource as ResourceKind,
    args: { path: file, settings },
    notify: [],
  };
}

async function inTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-procs-'));
  try {
    await body(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const sshdRuns = (execs: readonly string[]): number => execs.filter((e) => e === 'sshd').length;

(haveSshd && canTraceExecs ? describe : describe.skip)('processes a host starts', () => {
  test('planning asks sshd its release once, for the host facts and every sshd_config task', () =>
    inTempDir(async (dir) => {
      const file = path.join(dir, 'sshd_config');
      fs.writeFileSync(file, 'Port 22\nMaxAuthTries 2\n');
      const conn = tracedShell();
      // PerSourcePenaltyExemptList needs OpenSSH 9.8: its task asks which release sshd is.
      const tasks = [
        sshdTask(file, 'limits', { MaxAuthTries: 4 }),
        sshdTask(file, 'penalties', { PerSourcePenaltyExemptList: '10.0.0.0/8' }),
      ];
      const plan = await planHost(
        conn,
        { name: 'p', playbookDir: dir, vars: {}, tasks, handlers: [] },
        { safety: undefined },
      );
      expect(plan.facts.find((f) => f.key === 'host:sshd-version')?.value).toMatch(/^\d+\.\d+$/);
      expect(sshdRuns(conn.execs)).toBe(1);
    }));
});
