/**
 * tcp_wrappers against Debian's real sshd (linked with libwrap): a
 * hosts.deny rule locks the admin workstation out with
 * "kex_exchange_identification" after libwrap's pause (TRAPS.md, TCP
 * wrappers); the controller repairs it with narrow edits, a NEW connection
 * from the workstation's address then succeeds, everything else in the files
 * keeps its bytes, and a second run changes nothing. On both kinds of lab
 * host: plain (OpenSSH 9.2, sshd itself asks libwrap) and systemd (OpenSSH
 * 10, where the per-connection sshd-session asks it, under daemon name sshd).
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

const STOCK_DENY = `# /etc/hosts.deny: list of hosts that are _not_ allowed to access the system.
#                  See the manual pages hosts_access(5) and hosts_options(5).
#
`;
const STOCK_ALLOW = `# /etc/hosts.allow: list of hosts that are allowed to access the system.
#                   See the manual pages hosts_access(5) and hosts_options(5).
#
`;

interface Report {
  hosts: Record<string, { changed: number; failed: number; unreachable: boolean }>;
}

describeLabKinds(
  'tcp_wrappers repairs hosts.allow/hosts.deny lockouts on real sshd',
  [PLAIN, SYSTEMD_SERVICE],
  (kind) => {
    let lab: Lab;
    let work: string;
    let common: string[];
    let ws: string;
    let controller: string;
    let named: LabHost;
    let allDenied: LabHost;
    let sshdAll: LabHost;
    let playbook: string;
    const files = (h: LabHost) =>
      Promise.all([h.readFile('/etc/hosts.allow'), h.readFile('/etc/hosts.deny')]);

    beforeAll(async () => {
      lab = await startLab({
        id: kind.kind === 'plain' ? 'tcpw' : `tcpw${process.pid % 10_000}`,
        hosts: 3,
        ...kind,
      });
      [named, allDenied, sshdAll] = lab.hosts as [LabHost, LabHost, LabHost];
      ws = lab.workstationAddress;
      controller = lab.controllerAddress;
      work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-tcpw-'));

      // 1: the workstation named in hosts.deny among unrelated rules, a continued line and comments.
      await named.writeFile('/etc/hosts.allow', STOCK_ALLOW);
      await named.writeFile(
        '/etc/hosts.deny',
        `${STOCK_DENY}vsftpd: ALL\nin.telnetd,\\\n    in.ftpd: ${ws} 192.0.2.1\n# added during the incident\nsshd: ${ws}, 192.0.2.66\nALL: 198.51.100.0/255.255.255.0\n`,
      );
      // 2: everything denied; only the controller is allowed.
      await allDenied.writeFile('/etc/hosts.allow', `${STOCK_ALLOW}sshd: ${controller}\n`);
      await allDenied.writeFile('/etc/hosts.deny', `${STOCK_DENY}ALL: ALL\n`);
      // 3: sshd denied for everyone but the controller.
      await sshdAll.writeFile('/etc/hosts.allow', `sshd: ${controller}\n`);
      await sshdAll.writeFile('/etc/hosts.deny', `${STOCK_DENY}sshd: ALL\n`);

      const network = ws.replace(/\.\d+\.\d+$/, '.0.0/16');
      playbook = path.join(work, 'wrappers.yml');
      fs.writeFileSync(
        playbook,
        [
          `- name: named in hosts.deny`,
          `  hosts: ${named.name}`,
          `  tasks:`,
          `    - name: workstation not denied`,
          `      tcp_wrappers: { not_denied: ["${ws}"] }`,
          `- name: everything denied`,
          `  hosts: ${allDenied.name}`,
          `  tasks:`,
          `    - name: admin network allowed`,
          `      tcp_wrappers:`,
          `        allow:`,
          `          - daemon: sshd`,
          `            clients: ["${network}"]`,
          `- name: sshd denied`,
          `  hosts: ${sshdAll.name}`,
          `  tasks:`,
          `    - name: workstation not denied`,
          `      tcp_wrappers: { not_denied: ["${ws}"], daemon: sshd }`,
          '',
        ].join('\n'),
      );
      const inventory = path.join(work, 'inventory.yml');
      fs.writeFileSync(
        inventory,
        [
          'all:',
          '  vars:',
          '    ansible_user: root',
          `    ansible_ssh_private_key_file: ${lab.privateKeyFile}`,
          '  hosts:',
          ...lab.hosts.map((h) => `    ${h.name}: { ansible_host: ${h.address} }`),
          '',
        ].join('\n'),
      );
      common = ['-i', inventory, '--known-hosts', lab.knownHostsFile];
    }, LAB_START_TIMEOUT_MS);

    afterAll(async () => {
      await lab?.destroy();
      if (work) fs.rmSync(work, { recursive: true, force: true });
    });

    test('the workstation is locked out, the plan shows narrow diffs, apply lets it back in, then nothing to do', async () => {
      const fleet = [named, allDenied, sshdAll];
      // The symptom this project exists for: libwrap resets the connection after its pause.
      const locked = await Promise.all(fleet.map((h) => lab.ssh(h, 'true', { from: ws })));
      for (const r of locked) {
        expect(r.code).not.toBe(0);
        expect(r.stderr).toMatch(/kex_exchange_identification|ssh_exchange_identification|Connection reset/);
      }
      const before = await Promise.all(fleet.map(files));

      const plan = await runCli(['plan', playbook, ...common, '--detailed-exitcode']);
      expect(plan.stderr).toBe('');
      expect(plan.code).toBe(2);
      expect(plan.stdout).toContain(`-sshd: ${ws}, 192.0.2.66`);
      expect(plan.stdout).toContain(`+sshd: 192.0.2.66`);
      expect(plan.stdout).toContain(
        `${ws} (sshd) is refused by /etc/hosts.deny:8 (sshd: ${ws}, 192.0.2.66) → granted`,
      );
      expect(plan.stdout).toContain(`+sshd: ${ws.replace(/\.\d+\.\d+$/, '.0.0')}/255.255.0.0`);
      expect(plan.stdout).toContain('+sshd: ALL EXCEPT');
      // A plan changes nothing.
      expect(await Promise.all(fleet.map(files))).toEqual(before);

      const apply = await runCli(['apply', playbook, ...common, '--format', 'json']);
      expect(apply.stderr).toBe('');
      expect(apply.code).toBe(0);
      const report = JSON.parse(apply.stdout) as Report;
      for (const h of fleet)
        expect(report.hosts[h.name]).toMatchObject({ failed: 0, unreachable: false, changed: 1 });

      // New connections from the workstation now get in; the controller still does.
      for (const h of fleet) {
        expect((await lab.ssh(h, 'true', { from: ws })).code).toBe(0);
        expect((await lab.ssh(h, 'true')).code).toBe(0);
      }

      const [namedAllow, namedDeny] = await files(named);
      expect(namedAllow).toBe(before[0]![0]);
      // Byte-identical except the one edited rule; the continued line still names the workstation for in.ftpd.
      expect(namedDeny).toBe(before[0]![1].replace(`sshd: ${ws}, 192.0.2.66\n`, 'sshd: 192.0.2.66\n'));
      const network = ws.replace(/\.\d+\.\d+$/, '.0.0');
      expect(await files(allDenied)).toEqual([
        `${STOCK_ALLOW}sshd: ${network}/255.255.0.0\nsshd: ${controller}\n`,
        before[1]![1],
      ]);
      expect(await files(sshdAll)).toEqual([before[2]![0], `${STOCK_DENY}sshd: ALL EXCEPT ${ws}\n`]);

      const second = await runCli(['apply', playbook, ...common, '--format', 'json']);
      expect(second.code).toBe(0);
      const secondReport = JSON.parse(second.stdout) as Report;
      for (const h of fleet) expect(secondReport.hosts[h.name]?.changed).toBe(0);
      const planAgain = await runCli(['plan', playbook, ...common, '--detailed-exitcode']);
      expect(planAgain.code).toBe(0);
    });

    test('a hosts.deny without a final newline refuses everyone; the repair adds it (Debian libwrap, table_match ERR)', async () => {
      // The controller must get in through hosts.allow to repair it.
      await sshdAll.writeFile('/etc/hosts.allow', `sshd: ${controller}\n`);
      await sshdAll.writeFile('/etc/hosts.deny', `${STOCK_DENY}# no newline after this comment`);
      const locked = await lab.ssh(sshdAll, 'true', { from: ws });
      expect(locked.code).not.toBe(0);
      const run = await runCli(['apply', playbook, ...common, '--limit', sshdAll.name, '--format', 'json']);
      expect(run.code).toBe(0);
      expect(await sshdAll.readFile('/etc/hosts.deny')).toBe(
        `${STOCK_DENY}# no newline after this comment\n`,
      );
      expect((await lab.ssh(sshdAll, 'true', { from: ws })).code).toBe(0);
    });
  },
);
