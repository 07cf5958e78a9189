/**
 * The CLI with Ansible Vault: --vault-password-file (a file or a program),
 * --ask-vault-pass, and vault plaintext never printed (text, JSON, JUnit,
 * --verbose, errors, plan --out and show). Runs the real CLI in-process with
 * `-c local` on files in a private directory; the vaults are the fixtures
 * `ansible-vault` made (test/fixtures/vault).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import type { ParsedArgs } from '../../../src/cli/io.js';
import { vaultFromArgs } from '../../../src/cli/vault_password.js';
import { diagnoseTargets } from '../../../src/cli/commands/diagnose.js';
import { REDACTED } from '../../../src/config/secrets.js';
import { Vault } from '../../../src/config/vault.js';
import { runCli } from '../../support/cli.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/vault');
const PASSWORD_FILE = path.join(FIXTURES, 'password.txt');
/** The plaintexts of vars.yml (whole file) and become_string.yml (a !vault value). */
const PLAINTEXTS = ['s3cr3t-db-Quokka', '192.0.2.0/24', 'pässwörd ünïcode', 'hunter2-Numbat'];

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-vault-cli-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string, mode = 0o644): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text, { mode });
  return file;
}

function expectNoPlaintext(output: string): void {
  for (const secret of PLAINTEXTS) expect(output).not.toContain(secret);
}

/** A playbook whose vars_files is vaulted whole and whose play vars hold a !vault value. */
function setUp(content = 'net={{ admin_net }}\\nnote={{ note }}\\nsudo={{ sudo_word }}\\n', mode = '"0600"') {
  fs.copyFileSync(path.join(FIXTURES, 'vars.yml'), path.join(dir, 'secrets.yml'));
  const [, ...body] = fs.readFileSync(path.join(FIXTURES, 'become_string.yml'), 'utf8').trimEnd().split('\n');
  const playbook = write(
    'site.yml',
    `- hosts: all
  vars:
    sudo_word: !vault |
${body.map((line) => `      ${line.trim()}`).join('\n')}
  vars_files: [secrets.yml]
  tasks:
    - name: app config
      file: { dest: ${dir}/app.conf, content: "${content}", mode: ${mode} }
`,
  );
  const inventory = write('hosts.ini', 'web1 ansible_connection=local\n');
  return { playbook, inventory };
}

describe('--vault-password-file', () => {
  test('a password file opens vars_files and !vault values; the plaintexts are masked in text, JSON and JUnit', async () => {
    const { playbook, inventory } = setUp();
    for (const format of ['text', 'json', 'junit']) {
      const run = await runCli([
        'plan',
        playbook,
        '-i',
        inventory,
        '--vault-password-file',
        PASSWORD_FILE,
        '--format',
        format,
      ]);
      expect(run.code).toBe(0);
      expectNoPlaintext(run.stdout + run.stderr);
      expect(run.stdout).toContain(`+net=${REDACTED}`);
      expect(run.stdout).toContain(`+sudo=${REDACTED}`);
    }
  });

  test('plan --out and show keep no plaintext, not even of an -e @FILE variable that is not secret-named', async () => {
    const { playbook, inventory } = setUp();
    const out = path.join(dir, 'plan.json');
    const vars = path.join(FIXTURES, 'vars.yml');
    const run = await runCli([
      'plan',
      playbook,
      '-i',
      inventory,
      '--vault-password-file',
      PASSWORD_FILE,
      '-e',
      `@${vars}`,
      '--out',
      out,
    ]);
    expect(run.code).toBe(0);
    const saved = fs.readFileSync(out, 'utf8');
    expectNoPlaintext(saved);
    expect(JSON.parse(saved).inputs.variables.secretNames).toEqual(['admin_net', 'db_password', 'note']);
    const show = await runCli(['show', out]);
    expect(show.code).toBe(0);
    expectNoPlaintext(show.stdout + show.stderr);
  });

  test('apply PLAN takes the vaulted -e @FILE again, checked by digest, and applies what was reviewed', async () => {
    const { playbook, inventory } = setUp();
    const out = path.join(dir, 'plan.json');
    const vars = ['-e', `@${path.join(FIXTURES, 'vars.yml')}`, '--vault-password-file', PASSWORD_FILE];
    expect((await runCli(['plan', playbook, '-i', inventory, ...vars, '--out', out])).code).toBe(0);
    const missing = await runCli(['apply', out, '--vault-password-file', PASSWORD_FILE]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('the -e variables are not those the plan was made from');
    expectNoPlaintext(missing.stdout + missing.stderr);
    expect(fs.existsSync(path.join(dir, 'app.conf'))).toBe(false);
    const run = await runCli(['apply', out, ...vars]);
    expect(run.code).toBe(0);
    expectNoPlaintext(run.stdout + run.stderr);
    expect(fs.readFileSync(path.join(dir, 'app.conf'), 'utf8')).toContain('net=192.0.2.0/24\n');
  });

  test('apply --verbose writes the file with the plaintext, and prints none of it', async () => {
    const { playbook, inventory } = setUp();
    const run = await runCli([
      'apply',
      playbook,
      '-i',
      inventory,
      '--vault-password-file',
      PASSWORD_FILE,
      '--verbose',
      '--diff',
    ]);
    expect(run.code).toBe(0);
    expectNoPlaintext(run.stdout + run.stderr);
    expect(fs.readFileSync(path.join(dir, 'app.conf'), 'utf8')).toBe(
      'net=192.0.2.0/24\nnote=pässwörd ünïcode\nsudo=hunter2-Numbat\n',
    );
  });

  test('an error that quotes a vaulted value masks it', async () => {
    const { playbook, inventory } = setUp('x', '"{{ admin_net }}"');
    const run = await runCli(['plan', playbook, '-i', inventory, '--vault-password-file', PASSWORD_FILE]);
    expect(run.code).toBe(1);
    expectNoPlaintext(run.stdout + run.stderr);
    expect(run.stderr).toContain(REDACTED);
    const validate = await runCli([
      'validate',
      playbook,
      '-i',
      inventory,
      '--vault-password-file',
      PASSWORD_FILE,
    ]);
    expect(validate.code).toBe(1);
    expectNoPlaintext(validate.stdout + validate.stderr);
    expect(validate.stderr).toContain(REDACTED);
  });

  test('an executable file is run and its output is the password, as in Ansible', async () => {
    const { playbook, inventory } = setUp();
    const script = write('vault-pass.sh', "#!/bin/sh\nprintf 'correct horse battery staple\\n'\n", 0o755);
    const run = await runCli(['plan', playbook, '-i', inventory, '--vault-password-file', script]);
    expect(run.code).toBe(0);
    const failing = write('failing.sh', '#!/bin/sh\nexit 3\n', 0o755);
    const failed = await runCli(['plan', playbook, '-i', inventory, '--vault-password-file', failing]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain(`--vault-password-file ${failing}: the password program failed (exit 3)`);
  });

  test('a wrong password: exit 1, the file named, nothing changed', async () => {
    const { playbook, inventory } = setUp();
    const wrong = write('wrong.txt', 'not the password\n');
    const run = await runCli(['apply', playbook, '-i', inventory, '--vault-password-file', wrong]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      `${playbook}:3:23: error: cannot decrypt this !vault value: wrong vault password`,
    );
    expect(fs.existsSync(path.join(dir, 'app.conf'))).toBe(false);
    const vars = path.join(FIXTURES, 'vars.yml');
    const file = await runCli([
      'apply',
      playbook,
      '-i',
      inventory,
      '--vault-password-file',
      wrong,
      '-e',
      `@${vars}`,
    ]);
    expect(file.code).toBe(1);
    expect(file.stderr).toContain(`${vars}:1:1: error: cannot decrypt this file: wrong vault password`);
    expect(fs.existsSync(path.join(dir, 'app.conf'))).toBe(false);
  });

  test('no password at all: the error says how to give one; validate says the same', async () => {
    const { playbook, inventory } = setUp();
    const run = await runCli(['plan', playbook, '-i', inventory]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('give its password with --vault-password-file FILE or --ask-vault-pass');
    const validate = await runCli(['validate', playbook, '-i', inventory]);
    expect(validate.code).toBe(1);
    expect(validate.stderr).toContain(
      `${playbook}:3:23: error: this !vault value is encrypted with Ansible Vault`,
    );
    const valid = await runCli([
      'validate',
      playbook,
      '-i',
      inventory,
      '--vault-password-file',
      PASSWORD_FILE,
    ]);
    expect(valid.code).toBe(0);
    const syntax = await runCli([
      'plan',
      playbook,
      '-i',
      inventory,
      '--syntax-check',
      '--vault-password-file',
      PASSWORD_FILE,
    ]);
    expect(syntax.code).toBe(0);
    expectNoPlaintext(syntax.stdout + syntax.stderr);
  });

  test('sshfix inventory opens a vaulted inventory and masks every value from it', async () => {
    const run = await runCli([
      'inventory',
      '-i',
      path.join(FIXTURES, 'inventory.yml'),
      '--vault-password-file',
      PASSWORD_FILE,
    ]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('web1  groups: all, ungrouped');
    expect(run.stdout).not.toContain('198.51.100.0/24');
    expect(run.stdout).toContain(`    admin_net: "${REDACTED}"`);
  });
});

describe('--vault-id', () => {
  test('LABEL@FILE opens a 1.2 vault made with that label, among other passwords; @prompt needs a terminal', async () => {
    const { inventory } = setUp();
    const playbook = write(
      'plain.yml',
      `- hosts: all\n  tasks:\n    - name: t\n      file: { dest: ${dir}/t.conf, content: "{{ api_token }}" }\n`,
    );
    const wrong = write('wrong.txt', 'not it\n');
    const vars = ['-e', `@${path.join(FIXTURES, 'vars_id.yml')}`];
    const run = await runCli([
      'plan',
      playbook,
      '-i',
      inventory,
      ...vars,
      '--vault-id',
      `dev@${wrong}`,
      '--vault-id',
      `prod@${PASSWORD_FILE}`,
    ]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`+${REDACTED}`);
    expect(run.stdout).not.toContain('tok-Wallaby-1234');
    const onlyWrong = await runCli(['plan', playbook, '-i', inventory, ...vars, '--vault-id', wrong]);
    expect(onlyWrong.code).toBe(1);
    expect(onlyWrong.stderr).toContain(
      "wrong vault password (the one given does not open it), or the vault was altered: its HMAC does not match (vault id 'prod')",
    );
    const prompt = await runCli(['plan', playbook, '-i', inventory, ...vars, '--vault-id', 'prod@prompt']);
    expect(prompt.code).toBe(1);
    expect(prompt.stderr).toContain('--vault-id prod@prompt: there is no terminal to ask on');
    const bad = await runCli(['plan', playbook, '-i', inventory, '--vault-id', '@x']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--vault-id @x: give LABEL@FILE, LABEL@prompt or FILE');
  });
});

describe('--ask-vault-pass', () => {
  test('without a terminal: a clear error, no prompt and no hang', async () => {
    const { playbook, inventory } = setUp();
    const run = await runCli(['plan', playbook, '-i', inventory, '--ask-vault-pass']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('--ask-vault-pass: there is no terminal to ask on (stdin is not a TTY)');
  });
});

describe('sshfix diagnose -i', () => {
  test('reads a vaulted inventory and its !vault become password with the vault given', async () => {
    const [, ...body] = fs
      .readFileSync(path.join(FIXTURES, 'become_string.yml'), 'utf8')
      .trimEnd()
      .split('\n');
    const inventory = write(
      'hosts.yml',
      `all:\n  hosts:\n    web1:\n      ansible_host: 192.0.2.10\n      ansible_become_password: !vault |\n${body
        .map((line) => `        ${line.trim()}`)
        .join('\n')}\n`,
    );
    const args = { _: ['diagnose'], inventory, 'ssh-config': '/dev/null', 'connect-timeout': 3 };
    const vault = new Vault([{ id: 'default', secret: Buffer.from('correct horse battery staple') }]);
    expect(diagnoseTargets(args, undefined, undefined, vault)[0]?.spec).toMatchObject({
      becomePassword: 'hunter2-Numbat',
    });
    const run = await runCli([
      'diagnose',
      '-i',
      inventory,
      '--probe-only',
      '--connect-timeout',
      '1',
      '--ask-vault-pass',
    ]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('--ask-vault-pass: there is no terminal to ask on');
    const none = await runCli(['diagnose', '-i', inventory, '--probe-only', '--connect-timeout', '1']);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain(
      `${inventory}:5:39: error: this !vault value is encrypted with Ansible Vault`,
    );
  });
});

describe('the --ask-vault-pass prompt', () => {
  test('turns echo off before the prompt shows: a password typed as soon as it appears is never echoed', async () => {
    // A terminal whose line discipline echoes until raw mode is set: record
    // what the user had been shown when echo went off.
    const shown: string[] = [];
    const output = new PassThrough();
    output.on('data', (chunk: Buffer) => shown.push(chunk.toString('utf8')));
    const input = Object.assign(new PassThrough(), {
      isTTY: true,
      promptShownWhenEchoWentOff: undefined as boolean | undefined,
      setRawMode(raw: boolean) {
        if (raw) this.promptShownWhenEchoWentOff = shown.join('').includes('Vault password: ');
        return this;
      },
    });
    const asked = vaultFromArgs({ 'ask-vault-pass': true } as unknown as ParsedArgs, {
      input: input as unknown as NodeJS.ReadStream,
      output: output as unknown as NodeJS.WriteStream,
    });
    input.write('typed secret\r');
    const vault = await asked;
    expect(shown.join('')).toContain('Vault password: ');
    expect(input.promptShownWhenEchoWentOff).toBe(false);
    expect(vault.hasPasswords).toBe(true);
  });
});
