import { ConfigError, formatDiagnostic } from '../../../src/config/diagnostics.js';
import { expandTask, parsePlaybook, taskVariableNames } from '../../../src/config/playbook.js';
import type { TaskSpec } from '../../../src/config/playbook.js';
import { registeredResult } from '../../../src/executor/registered.js';
import type { ResourcePlan } from '../../../src/plan/types.js';
import { TEST_RESOURCE_SCHEMAS } from '../../support/resource_schemas.js';

const FILE = 'site.yml';
const resources = TEST_RESOURCE_SCHEMAS;

function playbookErrors(text: string): string[] {
  try {
    parsePlaybook(text, FILE, resources);
  } catch (error) {
    if (error instanceof ConfigError) return error.diagnostics.map(formatDiagnostic);
    throw error;
  }
  throw new Error('expected the playbook to be refused');
}

/** The single task of a one-play playbook whose task body is `lines` (indented under `- name: t`). */
function taskOf(...lines: string[]): TaskSpec {
  const text = ['- hosts: web', '  tasks:', '    - name: t', ...lines.map((l) => `      ${l}`)].join('\n');
  const task = parsePlaybook(`${text}\n`, FILE, resources).plays[0]?.tasks[0];
  if (!task) throw new Error('no task parsed');
  return task;
}

function expandErrors(task: TaskSpec, vars: Record<string, unknown>): string[] {
  try {
    expandTask(task, vars, resources);
  } catch (error) {
    if (error instanceof ConfigError) return error.diagnostics.map(formatDiagnostic);
    throw error;
  }
  throw new Error('expected the task to fail');
}

describe('when, loop, register and ignore_errors in a playbook', () => {
  it('reads them into the task', () => {
    const task = taskOf(
      'service: { name: ssh }',
      'when: [probe is changed, true]',
      'loop: "{{ nets }}"',
      'loop_control: { loop_var: net, label: "{{ net }}" }',
      'register: result',
      'ignore_errors: true',
    );
    expect(task.when.map((w) => w.expression)).toEqual(['probe is changed', 'true']);
    expect(task.when[0]?.position).toEqual({ file: FILE, line: 5, column: 14 });
    expect(task.loop?.items).toBe('{{ nets }}');
    expect(task.loopVar).toBe('net');
    expect(task.loopLabel?.template).toBe('{{ net }}');
    expect(task.register).toBe('result');
    expect(task.ignoreErrors).toBe(true);
    expect(taskVariableNames(task).sort()).toEqual(['net', 'nets', 'probe']);
  });

  it('reports syntax errors, unknown filters and tests at file:line:column', () => {
    const text = [
      '- hosts: web',
      '  tasks:',
      '    - name: a',
      '      service: { name: ssh }',
      '      when: port ==',
      '    - name: b',
      '      service: { name: "{{ unit | defualt(\'ssh\') }}" }',
      '    - name: c',
      '      service: { name: ssh }',
      '      when:',
      '        - x is defined',
      '        - x is sucess',
      '    - name: d',
      '      service: { name: ssh }',
      '      loop: "{{ nets | frob }}"',
      '      register: 1bad',
      '',
    ].join('\n');
    expect(playbookErrors(text)).toEqual([
      expect.stringMatching(/^site\.yml:5:13: error: invalid condition: /),
      "site.yml:7:24: error: unknown filter 'defualt' (did you mean 'default'?)",
      "site.yml:12:11: error: unknown test 'sucess' (did you mean 'success'?)",
      "site.yml:15:13: error: unknown filter 'frob'",
      expect.stringMatching(/^site\.yml:16:17: error: .*register/),
    ]);
  });
});

describe('expandTask', () => {
  it('skips a task whose condition is false, without rendering its arguments', () => {
    const task = taskOf('service: { name: "{{ only_when_enabled }}" }', 'when: enabled | bool');
    expect(expandTask(task, { enabled: 'no' }, resources)).toEqual([
      { skipped: true, reason: "skipped: the condition 'enabled | bool' is false" },
    ]);
    expect(expandTask(task, { enabled: 'yes', only_when_enabled: 'ssh' }, resources)).toEqual([
      { skipped: false, args: { name: 'ssh' } },
    ]);
  });

  it('needs every condition of a list', () => {
    const task = taskOf('service: { name: ssh }', 'when: [a, b]');
    expect(expandTask(task, { a: true, b: false }, resources)[0]?.skipped).toBe(true);
    expect(expandTask(task, { a: true, b: true }, resources)[0]?.skipped).toBe(false);
  });

  it('runs once per item, with item or loop_var, evaluating when per item', () => {
    const task = taskOf(
      'service: { name: "{{ unit }}" }',
      'loop: ["ssh", "{{ extra }}", "fail2ban"]',
      'loop_control: { loop_var: unit }',
      "when: unit != 'fail2ban'",
    );
    expect(expandTask(task, { extra: 'sshd' }, resources)).toEqual([
      { skipped: false, args: { name: 'ssh' }, label: 'ssh', item: 'ssh' },
      { skipped: false, args: { name: 'sshd' }, label: 'sshd', item: 'sshd' },
      {
        skipped: true,
        reason: "skipped: the condition 'unit != 'fail2ban'' is false",
        label: 'fail2ban',
        item: 'fail2ban',
      },
    ]);
  });

  it('labels items by loop_control.label, and loops over a variable', () => {
    const task = taskOf(
      'service: { name: "{{ item.unit }}" }',
      'loop: "{{ units }}"',
      'loop_control: { label: "{{ item.unit }}" }',
    );
    const runs = expandTask(task, { units: [{ unit: 'ssh', why: 'x' }] }, resources);
    expect(runs).toEqual([
      { skipped: false, args: { name: 'ssh' }, label: 'ssh', item: { unit: 'ssh', why: 'x' } },
    ]);
  });

  it('refuses a loop over something other than a list, and reports undefined variables at the condition', () => {
    expect(expandErrors(taskOf('service: { name: ssh }', 'loop: "{{ n }}"'), { n: 3 })).toEqual([
      'site.yml:5:13: error: loop needs a list, got number 3',
    ]);
    expect(expandErrors(taskOf('service: { name: ssh }', 'when: prbe is failed'), { probe: {} })).toEqual([
      "site.yml:5:13: error: undefined variable 'prbe' (did you mean 'probe'?)",
    ]);
  });
});

describe('registeredResult', () => {
  const plan = (action: ResourcePlan['action'], messages: string[] = []): ResourcePlan => ({
    action,
    messages,
    warnings: [],
    fileChanges: [],
    commands: [],
  });
  const noDiff = () => '';

  it('says what the plan does: changed, skipped, or failed with its message', () => {
    expect(registeredResult([{ plan: plan('change', ['a', 'b']) }], false, noDiff)).toEqual({
      changed: true,
      failed: false,
      skipped: false,
      msg: 'a\nb',
    });
    expect(registeredResult([{ plan: plan('skip') }], false, noDiff)).toMatchObject({
      skipped: true,
      changed: false,
    });
    expect(registeredResult([{ error: 'no such unit' }], false, noDiff)).toEqual({
      changed: false,
      failed: true,
      skipped: false,
      msg: 'no such unit',
    });
    expect(registeredResult([{ plan: plan('change') }], false, () => '--- a\n+++ b\n').diff).toBe(
      '--- a\n+++ b\n',
    );
  });

  it('sums a loop up: changed or failed if any item is, skipped if all are', () => {
    const result = registeredResult(
      [
        { plan: plan('none'), item: 'a' },
        { plan: plan('change'), item: 'b' },
      ],
      true,
      noDiff,
    );
    expect(result).toMatchObject({
      changed: true,
      failed: false,
      skipped: false,
      msg: 'All items completed',
    });
    expect(result.results?.map((r) => [r.item, r.changed])).toEqual([
      ['a', false],
      ['b', true],
    ]);
    expect(registeredResult([{ plan: plan('skip'), item: 1 }], true, noDiff).skipped).toBe(true);
    expect(registeredResult([], true, noDiff).skipped).toBe(true);
  });
});
