/**
 * when, loop, register and ignore_errors as a host's run plans them: tasks
 * rendered on the host with what earlier tasks registered, the plan then
 * applied as it is. Runs against this machine's own sh, in a temporary directory.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parsePlaybook } from '../../../src/config/playbook.js';
import { applyHostPlan, planHost, type BoundPlay, type BoundTask } from '../../../src/executor/host_run.js';
import { fileResource } from '../../../src/resources/file.js';
import type { ResourceKind } from '../../../src/resources/types.js';
import { localShell } from '../../support/local_sh.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-conditions-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The playbook's first play, every task rendered on the host (as run.ts binds a task with when or loop). */
function playOf(yaml: string): BoundPlay {
  const playbook = parsePlaybook(yaml, 'site.yml', { file: fileResource.argsSchema });
  const spec = playbook.plays[0]!;
  const tasks: BoundTask[] = spec.tasks.map((t) => ({
    play: spec.name,
    name: t.name,
    resource: fileResource as ResourceKind,
    args: undefined,
    notify: t.notify,
    source: t,
    ...(t.register !== undefined ? { register: t.register } : {}),
    ...(t.ignoreErrors ? { ignoreErrors: true } : {}),
  }));
  return { name: spec.name, playbookDir: dir, vars: { ...spec.vars }, tasks, handlers: [] };
}

const PLAYBOOK = () => `- hosts: all
  vars:
    names: [a, b, c]
  tasks:
    - name: must exist already
      file: { dest: ${dir}/missing, mode: "0644" }
      register: probe
      ignore_errors: true
    - name: one file per name
      file: { dest: "${dir}/{{ name }}", content: "{{ name }}\\n" }
      loop: "{{ names }}"
      loop_control: { loop_var: name }
      register: created
    - name: summary
      file: { dest: ${dir}/summary, content: "{{ created.results | selectattr('changed') | list | length }} new\\n" }
      when: [probe is failed, created is changed]
    - name: never
      file: { dest: ${dir}/never, content: "x" }
      when: created is skipped
`;

describe('a host run with when, loop, register and ignore_errors', () => {
  test('plans each item, reads registered results in when and templates, skips, and applies the plan', async () => {
    fs.writeFileSync(`${dir}/b`, 'b\n');
    const plan = await planHost(localShell(), playOf(PLAYBOOK()), {});
    expect(plan.tasks.map((t) => [t.task, t.plan?.action ?? 'error', t.ignoreErrors ?? false])).toEqual([
      ['must exist already', 'error', true],
      ['one file per name (item=a)', 'change', false],
      ['one file per name (item=b)', 'none', false],
      ['one file per name (item=c)', 'change', false],
      ['summary', 'change', false],
      ['never', 'skip', false],
    ]);
    expect(plan.tasks.at(-1)?.plan?.messages).toEqual([
      "skipped: the condition 'created is skipped' is false",
    ]);

    const results = await applyHostPlan(plan, localShell(), {});
    expect(results.map((r) => [r.task, r.status, r.ignored ?? false])).toEqual([
      ['must exist already', 'failed', true],
      ['one file per name (item=a)', 'changed', false],
      ['one file per name (item=b)', 'ok', false],
      ['one file per name (item=c)', 'changed', false],
      ['summary', 'changed', false],
      ['never', 'skipped', false],
    ]);
    expect(fs.readFileSync(`${dir}/summary`, 'utf8')).toBe('2 new\n');
    expect(fs.readFileSync(`${dir}/c`, 'utf8')).toBe('c\n');
    expect(fs.existsSync(`${dir}/never`)).toBe(false);
  });

  test('without ignore_errors, a failed task stops the host and nothing is applied', async () => {
    const plan = await planHost(
      localShell(),
      playOf(PLAYBOOK().replace('      ignore_errors: true\n', '')),
      {},
    );
    expect(plan.tasks.map((t) => t.task)).toEqual(['must exist already']);
    const results = await applyHostPlan(plan, localShell(), {});
    expect(results.map((r) => [r.status, r.ignored ?? false])).toEqual([['failed', false]]);
    expect(fs.existsSync(`${dir}/a`)).toBe(false);
  });

  test('a condition reading an undefined variable fails the task at its file:line:column', async () => {
    const yaml = `- hosts: all
  tasks:
    - name: t
      file: { dest: ${dir}/t, content: "x" }
      when: proeb is failed
`;
    const plan = await planHost(localShell(), playOf(yaml), {});
    expect(plan.tasks[0]?.error).toBe("site.yml:5:13: error: undefined variable 'proeb'");
  });
});

describe("the host's facts in when and templates", () => {
  test('ansible_facts and ansible_* name what this machine runs, read in the same run', async () => {
    const osRelease = Object.fromEntries(
      fs
        .readFileSync('/etc/os-release', 'utf8')
        .split('\n')
        .filter((line) => line.includes('='))
        .map((line) => [
          line.slice(0, line.indexOf('=')),
          line.slice(line.indexOf('=') + 1).replace(/^"|"$/g, ''),
        ]),
    );
    const play = playOf(`- hosts: all
  tasks:
    - name: distribution
      file: { dest: ${dir}/os, content: "{{ ansible_facts.distribution }} {{ ansible_distribution_major_version }}\\n" }
    - name: only where the release is this one
      file: { dest: ${dir}/same, content: "x\\n" }
      when: ansible_facts.distribution_major_version == '${osRelease.VERSION_ID?.split('.')[0] ?? ''}'
    - name: only on another release
      file: { dest: ${dir}/other, content: "x\\n" }
      when: ansible_facts.distribution_major_version != '${osRelease.VERSION_ID?.split('.')[0] ?? ''}'
`);
    const plan = await planHost(localShell(), play, {});
    expect(plan.tasks.map((t) => [t.task, t.plan?.action ?? t.error])).toEqual([
      ['distribution', 'change'],
      ['only where the release is this one', 'change'],
      ['only on another release', 'skip'],
    ]);
    await applyHostPlan(plan, localShell(), {});
    const distribution = osRelease.ID === 'debian' ? 'Debian' : String(osRelease.ID);
    expect(fs.readFileSync(`${dir}/os`, 'utf8')).toBe(
      `${distribution} ${osRelease.VERSION_ID?.split('.')[0] ?? ''}\n`,
    );
  });
});
