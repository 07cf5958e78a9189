/**
 * Fault injection against real OpenSSH hosts (issue #4, "Never lock anyone
 * out"). Every scenario ends by proving that a NEW ssh connection gets in,
 * and that every file the run touched is entirely old or entirely new.
 *
 * Faults are injected at exact points of a run by the run itself: a `file`
 * task or handler whose `validate` command cuts the network or kills sshd
 * runs right before that task's write, and handlers run after every task and
 * before verification — so "during the write" and "during the verification"
 * are deterministic, not races against a poller.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeLab, startLab, type Lab, type LabHost } from './lab.js';
import { runCli, type CliRun } from '../support/cli.js';

const CONFIRM_TIMEOUT_S = 12;
/** Jest runs from the repository root (package.json). */
const REPO = process.cwd();

interface JsonTask {
  task: string;
  status: string;
  error?: string;
  warnings: string[];
}
interface JsonHost {
  unreachable: boolean;
  error?: string;
  changed: number;
  failed: number;
  tasks: JsonTask[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describeLab('transactional apply: confirm or revert under faults', () => {
  let lab: Lab;
  let work: string;
  let h: LabHost[];

  beforeAll(async () => {
    lab = await startLab({ id: 'flt', hosts: 6 });
    h = lab.hosts;
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-flt-'));
  }, 180_000);

  afterAll(async () => {
    await lab?.destroy();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  function inventory(hosts: LabHost[]): string {
    const file = path.join(work, `inventory-${hosts.map((x) => x.name).join('-')}.yml`);
    const lines = hosts.map((x) => `        ${x.name}: { ansible_host: ${x.address}, ansible_user: root }`);
    fs.writeFileSync(
      file,
      `all:\n  children:\n    fleet:\n      hosts:\n${lines.join('\n')}\n  vars:\n    ansible_ssh_private_key_file: ${lab.privateKeyFile}\n`,
    );
    return file;
  }

  let playbookCount = 0;
  function playbook(text: string): string {
    const file = path.join(work, `playbook-${++playbookCount}.yml`);
    fs.writeFileSync(file, text);
    return file;
  }

  function cliArgs(pb: string, hosts: LabHost[], extra: string[] = []): string[] {
    return [
      'apply',
      pb,
      '-i',
      inventory(hosts),
      '--known-hosts',
      lab.knownHostsFile,
      '--format',
      'json',
      '--confirm-timeout',
      String(CONFIRM_TIMEOUT_S),
      '--connect-timeout',
      '4',
      ...extra,
    ];
  }

  async function apply(
    pb: string,
    hosts: LabHost[],
    extra: string[] = [],
  ): Promise<CliRun & { hosts: Record<string, JsonHost> }> {
    const run = await runCli(cliArgs(pb, hosts, extra));
    let parsed: { hosts: Record<string, JsonHost> };
    try {
      parsed = JSON.parse(run.stdout) as { hosts: Record<string, JsonHost> };
    } catch {
      throw new Error(`no JSON from sshfix (exit ${run.code}): ${run.stdout}\n${run.stderr}`);
    }
    return { ...run, hosts: parsed.hosts };
  }

  async function read(host: LabHost, file: string): Promise<string | null> {
    const r = await host.exec(`cat -- '${file}'`);
    return r.code === 0 ? r.stdout : null;
  }

  async function snapshot(host: LabHost, files: string[]): Promise<Map<string, string | null>> {
    return new Map(await Promise.all(files.map(async (f) => [f, await read(host, f)] as const)));
  }

  async function expectUnchanged(host: LabHost, before: Map<string, string | null>): Promise<void> {
    for (const [file, content] of before)
      expect({ file, content: await read(host, file) }).toEqual({ file, content });
  }

  async function expectNewConnectionWorks(host: LabHost): Promise<void> {
    const r = await lab.ssh(host, 'echo in');
    expect({ code: r.code, stdout: r.stdout.trim(), stderr: r.code === 0 ? '' : r.stderr }).toEqual({
      code: 0,
      stdout: 'in',
      stderr: '',
    });
  }

  async function sshdT(host: LabHost, key: string): Promise<string[]> {
    const r = await host.exec(`/usr/sbin/sshd -T | grep -i '^${key} ' || true`);
    return r.stdout.trim().split('\n').filter(Boolean);
  }

  async function outcomes(host: LabHost): Promise<string[]> {
    const r = await host.exec('cat /var/backups/sshfix/*/outcome 2>/dev/null');
    return r.stdout.trim().split('\n').filter(Boolean);
  }

  async function waitUntil(
    what: string,
    condition: () => Promise<boolean>,
    timeoutMs: number,
  ): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (await condition()) return;
      await sleep(250);
    }
    if (!(await condition())) throw new Error(`timed out waiting for ${what}`);
  }

  const SSHD_CONFIG = '/etc/ssh/sshd_config';

  const sshdPlaybook = (settings: string, extraHandlers = '') => `
- name: sshd
  hosts: all
  tasks:
    - name: sshd settings
      sshd_config:
        settings: ${settings}
      notify: [reload sshd${extraHandlers ? ', fault' : ''}]
  handlers:
    - name: reload sshd
      service: { name: sshd, state: reloaded }
${extraHandlers}`;

  /**
   * Faults land at an exact point of the change batch: a `service` task or
   * handler restarts an init script of the test's own, which blocks or cuts
   * the network right there (validations all run before anything changes).
   */
  async function faultService(host: LabHost, name: string, body: string): Promise<void> {
    await host.writeFile(`/etc/init.d/${name}`, `#!/bin/sh\n${body}\n`);
    const r = await host.exec(`chmod 755 /etc/init.d/${name}`);
    if (r.code !== 0) throw new Error(`cannot install /etc/init.d/${name}: ${r.stderr}`);
  }
  const faultHandler = (name: string) => `    - name: fault
      service: { name: ${name}, state: restarted }
`;

  test('(1) AllowUsers of another user: refused by the guard; with --force, the new connection fails and it is rolled back', async () => {
    const host = h[0]!;
    const before = await snapshot(host, [SSHD_CONFIG]);
    const pb = playbook(sshdPlaybook('{ AllowUsers: nobody }'));

    const refused = await apply(pb, [host]);
    expect(refused.code).toBe(1);
    const task = refused.hosts[host.name]!.tasks.find((t) => t.task === 'sshd settings')!;
    expect(task.status).toBe('failed');
    expect(task.error).toMatch(
      /^refused: this change would lock sshfix out: AllowUsers nobody does not admit root from /,
    );
    await expectUnchanged(host, before);
    expect(await outcomes(host)).toEqual([]);

    const forced = await apply(pb, [host], ['--force']);
    expect(forced.code).toBe(1);
    const forcedTask = forced.hosts[host.name]!.tasks.find((t) => t.task === 'sshd settings')!;
    expect(forcedTask.status).toBe('failed');
    expect(forcedTask.error).toMatch(
      /^rolled back: a new SSH connection to port 22 failed after the change: .*authentication as root failed/,
    );
    expect(forcedTask.warnings.join('\n')).toMatch(
      /applied despite the lockout guard \(--force\): AllowUsers nobody/,
    );
    await expectUnchanged(host, before);
    expect(await sshdT(host, 'allowusers')).toEqual([]);
    expect(await outcomes(host)).toEqual(['restored']);
    await expectNewConnectionWorks(host);
  }, 120_000);

  test('(2) Port 2222 behind a firewall that admits only 22: refused; with --force, rolled back', async () => {
    const host = h[1]!;
    const firewall =
      'iptables -A INPUT -i lo -j ACCEPT && iptables -A INPUT -p tcp --dport 22 -j ACCEPT && iptables -P INPUT DROP';
    expect((await host.exec(firewall)).code).toBe(0);
    try {
      const before = await snapshot(host, [SSHD_CONFIG]);
      const pb = playbook(sshdPlaybook('{ Port: 2222 }'));
      const refused = await apply(pb, [host]);
      expect(refused.code).toBe(1);
      expect(refused.hosts[host.name]!.tasks[0]!.error).toMatch(
        /sshd would move to port 2222, which the firewall does not admit from .*INPUT policy DROP/,
      );
      await expectUnchanged(host, before);

      const forced = await apply(pb, [host], ['--force']);
      expect(forced.code).toBe(1);
      expect(forced.hosts[host.name]!.tasks[0]!.error).toMatch(
        /^rolled back: a new SSH connection to port 2222 failed after the change/,
      );
      await expectUnchanged(host, before);
      expect(await sshdT(host, 'port')).toEqual(['port 22']);
      await expectNewConnectionWorks(host);
    } finally {
      await host.exec('iptables -P INPUT ACCEPT && iptables -F INPUT');
    }
  }, 120_000);

  test('(3) a hosts.deny rule covering the controller: the new connection is reset, rolled back', async () => {
    const host = h[2]!;
    const before = await snapshot(host, ['/etc/hosts.deny']);
    const pb = playbook(`
- name: wrappers
  hosts: all
  tasks:
    - name: deny the controller
      file:
        dest: /etc/hosts.deny
        content: "sshd: ${lab.controllerAddress}\\n"
`);
    const run = await apply(pb, [host]);
    expect(run.code).toBe(1);
    // libwrap pauses 5 s before the reset (TRAPS.md), longer than the 4 s connect timeout used here.
    expect(run.hosts[host.name]!.tasks[0]!.error).toMatch(
      /^rolled back: a new SSH connection to port 22 failed after the change: .*(reset by peer|no SSH handshake)/,
    );
    await expectUnchanged(host, before);
    await expectNewConnectionWorks(host);
  }, 120_000);

  test('(4) the controller is killed with SIGKILL right after the reload: the host restores itself within the deadline', async () => {
    const host = h[3]!;
    const bin = path.join(REPO, 'dist/cli/bin.js');
    expect(fs.existsSync(bin)).toBe(true); // npm run build (pretest) makes it
    const before = await snapshot(host, [SSHD_CONFIG]);
    const reloadsBefore = ((await read(host, '/var/log/auth.log')) ?? '').split('Received SIGHUP').length;
    // The second handler keeps the run busy after the reload, so the kill lands between reload and confirmation.
    await faultService(host, 'sshfix-fault4', 'sleep 60');
    const pb = playbook(sshdPlaybook('{ MaxAuthTries: 2 }', faultHandler('sshfix-fault4')));
    const child = spawn(process.execPath, [bin, ...cliArgs(pb, [host])], { cwd: REPO, stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await waitUntil(
        'the new configuration to be live',
        async () =>
          ((await read(host, SSHD_CONFIG)) ?? '').includes('MaxAuthTries 2') &&
          ((await read(host, '/var/log/auth.log')) ?? '').split('Received SIGHUP').length > reloadsBefore,
        60_000,
      );
    } finally {
      child.kill('SIGKILL');
    }
    await exited;
    const killedAt = Date.now();
    expect(await sshdT(host, 'maxauthtries')).toEqual(['maxauthtries 2']);
    await waitUntil(
      'the host to restore by itself',
      async () => (await outcomes(host)).includes('restored'),
      (CONFIRM_TIMEOUT_S + 10) * 1000,
    );
    expect(Date.now() - killedAt).toBeLessThan((CONFIRM_TIMEOUT_S + 10) * 1000);
    await expectUnchanged(host, before);
    expect(await sshdT(host, 'maxauthtries')).toEqual(['maxauthtries 6']);
    await expectNewConnectionWorks(host);
  }, 150_000);

  describe('(5) the connection is cut (packets dropped on the host)', () => {
    const cut = () => `iptables -I INPUT -s ${lab.controllerAddress} -j DROP`;
    const uncut = (host: LabHost) => host.exec(`iptables -D INPUT -s ${lab.controllerAddress} -j DROP`);

    test('during the write: no partial file, and what was already written is restored', async () => {
      const host = h[4]!;
      const before = await snapshot(host, ['/etc/hosts.allow', '/etc/issue.net']);
      await faultService(host, 'sshfix-cut5', cut());
      const pb = playbook(`
- name: cut during write
  hosts: all
  tasks:
    - name: written before the cut
      file: { dest: /etc/hosts.allow, content: "# fault 5\\nsshd: ALL\\n" }
    - name: the connection is cut here
      service: { name: sshfix-cut5, state: restarted }
    - name: written after the cut
      file: { dest: /etc/issue.net, content: "new banner\\n" }
`);
      try {
        const run = await apply(pb, [host], ['--command-timeout', '8']);
        expect(run.code).toBe(4);
        expect(run.hosts[host.name]!.unreachable).toBe(true);
        expect(run.hosts[host.name]!.error).toMatch(
          /the host restores its previous state by itself by .* \(dead-man timer/,
        );
        await waitUntil(
          'the timer to restore',
          async () => (await outcomes(host)).includes('restored'),
          (CONFIRM_TIMEOUT_S + 10) * 1000,
        );
      } finally {
        await uncut(host);
      }
      await expectUnchanged(host, before);
      expect((await host.exec('ls -a /etc | grep -c sshfix || true')).stdout.trim()).toBe('0');
      await expectNewConnectionWorks(host);
    }, 150_000);

    test('during the verification: the live change is restored and sshd reloaded', async () => {
      const host = h[4]!;
      await host.exec('rm -rf /var/backups/sshfix');
      const before = await snapshot(host, [SSHD_CONFIG]);
      await faultService(host, 'sshfix-cut5b', cut());
      const pb = playbook(sshdPlaybook('{ MaxAuthTries: 3 }', faultHandler('sshfix-cut5b')));
      try {
        const run = await apply(pb, [host], ['--command-timeout', '8']);
        expect(run.code).toBe(4);
        expect(run.hosts[host.name]!.error).toMatch(/restores its previous state by itself/);
        await waitUntil(
          'the timer to restore',
          async () => (await outcomes(host)).includes('restored'),
          (CONFIRM_TIMEOUT_S + 10) * 1000,
        );
      } finally {
        await uncut(host);
      }
      await expectUnchanged(host, before);
      expect(await sshdT(host, 'maxauthtries')).toEqual(['maxauthtries 6']);
      await expectNewConnectionWorks(host);
    }, 150_000);
  });

  test('(6) sshd killed mid-run: the confirmation fails, the restore brings sshd back', async () => {
    const host = h[2]!;
    await host.exec('rm -rf /var/backups/sshfix');
    const before = await snapshot(host, [SSHD_CONFIG, '/etc/sshfix-fault6']);
    const pb = playbook(
      sshdPlaybook(
        '{ MaxAuthTries: 3 }',
        `    - name: fault
      file: { dest: /etc/sshfix-fault6, content: "x\\n", validate: "kill -9 $(cat /run/sshd.pid) && test -f %s" }
`,
      ),
    );
    const run = await apply(pb, [host]);
    expect(run.code).toBe(1);
    const sshdTask = run.hosts[host.name]!.tasks.find((t) => t.task === 'sshd settings')!;
    expect(sshdTask.error).toMatch(
      /^rolled back: a new SSH connection to port 22 failed after the change: .*refused/,
    );
    await expectUnchanged(host, before);
    expect(await host.sshdPid()).not.toBeNull();
    await expectNewConnectionWorks(host);
  }, 120_000);

  test('(7) an unreachable host among reachable ones: the others are changed and confirmed', async () => {
    const [a, b, down] = [h[0]!, h[1]!, h[5]!];
    await down.stopSshd();
    try {
      const pb = playbook(`
- name: motd
  hosts: all
  tasks:
    - name: marker
      file: { dest: /etc/sshfix-fault7, content: "converged\\n" }
`);
      const run = await apply(pb, [a, b, down]);
      expect(run.code).toBe(4);
      expect(run.hosts[down.name]!.unreachable).toBe(true);
      for (const up of [a, b]) {
        expect(run.hosts[up.name]!.tasks.map((t) => t.status)).toEqual(['changed']);
        expect(await read(up, '/etc/sshfix-fault7')).toBe('converged\n');
        expect((await outcomes(up)).at(-1)).toBe('confirmed');
        await expectNewConnectionWorks(up);
        await up.exec('rm -f /etc/sshfix-fault7');
      }
      expect(await read(down, '/etc/sshfix-fault7')).toBeNull();
    } finally {
      await down.startSshd();
    }
    await expectNewConnectionWorks(down);
  }, 120_000);

  test('(8) a changed host key: refused before authentication, nothing changed', async () => {
    const host = h[0]!;
    const key = '/etc/ssh/ssh_host_ed25519_key';
    await host.exec(`cp -p ${key} /run/saved_key && cp -p ${key}.pub /run/saved_key.pub`);
    await host.exec(
      `rm -f ${key} ${key}.pub && ssh-keygen -q -t ed25519 -N '' -f ${key} && kill -HUP $(cat /run/sshd.pid)`,
    );
    const before = await snapshot(host, [SSHD_CONFIG]);
    try {
      await sleep(500);
      const run = await apply(playbook(sshdPlaybook('{ MaxAuthTries: 3 }')), [host]);
      expect(run.code).toBe(4);
      expect(run.hosts[host.name]!.error).toMatch(/host key for .* does not match known_hosts/);
      await expectUnchanged(host, before);
      expect(await outcomes(host)).not.toContain('restoring');
    } finally {
      await host.exec(
        `cp -p /run/saved_key ${key} && cp -p /run/saved_key.pub ${key}.pub && kill -HUP $(cat /run/sshd.pid)`,
      );
      await sleep(500);
    }
    await expectNewConnectionWorks(host);
  }, 120_000);

  test('(9) a write that fails (read-only target directory): the earlier write is undone, nothing changed', async () => {
    const host = h[2]!;
    await host.exec(
      'mkdir -p /etc/sshfix-ro && mount --bind /etc/sshfix-ro /etc/sshfix-ro && mount -o remount,bind,ro /etc/sshfix-ro',
    );
    try {
      const before = await snapshot(host, ['/etc/hosts.allow', '/etc/sshfix-ro/x.conf']);
      const pb = playbook(`
- name: read-only
  hosts: all
  tasks:
    - name: first write
      file: { dest: /etc/hosts.allow, content: "# fault 9\\n" }
    - name: write into a read-only directory
      file: { dest: /etc/sshfix-ro/x.conf, content: "x\\n" }
`);
      const run = await apply(pb, [host]);
      expect(run.code).toBe(1);
      const [first, second] = run.hosts[host.name]!.tasks;
      expect(second!.error).toMatch(/writing files failed: .*Read-only file system.*; rolled back$/s);
      expect(first!.error).toBe('rolled back: write into a read-only directory failed');
      await expectUnchanged(host, before);
      await expectNewConnectionWorks(host);
    } finally {
      await host.exec('umount /etc/sshfix-ro; rmdir /etc/sshfix-ro');
    }
  }, 120_000);

  test('--no-rollback applies bare: no backup, no timer', async () => {
    const host = h[1]!;
    await host.exec('rm -rf /var/backups/sshfix');
    const pb = playbook(`
- name: bare
  hosts: all
  tasks:
    - name: marker
      file: { dest: /etc/sshfix-bare, content: "bare\\n" }
`);
    const run = await apply(pb, [host], ['--no-rollback']);
    expect(run.code).toBe(0);
    expect(await read(host, '/etc/sshfix-bare')).toBe('bare\n');
    expect((await host.exec('ls /var/backups/sshfix 2>/dev/null | wc -l')).stdout.trim()).toBe('0');
    await host.exec('rm -f /etc/sshfix-bare');
  }, 60_000);
});
