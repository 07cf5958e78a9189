/**
 * An Ansible-written playbook whose become password lives in a vault made by
 * the real `ansible-vault` (issue #16): vars_files (one plain, one encrypted
 * whole), a `!vault` value in the inventory and `-e @FILE`, against a lab
 * host whose sudo rule really needs the password. The password converges the
 * host as root, and no vault plaintext appears in stdout, stderr, the JSON
 * document, the --verbose trace, the plan file or `sshfix show`. A wrong
 * password changes nothing; --ask-vault-pass prompts on a real terminal.
 *
 * Needs `ansible-vault` (Debian package ansible-core,
 * scripts/install-lab-packages.sh); the dist build for the terminal test.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeLab, startLab, type Lab, type LabHost } from './lab.js';
import { runCli } from '../support/cli.js';

const USER = 'vaultdeploy';
const SUDO_PASSWORD = 'Vault-sudo-Pw-5d1e8b';
const APP_TOKEN = 'Vault-app-token-91c2';
const NOTE = 'Vault-note-b7e04a';
const VAULT_PASSWORD = 'lab vault password 3f9d';
const PLAINTEXTS = [SUDO_PASSWORD, APP_TOKEN, NOTE];
const BIN = path.resolve(import.meta.dirname, '../../dist/cli/bin.js');

function ansibleVault(args: string[], cwd: string): string {
  try {
    return execFileSync('ansible-vault', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new Error('ansible-vault is not installed (apt-get install -y ansible-core)', { cause: error });
    throw error;
  }
}

/** Runs the built CLI on a pseudo-terminal (util-linux `script`), typing `typed` once it prompts. */
function onTerminal(args: string[], typed: string): Promise<{ code: number | null; output: string }> {
  const command = [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    let answered = false;
    const collect = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (!answered && output.includes('Vault password: ')) {
        answered = true;
        child.stdin.write(`${typed}\r`);
      }
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

describeLab('Ansible Vault and vars files against a lab host', () => {
  let lab: Lab;
  let host: LabHost;
  let work: string;
  let common: string[];
  let playbook: string;
  let secretsFile: string;
  let passwordScript: string;

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-vault-'));
    // The vaults, made by ansible-vault itself, before any host exists.
    fs.writeFileSync(path.join(work, 'pass.txt'), `${VAULT_PASSWORD}\n`);
    fs.mkdirSync(path.join(work, 'vars'));
    fs.writeFileSync(path.join(work, 'vars/common.yml'), 'max_auth_tries: 4\nmarker_dir: /etc\n');
    fs.writeFileSync(path.join(work, 'vars/vault.yml'), `ansible_become_password: ${SUDO_PASSWORD}\n`);
    ansibleVault(['encrypt', '--vault-password-file', 'pass.txt', 'vars/vault.yml'], work);
    secretsFile = path.join(work, 'extra.yml');
    fs.writeFileSync(secretsFile, `release_note: ${NOTE}\n`);
    ansibleVault(['encrypt', '--vault-id', 'prod@pass.txt', 'extra.yml'], work);
    const token = ansibleVault(
      ['encrypt_string', '--vault-password-file', 'pass.txt', APP_TOKEN, '--name', 'app_token'],
      work,
    );
    // A password program, as teams keep the vault password in a secret store.
    passwordScript = path.join(work, 'vault-pass.sh');
    fs.writeFileSync(passwordScript, `#!/bin/sh\ncat '${path.join(work, 'pass.txt')}'\n`, { mode: 0o755 });

    lab = await startLab({ id: `vlt${process.pid % 10_000}`, hosts: 1 });
    host = lab.hosts[0]!;
    const key = fs.readFileSync(`${lab.privateKeyFile}.pub`, 'utf8');
    const setup = [
      'command -v sudo >/dev/null || { echo "sudo is not installed (apt-get install -y sudo)" >&2; exit 1; }',
      `useradd -M -d /run/home-${USER} -s /bin/sh ${USER}`,
      `printf '%s:%s\\n' ${USER} '${SUDO_PASSWORD}' | chpasswd`,
      `mkdir -p /run/home-${USER}/.ssh && cat > /run/home-${USER}/.ssh/authorized_keys`,
      `chown -R ${USER}: /run/home-${USER} && chmod 700 /run/home-${USER}/.ssh`,
      `echo '${USER} ALL=(ALL:ALL) ALL' > /etc/sudoers.d/${USER} && chmod 0440 /etc/sudoers.d/${USER}`,
    ].join(' && ');
    const r = await host.exec(setup, { stdin: key });
    if (r.code !== 0) throw new Error(`setting up ${USER}: ${r.stderr}`);
    const noPassword = await host.exec(`su -s /bin/sh ${USER} -c 'sudo -n true'`);
    if (noPassword.code === 0) throw new Error('the sudo rule does not require a password');

    const inventory = path.join(work, 'inventory.yml');
    const tokenLines = token
      .trimEnd()
      .split('\n')
      .map((line) => `      ${line}`);
    fs.writeFileSync(
      inventory,
      [
        'all:',
        '  hosts:',
        `    ${host.name}:`,
        `      ansible_host: ${host.address}`,
        `      ansible_user: ${USER}`,
        `      ansible_ssh_private_key_file: ${lab.privateKeyFile}`,
        '      ansible_become: true',
        ...tokenLines,
        '',
      ].join('\n'),
    );
    playbook = path.join(work, 'site.yml');
    fs.writeFileSync(
      playbook,
      `- name: harden, as root
  hosts: all
  vars_files:
    - vars/common.yml
    - vars/vault.yml
  tasks:
    - name: sshd limits
      sshd_config: { settings: { MaxAuthTries: "{{ max_auth_tries }}" } }
    - name: app settings
      file:
        dest: "{{ marker_dir }}/sshfix-vault-app.conf"
        content: "token={{ app_token }}\\nnote={{ release_note }}\\n"
        mode: "0600"
`,
    );
    common = ['-i', inventory, '--known-hosts', lab.knownHostsFile];
  }, 180_000);

  afterAll(async () => {
    await lab?.destroy();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  const APP_CONF = '/etc/sshfix-vault-app.conf';
  const APPLY = ['--confirm-timeout', '20'];

  test('a wrong vault password: exit 1 naming the file, the host untouched', async () => {
    const wrong = path.join(work, 'wrong.txt');
    fs.writeFileSync(wrong, 'not it\n');
    const before = await host.readFile('/etc/ssh/sshd_config');
    const run = await runCli([
      'apply',
      playbook,
      ...common,
      ...APPLY,
      '-e',
      `@${secretsFile}`,
      '--vault-password-file',
      wrong,
    ]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/cannot decrypt (this file|this !vault value): wrong vault password/);
    expect(run.stderr).toMatch(new RegExp(`${work}/(inventory\\.yml:\\d+:\\d+|extra\\.yml:1:1)`));
    expect(await host.readFile('/etc/ssh/sshd_config')).toBe(before);
    expect((await host.exec(`test -e ${APP_CONF}`)).code).not.toBe(0);
  });

  test('the vaulted become password converges the host as root, and no plaintext is printed anywhere', async () => {
    const vaultArgs = ['-e', `@${secretsFile}`, '--vault-password-file', passwordScript];
    const planFile = path.join(work, 'plan.json');
    const plan = await runCli(['plan', playbook, ...common, ...vaultArgs, '--verbose', '--out', planFile]);
    expect({ code: plan.code, stderr: plan.stderr }).toEqual({ code: 0, stderr: expect.any(String) });
    const show = await runCli(['show', planFile]);
    const json = await runCli([
      'apply',
      playbook,
      ...common,
      ...APPLY,
      ...vaultArgs,
      '--format',
      'json',
      '--diff',
    ]);
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout) as { hosts: Record<string, { changed: number; failed: number }> };
    expect(parsed.hosts[host.name]).toMatchObject({ changed: 2, failed: 0 });

    // Root wrote it (sudo took the vaulted password), with the plaintexts in it.
    expect(await host.readFile(APP_CONF)).toBe(`token=${APP_TOKEN}\nnote=${NOTE}\n`);
    expect((await host.exec(`stat -c %U ${APP_CONF}`)).stdout.trim()).toBe('root');
    expect(await host.readFile('/etc/ssh/sshd_config')).toMatch(/^MaxAuthTries 4$/m);

    await host.exec(`rm -f ${APP_CONF}`);
    const text = await runCli(['apply', playbook, ...common, ...APPLY, ...vaultArgs, '--diff', '--verbose']);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('+token=********');

    const places: Record<string, string> = {
      'plan --verbose stdout': plan.stdout,
      'plan --verbose stderr': plan.stderr,
      'plan --out file': fs.readFileSync(planFile, 'utf8'),
      'show stdout': show.stdout + show.stderr,
      'apply --format json stdout': json.stdout,
      'apply --format json stderr': json.stderr,
      'apply --diff --verbose stdout': text.stdout,
      'apply --diff --verbose stderr': text.stderr,
    };
    for (const [where, content] of Object.entries(places)) {
      for (const secret of PLAINTEXTS)
        expect({ where, secret, leaks: content.includes(secret) }).toEqual({ where, secret, leaks: false });
    }
  }, 240_000);

  test('--ask-vault-pass prompts on a terminal, without echo, and the run uses the password', async () => {
    const run = await onTerminal(
      ['plan', playbook, ...common, '-e', `@${secretsFile}`, '--ask-vault-pass'],
      VAULT_PASSWORD,
    );
    expect(run.output).toContain('Vault password: ');
    expect(run.output).not.toContain(VAULT_PASSWORD);
    for (const secret of PLAINTEXTS) expect(run.output).not.toContain(secret);
    expect(run.code).toBe(0);
  }, 120_000);
});
