/**
 * The Ansible playbook language at the command line, without any host:
 * validate's file:line:column for imported playbooks and the new keys,
 * --list-tasks, --start-at-task and --tags, and how task-level `become`
 * decides the host's connection.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../../support/cli.js';
import { parseInventory } from '../../../src/config/inventory.js';
import { loadPlaybook } from '../../../src/config/playbook.js';
import { ConfigError, formatDiagnostic } from '../../../src/config/diagnostics.js';
import { bindPlaybook, DEFAULT_FORKS, type RunOptions } from '../../../src/executor/run.js';
import { RESOURCES, resourceSchemas } from '../../../src/resources/registry.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-language-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = path.join(dir, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  return file;
}

const PLAYBOOK = `- name: base
  hosts: all
  tags: ssh
  tasks:
    - sshd_config: { settings: { MaxAuthTries: 4 } }
      tags: auth
    - name: reload
      ansible.builtin.service: { name: sshd, state: reloaded }
    - name: debug
      service: { name: sshd }
      tags: never
`;

describe('validate', () => {
  test('reports mistakes in an imported playbook at its own file:line:column', async () => {
    write(
      'plays/base.yml',
      '- hosts: all\n  tasks:\n    - service: { name: sshd }\n      check_mode: maybe\n',
    );
    const site = write(
      'site.yml',
      '- import_playbook: plays/base.yml\n  tags: [ok]\n- import_playbook: nope.yml\n',
    );
    const run = await runCli(['validate', site]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      `${path.join(dir, 'plays/base.yml')}:4:19: error: 'check_mode' must be a boolean (true or false), got the string "maybe"`,
    );
    expect(run.stderr).toContain(`${site}:3:20: error: cannot read imported playbook 'nope.yml'`);
  });

  test('counts the plays and tasks of imported playbooks', async () => {
    write('plays/base.yml', PLAYBOOK);
    const site = write('site.yml', '- import_playbook: plays/base.yml\n');
    const run = await runCli(['validate', site]);
    expect(run.stderr).toBe('');
    expect(run.stdout).toContain('valid — 1 play, 3 tasks');
  });
});

describe('--list-tasks, --tags, --start-at-task', () => {
  test('lists the selected tasks in Ansible layout and contacts nothing', async () => {
    const pb = write('site.yml', PLAYBOOK);
    const all = await runCli(['apply', pb, '--list-tasks']);
    expect(all).toEqual({
      code: 0,
      stderr: '',
      stdout: [
        '',
        `playbook: ${pb}`,
        '',
        '  play #1 (all): base\tTAGS: [ssh]',
        '    tasks:',
        '      sshd_config: settings={MaxAuthTries: 4}\tTAGS: [ssh, auth]',
        '      reload\tTAGS: [ssh]',
        '',
      ].join('\n'),
    });
    const tagged = await runCli(['apply', pb, '--list-tasks', '--tags', 'never,auth']);
    expect(tagged.stdout).toContain('sshd_config: settings={MaxAuthTries: 4}');
    expect(tagged.stdout).toContain('debug\tTAGS: [ssh, never]');
    expect(tagged.stdout).not.toContain('reload');
    const started = await runCli(['apply', pb, '--list-tasks', '--start-at-task', 'reload']);
    expect(started.stdout).not.toContain('sshd_config');
    expect(started.stdout).toContain('reload');
  });

  test('refuses an unknown start task, and a selection with a saved plan', async () => {
    const pb = write('site.yml', PLAYBOOK);
    const inventory = write('hosts.ini', 'web01.invalid\n');
    const unknown = await runCli(['apply', pb, '-i', inventory, '--start-at-task', 'relaod']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain(
      `--start-at-task 'relaod': no task of ${pb} has this name (did you mean 'reload'?)`,
    );
    const saved = await runCli([
      'plan',
      pb,
      '-i',
      inventory,
      '--tags',
      'auth',
      '--out',
      path.join(dir, 'p.json'),
    ]);
    expect(saved.code).toBe(1);
    expect(saved.stderr).toContain('--tags: a saved plan (--out) holds every task of the playbook');
    expect(fs.existsSync(path.join(dir, 'p.json'))).toBe(false);
  });
});

describe('task-level become', () => {
  const options: RunOptions = {
    check: true,
    forks: DEFAULT_FORKS,
    acceptNewHostKeys: false,
    connectTimeoutMs: 1000,
    commandTimeoutMs: 1000,
  };
  const bind = (playbookText: string, inventoryText: string) =>
    bindPlaybook(
      loadPlaybook(write('site.yml', playbookText), resourceSchemas()),
      parseInventory(inventoryText, 'hosts.ini'),
      RESOURCES,
      options,
    );

  test('become: true on a task makes the host connection use sudo', () => {
    const plain = '- hosts: all\n  tasks:\n    - service: { name: sshd }\n';
    expect(bind(plain, 'web01.invalid ansible_user=admin\n')[0]!.spec.become).toBe(false);
    const becoming = `${plain}      become: true\n`;
    expect(bind(becoming, 'web01.invalid ansible_user=admin\n')[0]!.spec.become).toBe(true);
  });

  test('become: false on a task of a host that runs as root through sudo is an error at the task', () => {
    const text = '- hosts: all\n  tasks:\n    - service: { name: sshd }\n      become: false\n';
    expect(bind(text, 'web01.invalid ansible_user=admin\n')[0]!.spec.become).toBe(false);
    try {
      bind(text, 'web01.invalid ansible_user=admin ansible_become=true\n');
      throw new Error('expected a refusal');
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      expect(error.diagnostics.map(formatDiagnostic)[0]).toMatch(
        new RegExp(
          `^${path.join(dir, 'site.yml')}:3:7: error: task 'service: name=sshd' says become: false, but web01.invalid run as root through sudo`,
        ),
      );
    }
  });
});
