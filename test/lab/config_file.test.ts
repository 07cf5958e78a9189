/**
 * An ansible.cfg and the environment against real OpenSSH servers, through
 * the built CLI (dist/cli/bin.js, `npm run build` first) in a project
 * directory with its own HOME: the hosts are reached with the remote_user and
 * private_key_file of the file (below the inventory's ansible_user, as in
 * Ansible), and `host_key_checking = False` does exactly what
 * --accept-new-host-keys does: unknown keys are recorded, a changed key is
 * still refused. `--become` turns a run as the configured user into a run
 * as root through sudo.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeLab, startLab, type Lab, type LabHost } from './lab.js';

const BIN = path.resolve('dist/cli/bin.js');

const PLAYBOOK = `- name: config file
  hosts: all
  tasks:
    - name: a file, planned only
      file: { dest: /etc/sshfix-config-test, content: "x\\n" }
`;

interface JsonReport {
  hosts: Record<string, { unreachable: boolean; failed: number; error?: string }>;
}

interface Outcome {
  code: number | null;
  /** Each host: "ok", or "unreachable: <reason>". */
  hosts: Record<string, string>;
  stderr: string;
}

describeLab('ansible.cfg settings on real OpenSSH servers', () => {
  let lab: Lab;
  let a: LabHost;
  let b: LabHost;
  let work: string;

  beforeAll(async () => {
    if (!fs.existsSync(BIN)) throw new Error(`${BIN} is missing: run npm run build first`);
    lab = await startLab({ id: 'cfgfile', hosts: 2 });
    [a, b] = lab.hosts as [LabHost, LabHost];
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-cfgfile-'));
  }, 180000);

  afterAll(async () => {
    await lab?.destroy();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  /**
   * A fresh project (cwd) and home: the lab's key copied into the project,
   * `inventory` as hosts.ini, `config` as ansible.cfg, and an empty
   * ~/.ssh/known_hosts unless `knownHosts` is given.
   */
  function project(
    name: string,
    config: string,
    inventory: string,
    knownHosts = '',
  ): { dir: string; home: string } {
    const dir = path.join(work, name, 'project');
    const home = path.join(work, name, 'home');
    fs.mkdirSync(path.join(dir, 'keys'), { recursive: true, mode: 0o755 });
    fs.mkdirSync(path.join(home, '.ssh'), { recursive: true, mode: 0o700 });
    fs.copyFileSync(lab.privateKeyFile, path.join(dir, 'keys', 'id_lab'));
    fs.chmodSync(path.join(dir, 'keys', 'id_lab'), 0o600);
    fs.writeFileSync(path.join(dir, 'site.yml'), PLAYBOOK);
    fs.writeFileSync(path.join(dir, 'hosts.ini'), inventory);
    fs.writeFileSync(path.join(dir, 'ansible.cfg'), config);
    fs.writeFileSync(path.join(home, '.ssh', 'known_hosts'), knownHosts);
    return { dir, home };
  }

  function plan(
    where: { dir: string; home: string },
    args: string[] = [],
    env: Record<string, string> = {},
    command = 'plan',
  ): Outcome {
    const result = spawnSync(process.execPath, [BIN, command, 'site.yml', '--format', 'json', ...args], {
      cwd: where.dir,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: where.home, ...env },
      encoding: 'utf8',
    });
    const report = JSON.parse(result.stdout) as JsonReport;
    const hosts = Object.fromEntries(
      Object.entries(report.hosts).map(([host, r]) => [
        host,
        // The home differs from run to run; what was said in it does not.
        r.unreachable
          ? `unreachable: ${(r.error ?? '').split(where.home).join('~')}`
          : r.failed > 0
            ? 'failed'
            : 'ok',
      ]),
    );
    return { code: result.status, hosts, stderr: result.stderr };
  }

  const inventoryOf = (extra: Record<string, string> = {}) =>
    [a, b].map((h) => `${h.name} ansible_host=${h.address}${extra[h.name] ?? ''}\n`).join('');

  const knownHostsOf = (home: string) =>
    fs
      .readFileSync(path.join(home, '.ssh', 'known_hosts'), 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .sort();

  test('host_key_checking = False records unknown host keys exactly as --accept-new-host-keys does', () => {
    const settings =
      '[defaults]\ninventory = hosts.ini\nremote_user = root\nprivate_key_file = keys/id_lab\n';

    const strict = project('strict', settings, inventoryOf());
    const refused = plan(strict);
    expect(refused.hosts[a.name]).toMatch(/^unreachable: host key for .* is not in known_hosts/);
    expect(refused.code).toBe(4);
    expect(knownHostsOf(strict.home)).toEqual([]);

    const byFile = project('by-file', `${settings}host_key_checking = False\n`, inventoryOf());
    const byFlag = project('by-flag', settings, inventoryOf());
    const fileRun = plan(byFile);
    const flagRun = plan(byFlag, ['--accept-new-host-keys']);
    expect(fileRun.hosts).toEqual({ [a.name]: 'ok', [b.name]: 'ok' });
    expect(fileRun.code).toBe(0);
    expect(flagRun).toEqual(fileRun);
    const expected = [a, b].map((h) => `${h.address} ${h.hostKeyLine}`).sort();
    expect(knownHostsOf(byFile.home)).toEqual(expected);
    expect(knownHostsOf(byFlag.home)).toEqual(expected);

    // The flag beats the file: --no-accept-new-host-keys checks again.
    const overridden = project('overridden', `${settings}host_key_checking = False\n`, inventoryOf());
    expect(plan(overridden, ['--no-accept-new-host-keys']).code).toBe(4);
  });

  test('with host_key_checking = False, a changed host key is still refused, as with the flag', () => {
    // A's recorded key is B's: to sshfix, A's key changed.
    const wrong = `${a.address} ${b.hostKeyLine}\n${b.address} ${b.hostKeyLine}\n`;
    const settings =
      '[defaults]\ninventory = hosts.ini\nremote_user = root\nprivate_key_file = keys/id_lab\n';
    const byFile = plan(
      project('changed-file', `${settings}host_key_checking = False\n`, inventoryOf(), wrong),
    );
    const byFlag = plan(project('changed-flag', settings, inventoryOf(), wrong), ['--accept-new-host-keys']);
    expect(byFile.hosts[a.name]).toMatch(/^unreachable: host key for .* does not match known_hosts/);
    expect(byFile.hosts[b.name]).toBe('ok');
    expect(byFile.code).toBe(4);
    expect(byFlag).toEqual(byFile);
  });

  test('remote_user of the file is used where the inventory sets no ansible_user; the environment and -u beat it', () => {
    const config =
      '[defaults]\ninventory = hosts.ini\nremote_user = nosuchuser\nprivate_key_file = keys/id_lab\nhost_key_checking = False\n';
    // A names its user in the inventory, B does not.
    const where = project('users', config, inventoryOf({ [a.name]: ' ansible_user=root' }));
    const fromFile = plan(where);
    expect(fromFile.hosts[a.name]).toBe('ok');
    expect(fromFile.hosts[b.name]).toMatch(/^unreachable: .*nosuchuser/);
    expect(fromFile.code).toBe(4);

    expect(plan(where, [], { ANSIBLE_REMOTE_USER: 'root' }).hosts).toEqual({
      [a.name]: 'ok',
      [b.name]: 'ok',
    });
    expect(
      plan(where, [], { ANSIBLE_REMOTE_USER: 'root', SSHFIX_REMOTE_USER: 'nosuchuser' }).hosts[b.name],
    ).toMatch(/^unreachable:/);
    const flag = plan(where, ['-u', 'root'], { SSHFIX_REMOTE_USER: 'nosuchuser' });
    expect(flag.hosts).toEqual({ [a.name]: 'ok', [b.name]: 'ok' });
    expect(flag.code).toBe(0);
  });

  test('private_key_file of the file, relative to its directory, is the key offered', () => {
    const noKey = '[defaults]\ninventory = hosts.ini\nremote_user = root\nhost_key_checking = False\n';
    // No key configured anywhere (no agent, no ~/.ssh/id_*): refused.
    const without = plan(project('no-key', noKey, inventoryOf()), [], {});
    expect(without.hosts[a.name]).toMatch(/^unreachable:/);
    const withKey = plan(project('key', `${noKey}private_key_file = keys/id_lab\n`, inventoryOf()));
    expect(withKey.hosts).toEqual({ [a.name]: 'ok', [b.name]: 'ok' });
    expect(withKey.code).toBe(0);
  });

  test('--become: the remote_user of the file logs in, and sudo makes the run root', async () => {
    const user = 'cfgdeploy';
    const key = fs.readFileSync(`${lab.privateKeyFile}.pub`, 'utf8');
    // /home is the machine's: the user's home lives in the host's own /run.
    const setup = [
      `useradd -M -d /run/home-${user} -s /bin/sh ${user}`,
      `mkdir -p /run/home-${user}/.ssh && cat > /run/home-${user}/.ssh/authorized_keys`,
      `chown -R ${user}: /run/home-${user} && chmod 700 /run/home-${user}/.ssh`,
      `echo '${user} ALL=(ALL:ALL) NOPASSWD: ALL' > /etc/sudoers.d/${user} && chmod 0440 /etc/sudoers.d/${user}`,
    ].join(' && ');
    for (const host of [a, b]) {
      const r = await host.exec(setup, { stdin: key });
      if (r.code !== 0) throw new Error(`setting up ${user}: ${r.stderr}`);
    }
    const config =
      `[defaults]\ninventory = hosts.ini\nremote_user = ${user}\nprivate_key_file = keys/id_lab\n` +
      'host_key_checking = False\n';
    const where = project('become', config, inventoryOf());

    const asUser = plan(where, ['--no-rollback'], {}, 'apply');
    expect(asUser.hosts).toEqual({ [a.name]: 'failed', [b.name]: 'failed' });
    expect(asUser.code).toBe(1);
    expect((await a.exec('test -e /etc/sshfix-config-test')).code).not.toBe(0);

    const asRoot = plan(where, ['--no-rollback', '-b'], {}, 'apply');
    expect(asRoot.hosts).toEqual({ [a.name]: 'ok', [b.name]: 'ok' });
    expect(asRoot.code).toBe(0);
    for (const host of [a, b]) {
      const written = await host.exec('stat -c %U /etc/sshfix-config-test && cat /etc/sshfix-config-test');
      expect(written.stdout).toBe('root\nx\n');
    }
  });
});
