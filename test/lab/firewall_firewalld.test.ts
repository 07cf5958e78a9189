/**
 * The firewall resource and diagnose against a real firewalld (Debian's
 * package, nftables backend). The workstation is refused by a rich rule with
 * tcp-reset ("Connection refused", TRAPS.md); the controller runs sshfix with
 * backend auto.
 *
 * On both kinds of lab host: plain (firewalld 1.3 started by hand, with the
 * host's own system D-Bus, writing /run/firewalld.pid) and systemd (firewalld
 * 2.3 started by firewalld.service, as on RHEL-like and Debian fleets: with
 * --nopid, so only systemd knows it runs). The systemd root has firewalld
 * installed but disabled; this suite starts it.
 *
 * TRAPS.md: firewalld's `--reload` drops runtime-only rules, so the rules go to
 * both runtime and `--permanent`; exit code 11 (ALREADY_ENABLED) is success.
 */
import { spawnSync } from 'node:child_process';
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

interface Report {
  hosts: Record<
    string,
    {
      changed: number;
      failed: number;
      tasks: { status: string; diff: string; messages: string[]; commands: string[]; error?: string }[];
    }
  >;
}

interface DiagnoseReport {
  hosts: Record<string, { client: string | null; findings: { cause: string; evidence: string[] }[] }>;
}

const firewalldInstalled =
  spawnSync('sh', ['-c', 'command -v firewalld || [ -x /usr/sbin/firewalld ]'], { stdio: 'ignore' })
    .status === 0;

const WAIT_UNTIL_ANSWERS =
  'i=0; until firewall-cmd --state >/dev/null 2>&1; do i=$((i+1)); [ $i -ge 120 ] && exit 1; sleep 0.25; done';

/** Starts firewalld (plain: the host's own system bus first), and waits until it answers. */
const START_FIREWALLD = {
  plain: ['mkdir -p /run/dbus', 'dbus-daemon --system --fork', 'firewalld', WAIT_UNTIL_ANSWERS].join(' && '),
  systemd: ['systemctl start firewalld.service', WAIT_UNTIL_ANSWERS].join(' && '),
};

describeLabKinds(
  'firewall: firewalld rich rules (runtime and permanent)',
  [PLAIN, SYSTEMD_SERVICE],
  (kind) => {
    if (kind.kind === 'plain' && !firewalldInstalled && process.env.CI !== 'true') {
      test.skip('firewalld is not installed on this machine (apt-get install --no-install-recommends firewalld)', () =>
        undefined);
      return;
    }
    let lab: Lab;
    let host: LabHost;
    let work: string;
    let args: string[];
    let reject: string;

    beforeAll(async () => {
      lab = await startLab({
        id: kind.kind === 'plain' ? 'fwb' : `fwd${process.pid % 10_000}`,
        hosts: 1,
        ...kind,
      });
      host = lab.hosts[0]!;
      const started = await host.exec(START_FIREWALLD[kind.kind], { timeoutMs: 60000 });
      if (started.code !== 0) throw new Error(`starting firewalld: ${started.stderr}`);
      reject = `rule family="ipv4" source address="${lab.workstationAddress}" port port="22" protocol="tcp" reject type="tcp-reset"`;
      for (const permanent of ['', '--permanent ']) {
        const r = await host.exec(`firewall-cmd ${permanent}--zone=public --add-rich-rule='${reject}'`);
        if (r.code !== 0) throw new Error(`adding the reject rule: ${r.stderr}`);
      }
      work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-fwb-'));
      const inventory = path.join(work, 'inventory.ini');
      fs.writeFileSync(
        inventory,
        `${host.name} ansible_host=${host.address} ansible_user=root ansible_ssh_private_key_file=${lab.privateKeyFile}\n`,
      );
      const playbook = path.join(work, 'firewall.yml');
      fs.writeFileSync(
        playbook,
        `- hosts: all\n  tasks:\n    - name: let the workstation in\n      firewall:\n        allow_ssh_from: ["${lab.workstationAddress}"]\n`,
      );
      args = [playbook, '-i', inventory, '--known-hosts', lab.knownHostsFile, '--format', 'json'];
    }, LAB_START_TIMEOUT_MS);

    afterAll(async () => {
      await lab?.destroy();
      if (work) fs.rmSync(work, { recursive: true, force: true });
    });

    test("diagnose (over the controller's login) names the rich rule refusing the workstation", async () => {
      const diagnose = await runCli([
        'diagnose',
        host.name,
        '-i',
        path.join(work, 'inventory.ini'),
        '--known-hosts',
        lab.knownHostsFile,
        '--client',
        lab.workstationAddress,
        '--format',
        'json',
      ]);
      const report = JSON.parse(diagnose.stdout) as DiagnoseReport;
      const findings = report.hosts[host.name]?.findings ?? [];
      expect(findings[0]).toMatchObject({ cause: 'firewall_reject' });
      expect(findings[0]!.evidence.join('\n')).toMatch(
        new RegExp(`${lab.workstationAddress.replace(/\./g, '\\.')}.*tcp dport 22 .*reject with tcp reset`),
      );
    });

    test('rolled back with the rest of the run: runtime and permanent rules as they were, the workstation refused again', async () => {
      const richRules = async (): Promise<string[]> =>
        Promise.all(
          ['', '--permanent '].map(
            async (permanent) =>
              (await host.exec(`firewall-cmd ${permanent}--zone=public --list-rich-rules`)).stdout,
          ),
        );
      const rulesBefore = await richRules();
      const denyBefore = (await host.exec('cat /etc/hosts.deny')).stdout;
      const playbook = path.join(work, 'rolled-back.yml');
      // The second task locks the controller out, so the confirmation fails and the whole run is undone.
      fs.writeFileSync(
        playbook,
        [
          '- hosts: all',
          '  tasks:',
          '    - name: let the workstation in',
          '      firewall:',
          `        allow_ssh_from: ["${lab.workstationAddress}"]`,
          '    - name: deny the controller',
          '      file:',
          '        dest: /etc/hosts.deny',
          `        content: "sshd: ${lab.controllerAddress}\\n"`,
          '',
        ].join('\n'),
      );
      const run = await runCli([
        'apply',
        playbook,
        ...args.slice(1),
        '--confirm-timeout',
        '12',
        '--connect-timeout',
        '4',
      ]);
      expect(run.code).toBe(1);
      const report = JSON.parse(run.stdout) as Report;
      // The firewall task did run its commands before the run was undone.
      expect(report.hosts[host.name]!.tasks[0]!.commands[0]).toContain('--add-rich-rule=');
      expect(report.hosts[host.name]!.tasks.map((t) => t.error ?? '').join('\n')).toMatch(/^rolled back: /m);
      expect(await richRules()).toEqual(rulesBefore);
      expect(rulesBefore[0]!.trim().split('\n')).toEqual([reject]);
      expect((await host.exec('cat /etc/hosts.deny')).stdout).toBe(denyBefore);
      expect((await lab.ssh(host, 'true')).code).toBe(0);
      const refused = await lab.ssh(host, 'true', { from: lab.workstationAddress });
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toMatch(/Connection refused/);
    });

    test('refused before; plan shows the rich rules; apply lets the workstation in, in runtime and permanent; then no change', async () => {
      const before = await lab.ssh(host, 'true', { from: lab.workstationAddress });
      expect(before.code).not.toBe(0);
      expect(before.stderr).toMatch(/Connection refused/);

      const plan = JSON.parse((await runCli(['plan', ...args])).stdout) as Report;
      const task = plan.hosts[host.name]!.tasks[0]!;
      expect(task.messages[0]).toBe('backend auto → firewalld (firewalld is running)');
      const allow = `rule priority="-32768" family="ipv4" source address="${lab.workstationAddress}/32" port port="22" protocol="tcp" accept`;
      expect(task.commands).toEqual([
        `firewall-cmd --zone=public '--add-rich-rule=${allow}'`,
        `firewall-cmd --zone=public '--remove-rich-rule=${reject}'`,
        `firewall-cmd --permanent --zone=public '--add-rich-rule=${allow}'`,
        `firewall-cmd --permanent --zone=public '--remove-rich-rule=${reject}'`,
      ]);
      expect(task.diff).toContain(`+  ${allow}`);
      expect(task.diff).toContain(`-  ${reject}`);

      const apply = JSON.parse((await runCli(['apply', ...args])).stdout) as Report;
      expect(apply.hosts[host.name]).toMatchObject({ changed: 1, failed: 0 });
      expect((await lab.ssh(host, 'true', { from: lab.workstationAddress })).code).toBe(0);
      // --reload replaces runtime with permanent: the rule survives it because it is in both.
      expect((await host.exec('firewall-cmd --reload')).code).toBe(0);
      expect((await lab.ssh(host, 'true', { from: lab.workstationAddress })).code).toBe(0);
      if (kind.kind === 'systemd') {
        // As after a reboot: a new firewalld loads only the permanent configuration.
        expect((await host.exec(`systemctl restart firewalld.service && ${WAIT_UNTIL_ANSWERS}`)).code).toBe(
          0,
        );
        expect((await lab.ssh(host, 'true', { from: lab.workstationAddress })).code).toBe(0);
      }
      const rich = (await host.exec('firewall-cmd --zone=public --list-rich-rules')).stdout;
      expect(rich.trim().split('\n')).toEqual([allow]);

      const second = JSON.parse((await runCli(['apply', ...args])).stdout) as Report;
      expect(second.hosts[host.name]).toMatchObject({ changed: 0, failed: 0 });
    });
  },
);
