/**
 * Bad command-line values are bad input: exit 1 with a message naming the
 * option, nothing touched, and with --format json or junit a well-formed
 * document on stdout that says what was wrong (CI reads stdout, not stderr).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../../support/cli.js';
import { childrenNamed, parseXml } from '../../support/xml.js';

let dir: string;
let playbook: string;
let inventory: string;
let dest: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-args-'));
  dest = path.join(dir, 'motd');
  playbook = path.join(dir, 'site.yml');
  fs.writeFileSync(
    playbook,
    `- hosts: all\n  tasks:\n    - name: motd\n      file: { dest: ${dest}, content: "hello\\n" }\n`,
  );
  inventory = path.join(dir, 'hosts.ini');
  fs.writeFileSync(inventory, 'one ansible_connection=local\n');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('apply and plan refuse bad option values before touching any host', () => {
  test.each([
    [
      ['--forks', 'abc'],
      /^error: --forks: not a number; give how many hosts to work on at once, 1 or more$/m,
    ],
    [['--forks', '0'], /^error: --forks 0: give how many hosts to work on at once, 1 or more$/m],
    [['--forks', '2.5'], /^error: --forks 2\.5: give how many hosts to work on at once, 1 or more$/m],
    [['--command-timeout', 'abc'], /^error: --command-timeout: not a number; give seconds, more than 0$/m],
    [['--connect-timeout', 'abc'], /^error: --connect-timeout: not a number; give seconds, more than 0$/m],
    [['--connect-timeout', '0'], /^error: --connect-timeout 0: give seconds, more than 0$/m],
    [['--command-timeout', '-3'], /^error: --command-timeout -3: give seconds, more than 0$/m],
    [['--connect-timeout', '9999999'], /^error: --connect-timeout 9999999: give seconds, at most 2147483$/m],
    [['--confirm-timeout', 'abc'], /^error: --confirm-timeout: not a number; give seconds, at least 5$/m],
    [
      ['--max-fail-percentage', 'abc'],
      /^error: --max-fail-percentage: not a number; give a percentage from 0 to 100$/m,
    ],
  ])('%j', async (option, message) => {
    const run = await runCli(['apply', playbook, '-i', inventory, ...option]);
    expect(run.stderr).toMatch(message);
    expect(run.stderr).not.toContain('internal error');
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(fs.existsSync(dest)).toBe(false);
  });

  test('a --private-key that cannot be read is bad input (1), not an unreachable host (4)', async () => {
    const missing = path.join(dir, 'id_missing');
    const run = await runCli(['apply', playbook, '-i', inventory, '--private-key', missing]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`^error: --private-key ${missing}: cannot read it: ENOENT`, 'm'));
    const directory = await runCli(['plan', playbook, '-i', inventory, '--private-key', dir]);
    expect(directory.code).toBe(1);
    expect(directory.stderr).toContain(`error: --private-key ${dir}: not a file`);
    expect(fs.existsSync(dest)).toBe(false);
  });

  test('good values still run', async () => {
    const key = path.join(dir, 'id_test');
    fs.writeFileSync(key, 'not used by -c local\n');
    const run = await runCli([
      'apply',
      playbook,
      '-i',
      inventory,
      '--forks',
      '3',
      '--connect-timeout',
      '2.5',
      '--command-timeout',
      '30',
      '--private-key',
      key,
    ]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(fs.readFileSync(dest, 'utf8')).toBe('hello\n');
  });
});

test('diagnose refuses the same values, before probing anything', async () => {
  for (const option of [
    ['--forks', 'abc'],
    ['--connect-timeout', '0'],
    ['--private-key', path.join(dir, 'id_missing')],
    ['--port', 'abc'],
  ]) {
    const run = await runCli(['diagnose', '127.0.0.1', '--probe-only', '--burst', '0', ...option]);
    expect(run.stderr).toMatch(new RegExp(`^error: ${option[0]}`, 'm'));
    expect(run.code).toBe(1);
  }
});

describe('with --format json or junit, stdout gets a document describing the error', () => {
  const badPlaybook = () => {
    const file = path.join(dir, 'bad.yml');
    fs.writeFileSync(
      file,
      '- hosts: all\n  tasks:\n    - name: x\n      file: { dest: /tmp/x, mood: "0600" }\n',
    );
    return file;
  };

  test('JSON: the usual shape, no hosts, and the errors with their positions', async () => {
    const file = badPlaybook();
    const run = await runCli(['plan', file, '-i', inventory, '--format', 'json']);
    expect(run.code).toBe(1);
    const doc = JSON.parse(run.stdout) as Record<string, unknown>;
    expect(doc).toEqual({
      mode: 'plan',
      hosts: {},
      summary: { ok: 0, changed: 0, failed: 0, unreachable: 0, hosts: 0, rolledBack: 0, retries: 0 },
      errors: [
        {
          severity: 'error',
          summary: "unknown key 'mood'",
          file,
          line: 4,
          column: 29,
          message: `${file}:4:29: error: unknown key 'mood'`,
        },
      ],
    });
    // Humans still read it on stderr.
    expect(run.stderr).toContain(`${file}:4:29: error: unknown key 'mood'`);
  });

  test('JSON: a bad option value, and an option yargs itself refuses', async () => {
    const forks = await runCli(['apply', playbook, '-i', inventory, '--format', 'json', '--forks', 'abc']);
    expect(forks.code).toBe(1);
    const doc = JSON.parse(forks.stdout) as { mode: string; errors: { summary: string }[] };
    expect(doc.mode).toBe('apply');
    expect(doc.errors.map((e) => e.summary)).toEqual([
      '--forks: not a number; give how many hosts to work on at once, 1 or more',
    ]);
    const unknown = await runCli(['apply', playbook, '-i', inventory, '--format', 'json', '--forkz', '3']);
    expect(unknown.code).toBe(1);
    const unknownDoc = JSON.parse(unknown.stdout) as { errors: { summary: string }[] };
    expect(unknownDoc.errors[0]?.summary).toMatch(/Unknown argument: forkz/);
    expect(fs.existsSync(dest)).toBe(false);
  });

  test('JSON for inventory and diagnose too', async () => {
    const inv = await runCli(['inventory', '-i', path.join(dir, 'nope.ini'), '--format', 'json']);
    expect(inv.code).toBe(1);
    expect((JSON.parse(inv.stdout) as { errors: { summary: string }[] }).errors[0]?.summary).toMatch(
      /^cannot read inventory .*nope\.ini/,
    );
    const diag = await runCli(['diagnose', '--format', 'json']);
    expect(diag.code).toBe(1);
    expect(JSON.parse(diag.stdout)).toMatchObject({
      hosts: {},
      errors: [
        {
          summary: 'name the hosts to diagnose, give an inventory with -i, or use -c local for this machine',
        },
      ],
    });
  });

  test('JUnit: a testcase in error with the problems, in a well-formed report', async () => {
    const file = badPlaybook();
    const run = await runCli(['apply', file, '-i', inventory, '--format', 'junit', '--forks', '0']);
    expect(run.code).toBe(1);
    const root = parseXml(run.stdout);
    expect(root.name).toBe('testsuites');
    expect(root.attributes).toMatchObject({ name: 'sshfix apply', tests: '1', errors: '1', failures: '0' });
    const [suite] = childrenNamed(root, 'testsuite');
    expect(suite?.attributes).toMatchObject({ name: 'input', tests: '1', errors: '1' });
    const cases = childrenNamed(suite!, 'testcase');
    expect(cases.map((c) => c.attributes)).toEqual([{ classname: 'input', name: 'bad input' }]);
    const error = childrenNamed(cases[0]!, 'error')[0]!;
    expect(error.attributes.type).toBe('bad input');
    expect(error.attributes.message).toBe('--forks 0: give how many hosts to work on at once, 1 or more');
    expect(error.text).toBe('error: --forks 0: give how many hosts to work on at once, 1 or more');
  });
});

describe('sshfix demo refuses contradictory options before looking at the machine', () => {
  test('--sshd-unit with --kind plain: exit 1, no lab, whatever the machine', async () => {
    const before = fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('sshfix-demo-'));
    const run = await runCli(['demo', '--kind', 'plain', '--sshd-unit', 'socket']);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      'sshfix demo: --sshd-unit is for hosts of the systemd kind, not with --kind plain\n',
    );
    expect(run.stdout).toBe('');
    expect(fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('sshfix-demo-'))).toEqual(before);
  });

  test('--kind takes auto, systemd or plain', async () => {
    const run = await runCli(['demo', '--kind', 'docker']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /Invalid values:\s+Argument: kind, Given: "docker", Choices: "auto", "systemd", "plain"/,
    );
  });
});
