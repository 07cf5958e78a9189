import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runPlayOnHost, type BoundTask } from '../../../src/executor/host_run.js';
import { sshdConfigResource } from '../../../src/resources/sshd_config.js';
import type { ResourceKind } from '../../../src/resources/types.js';
import { localShell } from '../../support/local_sh.js';

const haveSshd = fs.existsSync('/usr/sbin/sshd');

(haveSshd ? describe : describe.skip)('reads are batched across tasks', () => {
  test('planning five tasks costs the same round trips as planning one', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-rt-'));
    try {
      const configs = [1, 2, 3, 4, 5].map((i) => {
        const file = path.join(dir, `sshd_config_${i}`);
        fs.writeFileSync(file, `Include ${dir}/d${i}/*.conf\nPort 22\n`);
        fs.mkdirSync(path.join(dir, `d${i}`));
        fs.writeFileSync(path.join(dir, `d${i}`, '10-a.conf'), 'MaxAuthTries 2\n');
        return file;
      });
      const task = (file: string, i: number): BoundTask => ({
        play: 'p',
        name: `t${i}`,
        resource: sshdConfigResource as ResourceKind,
        args: { path: file, settings: { MaxAuthTries: 4 } },
        notify: [],
      });
      const roundTrips = async (files: string[]) => {
        const conn = localShell();
        const results = await runPlayOnHost(
          conn,
          { name: 'p', playbookDir: dir, vars: {}, tasks: files.map(task), handlers: [] },
          { check: true },
        );
        expect(results.map((r) => r.status)).toEqual(files.map(() => 'changed'));
        return conn.scripts.length;
      };
      const one = await roundTrips(configs.slice(0, 1));
      const five = await roundTrips(configs);
      // main file, then the Include glob with its files: two waves, whatever the number of tasks.
      expect(one).toBeLessThanOrEqual(2);
      expect(five).toBe(one);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a task planned after another one writes the same file sees its planned content', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-rt-'));
    try {
      const file = path.join(dir, 'sshd_config');
      fs.writeFileSync(file, 'Port 22\nMaxAuthTries 2\nMaxSessions 3\n');
      const task = (name: string, settings: Record<string, number>): BoundTask => ({
        play: 'p',
        name,
        resource: sshdConfigResource as ResourceKind,
        args: { path: file, settings },
        notify: [],
      });
      const results = await runPlayOnHost(
        localShell(),
        {
          name: 'p',
          playbookDir: dir,
          vars: {},
          tasks: [task('first', { MaxAuthTries: 4 }), task('second', { MaxSessions: 5 })],
          handlers: [],
        },
        { check: true },
      );
      expect(results[0]!.diff).toContain('-MaxAuthTries 2\n+MaxAuthTries 4\n');
      // The second task's "before" is the first task's result, not the file on disk.
      expect(results[1]!.diff).toContain(' MaxAuthTries 4\n-MaxSessions 3\n+MaxSessions 5\n');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
