/**
 * PerSourcePenalties (OpenSSH >= 9.8, on by default) on the systemd kind of
 * lab host, Debian 13 with OpenSSH 10: four failed logins from the controller
 * get it dropped before the banner. diagnose must name that, its fix must lift
 * it, and sshfix's own connections (probes, bursts, logins, confirmations)
 * must never earn the controller a penalty. Penalties live in the listening
 * sshd's memory: which action lifts a live block depends on how systemd
 * starts sshd (ssh.service or ssh.socket), and diagnose's fix must name one
 * that does.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  describeLab,
  describeLabKinds,
  LAB_START_TIMEOUT_MS,
  startLab,
  SYSTEMD_SERVICE,
  SYSTEMD_SOCKET,
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

/** What an operator may try to lift a live block, by the unit that starts sshd. */
const LIFT_ACTIONS: Record<'service' | 'socket', string[]> = {
  service: ['systemctl reload ssh', 'systemctl restart ssh'],
  socket: ['systemctl reload ssh', 'systemctl restart ssh', 'systemctl restart ssh.socket'],
};

/**
 * What each action did to a live block: whether the controller got in after it, and what became of
 * the sshd that held the penalties (a reload re-executes it in the same process).
 */
interface LiftOutcome {
  lifted: boolean;
  sshd: 'same process' | 'new process' | 'killed';
}

/** Measured on Debian 13's OpenSSH 10.0p2 and systemd 257. */
const EXPECTED_LIFTS: Record<'service' | 'socket', Record<string, LiftOutcome>> = {
  service: {
    'systemctl reload ssh': { lifted: true, sshd: 'same process' },
    'systemctl restart ssh': { lifted: true, sshd: 'new process' },
  },
  socket: {
    // SIGHUP re-executes sshd, which cannot bind the socket's port ("fatal: Cannot bind any address"):
    // it dies, and the socket starts a new one, with no penalties, on the next connection. The reload
    // job fails, at once or only after systemd's reload time-out (90 s), as sshd's notification races
    // its exit; the test rests on what became of sshd, not on the job.
    'systemctl reload ssh': { lifted: true, sshd: 'killed' },
    'systemctl restart ssh': { lifted: true, sshd: 'new process' },
    // Refused while ssh.service runs ("Socket service ssh.service already active"): the sshd that holds
    // the penalties keeps running.
    'systemctl restart ssh.socket': { lifted: false, sshd: 'same process' },
  },
};

const MAIN_PID = 'systemctl show -p MainPID --value ssh.service';

/**
 * A long penalty for a failed login (the default is authfail:5, enforced from min:15 on): one failed
 * login blocks the controller for minutes, so that a block that lets it in again was lifted by the
 * action, not over by itself on a busy machine.
 */
const LONG_PENALTY = 'PerSourcePenalties authfail:300 max:600\n';

describeLabKinds('PerSourcePenalties: what lifts a live block', [SYSTEMD_SERVICE, SYSTEMD_SOCKET], (kind) => {
  const mode = kind.sshdUnit ?? 'service';
  const actions = LIFT_ACTIONS[mode];
  let lab: Lab;
  let work: string;
  let wrongKey: string;
  /** Hosts: one per action, then one left blocked (the control), then one for diagnose's fix. */
  const control = (): LabHost => lab.hosts[actions.length]!;
  const fixed = (): LabHost => lab.hosts[actions.length + 1]!;

  /**
   * Whether the controller gets in within a few tries a second apart: `systemctl reload` returns once
   * sshd has its SIGHUP, and a connection in the moment before sshd re-executes still meets the old
   * listener and its penalties.
   */
  async function getsIn(host: LabHost): Promise<boolean> {
    for (let attempt = 0; attempt < 5; attempt++) {
      if ((await lab.ssh(host, 'true')).code === 0) return true;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    return false;
  }

  /** The long penalty in force, then one failed login from the controller: blocked before the banner. */
  async function block(host: LabHost): Promise<void> {
    await host.writeFile('/etc/ssh/sshd_config.d/10-long-penalty.conf', LONG_PENALTY);
    expect((await host.exec('systemctl restart ssh.service')).code).toBe(0);
    expect((await lab.ssh(host, 'true')).code).toBe(0);
    await failedLogin(lab, host, wrongKey);
    const blocked = await lab.ssh(host, 'true');
    expect({ host: host.name, code: blocked.code }).toEqual({ host: host.name, code: 255 });
    expect(blocked.stderr).toMatch(/kex_exchange_identification/);
    expect(await penaltyLines(host, lab.controllerAddress)).not.toEqual([]);
  }

  beforeAll(async () => {
    lab = await startLab({
      id: `penl${mode === 'socket' ? 'k' : 's'}${process.pid % 1000}`,
      hosts: actions.length + 2,
      ...kind,
      sharedPaths: [process.cwd(), fs.realpathSync(process.execPath)],
    });
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-penalty-lift-'));
    wrongKey = path.join(work, 'refused_key');
    expect((await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', wrongKey])).code).toBe(0);
    await Promise.all(lab.hosts.map(block));
  }, LAB_START_TIMEOUT_MS);

  afterAll(async () => {
    await lab?.destroy();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it(`under ssh.${mode}: ${Object.entries(EXPECTED_LIFTS[mode])
    .map(
      ([action, o]) =>
        `${action} ${o.lifted ? 'lifts it' : 'does not lift it'}${o.sshd === 'killed' ? ' (by killing sshd)' : ''}`,
    )
    .join(', ')}; with no action it stays`, async () => {
    const outcomes: Record<string, LiftOutcome> = {};
    await Promise.all(
      actions.map(async (action, i) => {
        const host = lab.hosts[i]!;
        const before = (await host.exec(MAIN_PID)).stdout.trim();
        // Past systemd's 90 s reload time-out (see above).
        await host.exec(action, { timeoutMs: 150_000 });
        const lifted = await getsIn(host);
        const died = await host.exec(`journalctl -q -u ssh.service | grep -q 'Cannot bind any address'`);
        const now = (await host.exec(MAIN_PID)).stdout.trim();
        outcomes[action] = {
          lifted,
          sshd: died.code === 0 ? 'killed' : now === before ? 'same process' : 'new process',
        };
      }),
    );
    expect(outcomes).toEqual(EXPECTED_LIFTS[mode]);
    // Measured last: the blocks had not simply run out while the actions ran.
    expect((await lab.ssh(control(), 'true')).code).toBe(255);
  }, 300_000);

  it('the lift that diagnose recommends for this host is one that lifts it, and its fix playbook lets the controller in', async () => {
    const host = fixed();
    const fixFile = '/root/fix.yml';
    await host.writeFile(
      '/root/local.yml',
      `all:\n  hosts:\n    ${host.name}: { ansible_connection: local }\n`,
    );
    const cli = `${process.execPath} ${path.resolve('dist/cli/bin.js')}`;
    const d = await host.exec(
      `${cli} diagnose -c local --client ${lab.controllerAddress} --format json --fix-playbook ${fixFile}`,
      { timeoutMs: 120_000 },
    );
    expect(d.code).toBe(0);
    const finding = (
      JSON.parse(d.stdout) as { hosts: Record<string, JsonHost & { findings: { fix: string }[] }> }
    ).hosts[host.name]!.findings[0]!;
    expect(finding).toMatchObject({ cause: 'source_penalty', confidence: 'high' });
    const recommended = [...finding.fix.matchAll(/`(systemctl [^`]+)`/g)].map((m) => m[1]!);
    expect(recommended).not.toEqual([]);
    for (const action of recommended) {
      expect({ action, outcome: EXPECTED_LIFTS[mode][action] }).toEqual({
        action,
        outcome: { lifted: true, sshd: expect.stringMatching(/^(same|new) process$/) },
      });
    }

    const applied = await host.exec(`${cli} apply ${fixFile} -i /root/local.yml -c local`, {
      timeoutMs: 120_000,
    });
    expect({ code: applied.code, out: applied.stdout + applied.stderr }).toMatchObject({ code: 0 });
    expect((await lab.ssh(host, 'true')).code).toBe(0);
    const listener = await host.exec(`systemctl is-active ssh.${mode}`);
    expect(listener.stdout.trim()).toBe('active');
  });
});
