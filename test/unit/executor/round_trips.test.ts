import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { runPlayOnHost, type BoundTask } from '../../../src/executor/host_run.js';
import { serviceResource } from '../../../src/resources/service.js';
import type { ResourceKind } from '../../../src/resources/types.js';
import { localShell } from '../../support/local_sh.js';
import { inTempDir, sshdTask } from '../../support/plan_tasks.js';
import {
  formatVersion,
  openssh,
  parseOpenSshVersion,
  versionAtLeast,
} from '../../../src/formats/openssh_version.js';

const haveSshd = fs.existsSync('/usr/sbin/sshd');

/** An sshd_config task on `file` (a stand-alone main file: no Include of the machine's drop-ins). */
/** This machine's sshd release (sshd -V prints it on stderr). */
const localRelease = haveSshd
  ? parseOpenSshVersion(spawnSync('/usr/sbin/sshd', ['-V'], { encoding: 'utf8' }).stderr)
  : undefined;

(haveSshd ? describe : describe.skip)('reads are batched across tasks', () => {
  /** One play of sshd_config tasks on the local machine. */
  const run = (conn: ReturnType<typeof localShell>, dir: string, tasks: BoundTask[], check: boolean) =>
    runPlayOnHost(conn, { name: 'p', playbookDir: dir, vars: {}, tasks, handlers: [] }, { check });

  test('planning five tasks costs the same round trips as planning one', () =>
    inTempDir(async (dir) => {
      const configs = [1, 2, 3, 4, 5].map((i) => {
        const file = path.join(dir, `sshd_config_${i}`);
        fs.writeFileSync(file, `Include ${dir}/d${i}/*.conf\nPort 22\n`);
        fs.mkdirSync(path.join(dir, `d${i}`));
        fs.writeFileSync(path.join(dir, `d${i}`, '10-a.conf'), 'MaxAuthTries 2\n');
        return file;
      });
      const roundTrips = async (files: string[]) => {
        const conn = localShell();
        const tasks = files.map((file, i) => sshdTask(file, `t${i}`, { MaxAuthTries: 4 }));
        const results = await run(conn, dir, tasks, true);
        expect(results.map((r) => r.status)).toEqual(files.map(() => 'changed'));
        return conn.scripts.length;
      };
      const one = await roundTrips(configs.slice(0, 1));
      const five = await roundTrips(configs);
      // main file, then the Include glob with its files: two waves, whatever the number of tasks.
      expect(one).toBeLessThanOrEqual(2);
      expect(five).toBe(one);
    }));

  test('a notified handler is planned without a round trip of its own', () =>
    inTempDir(async (dir) => {
      const file = path.join(dir, 'sshd_config');
      fs.writeFileSync(file, 'Port 22\nMaxAuthTries 2\n');
      const handler: BoundTask = {
        play: 'p',
        name: 'reload sshd',
        resource: serviceResource as ResourceKind,
        args: { name: 'sshd', state: 'reloaded' },
        notify: [],
      };
      const plan = async (withHandler: boolean) => {
        const conn = localShell();
        const task = {
          ...sshdTask(file, 't', { MaxAuthTries: 4 }),
          notify: withHandler ? [handler.name] : [],
        };
        const results = await runPlayOnHost(
          conn,
          { name: 'p', playbookDir: dir, vars: {}, tasks: [task], handlers: withHandler ? [handler] : [] },
          { check: true },
        );
        return { results, roundTrips: conn.scripts.length };
      };
      const without = await plan(false);
      const withHandler = await plan(true);
      expect(withHandler.results.map((r) => [r.task, r.handler])).toEqual([
        ['t', false],
        ['reload sshd', true],
      ]);
      expect(withHandler.roundTrips).toBe(without.roundTrips);
    }));

  test('a task planned after another one writes the same file sees its planned content', () =>
    inTempDir(async (dir) => {
      const file = path.join(dir, 'sshd_config');
      fs.writeFileSync(file, 'Port 22\nMaxAuthTries 2\nMaxSessions 3\n');
      const tasks = [
        sshdTask(file, 'first', { MaxAuthTries: 4 }),
        sshdTask(file, 'second', { MaxSessions: 5 }),
      ];
      const results = await run(localShell(), dir, tasks, true);
      expect(results[0]!.diff).toContain('-MaxAuthTries 2\n+MaxAuthTries 4\n');
      // The second task's "before" is the first task's result, not the file on disk.
      expect(results[1]!.diff).toContain(' MaxAuthTries 4\n-MaxSessions 3\n+MaxSessions 5\n');
    }));

  test('applying several changing tasks costs one round trip for their checks and one for their changes', () =>
    inTempDir(async (dir) => {
      const file = path.join(dir, 'sshd_config');
      fs.writeFileSync(file, 'Port 22\nMaxAuthTries 2\nMaxSessions 3\n');
      const conn = localShell();
      const tasks = [
        sshdTask(file, 'first', { MaxAuthTries: 4 }),
        sshdTask(file, 'second', { MaxSessions: 5 }),
      ];
      const results = await run(conn, dir, tasks, false);
      expect(results.map((r) => [r.task, r.status, r.error])).toEqual([
        ['first', 'changed', undefined],
        ['second', 'changed', undefined],
      ]);
      expect(fs.readFileSync(file, 'utf8')).toBe('Port 22\nMaxAuthTries 4\nMaxSessions 5\n');
      // Planning reads (one wave), then every sshd -t in one script, then writes and every sshd -T check in one.
      expect(conn.scripts).toHaveLength(3);
      expect(conn.scripts[1]!.match(/ -t -f /g)).toHaveLength(2);
      expect(conn.scripts[2]!.match(/ -T -f /g)).toHaveLength(2);
    }));

  test('a validation that fails stops the run before anything is written', () =>
    inTempDir(async (dir) => {
      const file = path.join(dir, 'sshd_config');
      const before = 'Port 22\nMaxAuthTries 2\n';
      fs.writeFileSync(file, before);
      const tasks = [
        sshdTask(file, 'fine', { MaxAuthTries: 4 }),
        sshdTask(file, 'broken', { RekeyLimit: 'lots' }),
      ];
      const results = await run(localShell(), dir, tasks, false);
      expect(results.map((r) => [r.task, r.status])).toEqual([
        ['fine', 'skipped'],
        ['broken', 'failed'],
      ]);
      expect(results[1]!.error).toMatch(/sshd -t rejected the new configuration/);
      expect(results[0]!.error).toMatch(/^not applied: broken sshd -t rejected/);
      expect(fs.readFileSync(file, 'utf8')).toBe(before);
    }));

  test('a symlinked main file is written through the link, by every task of the play', () =>
    inTempDir(async (dir) => {
      fs.mkdirSync(path.join(dir, 'dotfiles'));
      const real = path.join(dir, 'dotfiles', 'sshd_config');
      fs.writeFileSync(real, 'Port 22\nMaxAuthTries 2\n');
      const link = path.join(dir, 'sshd_config');
      fs.symlinkSync('dotfiles/sshd_config', link);
      const tasks = [
        sshdTask(link, 'tries', { MaxAuthTries: 4 }),
        sshdTask(link, 'sessions', { MaxSessions: 5 }),
      ];
      const results = await run(localShell(), dir, tasks, false);
      expect(results.map((r) => [r.task, r.status, r.error])).toEqual([
        ['tries', 'changed', undefined],
        ['sessions', 'changed', undefined],
      ]);
      expect(results[0]!.messages).toContain(`${link} is a symbolic link: writing its target ${real}`);
      expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
      expect(fs.readFileSync(real, 'utf8')).toBe('Port 22\nMaxAuthTries 4\nMaxSessions 5\n');
    }));

  test('the sshd release is read in the same round trip, and a keyword it lacks skips its task with the reason', () =>
    inTempDir(async (dir) => {
      const file = path.join(dir, 'sshd_config');
      const before = 'Port 22\nMaxAuthTries 2\n';
      fs.writeFileSync(file, before);
      const roundTrips = async (tasks: BoundTask[]) => {
        const conn = localShell();
        await run(conn, dir, tasks, true);
        return conn.scripts.length;
      };
      const tries = sshdTask(file, 'tries', { MaxAuthTries: 4 });
      const exempt = sshdTask(file, 'exempt', { PerSourcePenaltyExemptList: '10.20.0.0/16' });
      expect(await roundTrips([tries, exempt])).toBe(await roundTrips([tries]));

      const results = await run(localShell(), dir, [exempt, tries], false);
      if (localRelease !== undefined && !versionAtLeast(localRelease, openssh('9.8'))) {
        const reason = `sshd ${formatVersion(localRelease)} does not know PerSourcePenaltyExemptList (OpenSSH ≥ 9.8)`;
        expect(results.map((r) => [r.task, r.status, r.error])).toEqual([
          ['exempt', 'skipped', reason],
          ['tries', 'changed', undefined],
        ]);
        expect(fs.readFileSync(file, 'utf8')).toBe('Port 22\nMaxAuthTries 4\n');
      } else {
        expect(results.map((r) => [r.task, r.status, r.error])).toEqual([
          ['exempt', 'changed', undefined],
          ['tries', 'changed', undefined],
        ]);
      }
    }));
});
