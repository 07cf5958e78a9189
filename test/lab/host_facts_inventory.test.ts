/**
 * `sshfix inventory --facts --format json` against real hosts: Debian 12 with
 * sshd started by hand, Debian 13 under systemd with ssh.service, and with
 * ssh.socket. Every fact is checked against what the host shows by other
 * means (ldd, sshd -V, /etc/debian_version, systemctl), and changes when the
 * host changes: a firewall of another kind takes over, fail2ban stops.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../support/cli.js';
import type { AnsibleFacts } from '../../src/executor/host_facts.js';
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

describeLabKinds(
  'inventory --facts reads what the host runs',
  [PLAIN, SYSTEMD_SERVICE, SYSTEMD_SOCKET],
  (kind) => {
    let lab: Lab;
    let host: LabHost;
    let dir: string;
    let inventory: string;

    beforeAll(async () => {
      const suffix =
        kind.kind === 'plain' ? '' : `${kind.sshdUnit === 'socket' ? 'k' : 'v'}${process.pid % 10_000}`;
      lab = await startLab({ id: `hfi${suffix}`, hosts: 1, fail2ban: true, ...kind });
      host = lab.hosts[0]!;
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-facts-'));
      inventory = path.join(dir, 'inventory.yml');
      fs.writeFileSync(inventory, labInventory(lab));
    }, LAB_START_TIMEOUT_MS);

    afterAll(async () => {
      await lab?.destroy();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    /** The host's ansible_facts as `inventory --facts --format json` prints them. */
    async function facts(extra: string[] = []): Promise<AnsibleFacts> {
      const run = await runCli([
        'inventory',
        '-i',
        inventory,
        '--facts',
        '--format',
        'json',
        '--known-hosts',
        lab.knownHostsFile,
        ...extra,
      ]);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      const doc = JSON.parse(run.stdout) as { hosts: Record<string, { ansible_facts: AnsibleFacts }> };
      return doc.hosts[host.name]!.ansible_facts;
    }

    const shell = async (script: string): Promise<string> => {
      const result = await host.exec(script);
      expect(result.code).toBe(0);
      return result.stdout + result.stderr;
    };

    test('the distribution, init system, sshd release, unit and libwrap are those of the host', async () => {
      const found = await facts();
      const pointRelease = (await shell('cat /etc/debian_version')).trim();
      const release = /OpenSSH_(\d+\.\d+(?:p\d+)?)/.exec(await shell('/usr/sbin/sshd -V 2>&1; true'))?.[1];
      // Another way to ask: the dynamic loader's view (sshd-session does libwrap's check since OpenSSH 9.8).
      const libwrap = await shell(
        'for b in /usr/sbin/sshd /usr/lib/openssh/sshd-session; do [ -f "$b" ] && ldd "$b"; done | grep -c libwrap || true',
      );
      expect(found).toMatchObject({
        distribution: 'Debian',
        distribution_version: pointRelease,
        distribution_major_version: kind.kind === 'plain' ? '12' : '13',
        os_family: 'Debian',
        service_mgr: kind.kind === 'plain' ? 'sysvinit' : 'systemd',
        sshd: {
          version: release,
          unit: kind.kind === 'plain' ? null : 'ssh',
          socket_activated: kind.sshdUnit === 'socket',
          libwrap: Number(libwrap.trim()) > 0,
        },
      });
      expect(found.sshd.libwrap).toBe(true);
      if (kind.kind === 'systemd') {
        const active = await shell('systemctl is-active ssh.socket ssh.service; true');
        expect(active.split('\n')[0]).toBe(kind.sshdUnit === 'socket' ? 'active' : 'inactive');
      }
    });

    test('one script a host, and the firewall in use follows the host from none to iptables, nftables and ufw', async () => {
      const traced = await runCli([
        'inventory',
        '-i',
        inventory,
        '--facts',
        '--known-hosts',
        lab.knownHostsFile,
        '--verbose',
      ]);
      expect(traced.code).toBe(0);
      expect(traced.stderr.match(new RegExp(`^\\[${host.name}\\] script`, 'gm'))).toHaveLength(1);

      expect((await facts()).firewall_backend).toBe('none');
      await shell('iptables -A INPUT -s 192.0.2.10 -p tcp --dport 2222 -j DROP');
      expect((await facts()).firewall_backend).toBe('iptables');
      await shell('iptables -D INPUT -s 192.0.2.10 -p tcp --dport 2222 -j DROP');
      await shell(
        'nft add table inet sshfixtest && nft add chain inet sshfixtest input "{ type filter hook input priority 0; }" && nft add rule inet sshfixtest input tcp dport 2222 drop',
      );
      expect((await facts()).firewall_backend).toBe('nftables');
      await shell('nft delete table inet sshfixtest');
      await shell(
        `ufw allow from ${lab.controllerAddress} to any port 22 proto tcp >/dev/null && ufw --force enable`,
      );
      expect((await facts()).firewall_backend).toBe('ufw');
      await shell('ufw --force disable');
    });

    test('fail2ban running, then stopped', async () => {
      expect((await facts()).fail2ban_running).toBe(true);
      await shell(kind.kind === 'plain' ? 'fail2ban-client stop' : 'systemctl stop fail2ban.service');
      expect((await facts()).fail2ban_running).toBe(false);
    });

    test('--limit selects the hosts read; a host that cannot be reached is reported, exit 4', async () => {
      const elsewhere = path.join(dir, 'two.yml');
      // An address of this lab's subnet that no host holds.
      const unused = host.address.replace(/\.\d+$/, '.250');
      fs.writeFileSync(
        elsewhere,
        labInventory(lab).replace('  hosts:\n', `  hosts:\n    nobody: { ansible_host: ${unused} }\n`),
      );
      const limited = await runCli([
        'inventory',
        '-i',
        elsewhere,
        '--facts',
        '--known-hosts',
        lab.knownHostsFile,
        '-l',
        host.name,
        '--format',
        'json',
      ]);
      expect(limited.code).toBe(0);
      expect(Object.keys((JSON.parse(limited.stdout) as { hosts: object }).hosts)).toEqual([host.name]);
      const all = await runCli([
        'inventory',
        '-i',
        elsewhere,
        '--facts',
        '--known-hosts',
        lab.knownHostsFile,
        '--connect-timeout',
        '3',
      ]);
      expect(all.code).toBe(4);
      expect(all.stdout).toMatch(new RegExp(`^nobody +unreachable: `, 'm'));
      expect(all.stdout).toMatch(new RegExp(`^${host.name} +Debian `, 'm'));
    });
  },
);
