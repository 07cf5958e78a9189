/**
 * The other shipped playbooks on real hosts: each converges, the host still
 * takes new connections (from OpenSSH and from sshfix's own ssh2 client),
 * and a second run changes nothing. On both kinds of lab host: plain, and
 * systemd with socket-activated sshd (the one where a reload kills sshd).
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
} from './lab.js';
import { runCli } from '../support/cli.js';

describeLabKinds('shipped playbooks', [PLAIN, SYSTEMD_SOCKET], (kind) => {
  let lab: Lab;
  let work: string;
  let inventory: string;

  beforeAll(async () => {
    lab = await startLab({ id: kind.kind === 'plain' ? 'ship' : 'shipsd', hosts: 2, ...kind });
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-ship-'));
    inventory = path.join(work, 'inventory.yml');
    fs.writeFileSync(inventory, labInventory(lab));
  }, LAB_START_TIMEOUT_MS);

  afterAll(async () => {
    await lab?.destroy();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  const converge = async (playbook: string, limit: string) => {
    const common = [
      path.resolve('playbooks', playbook),
      '-i',
      inventory,
      '--known-hosts',
      lab.knownHostsFile,
      '-l',
      limit,
    ];
    const first = await runCli(['apply', ...common, '--format', 'json']);
    expect(first.stderr).toBe('');
    const report = JSON.parse(first.stdout) as { hosts: Record<string, { failed: number; changed: number }> };
    expect(report.hosts[limit]).toMatchObject({ failed: 0 });
    expect(report.hosts[limit]!.changed).toBeGreaterThan(0);
    expect(first.code).toBe(0);
    // sshfix's second run is itself a new ssh2 connection with the new algorithms.
    const second = await runCli(['apply', ...common, '--detailed-exitcode']);
    expect(second.code).toBe(0);
  };

  test('harden-baseline.yml: hardened, still reachable, idempotent', async () => {
    const host = lab.hosts[0]!;
    await converge('harden-baseline.yml', host.name);
    const effective = await host.exec('/usr/sbin/sshd -T');
    expect(effective.stdout).toMatch(/^passwordauthentication no$/m);
    expect(effective.stdout).toMatch(/^permitrootlogin without-password$/m);
    expect(effective.stdout).toMatch(/^ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,/m);
    expect((await lab.ssh(host, 'true')).code).toBe(0);
  });

  test('admit-admin-network.yml: a hosts.deny entry and an iptables DROP of the workstation are lifted', async () => {
    const host = lab.hosts[1]!;
    await host.exec(`printf 'sshd: ${lab.workstationAddress}\\n' >> /etc/hosts.deny`);
    await host.exec(`iptables -I INPUT -s ${lab.workstationAddress} -p tcp --dport 22 -j DROP`);
    expect((await lab.ssh(host, 'true', { from: lab.workstationAddress, timeoutMs: 15000 })).code).not.toBe(
      0,
    );
    await converge('admit-admin-network.yml', host.name);
    expect((await lab.ssh(host, 'true', { from: lab.workstationAddress })).code).toBe(0);
  });
});
