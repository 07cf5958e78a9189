/**
 * sshd must run what is on disk, not just have it there: a drop-in written
 * and never reloaded (by hand, or by a run cut off before its reload) makes
 * the files say what the playbook wants while sshd still runs the old
 * configuration. Real sshd hosts, reloaded with the sysvinit script.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeLab, startLab, type Lab, type LabHost } from './lab.js';
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

describeLab('a reload that never happened', () => {
  let lab: Lab;
  let work: string;

  beforeAll(async () => {
    lab = await startLab({ id: 'rld', hosts: 1 });
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-rld-'));
  }, 120_000);

  afterAll(async () => {
    await lab?.destroy();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  async function apply(host: LabHost): Promise<{ code: number; host: JsonHost }> {
    const inventory = path.join(work, 'inventory.yml');
    fs.writeFileSync(
      inventory,
      `all:\n  hosts:\n    ${host.name}: { ansible_host: ${host.address}, ansible_user: root }\n  vars:\n    ansible_ssh_private_key_file: ${lab.privateKeyFile}\n`,
    );
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

  async function reloads(host: LabHost): Promise<number> {
    return ((await host.readFile('/var/log/auth.log')).match(/Received SIGHUP; restarting/g) ?? []).length;
  }

  test('a drop-in written by hand and never reloaded: apply reloads sshd (under its rollback), then has nothing to do', async () => {
    const host = lab.hosts[0]!;
    await host.writeFile('/etc/ssh/sshd_config.d/40-by-hand.conf', 'MaxAuthTries 4\n');
    const reloadsBefore = await reloads(host);
    const first = await apply(host);
    expect(first.code).toBe(0);
    const task = first.host.tasks[0]!;
    expect(task.status).toBe('changed');
    expect(task.messages.join('\n')).toMatch(
      /sshd \(pid \d+\) has not loaded what is on disk: .*\/etc\/ssh\/sshd_config\.d\/40-by-hand\.conf changed at \S+, after sshd last read its configuration at /,
    );
    expect(await reloads(host)).toBe(reloadsBefore + 1);
    const outcomes = await host.exec('cat /var/backups/sshfix/*/outcome');
    expect(outcomes.stdout.trim().split('\n')).toEqual(['confirmed']);

    const second = await apply(host);
    expect(second.code).toBe(0);
    expect(second.host.changed).toBe(0);
    expect(await reloads(host)).toBe(reloadsBefore + 1);
  }, 120_000);
});
