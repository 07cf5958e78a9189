/**
 * What a host pays for a run is mostly the processes its scripts start (a
 * few milliseconds of CPU each, on every host of the fleet): these tests
 * count them, on this machine's real sh and sshd, under strace.
 */
import fs from 'node:fs';
import path from 'node:path';
import { planHost, runPlayOnHost } from '../../../src/executor/host_run.js';
import type { SafetyOptions } from '../../../src/executor/transaction.js';
import type { ConnectionSpec } from '../../../src/transport/types.js';
import { canTraceExecs, tracedShell } from '../../support/local_sh.js';
import { inTempDir, sshdTask } from '../../support/plan_tasks.js';

const haveSshd = fs.existsSync('/usr/sbin/sshd');

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

  /** Apply with the lockout guard, without the rollback (which needs a second connection). */
  const guarded = (user: string): SafetyOptions => {
    const spec = { hostName: 'local', address: '127.0.0.1', port: 22, user } as ConnectionSpec;
    return {
      spec,
      connect: () => Promise.reject(new Error('no second connection here')),
      rollback: false,
      confirmTimeoutS: 60,
      force: false,
    };
  };

  test("the lockout guard's sshd -T -C of the staged tree is its validation: no sshd -t beside it", () =>
    inTempDir(async (dir) => {
      const file = path.join(dir, 'sshd_config');
      fs.writeFileSync(file, 'Port 22\nMaxAuthTries 2\n');
      const conn = tracedShell();
      const results = await runPlayOnHost(
        conn,
        {
          name: 'p',
          playbookDir: dir,
          vars: {},
          tasks: [sshdTask(file, 'limits', { MaxAuthTries: 4 })],
          handlers: [],
        },
        { check: false, safety: guarded('root') },
      );
      expect(results.map((r) => [r.task, r.status, r.error])).toEqual([['limits', 'changed', undefined]]);
      expect(fs.readFileSync(file, 'utf8')).toBe('Port 22\nMaxAuthTries 4\n');
      // -V (release), the guard's -T of the live and of the staged tree, and the verification's -T.
      expect(sshdRuns(conn.execs)).toBe(4);
      // The staged copy and the new file reach the host through the shell's printf, not base64 -d:
      // the one base64 left encodes the planning read's answer.
      expect(conn.execs.filter((e) => e === 'base64')).toHaveLength(1);
    }));

  test('a staged tree the guard could not judge is still validated with sshd -t, and refused', () =>
    inTempDir(async (dir) => {
      const file = path.join(dir, 'sshd_config');
      // The live tree is broken too: the guard's sshd -T -C fails on both, so it cannot tell.
      fs.writeFileSync(file, 'Port 22\nMaxAuthTries 2\nNoSuchKeyword yes\n');
      const conn = tracedShell();
      const results = await runPlayOnHost(
        conn,
        {
          name: 'p',
          playbookDir: dir,
          vars: {},
          tasks: [sshdTask(file, 'limits', { MaxAuthTries: 4 })],
          handlers: [],
        },
        { check: false, safety: guarded('root') },
      );
      expect(results[0]?.status).toBe('failed');
      expect(results[0]?.error).toMatch(/^sshd -t rejected the new configuration: .*NoSuchKeyword/);
      expect(fs.readFileSync(file, 'utf8')).toBe('Port 22\nMaxAuthTries 2\nNoSuchKeyword yes\n');
    }));
});
