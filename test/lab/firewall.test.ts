/**
 * The firewall resource against real iptables, ufw and nftables in the lab
 * hosts' own network namespaces. Each host blocks the admin workstation in its
 * own way; the controller (still allowed) runs sshfix with backend auto, and a
 * NEW connection from the workstation's address proves the fix.
 *
 * TRAPS.md ("Firewalls"): a REJECT with tcp-reset shows as "Connection
 * refused", a DROP as a time-out; an ACCEPT after a DROP is dead; ufw re-adding
 * prints "Skipping adding existing rule"; nft rules are deleted by handle.
 *
 * On both kinds of lab host: plain (Debian 12) and systemd (Debian 13, iptables
 * 1.8.11 and ufw 0.36 over nf_tables, fail2ban running).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  describeLabKinds,
  LAB_START_TIMEOUT_MS,
  PLAIN,
  startLab,
  SYSTEMD_SERVICE,
  type Lab,
  type LabHost,
} from './lab.js';
import { runCli } from '../support/cli.js';

interface TaskReport {
  status: string;
  diff: string;
  messages: string[];
  warnings: string[];
  commands: string[];
  error?: string;
}
interface Report {
  hosts: Record<string, { changed: number; failed: number; unreachable: boolean; tasks: TaskReport[] }>;
}

const V6_NET = '2001:db8::/32';

/** iptables-save without comments and counters: what "unrelated rules stay" is compared on. */
async function saveLines(host: LabHost, program: string): Promise<string[]> {
  const out = await host.exec(`${program} 2>/dev/null`);
  return out.stdout
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.replace(/ \[\d+:\d+\]$/, ''));
}

describeLabKinds(
  'firewall: SSH from the admin workstation gets through every backend',
  [PLAIN, SYSTEMD_SERVICE],
  (kind) => {
    let lab: Lab;
    let work: string;
    let inventory: string;
    let playbook: string;
    let ws: string;
    let hosts: Record<'drop' | 'reject' | 'ufw' | 'nft', LabHost>;
    const common = (): string[] => ['-i', inventory, '--known-hosts', lab.knownHostsFile];

    beforeAll(async () => {
      lab = await startLab({
        id: kind.kind === 'plain' ? 'fw' : `fw${process.pid % 10_000}`,
        hosts: 4,
        ...kind,
      });
      ws = lab.workstationAddress;
      const [drop, reject, ufw, nft] = lab.hosts as [LabHost, LabHost, LabHost, LabHost];
      hosts = { drop, reject, ufw, nft };
      // The workstation is x.x.0.2, the controller x.x.0.1: a /31 covers the workstation and .3 only.
      const wsNet31 = `${ws}/31`;
      const setups: [LabHost, string][] = [
        // (a) iptables DROP of the workstation on port 22, next to unrelated rules; iptables-persistent layout.
        [
          drop,
          [
            'mkdir -p /etc/iptables',
            'iptables -N blocklist',
            'iptables -A blocklist -s 192.0.2.0/24 -j DROP',
            'iptables -A INPUT -j blocklist',
            `iptables -A INPUT -s ${ws} -p tcp --dport 22 -j DROP`,
            'iptables -A INPUT -p tcp --dport 80 -m comment --comment "web server" -j ACCEPT',
            'ip6tables -A INPUT -s 2001:db8:1::/48 -p tcp --dport 22 -j DROP',
          ].join(' && '),
        ],
        // (b) REJECT with tcp-reset of a /31 around the workstation (not removable: it covers more),
        //     and an ACCEPT for the workstation after it: an ACCEPT after a DROP is dead. With
        //     iptables-legacy: the variant that holds the rules is the one used (never both).
        [
          reject,
          [
            `iptables-legacy -A INPUT -s ${wsNet31} -p tcp --dport 22 -j REJECT --reject-with tcp-reset`,
            `iptables-legacy -A INPUT -s ${ws}/32 -p tcp -m tcp --dport 22 -j ACCEPT`,
          ].join(' && '),
        ],
        // (c) ufw denying the workstation; the controller allowed first so the test keeps access.
        [
          ufw,
          [
            `ufw allow from ${lab.controllerAddress} to any port 22 proto tcp`,
            `ufw deny from ${ws} to any port 22`,
            'ufw allow 80/tcp',
            'ufw --force enable',
          ].join(' >/dev/null && '),
        ],
        // (d) an nftables table of its own with a drop rule for the workstation.
        [
          nft,
          [
            'nft add table inet lockout',
            `nft add chain inet lockout input '{ type filter hook input priority 0; policy accept; }'`,
            'nft add rule inet lockout input tcp dport 8080 drop',
            `nft add rule inet lockout input ip saddr ${ws} tcp dport 22 drop`,
          ].join(' && '),
        ],
      ];
      for (const [host, script] of setups) {
        const r = await host.exec(script);
        if (r.code !== 0) throw new Error(`setting up ${host.name}: ${r.stderr}`);
      }
      work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-fw-'));
      inventory = path.join(work, 'inventory.yml');
      const hostLines = lab.hosts
        .map((h) => `    ${h.name}: { ansible_host: ${h.address}, ansible_user: root }`)
        .join('\n');
      fs.writeFileSync(
        inventory,
        `all:\n  hosts:\n${hostLines}\n  vars:\n    ansible_ssh_private_key_file: ${lab.privateKeyFile}\n`,
      );
      playbook = path.join(work, 'firewall.yml');
      fs.writeFileSync(
        playbook,
        `- name: admin access\n  hosts: all\n  tasks:\n    - name: let the workstation in\n      firewall:\n        allow_ssh_from: ["${ws}", "${V6_NET}"]\n`,
      );
    }, LAB_START_TIMEOUT_MS);

    afterAll(async () => {
      await lab?.destroy();
      if (work) fs.rmSync(work, { recursive: true, force: true });
    });

    test('before: the workstation cannot open a new connection (DROP times out, tcp-reset is refused)', async () => {
      const [drop, reject, ufw, nft] = await Promise.all(
        [hosts.drop, hosts.reject, hosts.ufw, hosts.nft].map((h) => lab.ssh(h, 'true', { from: ws })),
      );
      expect(drop!.code).not.toBe(0);
      expect(drop!.stderr).toMatch(/timed out/i);
      expect(reject!.code).not.toBe(0);
      expect(reject!.stderr).toMatch(/Connection refused/);
      expect(ufw!.stderr).toMatch(/timed out/i);
      expect(nft!.stderr).toMatch(/timed out/i);
      // The controller still gets in everywhere.
      for (const h of lab.hosts) expect((await lab.ssh(h, 'true')).code).toBe(0);
    });

    test('plan shows the chains before/after and the literal commands, and changes nothing', async () => {
      const before = await saveLines(hosts.drop, 'iptables-save');
      const plan = await runCli(['plan', playbook, ...common(), '--format', 'json']);
      expect(plan.stderr).toBe('');
      const report = JSON.parse(plan.stdout) as Report;
      const task = (h: LabHost): TaskReport => report.hosts[h.name]!.tasks[0]!;

      const drop = task(hosts.drop);
      expect(drop.status).toBe('changed');
      expect(drop.messages[0]).toBe(
        'backend auto → iptables (no active ufw, firewalld or nftables ruleset; ufw is installed but inactive)',
      );
      expect(drop.commands).toEqual([
        `iptables-nft -I INPUT 1 -s ${ws}/32 -p tcp -m tcp --dport 22 -j ACCEPT`,
        `iptables-nft -t filter -D INPUT -s ${ws}/32 -p tcp -m tcp --dport 22 -j DROP`,
        'ip6tables-nft -I INPUT 1 -s 2001:db8::/32 -p tcp -m tcp --dport 22 -j ACCEPT',
        'ip6tables-nft -t filter -D INPUT -s 2001:db8:1::/48 -p tcp -m tcp --dport 22 -j DROP',
      ]);
      expect(drop.diff).toContain(`+-A INPUT -s ${ws}/32 -p tcp -m tcp --dport 22 -j ACCEPT`);
      expect(drop.diff).toContain(`--A INPUT -s ${ws}/32 -p tcp -m tcp --dport 22 -j DROP`);
      // The blocklist chain is someone else's policy (192.0.2.0/24): it stays.
      expect(drop.diff).not.toContain('--A blocklist');
      // /etc/iptables exists but has no rules files yet: both are written.
      expect(drop.diff).toContain('+++ /etc/iptables/rules.v4');
      expect(drop.diff).toContain('+++ /etc/iptables/rules.v6');

      const reject = task(hosts.reject);
      expect(reject.commands).toEqual([
        `iptables-legacy -t filter -D INPUT -s ${ws}/32 -p tcp -m tcp --dport 22 -j ACCEPT`,
        `iptables-legacy -I INPUT 1 -s ${ws}/32 -p tcp -m tcp --dport 22 -j ACCEPT`,
        'ip6tables-legacy -I INPUT 1 -s 2001:db8::/32 -p tcp -m tcp --dport 22 -j ACCEPT',
      ]);
      expect(reject.messages.join('\n')).toMatch(/an ACCEPT after a DROP is dead/);

      const ufw = task(hosts.ufw);
      expect(ufw.messages[0]).toBe('backend auto → ufw (ufw is active)');
      expect(ufw.commands).toEqual([
        `ufw insert 1 allow from ${ws} to any port 22 proto tcp`,
        // IPv6 rules are numbered after every IPv4 rule: position 5 is the first IPv6 rule.
        'ufw insert 5 allow from 2001:db8::/32 to any port 22 proto tcp',
        `ufw delete deny from ${ws} to any port 22`,
      ]);
      expect(ufw.diff).toContain(`+[ 1] allow from ${ws} to any port 22 proto tcp`);

      const nft = task(hosts.nft);
      expect(nft.messages[0]).toBe('backend auto → nftables (table inet lockout holds rules)');
      expect(nft.commands.slice(0, 2)).toEqual([
        `nft insert rule inet lockout input ip6 saddr 2001:db8::/32 tcp dport 22 accept`,
        `nft insert rule inet lockout input ip saddr ${ws} tcp dport 22 accept`,
      ]);
      expect(nft.commands[2]).toMatch(/^nft delete rule inet lockout input handle \d+$/);
      expect(nft.diff).toContain(`+\t\tip saddr ${ws} tcp dport 22 accept`);
      expect(nft.diff).toContain(`-\t\tip saddr ${ws} tcp dport 22 drop`);
      // The stock /etc/nftables.conf (loaded at boot) gets the allow rule in its input chain.
      expect(nft.diff).toContain('+++ /etc/nftables.conf');

      expect(await saveLines(hosts.drop, 'iptables-save')).toEqual(before);
    });

    test('apply lets the workstation in, keeps unrelated rules, persists, and a second run changes nothing', async () => {
      const v4Before = await saveLines(hosts.drop, 'iptables-save');
      const rejectBefore = await saveLines(hosts.reject, 'iptables-legacy-save');
      const nftBefore = (await hosts.nft.exec('nft list ruleset')).stdout;

      const apply = await runCli(['apply', playbook, ...common(), '--format', 'json']);
      expect(apply.stderr).toBe('');
      const report = JSON.parse(apply.stdout) as Report;
      for (const h of lab.hosts) {
        expect({ host: h.name, ...report.hosts[h.name], tasks: undefined }).toMatchObject({
          host: h.name,
          failed: 0,
          changed: 1,
        });
      }
      expect(apply.code).toBe(0);

      const after = await Promise.all(lab.hosts.map((h) => lab.ssh(h, 'true', { from: ws })));
      for (const [i, r] of after.entries())
        expect(`${lab.hosts[i]!.name}: ${r.code} ${r.stderr}`).toBe(`${lab.hosts[i]!.name}: 0 `);

      // (a) Only our line came and only the workstation's DROP went; it is first in INPUT.
      const ours = `-A INPUT -s ${ws}/32 -p tcp -m tcp --dport 22 -j ACCEPT`;
      const v4After = await saveLines(hosts.drop, 'iptables-save');
      expect(v4After.filter((l) => l !== ours)).toEqual(
        v4Before.filter((l) => !l.includes(`-s ${ws}/32 -p tcp -m tcp --dport 22 -j DROP`)),
      );
      expect(v4After.find((l) => l.startsWith('-A INPUT'))).toBe(ours);
      const rulesV4 = await hosts.drop.readFile('/etc/iptables/rules.v4');
      expect(rulesV4).toContain(ours);
      expect(rulesV4).toContain('-A blocklist -s 192.0.2.0/24 -j DROP');
      expect((await hosts.drop.exec('iptables-restore --test < /etc/iptables/rules.v4')).code).toBe(0);
      expect(await hosts.drop.readFile('/etc/iptables/rules.v6')).toContain(
        '-A INPUT -s 2001:db8::/32 -p tcp -m tcp --dport 22 -j ACCEPT',
      );

      // (b) The broad REJECT stays; the ACCEPT now comes first.
      const rejectAfter = await saveLines(hosts.reject, 'iptables-legacy-save');
      expect(rejectAfter.filter((l) => l.startsWith('-A INPUT'))).toEqual([
        ours,
        rejectBefore.find((l) => l.includes('REJECT'))!,
      ]);
      // Nothing went to the other variant.
      expect((await saveLines(hosts.reject, 'iptables-nft-save')).filter((l) => l.startsWith('-A'))).toEqual(
        [],
      );

      // (c) ufw: the allow is rule 1, the deny is gone, the controller's allow stays.
      const status = (await hosts.ufw.exec('ufw status numbered')).stdout;
      expect(status).toMatch(new RegExp(`\\[ 1\\] 22/tcp\\s+ALLOW IN\\s+${ws.replace(/\./g, '\\.')}\\s`));
      expect(status).not.toMatch(/DENY/);
      expect(status).toContain(lab.controllerAddress);

      // (d) nft: the unrelated 8080 rule stays; the drop went; the accept is first; the boot file still loads.
      const nftAfter = (await hosts.nft.exec('nft list ruleset')).stdout;
      expect(nftAfter).toContain('tcp dport 8080 drop');
      expect(nftAfter).not.toContain(`ip saddr ${ws} tcp dport 22 drop`);
      expect(nftBefore).toContain(`ip saddr ${ws} tcp dport 22 drop`);
      expect((await hosts.nft.exec('nft -c -f /etc/nftables.conf')).code).toBe(0);
      expect(await hosts.nft.readFile('/etc/nftables.conf')).toContain(`ip saddr ${ws} tcp dport 22 accept`);

      const second = await runCli(['apply', playbook, ...common(), '--format', 'json']);
      const secondReport = JSON.parse(second.stdout) as Report;
      expect(second.code).toBe(0);
      for (const h of lab.hosts)
        expect(`${h.name} ${secondReport.hosts[h.name]?.changed}`).toBe(`${h.name} 0`);
      const planAgain = await runCli(['plan', playbook, ...common(), '--detailed-exitcode']);
      expect(planAgain.code).toBe(0);
    });
  },
);
