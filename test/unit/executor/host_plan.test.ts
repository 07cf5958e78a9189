/**
 * A host's plan is a value: planned once, saved as JSON, applied later as it
 * is; a fresh reading of its facts says exactly what changed meanwhile.
 * Runs against this machine's own sh, in a temporary directory.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { applyHostPlan, planHost, type BoundPlay } from '../../../src/executor/host_run.js';
import { changedFacts, describeChangedFacts } from '../../../src/plan/facts.js';
import type { HostPlan } from '../../../src/plan/types.js';
import { fileResource } from '../../../src/resources/file.js';
import { sshdConfigResource } from '../../../src/resources/sshd_config.js';
import type { ResourceKind } from '../../../src/resources/types.js';
import { localShell } from '../../support/local_sh.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-hostplan-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function play(): BoundPlay {
  const task = (name: string, dest: string, content: string) => ({
    play: 'p',
    name,
    resource: fileResource as ResourceKind,
    args: { dest, content },
    notify: [],
  });
  return {
    name: 'p',
    playbookDir: dir,
    vars: {},
    tasks: [task('banner', `${dir}/banner`, 'hello\n'), task('motd', `${dir}/motd`, 'welcome\n')],
    handlers: [],
  };
}

describe('planHost and applyHostPlan', () => {
  test('the plan survives JSON and applies exactly as planned', async () => {
    fs.writeFileSync(`${dir}/motd`, 'welcome\n');
    const plan = await planHost(localShell(), play(), {});
    const saved = JSON.parse(JSON.stringify(plan)) as HostPlan;
    expect(saved).toEqual(plan);
    expect(saved.tasks.map((t) => [t.task, t.resource, t.plan?.action])).toEqual([
      ['banner', 'file', 'change'],
      ['motd', 'file', 'none'],
    ]);

    const results = await applyHostPlan(saved, localShell(), {});
    expect(results.map((r) => [r.task, r.status])).toEqual([
      ['banner', 'changed'],
      ['motd', 'ok'],
    ]);
    expect(fs.readFileSync(`${dir}/banner`, 'utf8')).toBe('hello\n');
  });

  test('the facts name the host and every file read; a fresh reading names what changed', async () => {
    fs.writeFileSync(`${dir}/motd`, 'welcome\n');
    const plan = await planHost(localShell(), play(), {});
    const keys = plan.facts.map((f) => f.key);
    expect(keys).toEqual(
      expect.arrayContaining([
        'host:sshd-version',
        'host:sshd-unit',
        `file:${dir}/banner`,
        `file:${dir}/motd`,
      ]),
    );
    expect(plan.facts.find((f) => f.key === `file:${dir}/banner`)?.value).toBe('absent');
    expect(plan.facts.find((f) => f.key === `file:${dir}/motd`)?.value).toMatch(/^sha256:[0-9a-f]{64} /);

    const again = await planHost(localShell(), play(), {});
    expect(changedFacts(plan.facts, again.facts)).toEqual([]);

    fs.writeFileSync(`${dir}/motd`, 'edited by hand\n');
    const later = await planHost(localShell(), play(), {});
    const changed = changedFacts(plan.facts, later.facts);
    expect(changed.map((c) => c.key)).toEqual([`file:${dir}/motd`]);
    expect(describeChangedFacts(changed)[0]).toMatch(
      new RegExp(`^${dir}/motd: sha256:[0-9a-f]{12}… .* → sha256:`),
    );
  });

  test('a plan naming a resource this sshfix lacks is refused before anything runs', async () => {
    const plan = await planHost(localShell(), play(), {});
    const foreign: HostPlan = { ...plan, tasks: plan.tasks.map((t) => ({ ...t, resource: 'no_such' })) };
    const conn = localShell();
    await expect(applyHostPlan(foreign, conn, {})).rejects.toThrow(/uses resource no_such/);
    expect(conn.scripts).toEqual([]);
    expect(fs.existsSync(`${dir}/banner`)).toBe(false);
  });
});

(fs.existsSync('/usr/sbin/sshd') ? test : test.skip)(
  'an sshd_config plan read twice rests on the same facts; its probes are facts too',
  async () => {
    const main = `${dir}/sshd_config`;
    fs.writeFileSync(main, 'Port 22\nMaxAuthTries 6\n');
    const sshdPlay: BoundPlay = {
      name: 'p',
      playbookDir: dir,
      vars: {},
      tasks: [
        {
          play: 'p',
          name: 'tries',
          resource: sshdConfigResource as ResourceKind,
          args: { path: main, settings: { MaxAuthTries: 3 } },
          notify: [],
        },
      ],
      handlers: [],
    };
    const first = await planHost(localShell(), sshdPlay, {});
    expect(first.tasks[0]?.plan?.action).toBe('change');
    expect(first.facts.some((f) => f.key.startsWith('probe:'))).toBe(true);
    expect(first.facts.find((f) => f.key === `file:${main}`)?.value).toMatch(/^sha256:/);
    const second = await planHost(localShell(), sshdPlay, {});
    expect(changedFacts(first.facts, second.facts)).toEqual([]);
  },
);
