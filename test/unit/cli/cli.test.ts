/**
 * The CLI end to end on this machine: bad input is reported with
 * file:line:column and touches nothing; exit codes follow the README.
 * Converging runs use `-c local` on a private copy of sshd_config, so the
 * real sshd binary validates, but nothing of this machine's own config is
 * touched.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../../support/cli.js';

const SSHD = '/usr/sbin/sshd';
const haveSshd = fs.existsSync(SSHD);

let dir: string;
let config: string;
let inventory: string;

function write(name: string, text: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

const playbook = (settings: string, extra = '') => `- name: limits
  hosts: all
  vars:
    startups: "20:30:60"
  tasks:
    - name: sshd limits
      sshd_config:
        path: ${config}
        settings:
${settings}
${extra}`;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-cli-'));
  config = write(
    'sshd_config',
    '# test config\nPort 22\n#MaxAuthTries 6\nMaxStartups 10:30:100\nSubsystem sftp /usr/lib/openssh/sftp-server\n',
  );
  inventory = write('hosts.ini', 'here ansible_connection=local\n');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('bad input names file:line:column and changes nothing', () => {
  test('YAML syntax error', async () => {
    const pb = write('bad.yml', '- name: x\n  hosts: all\n  tasks:\n    - name: a: b\n');
    const run = await runCli(['apply', pb, '-i', inventory]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`^${pb}:4:\\d+: error: `, 'm'));
  });

  test('unknown play key with the nearest valid one', async () => {
    const pb = write('typo.yml', '- name: x\n  hosts: all\n  tsks: []\n');
    const run = await runCli(['plan', pb, '-i', inventory]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`${pb}:3:3: error: unknown key 'tsks' (did you mean 'tasks'?)`);
  });

  test('undefined variable, at the string that uses it', async () => {
    const pb = write('undef.yml', playbook('          MaxStartups: "{{ startup }}"'));
    const run = await runCli(['apply', pb, '-i', inventory]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      new RegExp(`${pb}:10:24: error: undefined variable 'startup'.*did you mean 'startups'`),
    );
    expect(fs.readFileSync(config, 'utf8')).toContain('MaxStartups 10:30:100');
  });

  test('unknown sshd keyword, with a suggestion, at its key', async () => {
    const pb = write('kw.yml', playbook('          MaxStartup: 5'));
    const run = await runCli(['apply', pb, '-i', inventory]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      `${pb}:10:11: error: unknown sshd_config keyword 'MaxStartup' (did you mean 'MaxStartups'?)`,
    );
  });

  test('a newline smuggled into a value through a variable is refused', async () => {
    const pb = write(
      'nl.yml',
      playbook('          Banner: "{{ evil }}"').replace(
        'startups: "20:30:60"',
        'evil: "/x\\nPermitRootLogin yes"',
      ),
    );
    const run = await runCli(['apply', pb, '-i', inventory]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('newline or control character');
    expect(fs.readFileSync(config, 'utf8')).not.toContain('PermitRootLogin');
  });

  test('unknown handler in notify', async () => {
    const pb = write(
      'notify.yml',
      playbook(
        '          MaxAuthTries: 3',
        '      notify: reload ssh\n  handlers:\n    - name: reload sshd\n      service: { name: sshd }\n',
      ),
    );
    const run = await runCli(['apply', pb, '-i', inventory]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /notify\.yml:11:15: error: notify names handler 'reload ssh', which this play does not define \(did you mean 'reload sshd'\?\)/,
    );
  });

  test('missing inventory file and bad arguments', async () => {
    const pb = write('ok.yml', playbook('          MaxAuthTries: 3'));
    const missing = await runCli(['apply', pb, '-i', path.join(dir, 'nope.yml')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('nope.yml');
    const noInventory = await runCli(['apply', pb]);
    expect(noInventory.code).toBe(1);
    expect(noInventory.stderr).toContain('Missing required argument: inventory');
  });
});

describe('help', () => {
  test.each(['apply', 'plan', 'inventory'])('%s --help documents its options', async (command) => {
    const run = await runCli([command, '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`sshfix ${command}`);
    expect(run.stdout).toContain('--inventory');
  });

  test('apply --help lists the exit codes', async () => {
    const run = await runCli(['apply', '--help']);
    expect(run.stdout).toContain('2 changes pending');
    expect(run.stdout).toContain('--check');
    expect(run.stdout).toContain('--diff');
  });
});

(haveSshd ? describe : describe.skip)('converging a local config (real sshd -t / sshd -T)', () => {
  test('plan exits 2, apply converges, then plan exits 0 and apply changes nothing', async () => {
    const pb = write(
      'ok.yml',
      playbook('          MaxStartups: "{{ startups }}"\n          MaxAuthTries: 3'),
    );
    const original = fs.readFileSync(config, 'utf8');
    const plan = await runCli(['plan', pb, '-i', inventory, '--detailed-exitcode']);
    expect(plan.code).toBe(2);
    expect(plan.stdout).toContain(`MaxStartups 10:30:100 from ${config}:4 → 20:30:60`);
    expect(plan.stdout).toContain('+MaxAuthTries 3');
    expect(fs.readFileSync(config, 'utf8')).toBe(original);

    const apply = await runCli(['apply', pb, '-i', inventory, '--format', 'json']);
    expect(apply.code).toBe(0);
    const report = JSON.parse(apply.stdout) as {
      hosts: Record<string, { changed: number; tasks: Array<{ status: string; diff: string }> }>;
      summary: { changed: number };
    };
    expect(report.hosts.here?.changed).toBe(1);
    expect(report.hosts.here?.tasks[0]?.diff).toContain('-MaxStartups 10:30:100');
    expect(fs.readFileSync(config, 'utf8')).toBe(
      '# test config\nPort 22\n#MaxAuthTries 6\nMaxAuthTries 3\nMaxStartups 20:30:60\nSubsystem sftp /usr/lib/openssh/sftp-server\n',
    );

    expect((await runCli(['plan', pb, '-i', inventory, '--detailed-exitcode'])).code).toBe(0);
    const again = await runCli(['apply', pb, '-i', inventory, '--detailed-exitcode']);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/here\s+ok=1\s+changed=0/);
  });

  test('remove comments out a directive that keeps sshd from starting, in every context', async () => {
    fs.writeFileSync(config, '# test config\nFrobnicate yes\nPort 22\nMatch User x\n  frobnicate no\n');
    const pb = write(
      'remove.yml',
      `- name: r\n  hosts: all\n  tasks:\n    - name: drop it\n      sshd_config:\n        path: ${config}\n        remove: [Frobnicate]\n`,
    );
    const run = await runCli(['apply', pb, '-i', inventory]);
    expect(run.stdout).toContain(`Frobnicate removed from ${config}:2, ${config}:5`);
    expect(run.code).toBe(0);
    expect(fs.readFileSync(config, 'utf8')).toBe(
      '# test config\n# sshfix: removed: Frobnicate yes\nPort 22\nMatch User x\n  # sshfix: removed: frobnicate no\n',
    );
    expect((await runCli(['apply', pb, '-i', inventory, '--detailed-exitcode'])).code).toBe(0);
  });

  test('apply --detailed-exitcode exits 2 when it changed something', async () => {
    const pb = write('ok.yml', playbook('          MaxAuthTries: 3'));
    expect((await runCli(['apply', pb, '-i', inventory, '--detailed-exitcode'])).code).toBe(2);
  });

  test('--check changes nothing', async () => {
    const pb = write('ok.yml', playbook('          MaxAuthTries: 3'));
    const original = fs.readFileSync(config, 'utf8');
    const run = await runCli(['apply', pb, '-i', inventory, '--check']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/changed\s+sshd limits/);
    expect(fs.readFileSync(config, 'utf8')).toBe(original);
  });

  test('an invalid value fails with sshd -t its message and changes nothing', async () => {
    // A value sshfix cannot check offline (RekeyLimit takes sizes with K, M and G).
    const pb = write('bad.yml', playbook('          RekeyLimit: lots'));
    const original = fs.readFileSync(config, 'utf8');
    const run = await runCli(['apply', pb, '-i', inventory]);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(`sshd -t rejected the new configuration: ${config} line`);
    expect(run.stdout).toContain("Bad RekeyLimit number 'lots'");
    expect(fs.readFileSync(config, 'utf8')).toBe(original);
  });
});

test('an unreachable host gives exit code 4 and names the host', async () => {
  const pb = write('ok.yml', playbook('          MaxAuthTries: 3'));
  // Port 1 on loopback: nothing listens, the connection is refused at once.
  const inv = write('gone.ini', 'gone ansible_host=127.0.0.1 ansible_port=1\n');
  const run = await runCli([
    'apply',
    pb,
    '-i',
    inv,
    '--known-hosts',
    path.join(dir, 'kh'),
    '--connect-timeout',
    '3',
  ]);
  expect(run.code).toBe(4);
  expect(run.stdout).toMatch(/gone \(127\.0\.0\.1\)\n\s+unreachable/);
  expect(run.stdout).toMatch(/gone\s+ok=0\s+changed=0\s+failed=0\s+skipped=0\s+unreachable=1/);
});
