/**
 * PerSourcePenalties (OpenSSH >= 9.8, on by default) on the systemd kind of
 * lab host, Debian 13 with OpenSSH 10: four failed logins from the controller
 * get it dropped before the banner. diagnose must name that, its fix must lift
 * it, and sshfix's own connections (probes, bursts, logins, confirmations)
 * must never earn the controller a penalty.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  describeLab,
  LAB_START_TIMEOUT_MS,
  startLab,
  SYSTEMD_SERVICE,
  type Lab,
  type LabHost,
} from './lab.js';
import { runCli } from '../support/cli.js';

interface JsonFinding {
  cause: string;
  confidence: string;
  evidence: string[];
}
interface JsonAttempt {
  source?: string;
  tcp: { outcome: string };
  banner?: { outcome: string; banner?: string; preamble?: string };
}
interface JsonHost {
  findings: JsonFinding[];
  probe?: JsonAttempt & { alternates?: JsonAttempt[] };
}

function run(command: string, args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('close', (code) => resolve({ code: code ?? 255, stderr }));
  });
}

/** A login from the controller with a key the host refuses: one PerSourcePenalties authfail. */
function failedLogin(lab: Lab, host: LabHost, key: string): Promise<{ code: number; stderr: string }> {
  return run('ssh', [
    '-F',
    '/dev/null',
    '-o',
    'BatchMode=yes',
    '-o',
    'IdentitiesOnly=yes',
    '-i',
    key,
    '-o',
    `UserKnownHostsFile=${lab.knownHostsFile}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'ConnectTimeout=10',
    `root@${host.address}`,
    'true',
  ]);
}

/** sshd's journal lines about penalties that name `address`. */
async function penaltyLines(host: LabHost, address: string): Promise<string[]> {
  const journal = await host.exec('journalctl -q --no-pager -o short-iso -u ssh');
  return journal.stdout.split('\n').filter((l) => /penalt/i.test(l) && l.includes(address));
}

describeLab(
  'PerSourcePenalties on OpenSSH 10',
  () => {
    let lab: Lab;
    let work: string;
    let inventory: string;
    let wrongKey: string;

    const common = (): string[] => [
      '--known-hosts',
      lab.knownHostsFile,
      '--private-key',
      lab.privateKeyFile,
      '-u',
      'root',
      '--connect-timeout',
      '5',
    ];

    beforeAll(async () => {
      lab = await startLab({ id: `pen${process.pid % 10_000}`, hosts: 3, ...SYSTEMD_SERVICE });
      work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-penalties-'));
      wrongKey = path.join(work, 'refused_key');
      expect((await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', wrongKey])).code).toBe(0);
      inventory = path.join(work, 'inventory.yml');
      fs.writeFileSync(
        inventory,
        `all:\n  hosts:\n${lab.hosts.map((h) => `    ${h.name}: { ansible_host: ${h.address}, ansible_user: root }`).join('\n')}\n  vars:\n    ansible_ssh_private_key_file: ${lab.privateKeyFile}\n`,
      );
    }, LAB_START_TIMEOUT_MS);

    afterAll(async () => {
      await lab?.destroy();
      if (work) fs.rmSync(work, { recursive: true, force: true });
    });

    it('four failed logins from the controller: diagnose names source_penalty first (the workstation gets a banner), and the fix lifts it', async () => {
      const [host, other] = lab.hosts as [LabHost, LabHost];
      for (let i = 0; i < 4; i++) await failedLogin(lab, host, wrongKey);
      const blocked = await lab.ssh(host, 'true');
      expect(blocked.code).toBe(255);
      // sshd writes "Not allowed at this time" and closes; ssh has sent its own version line by then,
      // so the close may come as a reset.
      expect(blocked.stderr).toMatch(
        /kex_exchange_identification: (Connection closed by remote host|read: Connection reset by peer)/,
      );

      const fixFile = path.join(work, 'fix.yml');
      const d = await runCli([
        'diagnose',
        host.name,
        '-i',
        inventory,
        ...common(),
        '--format',
        'json',
        '--fix-playbook',
        fixFile,
      ]);
      expect(d.code).toBe(0);
      const diagnosis = (JSON.parse(d.stdout) as { hosts: Record<string, JsonHost> }).hosts[host.name]!;
      expect(diagnosis.findings[0]).toMatchObject({ cause: 'source_penalty', confidence: 'high' });
      expect(diagnosis.probe?.banner).toMatchObject({
        outcome: 'closed',
        preamble: 'Not allowed at this time',
      });
      const workstation = diagnosis.probe?.alternates?.find((a) => a.source === lab.workstationAddress);
      expect(workstation?.banner).toMatchObject({
        outcome: 'banner',
        banner: expect.stringMatching(/^SSH-2\.0-OpenSSH_10\./),
      });
      expect(diagnosis.findings[0]!.evidence.join('\n')).toContain(
        `from ${lab.workstationAddress}: banner SSH-2.0-OpenSSH_10.`,
      );
      expect(fs.readFileSync(fixFile, 'utf8')).toContain(
        `PerSourcePenaltyExemptList: ${lab.controllerAddress}/32`,
      );

      // Applied through another host of the lab, whose address the penalty does not cover (as a colleague would).
      const sshConfig = path.join(work, 'ssh_config');
      fs.writeFileSync(sshConfig, `Host ${host.address}\n  ProxyJump root@${other.address}\n`);
      const applied = await runCli([
        'apply',
        fixFile,
        '-i',
        inventory,
        '-F',
        sshConfig,
        '--known-hosts',
        lab.knownHostsFile,
      ]);
      expect(applied.stderr).toBe('');
      expect(applied.code).toBe(0);
      // The restart lifted the live penalty, and the controller is exempt from now on.
      expect((await lab.ssh(host, 'true')).code).toBe(0);
      for (let i = 0; i < 4; i++) await failedLogin(lab, host, wrongKey);
      expect((await lab.ssh(host, 'true')).code).toBe(0);
    }, 300_000);

    it('repeated plan, apply and diagnose runs from one controller leave no penalty line for it', async () => {
      const host = lab.hosts[2]!;
      // VERBOSE also logs a penalty when it is imposed, before any connection is dropped for it.
      await host.writeFile('/etc/ssh/sshd_config.d/10-verbose.conf', 'LogLevel VERBOSE\n');
      expect((await host.exec('systemctl restart ssh')).code).toBe(0);
      const playbook = path.join(work, 'settings.yml');
      fs.writeFileSync(
        playbook,
        [
          `- hosts: ${host.name}`,
          '  tasks:',
          '    - name: sshd limits',
          '      sshd_config:',
          '        settings: { MaxAuthTries: 5, ClientAliveInterval: 300 }',
          '      notify: reload sshd',
          '  handlers:',
          '    - name: reload sshd',
          '      service: { name: sshd, state: reloaded }',
          '',
        ].join('\n'),
      );
      const cli = ['-i', inventory, '--limit', host.name, '--known-hosts', lab.knownHostsFile];
      for (let round = 0; round < 3; round++) {
        expect((await runCli(['plan', playbook, ...cli])).code).not.toBe(1);
        const applied = await runCli(['apply', playbook, ...cli]);
        expect({ round, code: applied.code, output: applied.stdout + applied.stderr }).toMatchObject({
          code: 0,
        });
        const d = await runCli(['diagnose', host.name, '-i', inventory, ...common(), '--format', 'json']);
        expect(d.code).toBe(0);
        const findings = (JSON.parse(d.stdout) as { hosts: Record<string, JsonHost> }).hosts[host.name]!
          .findings;
        expect(findings.filter((f) => f.confidence !== 'low')).toEqual([]);
      }
      expect(await penaltyLines(host, lab.controllerAddress)).toEqual([]);
      expect((await lab.ssh(host, 'true')).code).toBe(0);
    }, 300_000);
  },
  SYSTEMD_SERVICE,
);
