/**
 * Secrets never leak (issue #4; TRAPS.md "`echo PASSWORD | sudo -S` shows the
 * password in process lists and logs"): a canary sudo password, required by
 * a real sudo rule on the host, is used for a full apply (guards, backup,
 * timer, validate, write, reload, verify, confirmation over a new
 * connection) and never appears in stdout, stderr, the JSON document, the
 * --verbose trace, the host's logs and backups, or the remote process list
 * sampled every 50 ms during the run.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeLab, startLab, type Lab, type LabHost } from './lab.js';
import { runCli } from '../support/cli.js';

const CANARY = 'Canary-sudo-Pw-7f3a9c';
const USER = 'deploy';

describeLab('secrets stay secret', () => {
  let lab: Lab;
  let host: LabHost;
  let work: string;
  let inventory: string;
  let playbook: string;
  let samplerPid = '';

  beforeAll(async () => {
    lab = await startLab({ id: 'sec', hosts: 1 });
    host = lab.hosts[0]!;
    const key = fs.readFileSync(`${lab.privateKeyFile}.pub`, 'utf8');
    // /home is the machine's: the user's home lives in the host's own /run.
    const setup = [
      'command -v sudo >/dev/null || { echo "sudo is not installed (apt-get install -y sudo)" >&2; exit 1; }',
      `useradd -M -d /run/home-${USER} -s /bin/sh ${USER}`,
      `printf '%s:%s\\n' ${USER} '${CANARY}' | chpasswd`,
      `mkdir -p /run/home-${USER}/.ssh && cat > /run/home-${USER}/.ssh/authorized_keys`,
      `chown -R ${USER}: /run/home-${USER} && chmod 700 /run/home-${USER}/.ssh`,
      `echo '${USER} ALL=(ALL:ALL) ALL' > /etc/sudoers.d/${USER} && chmod 0440 /etc/sudoers.d/${USER}`,
    ].join(' && ');
    const r = await host.exec(setup, { stdin: key });
    if (r.code !== 0) throw new Error(`setting up ${USER}: ${r.stderr}`);
    // Without the password sudo must refuse: the rule really requires it.
    const noPassword = await host.exec(`su -s /bin/sh ${USER} -c 'sudo -n true'`);
    if (noPassword.code === 0) throw new Error('the sudo rule does not require a password');

    work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-sec-'));
    inventory = path.join(work, 'inventory.yml');
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
        `      ansible_become_password: ${CANARY}`,
        '',
      ].join('\n'),
    );
    playbook = path.join(work, 'playbook.yml');
    fs.writeFileSync(
      playbook,
      `- name: needs root
  hosts: all
  tasks:
    - name: sshd limits
      sshd_config: { settings: { MaxAuthTries: 4 } }
      notify: reload sshd
    - name: a root-owned file
      file: { dest: /etc/sshfix-secret-test, content: "x\\n", validate: "test -f %s" }
  handlers:
    - name: reload sshd
      service: { name: sshd, state: reloaded }
`,
    );
  }, 120_000);

  afterAll(async () => {
    if (samplerPid) await host?.exec(`kill ${samplerPid}`);
    await lab?.destroy();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('a canary sudo password is used, and appears nowhere', async () => {
    const started = await host.exec(
      '(while :; do ps -eo args >> /run/ps-samples; sleep 0.05; done) </dev/null >/dev/null 2>&1 & echo $!',
    );
    samplerPid = started.stdout.trim();
    expect(samplerPid).toMatch(/^\d+$/);

    const common = ['-i', inventory, '--known-hosts', lab.knownHostsFile, '--confirm-timeout', '20'];
    const json = await runCli(['apply', playbook, ...common, '--format', 'json']);
    const plan = await runCli(['plan', playbook, ...common, '--verbose']);
    await host.exec('sed -i "/^MaxAuthTries 4$/d" /etc/ssh/sshd_config && rm -f /etc/sshfix-secret-test');
    const text = await runCli(['apply', playbook, ...common, '--diff', '--verbose']);

    await host.exec(`kill ${samplerPid}`);
    samplerPid = '';

    // The password really was needed and used: everything converged as root.
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout) as { hosts: Record<string, { changed: number; failed: number }> };
    expect(parsed.hosts[host.name]).toMatchObject({ changed: 3, failed: 0 });
    expect(text.code).toBe(0);
    expect(await host.readFile('/etc/sshfix-secret-test')).toBe('x\n');
    expect((await host.exec('stat -c %U /etc/sshfix-secret-test')).stdout.trim()).toBe('root');

    const samples = await host.readFile('/run/ps-samples');
    // The sampler saw the run (sudo relaying sshfix's shell), so its silence about the password means something.
    expect(samples).toMatch(/sudo -S -p {2}-- sh -c|sudo -S -p '' -- sh -c/);
    const logs = await host.exec(
      'cat /var/log/auth.log; cat /var/backups/sshfix/*/manifest /var/backups/sshfix/*/restore.sh 2>/dev/null',
    );
    const places: Record<string, string> = {
      'apply --format json stdout': json.stdout,
      'apply --format json stderr': json.stderr,
      'plan --verbose stdout': plan.stdout,
      'plan --verbose stderr': plan.stderr,
      'apply --diff --verbose stdout': text.stdout,
      'apply --diff --verbose stderr': text.stderr,
      'remote process list': samples,
      'host logs and backups': logs.stdout,
    };
    for (const [where, content] of Object.entries(places)) {
      expect({ where, leaks: content.includes(CANARY) }).toEqual({ where, leaks: false });
    }
  }, 180_000);
});
