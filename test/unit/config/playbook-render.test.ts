import { ConfigError, formatDiagnostic } from '../../../src/config/diagnostics.js';
import { parsePlaybook, renderTaskArgs } from '../../../src/config/playbook.js';
import type { TaskSpec } from '../../../src/config/playbook.js';
import { TEST_RESOURCE_SCHEMAS } from '../../support/resource_schemas.js';

const FILE = 'site.yml';

const resources = TEST_RESOURCE_SCHEMAS;

/** The single task of a one-play playbook whose task body is `lines` (indented under `- name: t`). */
function taskOf(...lines: string[]): TaskSpec {
  const text = ['- hosts: web', '  tasks:', '    - name: t', ...lines.map((l) => `      ${l}`)].join('\n');
  const task = parsePlaybook(`${text}\n`, FILE, resources).plays[0]?.tasks[0];
  if (!task) throw new Error('no task parsed');
  return task;
}

function renderErrors(task: TaskSpec, vars: Record<string, unknown>): string[] {
  try {
    renderTaskArgs(task, vars, resources);
  } catch (error) {
    if (error instanceof ConfigError) return error.diagnostics.map(formatDiagnostic);
    throw error;
  }
  throw new Error('expected rendering to fail');
}

describe('renderTaskArgs', () => {
  it('renders every string in nested mappings and lists, keeping raw values', () => {
    const task = taskOf(
      'sshd_config:',
      '  settings:',
      '    Port: "{{ ssh_port }}"',
      '    AllowUsers: "{{ admins }}"',
      '    ListenAddress: ["{{ net.address }}", "::1"]',
      '    Banner: "/etc/{{ banner }}.txt"',
      '    UseDNS: false',
    );
    const vars = { ssh_port: 2222, admins: ['alice', 'bob'], net: { address: '10.0.0.5' }, banner: 'issue' };
    expect(renderTaskArgs(task, vars, resources)).toEqual({
      settings: {
        Port: 2222,
        AllowUsers: ['alice', 'bob'],
        ListenAddress: ['10.0.0.5', '::1'],
        Banner: '/etc/issue.txt',
        UseDNS: false,
      },
    });
    // The task keeps its raw arguments: the next host renders them again.
    expect(task.args).toEqual({
      settings: {
        Port: '{{ ssh_port }}',
        AllowUsers: '{{ admins }}',
        ListenAddress: ['{{ net.address }}', '::1'],
        Banner: '/etc/{{ banner }}.txt',
        UseDNS: false,
      },
    });
  });

  it('renders a whole argument mapping from one variable', () => {
    const task = taskOf('service: "{{ unit }}"');
    expect(renderTaskArgs(task, { unit: { name: 'ssh', state: 'reloaded' } }, resources)).toEqual({
      name: 'ssh',
      state: 'reloaded',
    });
  });

  it('does not template keys', () => {
    const task = taskOf('sshd_config:', '  settings:', '    "{{ key }}": yes');
    expect(renderTaskArgs(task, { key: 'Port' }, resources)).toEqual({ settings: { '{{ key }}': 'yes' } });
  });

  it('reports every undefined variable at its own string', () => {
    const task = taskOf(
      'sshd_config:', //                       line 4
      '  settings:', //                        5
      '    Port: "{{ ssh_prot }}"', //         6
      '    ListenAddress:', //                 7
      '      - "{{ net.adress }}"', //         8
    );
    expect(renderErrors(task, { ssh_port: 22, net: { address: '10.0.0.5' } })).toEqual([
      "site.yml:6:17: error: undefined variable 'ssh_prot' (did you mean 'ssh_port'?)",
      "site.yml:8:15: error: undefined variable 'net.adress' (did you mean 'net.address'?)",
    ]);
  });

  it('validates the rendered value against the schema, at the templated string', () => {
    const task = taskOf('service:', '  name: ssh', '  state: "{{ how }}"');
    expect(renderTaskArgs(task, { how: 'restarted' }, resources)).toEqual({
      name: 'ssh',
      state: 'restarted',
    });
    expect(renderErrors(task, { how: 'restrted' })).toEqual([
      "site.yml:6:16: error: 'state' must be one of 'reloaded', 'restarted', 'started', got the string \"restrted\" (did you mean 'restarted'?)",
    ]);
  });

  it('reports a value that renders to the wrong type', () => {
    const task = taskOf('sshd_config:', '  settings:', '    Port: "{{ port }}"');
    expect(renderErrors(task, { port: { number: 22 } })).toEqual([
      "site.yml:6:17: error: 'Port' must be a string or a number or a boolean (true or false) or a list, got a mapping",
    ]);
  });

  it('reports missing required keys and empty arguments at the arguments', () => {
    expect(renderErrors(taskOf('service:', '  state: started'), {})).toEqual([
      "site.yml:5:9: error: missing required key 'name'",
    ]);
    expect(renderErrors(taskOf('service:'), {})).toEqual([
      "site.yml:4:7: error: the arguments of 'service' must be a mapping, got nothing (null)",
    ]);
  });

  it('places errors inside a value rendered from one variable at that variable', () => {
    const task = taskOf('service: "{{ unit }}"');
    expect(renderErrors(task, { unit: { name: 7 } })).toEqual([
      "site.yml:4:16: error: 'name' must be a string, got the number 7",
    ]);
  });

  it('refuses a resource it does not know', () => {
    const task: TaskSpec = { ...taskOf('service: { name: ssh }'), resource: 'servise' };
    expect(renderErrors(task, {})).toEqual([
      "site.yml:3:7: error: unknown resource 'servise' (did you mean 'service'?)",
    ]);
  });
});
