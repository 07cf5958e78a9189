/**
 * The shipped playbook against the causes of "Connection reset by peer" it
 * exists for: on each host one layer blocks the admin workstation; after
 * `sshfix apply playbooks/fix-connection-reset.yml` a NEW connection from the
 * workstation succeeds, and a second run changes nothing. On both kinds of lab
 * host: plain, and systemd with socket-activated sshd (Ubuntu >= 22.10's way),
 * where the playbook's sshd reload must restart ssh.service instead.
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
  SYSTEMD_SOCKET,
  type Lab,
  type LabHost,
} from './lab.js';
import { runCli } from '../support/cli.js';

const PLAYBOOK = path.resolve('playbooks/fix-connection-reset.yml');

describeLabKinds('playbooks/fix-connection-reset.yml', [PLAIN, SYSTEMD_SOCKET], (kind) => {
  let lab: Lab;
  let work: string;
  let inventory: string;

  /** One way to block the workstation per host. */
  const blocks: Array<{ what: string; block: (h: LabHost, ws: string) => Promise<unknown> }> = [
    {
      what: 'a hosts.deny entry',
      block: (h, ws) => h.exec(`printf '# local policy\\nvsftpd: ALL\\nsshd: ${ws}\\n' >> /etc/hosts.deny`),
    },
    {
      what: 'an iptables DROP',
      block: (h, ws) => h.exec(`iptables -A INPUT -s ${ws} -p tcp --dport 22 -j DROP`),
    },
    {
      what: 'an iptables REJECT',
      block: (h, ws) =>
        h.exec(`iptables -A INPUT -s ${ws} -p tcp --dport 22 -j REJECT --reject-with tcp-reset`),
    },
    {
      what: 'a ufw deny',
      block: (h, ws) =>
        h.exec(
          `ufw allow from ${ws.replace(/\.\d+$/, '.1')} to any port 22 proto tcp && ufw deny from ${ws} to any port 22 proto tcp && ufw --force enable`,
        ),
    },
    {
      what: 'a fail2ban ban',
      block: async (h, ws) => {
        await h.startFail2ban();
        return h.exec(`fail2ban-client set sshd banip ${ws}`);
      },
    },
  ];

  beforeAll(async () => {
    lab = await startLab({
      id: kind.kind === 'plain' ? 'fixrst' : `fixrst${process.pid % 1000}`,
      hosts: blocks.length,
      ...kind,
    });
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-fixrst-'));
    for (const [i, b] of blocks.entries()) {
      const result = (await b.block(lab.hosts[i]!, lab.workstationAddress)) as {
        code: number;
        stderr: string;
      };
      if (result.code !== 0) throw new Error(`blocking with ${b.what}: ${result.stderr}`);
    }
    inventory = path.join(work, 'inventory.yml');
    fs.writeFileSync(inventory, labInventory(lab));
  }, LAB_START_TIMEOUT_MS);

  afterAll(async () => {
    await lab?.destroy();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('every layer admits the workstation afterwards, and a second run changes nothing', async () => {
    const fromWorkstation = (h: LabHost) =>
      lab.ssh(h, 'true', { from: lab.workstationAddress, timeoutMs: 20000 });
    const before = await Promise.all(lab.hosts.map(fromWorkstation));
    before.forEach((r, i) => expect(`${blocks[i]!.what}: ${r.code}`).not.toBe(`${blocks[i]!.what}: 0`));

    const common = ['-i', inventory, '--known-hosts', lab.knownHostsFile];
    const plan = await runCli(['plan', PLAYBOOK, ...common, '--detailed-exitcode']);
    expect(plan.stderr).toBe('');
    expect(plan.code).toBe(2);

    const apply = await runCli(['apply', PLAYBOOK, ...common, '--format', 'json']);
    const report = JSON.parse(apply.stdout) as {
      hosts: Record<
        string,
        {
          failed: number;
          unreachable: boolean;
          tasks: Array<{ task: string; status: string; error?: string }>;
        }
      >;
    };
    for (const h of lab.hosts) {
      // A skipped task has an error too: why it was skipped (OpenSSH 9.2 has no PerSourcePenaltyExemptList).
      const failures = report.hosts[h.name]!.tasks.filter((t) => t.status === 'failed').map(
        (t) => `${t.task}: ${t.error}`,
      );
      expect({ host: h.name, failures }).toEqual({ host: h.name, failures: [] });
    }
    expect(apply.code).toBe(0);

    const after = await Promise.all(lab.hosts.map(fromWorkstation));
    after.forEach((r, i) =>
      expect(`${blocks[i]!.what}: ${r.code} ${r.stderr.trim()}`).toBe(`${blocks[i]!.what}: 0 `),
    );
    if (kind.sshdUnit === 'socket') {
      // The reload handler restarted ssh.service: a SIGHUP would have made sshd die without the socket.
      for (const h of lab.hosts) {
        expect(report.hosts[h.name]!.tasks.find((t) => t.task === 'reload sshd')).toMatchObject({
          status: 'changed',
        });
        expect(await h.sshdLog()).not.toMatch(/Cannot bind any address/);
        expect((await h.exec('systemctl is-active ssh.socket ssh.service')).stdout).toBe('active\nactive\n');
      }
    }
    // The unrelated hosts.deny rule and comment are still there.
    expect(await lab.hosts[0]!.readFile('/etc/hosts.deny')).toContain('# local policy\nvsftpd: ALL\n');

    const second = await runCli(['apply', PLAYBOOK, ...common, '--format', 'json']);
    const secondReport = JSON.parse(second.stdout) as { hosts: Record<string, { changed: number }> };
    for (const h of lab.hosts)
      expect(`${h.name} changed=${secondReport.hosts[h.name]!.changed}`).toBe(`${h.name} changed=0`);
    expect(second.code).toBe(0);
  });
});
