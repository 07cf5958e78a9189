/**
 * Secrets never reach the operator's screen or a CI report: `sshfix
 * inventory`, and plan/apply in text, JSON and JUnit. Runs the real CLI with
 * `-c local` on files in a private directory; plans only read.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REDACTED } from '../../../src/config/secrets.js';
import { runCli } from '../../support/cli.js';
import { childrenNamed, parseXml } from '../../support/xml.js';

const SECRETS = ['login-secret-1', 'sudo-secret-1', 'db-secret-1', 'nested-secret-1'];

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-secrets-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

const inventoryFile = () =>
  write(
    'hosts.yml',
    `all:
  vars:
    app_settings: { db_password: nested-secret-1, port: 5432 }
  hosts:
    web1:
      ansible_connection: local
      ansible_password: login-secret-1
      ansible_become_password: sudo-secret-1
      db_password: db-secret-1
      greeting: hello
`,
  );

function expectNoSecret(output: string): void {
  for (const secret of SECRETS) expect(output).not.toContain(secret);
}

describe('sshfix inventory', () => {
  test('masks the passwords and secret-named variables, in text', async () => {
    const run = await runCli(['inventory', '-i', inventoryFile()]);
    expect(run.code).toBe(0);
    expectNoSecret(run.stdout + run.stderr);
    expect(run.stdout).toContain(`    ansible_password: "${REDACTED}"\n`);
    expect(run.stdout).toContain(`    ansible_become_password: "${REDACTED}"\n`);
    expect(run.stdout).toContain(`    db_password: "${REDACTED}"\n`);
    expect(run.stdout).toContain('    greeting: "hello"\n');
    expect(run.stdout).toContain(`    app_settings: {"db_password":"${REDACTED}","port":5432}\n`);
  });

  test('and in JSON', async () => {
    const run = await runCli(['inventory', '-i', inventoryFile(), '--format', 'json']);
    expect(run.code).toBe(0);
    expectNoSecret(run.stdout);
    const doc = JSON.parse(run.stdout) as { hosts: Record<string, { vars: Record<string, unknown> }> };
    expect(doc.hosts.web1?.vars).toEqual({
      app_settings: { db_password: REDACTED, port: 5432 },
      ansible_connection: 'local',
      ansible_password: REDACTED,
      ansible_become_password: REDACTED,
      db_password: REDACTED,
      greeting: 'hello',
    });
  });
});

describe('plan and apply', () => {
  const playbookFile = (validate = "test -n '{{ db_password }}' && test -f %s", taskOptions = '') =>
    write(
      'site.yml',
      `- hosts: all
  tasks:
    - name: app config
      file:
        dest: ${dir}/app.conf
        content: "user=app\\npassword={{ db_password }}\\nsudo={{ ansible_become_password }}\\n"
        validate: "${validate}"${taskOptions}
`,
    );

  test('a secret templated into a file is masked in the diff, in text, JSON and JUnit', async () => {
    const playbook = playbookFile();
    const inventory = inventoryFile();
    const text = await runCli(['plan', playbook, '-i', inventory]);
    expect(text.code).toBe(0);
    expectNoSecret(text.stdout + text.stderr);
    expect(text.stdout).toContain(`+password=${REDACTED}\n`);
    expect(text.stdout).toContain(`+sudo=${REDACTED}\n`);

    const json = await runCli(['plan', playbook, '-i', inventory, '--format', 'json']);
    expectNoSecret(json.stdout + json.stderr);
    const doc = JSON.parse(json.stdout) as { hosts: Record<string, { tasks: { diff: string }[] }> };
    expect(doc.hosts.web1?.tasks[0]?.diff).toContain(`+password=${REDACTED}\n`);

    const junit = await runCli(['plan', playbook, '-i', inventory, '--format', 'junit']);
    expectNoSecret(junit.stdout + junit.stderr);
    const suite = childrenNamed(parseXml(junit.stdout), 'testsuite')[0]!;
    const out = childrenNamed(childrenNamed(suite, 'testcase')[0]!, 'system-out')[0];
    expect(out?.text).toContain(`+password=${REDACTED}\n`);
  });

  test('a failing apply does not show the secret in its error either', async () => {
    const playbook = playbookFile("echo 'no {{ db_password }}' %s >&2; false");
    const run = await runCli(['apply', playbook, '-i', inventoryFile(), '--format', 'json']);
    expect(run.code).toBe(1);
    expectNoSecret(run.stdout + run.stderr);
    const doc = JSON.parse(run.stdout) as { hosts: Record<string, { tasks: { error?: string }[] }> };
    expect(doc.hosts.web1?.tasks[0]?.error).toContain(`no ${REDACTED}`);
    expect(fs.existsSync(path.join(dir, 'app.conf'))).toBe(false);
  });
});

describe('no_log and diff on a task, as in Ansible', () => {
  const NO_LOG =
    "the output has been hidden due to the fact that 'no_log: true' was specified for this result";
  /** `app_value` is not secret-named: only no_log can hide it. */
  const playbookFile = (taskOptions: string, validate = 'test -f %s') =>
    write(
      'site.yml',
      `- hosts: all
  vars:
    app_value: plain-value-7
  tasks:
    - name: app config
      file:
        dest: ${dir}/app.conf
        content: "value={{ app_value }}\\n"
        mode: "0600"
        validate: "${validate}"
${taskOptions}
    - name: other
      file: { dest: ${dir}/other.conf, content: "other\\n" }
`,
    );
  const inventory = () => write('hosts.ini', 'web1 ansible_connection=local\n');

  test('no_log: true hides the diff, the messages and the commands in text, JSON and JUnit', async () => {
    fs.writeFileSync(path.join(dir, 'app.conf'), 'old\n');
    const playbook = playbookFile('      no_log: true');
    const text = await runCli(['plan', playbook, '-i', inventory()]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(
      `  changed  app config [file]\n           ${NO_LOG}\n  changed  other [file]`,
    );
    expect(text.stdout).not.toMatch(/plain-value-7|value=|app\.conf|chmod/);
    expect(text.stdout).toContain('+other'); // the other task's diff still shows

    const json = await runCli(['plan', playbook, '-i', inventory(), '--format', 'json']);
    expect(json.stdout).not.toMatch(/plain-value-7|value=|app\.conf|chmod/);
    const doc = JSON.parse(json.stdout) as { hosts: Record<string, { tasks: Record<string, unknown>[] }> };
    expect(doc.hosts.web1?.tasks[0]).toMatchObject({
      task: 'app config',
      status: 'changed',
      diff: '',
      message: NO_LOG,
      messages: [NO_LOG],
      warnings: [],
      commands: [],
    });

    const junit = await runCli(['plan', playbook, '-i', inventory(), '--format', 'junit']);
    expect(junit.stdout).not.toMatch(/plain-value-7|value=|app\.conf|chmod/);
    const cases = childrenNamed(childrenNamed(parseXml(junit.stdout), 'testsuite')[0]!, 'testcase');
    expect(childrenNamed(cases[0]!, 'system-out')[0]?.text).toBe(`would change\n${NO_LOG}`);
  });

  test('no_log: true hides why the task failed, also from the tasks it kept from running', async () => {
    const playbook = playbookFile('      no_log: true', "grep -q 'nothing-{{ app_value }}' %s");
    const run = await runCli(['apply', playbook, '-i', inventory(), '--format', 'json']);
    expect(run.code).toBe(1);
    expect(run.stdout + run.stderr).not.toMatch(/plain-value-7|app\.conf/);
    const doc = JSON.parse(run.stdout) as { hosts: Record<string, { tasks: Record<string, unknown>[] }> };
    expect(doc.hosts.web1?.tasks.map((t) => [t.task, t.status, t.error])).toEqual([
      ['app config', 'failed', NO_LOG],
      ['other', 'skipped', `not applied: app config ${NO_LOG}`],
    ]);
    expect(fs.existsSync(path.join(dir, 'app.conf'))).toBe(false);
  });

  test('diff: false hides only the diff', async () => {
    const playbook = playbookFile('      diff: false');
    const run = await runCli(['plan', playbook, '-i', inventory(), '--format', 'json']);
    expect(run.code).toBe(0);
    expect(run.stdout).not.toContain('plain-value-7');
    const doc = JSON.parse(run.stdout) as { hosts: Record<string, { tasks: Record<string, unknown>[] }> };
    expect(doc.hosts.web1?.tasks[0]).toMatchObject({ diff: '', status: 'changed' });
    expect(doc.hosts.web1?.tasks[0]?.messages).toEqual([
      expect.stringMatching(/app\.conf does not exist → created: 1 line, mode 0600/),
    ]);
    expect(doc.hosts.web1?.tasks[1]?.diff).toContain('+other');
  });

  test('both must be booleans, reported at file:line:column; validate accepts them', async () => {
    const bad = playbookFile('      no_log: yes\n      diff: 0');
    const run = await runCli(['validate', bad, '-i', inventory()]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      `${bad}:11:15: error: 'no_log' must be a boolean (true or false), got the string "yes" (write true or false: in YAML 1.2 this word is a string)`,
    );
    expect(run.stderr).toContain(
      `${bad}:12:13: error: 'diff' must be a boolean (true or false), got the number 0`,
    );
    const good = playbookFile('      no_log: true\n      diff: false');
    expect((await runCli(['validate', good, '-i', inventory()])).code).toBe(0);
  });
});
