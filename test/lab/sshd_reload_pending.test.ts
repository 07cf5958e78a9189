/**
 * sshd must run what is on disk, not just have it there: a drop-in written
 * and never reloaded (by hand, or by a run cut off before its reload) makes
 * the files say what the playbook wants while sshd still runs the old
 * configuration. On every kind of lab host: the check must not depend on the
 * init system (plain: sysvinit script; systemd: ssh.service, or ssh.socket
 * where a reload means a restart).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  describeLabKinds,
  LAB_START_TIMEOUT_MS,
  labInventory,
  PLAIN,
  startLab,
  SYSTEMD_SERVICE,
  SYSTEMD_SOCKET,
  type Lab,
  type LabHost,
} from './lab.js';
import { runCli } from '../support/cli.js';

const PLAYBOOK = `
- name: limits
  hosts: all
  tasks:
    - name: sshd limits
      sshd_config: { settings: { MaxAuthTries: 4 } }
      notify: reload sshd
  handlers:
    - name: reload sshd
      service: { name: sshd, state: reloaded }
`;

interface JsonHost {
  changed: number;
  tasks: Array<{ task: string; status: string; messages: string[] }>;
}

/**
 * The running listener and how often sshd logged a reload (SIGHUP): a reload
 * shows as one more, a restart (socket activation) as another pid. The
 * journal of a systemd host stores messages a moment after sshd sends them:
 * with `moreThan`, waits (bounded) for the count to pass it or the pid to change.
 */
async function listener(host: LabHost, moreThan?: { pid: number | null; reloads: number }) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const pid = await host.sshdPid();
    const reloads = ((await host.sshdLog()).match(/Received SIGHUP; restarting/g) ?? []).length;
    const moved = moreThan === undefined || pid !== moreThan.pid || reloads > moreThan.reloads;
    if (moved || Date.now() > deadline) return { pid, reloads };
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describeLabKinds('a reload that never happened', [PLAIN, SYSTEMD_SERVICE, SYSTEMD_SOCKET], (kind) => {
  let lab: Lab;
  let work: string;

  beforeAll(async () => {
    const id = `rld${kind.kind === 'plain' ? 'p' : (kind.sshdUnit ?? 'service')[1]}${process.pid % 1000}`;
    lab = await startLab({ id, hosts: 1, ...kind });
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-rld-'));
  }, LAB_START_TIMEOUT_MS);

  afterAll(async () => {
    await lab?.destroy();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  async function apply(host: LabHost): Promise<{ code: number; host: JsonHost }> {
    const inventory = path.join(work, 'inventory.yml');
    fs.writeFileSync(inventory, labInventory(lab));
    const playbook = path.join(work, 'playbook.yml');
    fs.writeFileSync(playbook, PLAYBOOK);
    const run = await runCli([
      'apply',
      playbook,
      '-i',
      inventory,
      '--known-hosts',
      lab.knownHostsFile,
      '--format',
      'json',
    ]);
    const parsed = JSON.parse(run.stdout) as { hosts: Record<string, JsonHost> };
    return { code: run.code, host: parsed.hosts[host.name]! };
  }

  test('a drop-in written by hand and never reloaded: apply reloads sshd (under its rollback), then has nothing to do', async () => {
    const host = lab.hosts[0]!;
    // sshfix's own connection starts a socket-activated sshd: look at the listener once one runs.
    expect((await lab.ssh(host, 'true')).code).toBe(0);
    await host.writeFile('/etc/ssh/sshd_config.d/40-by-hand.conf', 'MaxAuthTries 4\n');
    const before = await listener(host);
    expect(before.pid).not.toBeNull();

    const first = await apply(host);
    expect(first.code).toBe(0);
    const task = first.host.tasks[0]!;
    expect(task.status).toBe('changed');
    expect(task.messages.join('\n')).toMatch(
      /sshd \(pid \d+\) has not loaded what is on disk: .*\/etc\/ssh\/sshd_config\.d\/40-by-hand\.conf changed at \S+, after sshd last read its configuration at /,
    );
    const reloaded = await listener(host, before);
    expect(reloaded.pid !== before.pid || reloaded.reloads === before.reloads + 1).toBe(true);
    const outcomes = await host.exec('cat /var/backups/sshfix/*/outcome');
    expect(outcomes.stdout.trim().split('\n')).toEqual(['confirmed']);

    const second = await apply(host);
    expect(second.code).toBe(0);
    expect(second.host.changed).toBe(0);
    expect(await listener(host)).toEqual(reloaded);
  }, 120_000);
});
