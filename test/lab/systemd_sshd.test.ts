/**
 * sshd under systemd (Debian 13, OpenSSH 10), started by ssh.service or by
 * ssh.socket (Ubuntu >= 22.10's way). Under socket activation a SIGHUP makes
 * sshd re-execute without the socket's descriptor and die ("fatal: Cannot
 * bind any address"), and sshd_config's Port is ignored: ssh.socket's
 * ListenStream decides. sshfix must converge, keep sessions, refuse what
 * would not take effect, and restore the units as it found them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  describeLabKinds,
  LAB_START_TIMEOUT_MS,
  labInventory,
  startLab,
  SYSTEMD_SERVICE,
  SYSTEMD_SOCKET,
  type Lab,
  type LabHost,
} from './lab.js';
import { runCli } from '../support/cli.js';

interface JsonTask {
  task: string;
  status: string;
  error?: string;
  warnings: string[];
}
interface JsonHost {
  changed: number;
  failed: number;
  tasks: JsonTask[];
}

const REPO = process.cwd();
const CONFIRM_TIMEOUT_S = 20;

/**
 * Taken after a connection: under socket activation ssh.service is active
 * only once a connection has started it, and sshfix's own connection does.
 */
const UNIT_STATES =
  'for u in ssh.service ssh.socket; do echo "$u $(systemctl is-enabled $u) $(systemctl is-active $u)"; done';

describeLabKinds('sshd managed through systemd', [SYSTEMD_SERVICE, SYSTEMD_SOCKET], (kind) => {
  let lab: Lab;
  let work: string;
  let inventory: string;

  beforeAll(async () => {
    lab = await startLab({
      id: `sys${kind.sshdUnit === 'socket' ? 'k' : 's'}${process.pid % 10_000}`,
      hosts: 3,
      ...kind,
    });
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-sys-'));
    inventory = path.join(work, 'inventory.yml');
    fs.writeFileSync(inventory, labInventory(lab));
  }, LAB_START_TIMEOUT_MS);

  afterAll(async () => {
    await lab?.destroy();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  async function apply(
    playbook: string,
    host: LabHost,
    extra: string[] = [],
  ): Promise<{ code: number; stderr: string; hosts: Record<string, JsonHost> }> {
    const run = await runCli([
      'apply',
      playbook,
      '-i',
      inventory,
      '--known-hosts',
      lab.knownHostsFile,
      '-l',
      host.name,
      '--format',
      'json',
      '--confirm-timeout',
      String(CONFIRM_TIMEOUT_S),
      ...extra,
    ]);
    try {
      return { ...run, hosts: (JSON.parse(run.stdout) as { hosts: Record<string, JsonHost> }).hosts };
    } catch {
      throw new Error(`no JSON from sshfix (exit ${run.code}): ${run.stdout}\n${run.stderr}`);
    }
  }

  function playbook(name: string, text: string): string {
    const file = path.join(work, name);
    fs.writeFileSync(file, text);
    return file;
  }

  /** An ssh session that stays open until the test lets it end; resolves with what it printed. */
  async function openSession(
    host: LabHost,
  ): Promise<{ release(): Promise<{ code: number; stdout: string }> }> {
    const flag = `/tmp/sshfix-session-${Date.now()}`;
    const session = lab.ssh(host, `echo open; while [ ! -e ${flag} ]; do sleep 0.2; done; echo survived`, {
      timeoutMs: 300_000,
    });
    const started = Date.now();
    while ((await host.exec(`pgrep -f 'while \\[ ! -e ${flag}'`)).code !== 0) {
      if (Date.now() - started > 60_000) throw new Error('the ssh session did not start');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return {
      async release() {
        await host.exec(`touch ${flag}`);
        return session;
      },
    };
  }

  test('fix-connection-reset.yml converges with no failed handler; sessions stay up; a second run changes nothing', async () => {
    const host = lab.hosts[0]!;
    expect((await lab.ssh(host, 'true')).code).toBe(0);
    const unitsBefore = (await host.exec(UNIT_STATES)).stdout;
    const session = await openSession(host);
    const pb = path.join(REPO, 'playbooks', 'fix-connection-reset.yml');
    const first = await apply(pb, host, ['-e', `admin_network=${lab.workstationAddress}/32`]);
    const failed = first.hosts[host.name]!.tasks.filter((t) => t.status === 'failed');
    expect(failed).toEqual([]);
    expect(first.code).toBe(0);
    expect(first.hosts[host.name]!.changed).toBeGreaterThan(0);
    expect(first.hosts[host.name]!.tasks.find((t) => t.task === 'reload sshd')?.status).toBe('changed');

    const effective = await host.exec('/usr/sbin/sshd -T | grep -E "^(maxstartups|maxauthtries) "');
    expect(effective.stdout.split('\n').sort()).toEqual(['', 'maxauthtries 6', 'maxstartups 30:30:100']);
    // The running sshd took the change: a new connection gets the new limits (sshd -T shows the files).
    expect(await session.release()).toMatchObject({ code: 0, stdout: 'open\nsurvived\n' });
    expect((await lab.ssh(host, 'true', { from: lab.workstationAddress })).code).toBe(0);
    expect((await host.exec(UNIT_STATES)).stdout).toBe(unitsBefore);
    expect(await host.sshdLog()).not.toMatch(/Cannot bind any address/);

    const second = await apply(pb, host, ['-e', `admin_network=${lab.workstationAddress}/32`]);
    expect(second.code).toBe(0);
    expect(second.hosts[host.name]!.changed).toBe(0);
  });

  test('a change the new connection cannot confirm is rolled back, and the units are left as they were', async () => {
    const host = lab.hosts[1]!;
    expect((await lab.ssh(host, 'true')).code).toBe(0);
    const unitsBefore = (await host.exec(UNIT_STATES)).stdout;
    expect(unitsBefore).toMatch(/^ssh\.service \S+ active$/m);
    const configBefore = await host.readFile('/etc/ssh/sshd_config');
    const pb = playbook(
      'allowusers.yml',
      `- hosts: all
  tasks:
    - name: sshd settings
      sshd_config: { settings: { AllowUsers: nobody } }
      notify: reload sshd
  handlers:
    - name: reload sshd
      service: { name: sshd, state: reloaded }
`,
    );
    const forced = await apply(pb, host, ['--force']);
    expect(forced.code).toBe(1);
    const task = forced.hosts[host.name]!.tasks.find((t) => t.task === 'sshd settings')!;
    expect(task.error).toMatch(/^rolled back: a new SSH connection to port 22 failed after the change: /);
    expect(task.error).not.toMatch(/incomplete/);
    expect(await host.readFile('/etc/ssh/sshd_config')).toBe(configBefore);
    expect((await host.exec('cat /var/backups/sshfix/*/outcome')).stdout).toBe('restored\n');
    expect((await host.exec(UNIT_STATES)).stdout).toBe(unitsBefore);
    expect((await lab.ssh(host, 'echo in')).stdout).toBe('in\n');
  });

  if (kind.sshdUnit === 'socket') {
    test('Port under ssh.socket: refused before anything changes, since the socket decides where sshd listens', async () => {
      const host = lab.hosts[2]!;
      const configBefore = await host.readFile('/etc/ssh/sshd_config');
      const pb = playbook(
        'port.yml',
        `- hosts: all
  tasks:
    - name: sshd ports
      sshd_config: { settings: { Port: [22, 2222] } }
      notify: reload sshd
  handlers:
    - name: reload sshd
      service: { name: sshd, state: reloaded }
`,
      );
      for (const extra of [[], ['--force']]) {
        const run = await apply(pb, host, extra);
        expect(run.code).toBe(1);
        const task = run.hosts[host.name]!.tasks.find((t) => t.task === 'sshd ports')!;
        expect(task.status).toBe('failed');
        expect(task.error).toMatch(/^refused: sshd on this host is socket-activated \(ssh\.socket\)/);
        expect(task.error).toMatch(/Nothing was changed on this host/);
      }
      expect(await host.readFile('/etc/ssh/sshd_config')).toBe(configBefore);
      expect((await host.exec('ls /var/backups/sshfix 2>/dev/null | wc -l')).stdout.trim()).toBe('0');
    });
  }
});
