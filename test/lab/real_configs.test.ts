/**
 * sshd_config trees taken from real projects, against real OpenSSH servers:
 * Match LocalPort/LocalAddress blocks (dev-sec ansible-collection-hardening's
 * opensshd.conf.j2), an Include inside Match blocks whose file has its own
 * `Match all` (openssh-portable regress/servcfginclude.sh), a configuration
 * only `sshd -T -C` rejects, and a symlinked /etc/ssh/sshd_config
 * (dotfiles-managed /etc). Each ends with a new connection getting in.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeLab, startLab, type Lab, type LabHost } from './lab.js';
import { runCli, type CliRun } from '../support/cli.js';

interface JsonTask {
  task: string;
  status: string;
  error?: string;
  warnings: string[];
  messages: string[];
}
interface JsonHost {
  unreachable: boolean;
  error?: string;
  changed: number;
  failed: number;
  tasks: JsonTask[];
}

const SSHD_CONFIG = '/etc/ssh/sshd_config';
const CONFIRM_TIMEOUT_S = 30;

describeLab('real-world sshd_config trees', () => {
  let lab: Lab;
  let work: string;
  let h: LabHost[];

  beforeAll(async () => {
    lab = await startLab({ id: 'real', hosts: 4 });
    h = lab.hosts;
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-real-'));
  }, 180_000);

  afterAll(async () => {
    await lab?.destroy();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  let fileCount = 0;
  function writeWork(name: string, text: string): string {
    const file = path.join(work, `${++fileCount}-${name}`);
    fs.writeFileSync(file, text);
    return file;
  }

  const settingsPlaybook = (settings: string) =>
    writeWork(
      'playbook.yml',
      `
- name: sshd
  hosts: all
  tasks:
    - name: sshd settings
      sshd_config:
        settings: ${settings}
      notify: reload sshd
  handlers:
    - name: reload sshd
      service: { name: sshd, state: reloaded }
`,
    );

  async function apply(
    pb: string,
    host: LabHost,
    extra: string[] = [],
  ): Promise<CliRun & { host: JsonHost; task: JsonTask }> {
    const inventory = writeWork(
      'inventory.ini',
      `${host.name} ansible_host=${host.address} ansible_user=root ansible_ssh_private_key_file=${lab.privateKeyFile}\n`,
    );
    const run = await runCli([
      'apply',
      pb,
      '-i',
      inventory,
      '--known-hosts',
      lab.knownHostsFile,
      '--format',
      'json',
      '--confirm-timeout',
      String(CONFIRM_TIMEOUT_S),
      ...extra,
    ]);
    let report: { hosts: Record<string, JsonHost> };
    try {
      report = JSON.parse(run.stdout) as { hosts: Record<string, JsonHost> };
    } catch {
      throw new Error(`no JSON from sshfix (exit ${run.code}): ${run.stdout}\n${run.stderr}`);
    }
    const result = report.hosts[host.name]!;
    return { ...run, host: result, task: result.tasks.find((t) => t.task === 'sshd settings')! };
  }

  async function shell(host: LabHost, script: string): Promise<string> {
    const r = await host.exec(script);
    if (r.code !== 0) throw new Error(`${host.name}: ${script}: ${r.stderr}`);
    return r.stdout;
  }

  /** `sshd -T` values of `key`; with `spec`, for that connection (`-C`). */
  async function sshdT(host: LabHost, key: string, spec?: string): Promise<string[]> {
    const c = spec === undefined ? '' : ` -C '${spec}'`;
    const out = await shell(host, `/usr/sbin/sshd -T${c} | grep -i '^${key} ' || true`);
    return out.trim().split('\n').filter(Boolean);
  }

  async function reloads(host: LabHost): Promise<number> {
    return ((await host.readFile('/var/log/auth.log')).match(/Received SIGHUP; restarting/g) ?? []).length;
  }

  async function outcomes(host: LabHost): Promise<string[]> {
    const r = await host.exec('cat /var/backups/sshfix/*/outcome 2>/dev/null');
    return r.stdout.trim().split('\n').filter(Boolean);
  }

  async function expectNewConnectionWorks(host: LabHost): Promise<void> {
    const r = await lab.ssh(host, 'echo in');
    expect({ code: r.code, stdout: r.stdout.trim() }).toEqual({ code: 0, stdout: 'in' });
  }

  async function restartSshd(host: LabHost): Promise<void> {
    await host.stopSshd();
    await host.startSshd();
  }

  test('Match LocalPort and Match LocalAddress: applied, verified and confirmed, then nothing to do', async () => {
    const host = h[0]!;
    // The shape of dev-sec's opensshd.conf.j2 with match blocks on the local end of the connection.
    await shell(
      host,
      `printf 'Match LocalPort 22\\n  X11Forwarding no\\nMatch LocalAddress ${host.address}\\n  PermitTTY yes\\n' >> ${SSHD_CONFIG}`,
    );
    await restartSshd(host);
    const pb = settingsPlaybook('{ MaxAuthTries: 3, ClientAliveInterval: 300 }');

    const first = await apply(pb, host);
    expect({ code: first.code, status: first.task.status, error: first.task.error }).toEqual({
      code: 0,
      status: 'changed',
      error: undefined,
    });
    expect(await outcomes(host)).toEqual(['confirmed']);
    const connection = `user=root,host=${lab.controllerAddress},addr=${lab.controllerAddress},laddr=${host.address},lport=22`;
    expect(await sshdT(host, 'maxauthtries', connection)).toEqual(['maxauthtries 3']);
    expect(await sshdT(host, 'x11forwarding', connection)).toEqual(['x11forwarding no']);

    const second = await apply(pb, host);
    expect({ code: second.code, changed: second.host.changed }).toEqual({ code: 0, changed: 0 });
    await expectNewConnectionWorks(host);
  }, 120_000);

  test('servcfginclude.sh: an Include inside Match blocks converges in one apply, included files untouched', async () => {
    const host = h[1]!;
    const matchBlocks = [
      'Match host=a',
      '\tBanner /aa',
      '',
      'Match host b',
      '\tBanner /bb',
      '\tInclude /etc/ssh/sshd_config.i.* # comment',
      '',
      'Match host=c',
      '\tInclude /etc/ssh/sshd_config.i.* # comment',
      '\tBanner /cc',
      '',
      'Match host m',
      '\tInclude /etc/ssh/sshd_config.i.*',
      '',
      'Match Host d',
      '\tBanner /dd # comment',
      '',
      'Match Host e',
      '\tBanner /ee',
      '\tInclude /etc/ssh/sshd_config.i.*',
      '',
      'Match Host=f',
      '\tInclude /etc/ssh/sshd_config.i.*',
      '\tBanner /ff',
      '',
      'Match Host n',
      '\tInclude /etc/ssh/sshd_config.i.*',
      '',
    ].join('\n');
    const included: Record<string, string> = {
      '/etc/ssh/sshd_config.i.0': 'Match host xxxxxx\n',
      '/etc/ssh/sshd_config.i.1': ['a', 'b', 'c', 'd', 'e', 'f']
        .map((x) => `Match host ${x}\n\tBanner /${x.repeat(3)}\n`)
        .join('\n'),
      '/etc/ssh/sshd_config.i.2': [
        ...['a', 'b', 'c', 'd', 'e', 'f'].map((x) => `Match host ${x}\n\tBanner /${x.repeat(4)}\n`),
        'Match all\n\tBanner /xxxx\n',
      ].join('\n'),
    };
    await host.writeFile(SSHD_CONFIG, `${await host.readFile(SSHD_CONFIG)}${matchBlocks}`);
    for (const [file, text] of Object.entries(included)) await host.writeFile(file, text);
    await restartSshd(host);
    const trial = (x: string) => `host=${x},user=test,addr=127.0.0.1`;
    // What sshd itself makes of the tree before the change (the regress test's trials).
    expect(await sshdT(host, 'banner', trial('m'))).toEqual(['banner /xxxx']);
    expect(await sshdT(host, 'banner', trial('x'))).toEqual(['banner none']);
    const reloadsBefore = await reloads(host);

    const pb = settingsPlaybook('{ Banner: /etc/issue.net }');
    const first = await apply(pb, host);
    expect({ code: first.code, status: first.task.status, error: first.task.error }).toEqual({
      code: 0,
      status: 'changed',
      error: undefined,
    });
    expect(first.task.messages).toEqual(['Banner (unset, default) → /etc/issue.net']);
    // One warning, each line of a Match block named once.
    expect(first.task.warnings).toHaveLength(1);
    const named = first.task.warnings[0]!.split(': ').at(-1)!.split('; ');
    expect(new Set(named).size).toBe(named.length);
    expect(first.task.warnings[0]).toMatch(/^also set on 19 lines inside Match blocks/);
    for (const [file, text] of Object.entries(included))
      expect([file, await host.readFile(file)]).toEqual([file, text]);
    expect(await reloads(host)).toBe(reloadsBefore + 1);

    expect(await sshdT(host, 'banner')).toEqual(['banner /etc/issue.net']);
    expect(await sshdT(host, 'banner', trial('x'))).toEqual(['banner /etc/issue.net']);
    expect(await sshdT(host, 'banner', trial('m'))).toEqual(['banner /xxxx']);
    expect(await sshdT(host, 'banner', trial('a'))).toEqual(['banner /aa']);
    expect(await sshdT(host, 'banner', trial('c'))).toEqual(['banner /ccc']);

    const second = await apply(pb, host);
    expect({ code: second.code, changed: second.host.changed }).toEqual({ code: 0, changed: 0 });
    expect(await reloads(host)).toBe(reloadsBefore + 1);
    await expectNewConnectionWorks(host);
  }, 120_000);

  test('AuthenticationMethods any under a Match User root: refused with the message of sshd -T -C, before any reload', async () => {
    const host = h[2]!;
    await shell(
      host,
      "printf 'Match User root\\n  AuthenticationMethods publickey\\n' > /etc/ssh/sshd_config.d/10-root.conf",
    );
    await restartSshd(host);
    const before = await host.readFile(SSHD_CONFIG);
    const reloadsBefore = await reloads(host);
    const pb = settingsPlaybook('{ AuthenticationMethods: any }');

    for (const extra of [[], ['--force']]) {
      const run = await apply(pb, host, extra);
      expect(run.code).toBe(1);
      expect(run.task.status).toBe('failed');
      expect(run.task.error).toMatch(
        /^refused: sshd -T -C for sshfix's own connection rejects the new configuration: .*"any" must appear alone in AuthenticationMethods/,
      );
    }
    expect(await host.readFile(SSHD_CONFIG)).toBe(before);
    expect(await reloads(host)).toBe(reloadsBefore);
    expect(await outcomes(host)).toEqual([]);
    await expectNewConnectionWorks(host);
  }, 120_000);

  test('a symlinked /etc/ssh/sshd_config is written through, stays a link, and is restored through it', async () => {
    const host = h[3]!;
    const real = '/etc/dotfiles/ssh/sshd_config';
    await shell(
      host,
      `mkdir -p /etc/dotfiles/ssh && mv ${SSHD_CONFIG} ${real} && ln -s ../dotfiles/ssh/sshd_config ${SSHD_CONFIG}`,
    );
    await restartSshd(host);
    const original = await host.readFile(real);
    const isLink = async () => (await host.exec(`test -L ${SSHD_CONFIG}`)).code === 0;

    const first = await apply(settingsPlaybook('{ MaxAuthTries: 3 }'), host);
    expect({ code: first.code, status: first.task.status, error: first.task.error }).toEqual({
      code: 0,
      status: 'changed',
      error: undefined,
    });
    expect(await isLink()).toBe(true);
    expect(await host.readFile(real)).toContain('\nMaxAuthTries 3\n');
    expect(await sshdT(host, 'maxauthtries')).toEqual(['maxauthtries 3']);
    const second = await apply(settingsPlaybook('{ MaxAuthTries: 3 }'), host);
    expect(second.host.changed).toBe(0);

    // A change the new connection refutes is rolled back into the link's target.
    const applied = await host.readFile(real);
    const forced = await apply(settingsPlaybook('{ AllowUsers: nobody }'), host, ['--force']);
    expect(forced.code).toBe(1);
    expect(forced.task.error).toMatch(/^rolled back: a new SSH connection to port 22 failed/);
    expect(await isLink()).toBe(true);
    expect(await host.readFile(real)).toBe(applied);
    expect(applied).not.toBe(original);
    await expectNewConnectionWorks(host);
  }, 150_000);
});
