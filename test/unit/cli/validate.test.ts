/**
 * `sshfix validate`: offline checks with file:line:column, exit 0/1. The
 * inventories here name hosts that do not exist (`.invalid`, RFC 2606), so a
 * validate that tried to connect would fail or hang.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../../support/cli.js';
import { validateOffline } from '../../../src/cli/commands/validate.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-validate-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

const INVENTORY = `all:
  hosts:
    web01.invalid:
      max_tries: 3
    db01.invalid:
`;

const limitsPlaybook = (value: string, hosts = 'all') => `- name: limits
  hosts: ${hosts}
  tasks:
    - name: sshd limits
      sshd_config:
        settings:
          MaxAuthTries: ${value}
      notify: reload sshd
  handlers:
    - name: reload sshd
      service: { name: sshd, state: reloaded }
`;

describe('exit 0 when valid', () => {
  test('the shipped playbooks against the shipped inventory, without connecting', async () => {
    const inventory = path.join(ROOT, 'inventories/example.yml');
    const limits = await runCli(['validate', path.join(ROOT, 'playbooks/sshd-limits.yml'), '-i', inventory]);
    expect(limits.stderr).toBe('');
    expect(limits.code).toBe(0);
    expect(limits.stdout).toMatch(/sshd-limits\.yml: valid — 1 play, 2 tasks, rendered for 7 hosts\n$/);
    const reset = path.join(ROOT, 'playbooks/fix-connection-reset.yml');
    expect((await runCli(['validate', reset, '-i', inventory])).code).toBe(0);
  });

  test('a playbook alone: its own checks only, and it says so', async () => {
    const pb = write('p.yml', limitsPlaybook('"{{ max_tries }}"'));
    const run = await runCli(['validate', pb]);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(
      `${pb}: valid — 1 play, 2 tasks (without an inventory: hosts and variables unchecked)\n`,
    );
  });

  test('a pattern that matches nothing is a warning at its play, not an error', async () => {
    const pb = write('p.yml', limitsPlaybook('3', 'webservers') + limitsPlaybook('3'));
    const run = await runCli(['validate', pb, '-i', write('hosts.yml', INVENTORY)]);
    expect(run.code).toBe(0);
    expect(run.stderr).toBe(
      `${pb}:1:3: warning: host pattern 'webservers' matched no host or group\n  in the hosts of play 'limits'\n`,
    );
    expect(run.stdout).toContain('rendered for 2 hosts');
  });

  test('-e supplies variables, as for apply', async () => {
    const pb = write('p.yml', limitsPlaybook('"{{ tries }}"'));
    const inventory = write('hosts.yml', INVENTORY);
    expect((await runCli(['validate', pb, '-i', inventory])).code).toBe(1);
    expect((await runCli(['validate', pb, '-i', inventory, '-e', 'tries=4'])).code).toBe(0);
  });
});

describe('exit 1 with file:line:column', () => {
  test('no host selected at all: "no hosts matched", as plan and apply say', async () => {
    const pb = write('p.yml', limitsPlaybook('3', 'webservers'));
    const inventory = write('hosts.yml', INVENTORY);
    const run = await runCli(['validate', pb, '-i', inventory]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`${pb}:1:3: warning: host pattern 'webservers' matched no host or group`);
    expect(run.stderr).toContain(
      `error: no hosts matched: the plays' host patterns select no host of ${inventory}`,
    );
  });

  test('YAML syntax', async () => {
    const pb = write('bad.yml', '- name: x\n  hosts: all\n  tasks:\n    - name: a: b\n');
    const run = await runCli(['validate', pb]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`^${pb}:4:\\d+: error: `));
    expect(run.stderr).toMatch(/: 1 error\n$/);
    expect(run.stdout).toBe('');
  });

  test('schema and handlers, all at once', async () => {
    const pb = write(
      'p.yml',
      limitsPlaybook('3')
        .replace('  tasks:', '  tsks: []\n  tasks:')
        .replace('notify: reload sshd', 'notify: reload ssh'),
    );
    const run = await runCli(['validate', pb]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`${pb}:3:3: error: unknown key 'tsks' (did you mean 'tasks'?)`);
    expect(run.stderr).toMatch(new RegExp(`${pb}:9:15: error: notify names handler 'reload ssh'`));
    expect(run.stderr).toMatch(/: 2 errors\n$/);
  });

  test('a variable one host lacks is reported at the string, for that host', async () => {
    const pb = write('p.yml', limitsPlaybook('"{{ max_tries }}"'));
    const run = await runCli(['validate', pb, '-i', write('hosts.yml', INVENTORY)]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`^${pb}:7:25: error: undefined variable 'max_tries'`));
    expect(run.stderr).toContain('for host db01.invalid');
    expect(run.stderr).not.toContain('for host web01.invalid');
  });

  test("a resource's own checks, for every host", async () => {
    const pb = write('p.yml', limitsPlaybook('3').replace('MaxAuthTries', 'MaxAuthTry'));
    const run = await runCli(['validate', pb, '-i', write('hosts.yml', INVENTORY)]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      `${pb}:7:11: error: unknown sshd_config keyword 'MaxAuthTry' (did you mean 'MaxAuthTries'?)`,
    );
  });

  describe('sshd_config values sshd would refuse, at their line, with or without an inventory', () => {
    const settings = [
      '          MaxAuthTries: "ten"',
      '          MaxStartups: "100:30:10"',
      '          PasswordAuthentication: no',
      '          passwordauthentication: yes',
      '          Banner: \'/etc/my "issue" file\'',
    ].join('\n');
    const expected = (pb: string) => [
      `${pb}:7:11: error: MaxAuthTries: "ten" is not a whole number`,
      `${pb}:8:11: error: MaxStartups: "100:30:10": start (100) is above full (10)`,
      `${pb}:10:11: error: "passwordauthentication" and "PasswordAuthentication" both set PasswordAuthentication (sshd reads keywords case-insensitively)`,
      `${pb}:11:11: error: Banner: "/etc/my \\"issue\\" file" contains a double quote ("), which sshd_config cannot hold in an argument`,
    ];
    const errorLines = (stderr: string) => stderr.split('\n').filter((l) => l.includes(': error: '));

    test('with an inventory, for every host', async () => {
      const pb = write('p.yml', limitsPlaybook('3').replace('          MaxAuthTries: 3', settings));
      const run = await runCli(['validate', pb, '-i', write('hosts.yml', INVENTORY)]);
      expect(run.code).toBe(1);
      expect(errorLines(run.stderr)).toEqual(expected(pb));
    });

    test('without an inventory, for arguments that hold no template', async () => {
      const pb = write('p.yml', limitsPlaybook('3').replace('          MaxAuthTries: 3', settings));
      const run = await runCli(['validate', pb]);
      expect(run.code).toBe(1);
      expect(errorLines(run.stderr)).toEqual(expected(pb));
      expect(run.stderr).toMatch(/: 4 errors\n$/);
    });
  });

  test('values of keywords newer than some hosts are checked offline all the same, at their line', async () => {
    const settings = [
      '          PerSourcePenaltyExemptList: "{{ admin_network }}"',
      '          PerSourcePenalties: "authfail:5 off"',
      '          PerSourceNetBlockSize: "24:129"',
    ].join('\n');
    const pb = write('p.yml', limitsPlaybook('3').replace('          MaxAuthTries: 3', settings));
    const inventory = write('hosts.yml', INVENTORY);
    const run = await runCli(['validate', pb, '-i', inventory, '-e', 'admin_network=10.20.0.5/16']);
    expect(run.code).toBe(1);
    expect(run.stderr.split('\n').filter((l) => l.includes(': error: '))).toEqual([
      `${pb}:7:11: error: PerSourcePenaltyExemptList: "10.20.0.5/16": '10.20.0.5/16' has host bits set (did you mean 10.20.0.0/16?)`,
      `${pb}:8:11: error: PerSourcePenalties: "off" is not a value sshd takes: use no`,
      `${pb}:9:11: error: PerSourceNetBlockSize: "24:129": IPv6 bits (129) is above 128`,
    ]);
  });

  test('bad connection variables of every selected host, and errors in the inventory file itself', () => {
    const pb = write('p.yml', limitsPlaybook('3'));
    const badPorts = write(
      'ports.yml',
      'all:\n  hosts:\n    a.invalid:\n      ansible_port: 99999\n    b.invalid:\n      ansible_port: http\n',
    );
    const result = validateOffline({ playbook: pb, inventory: badPorts });
    expect(result.errors.map((d) => d.summary)).toEqual([
      "host 'a.invalid': ansible_port 99999 is not a port number (1-65535)",
      'host \'b.invalid\': ansible_port "http" is not a port number (1-65535)',
    ]);
    const broken = write('broken.yml', 'all:\n  hosts:\n    - a.invalid\n');
    const both = validateOffline({ playbook: write('bad.yml', '- hosts: 3\n'), inventory: broken });
    expect(both.errors.map((d) => `${path.basename(d.position!.file)}:${d.position!.line}`)).toEqual([
      'bad.yml:1',
      'broken.yml:3',
    ]);
  });

  test('a malformed host pattern, at its play', async () => {
    const pb = write('p.yml', limitsPlaybook('3', '"web:~("'));
    const run = await runCli(['validate', pb, '-i', write('hosts.yml', INVENTORY)]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`^${pb}:1:3: error: invalid regular expression in host pattern`));
  });

  test('a missing file', async () => {
    const run = await runCli(['validate', path.join(dir, 'nope.yml')]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("cannot read playbook '");
  });
});

describe('conditions and loops', () => {
  test('a bad expression in when or loop fails validation with file:line:column', async () => {
    const pb = write(
      'p.yml',
      `- hosts: all
  tasks:
    - name: limits
      sshd_config: { settings: { MaxAuthTries: 3 } }
      register: limits
      when: limits is changed and
    - name: reload
      service: { name: sshd, state: reloaded }
      loop: "{{ units | unqiue }}"
`,
    );
    const run = await runCli(['validate', pb, '-i', write('hosts.yml', INVENTORY)]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`${pb}:6:13: error: invalid condition:`);
    expect(run.stderr).toContain(`${pb}:9:13: error: unknown filter 'unqiue' (did you mean 'unique'?)`);
  });

  test('a task rendered on the host still names an undefined variable before any host is contacted', async () => {
    const pb = write(
      'p.yml',
      `- hosts: all
  tasks:
    - name: limits
      sshd_config: { settings: { MaxAuthTries: "{{ max_tries }}" } }
      register: limits
    - name: reload
      service: { name: sshd, state: reloaded }
      when: limts is changed and (extra | default(1)) and optional is not defined
`,
    );
    const run = await runCli(['validate', pb, '-i', write('hosts.yml', INVENTORY)]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`${pb}:8:13: error: undefined variable 'limts' (did you mean 'limits'?)`);
    expect(run.stderr).not.toContain("'extra'");
    expect(run.stderr).not.toContain("'optional'");
  });

  test('a task that reads a registered result is checked on the host, not refused up front', async () => {
    const pb = write(
      'p.yml',
      `- hosts: all
  tasks:
    - name: limits
      sshd_config: { settings: { MaxAuthTries: 3 } }
      register: limits
    - name: reload
      service: { name: sshd, state: reloaded }
      when: limits is changed
`,
    );
    const run = await runCli(['validate', pb, '-i', write('hosts.yml', INVENTORY)]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
  });
});
