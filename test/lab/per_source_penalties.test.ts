/**
 * sshd's own per-source penalties (OpenSSH ≥ 9.8, on by default) and the
 * keywords that tune them, from one playbook on a fleet of OpenSSH 9.2 and
 * 10 hosts: written and in effect where sshd knows them; skipped with the
 * reason, and nothing written, where it does not.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  describeLab,
  describeLabKinds,
  LAB_START_TIMEOUT_MS,
  labInventory,
  startLab,
  SYSTEMD_SERVICE,
  SYSTEMD_SOCKET,
} from './lab.js';
import type { Lab, LabHost } from './lab.js';
import { runCli } from '../support/cli.js';

const suffix = process.pid % 10_000;
const SHIPPED = path.resolve('playbooks/fix-connection-reset.yml');
const EXEMPT_TASK = 'sshd never penalises the admin network';

interface JsonTask {
  task: string;
  status: string;
  error?: string;
}
interface JsonReport {
  hosts: Record<string, { changed: number; failed: number; skipped: number; tasks: JsonTask[] }>;
}

const PLAYBOOK = `- name: penalties
  hosts: all
  tasks:
    - name: exempt the admin network
      sshd_config:
        settings:
          PerSourcePenaltyExemptList: "{{ admin_network }}"
          PerSourcePenalties: "authfail:10"
      notify: reload sshd
    - name: limits
      sshd_config:
        settings:
          MaxAuthTries: 5
      notify: reload sshd
  handlers:
    - name: reload sshd
      service: { name: sshd, state: reloaded }
`;

/** An inventory of hosts from several labs: each with its lab's key and its lab's workstation as admin network. */
function fleetInventory(members: Array<{ lab: Lab; host: LabHost }>): string {
  return [
    'all:',
    '  vars:',
    '    ansible_user: root',
    '  hosts:',
    ...members.map(
      ({ lab, host }) =>
        `    ${host.name}: { ansible_host: ${host.address}, ansible_ssh_private_key_file: ${lab.privateKeyFile}, admin_network: "${lab.workstationAddress}/32" }`,
    ),
    '',
  ].join('\n');
}

/** One known_hosts file for hosts of several labs. */
function joinKnownHosts(file: string, labs: Lab[]): string {
  fs.writeFileSync(file, labs.map((lab) => fs.readFileSync(lab.knownHostsFile, 'utf8')).join(''));
  return file;
}

/** A login from `from` with a key the host does not accept: an `authfail` penalty to sshd ≥ 9.8. */
function failedLogin(host: LabHost, from: string, strangerKey: string): Promise<number> {
  const args = [
    ...['-F', '/dev/null', '-b', from, '-i', strangerKey, '-l', 'root'],
    ...['-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10'],
    ...['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR'],
    host.address,
    'true',
  ];
  return new Promise((resolve) => {
    execFile('ssh', args, { timeout: 30_000 }, (error) =>
      resolve(error === null ? 0 : typeof error.code === 'number' ? error.code : -1),
    );
  });
}

describeLab('keywords newer than the host sshd, on OpenSSH 9.2 [plain]', () => {
  let lab: Lab;
  let work: string;
  let host: LabHost;
  let common: string[];

  beforeAll(async () => {
    lab = await startLab({ id: `kwp${suffix}`, hosts: 1 });
    host = lab.hosts[0]!;
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-kwp-'));
    const inventory = path.join(work, 'inventory.yml');
    fs.writeFileSync(inventory, fleetInventory([{ lab, host }]));
    fs.writeFileSync(path.join(work, 'penalties.yml'), PLAYBOOK);
    common = [path.join(work, 'penalties.yml'), '-i', inventory, '--known-hosts', lab.knownHostsFile];
  }, 120_000);

  afterAll(async () => {
    await lab?.destroy();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('the task is skipped with the reason, nothing of it is written, the rest applies, and a second run is clean', async () => {
    const reason =
      'sshd 9.2 does not know PerSourcePenaltyExemptList (OpenSSH ≥ 9.8); sshd 9.2 does not know PerSourcePenalties (OpenSSH ≥ 9.8)';
    const plan = await runCli(['plan', ...common]);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toContain(`skipped: ${host.name}: ${reason}\n`);

    const apply = await runCli(['apply', ...common, '--format', 'json']);
    expect(apply.stderr).toBe('');
    const report = JSON.parse(apply.stdout) as JsonReport;
    expect(report.hosts[host.name]!.tasks.map((t) => [t.task, t.status, t.error])).toEqual([
      ['exempt the admin network', 'skipped', reason],
      ['limits', 'changed', undefined],
      ['reload sshd', 'changed', undefined],
    ]);
    expect(apply.code).toBe(0);

    // Nothing of the skipped task anywhere in the tree; the other task took effect.
    expect((await host.exec('grep -ril persource /etc/ssh/sshd_config /etc/ssh/sshd_config.d')).stdout).toBe(
      '',
    );
    expect((await host.exec('/usr/sbin/sshd -T | grep ^maxauthtries')).stdout).toBe('maxauthtries 5\n');
    expect((await lab.ssh(host, 'true')).code).toBe(0);

    const second = await runCli(['apply', ...common, '--format', 'junit', '--detailed-exitcode']);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain(`<skipped message="${reason}"/>`);
  });

  test('the shipped fix-connection-reset playbook skips the exemption here, says why, and converges', async () => {
    const shipped = [SHIPPED, ...common.slice(1)];
    const first = await runCli(['apply', ...shipped, '--format', 'json']);
    expect(first.stderr).toBe('');
    const report = JSON.parse(first.stdout) as JsonReport;
    expect(report.hosts[host.name]).toMatchObject({ failed: 0 });
    expect(report.hosts[host.name]!.tasks.find((t) => t.task === EXEMPT_TASK)).toMatchObject({
      status: 'skipped',
      error: 'sshd 9.2 does not know PerSourcePenaltyExemptList (OpenSSH ≥ 9.8)',
    });
    expect(first.code).toBe(0);
    const second = await runCli(['apply', ...shipped, '--detailed-exitcode']);
    expect(second.code).toBe(0);
  });
});

describeLab(
  'keywords newer than the host sshd, on a fleet of OpenSSH 9.2 and 10 [systemd]',
  () => {
    let plain: Lab;
    let systemd: Lab;
    let work: string;
    let inventory: string;
    let knownHosts: string;

    beforeAll(async () => {
      [plain, systemd] = await Promise.all([
        startLab({ id: `kwq${suffix}`, hosts: 1 }),
        startLab({ id: `kws${suffix}`, hosts: 1, ...SYSTEMD_SERVICE }),
      ]);
      work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-kws-'));
      inventory = path.join(work, 'inventory.yml');
      fs.writeFileSync(
        inventory,
        fleetInventory([
          { lab: plain, host: plain.hosts[0]! },
          ...systemd.hosts.map((host) => ({ lab: systemd, host })),
        ]),
      );
      knownHosts = joinKnownHosts(path.join(work, 'known_hosts'), [plain, systemd]);
    }, LAB_START_TIMEOUT_MS);

    afterAll(async () => {
      await plain?.destroy();
      await systemd?.destroy();
      if (work) fs.rmSync(work, { recursive: true, force: true });
    });

    test('one playbook: written and in effect on OpenSSH 10, skipped with the reason on 9.2', async () => {
      const old = plain.hosts[0]!;
      const current = systemd.hosts[0]!;
      const pb = path.join(work, 'penalties.yml');
      fs.writeFileSync(pb, PLAYBOOK);
      const common = [pb, '-i', inventory, '--known-hosts', knownHosts, '-l', `${old.name}:${current.name}`];
      const apply = await runCli(['apply', ...common, '--format', 'json']);
      expect(apply.stderr).toBe('');
      const report = JSON.parse(apply.stdout) as JsonReport;
      const statuses = (name: string) => report.hosts[name]!.tasks.map((t) => [t.task, t.status]);
      expect(statuses(current.name)).toEqual([
        ['exempt the admin network', 'changed'],
        ['limits', 'changed'],
        ['reload sshd', 'changed'],
      ]);
      expect(statuses(old.name)).toEqual([
        ['exempt the admin network', 'skipped'],
        ['limits', 'changed'],
        ['reload sshd', 'changed'],
      ]);
      expect(apply.code).toBe(0);

      const effective = await current.exec('sshd -T | grep ^persourcepenalt');
      expect(effective.stdout).toContain(
        `persourcepenaltyexemptlist ${systemd.workstationAddress}/32,::ffff:${systemd.workstationAddress}/128\n`,
      );
      expect(effective.stdout).toMatch(/^persourcepenalties .*\bauthfail:10\b/m);
      expect((await old.exec('grep -ril persource /etc/ssh/sshd_config /etc/ssh/sshd_config.d')).stdout).toBe(
        '',
      );

      const second = await runCli(['apply', ...common, '--detailed-exitcode']);
      expect(second.code).toBe(0);
    });
  },
  SYSTEMD_SERVICE,
);

// On SYSTEMD_SOCKET, ssh.socket listens on [::]:22, where sshd's penalty code (srclimit.c) sees an
// IPv4 client as ::ffff:a.b.c.d: the exemption holds there only because its IPv4-mapped form is written too.
describeLabKinds(
  'the shipped fix-connection-reset playbook on OpenSSH 10',
  [SYSTEMD_SERVICE, SYSTEMD_SOCKET],
  (kind) => {
    let lab: Lab;
    let work: string;
    let inventory: string;

    beforeAll(async () => {
      lab = await startLab({ id: `kw${kind.sshdUnit === 'socket' ? 'k' : 'v'}${suffix}`, hosts: 2, ...kind });
      work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-kwf-'));
      inventory = path.join(work, 'inventory.yml');
      fs.writeFileSync(inventory, labInventory(lab));
    }, LAB_START_TIMEOUT_MS);

    afterAll(async () => {
      await lab?.destroy();
      if (work) fs.rmSync(work, { recursive: true, force: true });
    });

    test('exempts the admin network: failed logins no longer lock it out, and a second run is clean', async () => {
      const [exempted, control] = lab.hosts as [LabHost, LabHost];
      const common = [SHIPPED, '-i', inventory, '--known-hosts', lab.knownHostsFile, '-l', exempted.name];
      const first = await runCli(['apply', ...common, '--format', 'json']);
      expect(first.stderr).toBe('');
      const report = JSON.parse(first.stdout) as JsonReport;
      const failures = report.hosts[exempted.name]!.tasks.filter((t) => t.status === 'failed');
      expect(failures).toEqual([]);
      expect(report.hosts[exempted.name]!.tasks.find((t) => t.task === EXEMPT_TASK)?.status).toBe('changed');
      expect(first.code).toBe(0);
      expect((await exempted.exec('sshd -T | grep ^persourcepenaltyexemptlist')).stdout).toBe(
        `persourcepenaltyexemptlist ${lab.workstationAddress}/32,::ffff:${lab.workstationAddress}/128\n`,
      );

      // A CI runner on the admin network whose key is refused a few times (authfail:5 each, min:15).
      const strangerKey = path.join(work, 'stranger');
      await new Promise<void>((resolve, reject) =>
        execFile('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', strangerKey], (error) =>
          error ? reject(error) : resolve(),
        ),
      );
      const ws = lab.workstationAddress;
      // Penalties decay in real time (srclimit.c: expiry - now must exceed min), so on a busy
      // machine four refusals may come too slowly to add up: keep failing, on both hosts alike,
      // until the control host drops the address (it must within a few more).
      let locked = await lab.ssh(control, 'true', { from: ws });
      for (let failures = 0; failures < 12 && locked.code !== 255; failures++) {
        expect(await failedLogin(control, ws, strangerKey)).toBe(255);
        expect(await failedLogin(exempted, ws, strangerKey)).toBe(255);
        if (failures >= 3) locked = await lab.ssh(control, 'true', { from: ws });
      }
      expect(locked.code).toBe(255);
      // sshd drops the address before its banner: "closed", or "reset" when the client had already written.
      expect(locked.stderr).toMatch(
        /kex_exchange_identification: (Connection closed by remote host|read: Connection reset by peer)/,
      );
      expect(await control.sshdLog()).toMatch(
        new RegExp(
          `drop connection #\\d+ from \\[${ws.replace(/\./g, '\\.')}\\]:\\d+ .*penalty: failed authentication`,
        ),
      );
      expect((await lab.ssh(exempted, 'true', { from: ws })).code).toBe(0);

      const second = await runCli(['apply', ...common, '--detailed-exitcode']);
      expect(second.code).toBe(0);
    });
  },
);
