/**
 * The fail2ban resource against real fail2ban servers (one per lab host, with
 * fail2ban's real iptables chains): the admin workstation is banned, a run
 * from the controller adds it to ignoreip and lifts the ban, and a new
 * connection from the workstation gets in. On both kinds of lab host: plain
 * (fail2ban 1.0 polling the sshd log, iptables actions) and systemd (Debian
 * 13's fail2ban 1.1 as fail2ban.service, reading the journal, nftables actions).
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
  type LabKind,
} from './lab.js';
import { runCli } from '../support/cli.js';

interface JsonTask {
  status: string;
  diff: string;
  messages: string[];
  warnings: string[];
  commands: string[];
  error?: string;
}
interface JsonReport {
  hosts: Record<string, { changed: number; failed: number; skipped: number; tasks: JsonTask[] }>;
}

/**
 * Where the sshd jail reads: the lab's sshd log (plain), or the journal as
 * Debian 13 configures it (jail.d/defaults-debian.conf; there is no auth.log).
 */
const sshdJailSource = (kind: LabKind): string =>
  kind.kind === 'plain' ? 'backend = polling\nlogpath = /var/log/auth.log\n' : 'backend = systemd\n';

/** A hand-edited jail.local: comments, a multi-line ignoreip with an inline comment, another jail. */
const handEditedJailLocal = (
  kind: LabKind,
): string => `# Local jail settings, edited by hand: keep this comment
[DEFAULT]
bantime  = 1h
# the partner network; do not remove
ignoreip = 127.0.0.1/8 ::1
           192.0.2.0/24 ; partner

[sshd]
enabled = true
${sshdJailSource(kind)}maxretry: 3

[apache-auth]
# not used on this host
enabled = false
port = http,https
`;

const F2B = 'fail2ban-client';

async function f2b(host: LabHost, args: string): Promise<string> {
  const r = await host.exec(`${F2B} ${args}`);
  if (r.code !== 0) throw new Error(`${host.name}: ${F2B} ${args}: ${r.stderr}`);
  return r.stdout;
}

/** How often the server reloaded its configuration, by its own log. */
async function reloads(host: LabHost): Promise<number> {
  const log = await host.readFile('/var/log/fail2ban.log');
  return (log.match(/Reload finished\./g) ?? []).length;
}

/** jail.local's content, or null where there is none (Debian 13 ships none). */
async function jailLocal(host: LabHost): Promise<string | null> {
  const r = await host.exec('cat /etc/fail2ban/jail.local');
  return r.code === 0 ? r.stdout : null;
}

async function serverPid(host: LabHost): Promise<string> {
  return (await host.readFile('/run/fail2ban/fail2ban.pid')).trim();
}

describeLabKinds(
  'fail2ban: ignoreip, unban and jail settings on real fail2ban servers',
  [PLAIN, SYSTEMD_SERVICE],
  (kind) => {
    const HAND_EDITED_JAIL_LOCAL = handEditedJailLocal(kind);
    let lab: Lab;
    let work: string;
    let inventory: string;
    let workstation: string;

    const playbook = (name: string, hostName: string, args: string): string => {
      const file = path.join(work, `${name}.yml`);
      fs.writeFileSync(
        file,
        `- name: ${name}\n  hosts: ${hostName}\n  tasks:\n    - name: fail2ban leaves the operators alone\n      fail2ban:\n${args
          .trim()
          .split('\n')
          .map((l) => `        ${l}`)
          .join('\n')}\n`,
      );
      return file;
    };
    const run = async (mode: 'plan' | 'apply', file: string, ...extra: string[]) =>
      runCli([mode, file, '-i', inventory, '--known-hosts', lab.knownHostsFile, ...extra]);
    const applyJson = async (file: string): Promise<{ code: number; report: JsonReport }> => {
      const r = await run('apply', file, '--format', 'json');
      expect(r.stderr).toBe('');
      return { code: r.code, report: JSON.parse(r.stdout) as JsonReport };
    };
    const fromWorkstation = (host: LabHost) => lab.ssh(host, 'true', { from: workstation, timeoutMs: 20000 });

    beforeAll(async () => {
      lab = await startLab({
        id: kind.kind === 'plain' ? 'fban' : `fban${process.pid % 10_000}`,
        hosts: 4,
        fail2ban: true,
        ...kind,
      });
      workstation = lab.workstationAddress;
      work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-fban-'));
      inventory = path.join(work, 'inventory.ini');
      fs.writeFileSync(
        inventory,
        lab.hosts
          .map(
            (h) =>
              `${h.name} ansible_host=${h.address} ansible_user=root ansible_ssh_private_key_file=${lab.privateKeyFile}\n`,
          )
          .join(''),
      );
    }, LAB_START_TIMEOUT_MS);

    afterAll(async () => {
      await lab?.destroy();
      if (work) fs.rmSync(work, { recursive: true, force: true });
    });

    test('banned workstation: ignoreip + unban lets a new connection in; a second run does nothing', async () => {
      const host = lab.hosts[0]!;
      await host.writeFile('/etc/fail2ban/jail.local', HAND_EDITED_JAIL_LOCAL);
      await f2b(host, 'reload');
      await f2b(host, `set sshd banip ${workstation}`);
      expect((await fromWorkstation(host)).code).not.toBe(0);
      expect((await lab.ssh(host, 'true')).code).toBe(0);
      const jailConf = await host.readFile('/etc/fail2ban/jail.conf');

      const book = playbook(
        'unban',
        host.name,
        `ignoreip: [${workstation}]\nunban: [${workstation}]\njails:\n  sshd: { maxretry: 5, findtime: 20m, bantime: 1h }`,
      );
      const plan = await run('plan', book, '--detailed-exitcode');
      expect(plan.stderr).toBe('');
      expect(plan.code).toBe(2);
      expect(plan.stdout).toContain(`+           ${workstation}`);
      expect(plan.stdout).toContain(`fail2ban-client set sshd unbanip ${workstation}`);
      // A plan changes nothing: the file and the ban are as they were.
      expect(await host.readFile('/etc/fail2ban/jail.local')).toBe(HAND_EDITED_JAIL_LOCAL);
      expect(await f2b(host, 'get sshd banip')).toContain(workstation);

      const reloadsBefore = await reloads(host);
      const pid = await serverPid(host);
      const first = await applyJson(book);
      expect(first.code).toBe(0);
      expect(first.report.hosts[host.name]).toMatchObject({ changed: 1, failed: 0 });
      // As they run: fail2ban-client where the host has it.
      expect(first.report.hosts[host.name]!.tasks[0]!.commands).toEqual([
        expect.stringMatching(/^\/\S*\/fail2ban-client reload$/),
        expect.stringMatching(
          new RegExp(`^/\\S*/fail2ban-client set sshd unbanip ${workstation.replace(/\./g, '\\.')}$`),
        ),
      ]);

      // The effect: a NEW connection from the workstation gets in, fail2ban ignores it from now on.
      expect((await fromWorkstation(host)).code).toBe(0);
      expect(await f2b(host, 'get sshd banip')).not.toContain(workstation);
      expect(await f2b(host, 'get sshd ignoreip')).toContain(workstation);
      expect((await f2b(host, 'get sshd maxretry')).trim()).toBe('5');
      expect((await f2b(host, 'get sshd findtime')).trim()).toBe('1200');
      // Lossless: the only differences are the planned lines; jail.conf is never written.
      expect(await host.readFile('/etc/fail2ban/jail.local')).toBe(
        HAND_EDITED_JAIL_LOCAL.replace('; partner\n', `; partner\n           ${workstation}\n`).replace(
          'maxretry: 3\n',
          // bantime is already 1h ([DEFAULT] above): not written again.
          'maxretry: 5\nfindtime: 20m\n',
        ),
      );
      expect(await host.readFile('/etc/fail2ban/jail.conf')).toBe(jailConf);
      expect(await reloads(host)).toBe(reloadsBefore + 1);

      // Second run: nothing to do, and fail2ban is neither reloaded nor restarted (its own log and pid).
      const second = await applyJson(book);
      expect(second.code).toBe(0);
      expect(second.report.hosts[host.name]).toMatchObject({ changed: 0, failed: 0 });
      expect(await reloads(host)).toBe(reloadsBefore + 1);
      expect(await serverPid(host)).toBe(pid);
      expect((await run('plan', book, '--detailed-exitcode')).code).toBe(0);
    });

    test('ignoreip alone does not lift an existing ban (TRAPS: fail2ban#1152)', async () => {
      const host = lab.hosts[1]!;
      await f2b(host, `set sshd banip ${workstation}`);
      const { code, report } = await applyJson(playbook('trap', host.name, `ignoreip: [${workstation}]`));
      expect(code).toBe(0);
      const task = report.hosts[host.name]!.tasks[0]!;
      expect(task.status).toBe('changed');
      expect(task.warnings.join('\n')).toContain(
        `${workstation} is in ignoreip but stays banned in jail sshd`,
      );
      // fail2ban now ignores the address, yet the ban that exists still blocks it.
      expect(await f2b(host, 'get sshd ignoreip')).toContain(workstation);
      expect(await f2b(host, 'get sshd banip')).toContain(workstation);
      expect((await fromWorkstation(host)).code).not.toBe(0);
    });

    test('a configuration fail2ban rejects fails before anything is written (fail2ban-client -t on a staged copy)', async () => {
      const host = lab.hosts[1]!;
      const before = await host.readFile('/etc/fail2ban/jail.local');
      const reloadsBefore = await reloads(host);
      const { code, report } = await applyJson(
        playbook(
          'invalid',
          host.name,
          'jails:\n  no-such-filter: { enabled: true, logpath: /var/log/auth.log }',
        ),
      );
      expect(code).not.toBe(0);
      expect(report.hosts[host.name]!.tasks[0]!.error).toMatch(
        /fail2ban-client -t rejected the new configuration: .*no-such-filter/s,
      );
      expect(await host.readFile('/etc/fail2ban/jail.local')).toBe(before);
      expect(await reloads(host)).toBe(reloadsBefore);
    });

    test('a jail that overrides ignoreip gets the address in its own section', async () => {
      const host = lab.hosts[2]!;
      await host.writeFile('/etc/fail2ban/jail.d/50-ops.conf', '[sshd]\nignoreip = 127.0.0.1/8\n');
      await f2b(host, 'reload');
      expect(await f2b(host, 'get sshd ignoreip')).not.toContain(workstation);
      const { code, report } = await applyJson(playbook('override', host.name, `ignoreip: [${workstation}]`));
      expect(code).toBe(0);
      expect(report.hosts[host.name]!.tasks[0]!.messages.join('\n')).toContain(
        '[sshd] overrides ignoreip at /etc/fail2ban/jail.d/50-ops.conf:2',
      );
      const local = await host.readFile('/etc/fail2ban/jail.local');
      if (kind.kind === 'plain') {
        expect(local).toContain(
          `[sshd]\nenabled = true\nbackend = polling\nlogpath = /var/log/auth.log\nignoreip = 127.0.0.1/8 ${workstation}\n`,
        );
      } else {
        // Debian 13 ships no jail.local (its sshd jail is jail.d/defaults-debian.conf): the run creates one.
        expect(local).toBe(
          `[DEFAULT]\nignoreip = ${workstation}\n\n[sshd]\nignoreip = 127.0.0.1/8 ${workstation}\n`,
        );
      }
      expect(await host.readFile('/etc/fail2ban/jail.d/50-ops.conf')).toBe(
        '[sshd]\nignoreip = 127.0.0.1/8\n',
      );
      // The running jail ignores it: [DEFAULT] alone would not have reached it.
      expect(await f2b(host, 'get sshd ignoreip')).toContain(workstation);
    });

    test('fail2ban absent: skipped with the reason, or failed with required: true', async () => {
      const host = lab.hosts[3]!;
      await f2b(host, 'stop');
      // Hide the client inside this host only (its own mount namespace): no executable left there.
      const hidden = await host.exec(
        'mount --bind /dev/null /usr/bin/fail2ban-client && ! command -v fail2ban-client',
      );
      expect(hidden.code).toBe(0);
      const before = await jailLocal(host);

      const skipped = await applyJson(playbook('absent', host.name, `ignoreip: [${workstation}]`));
      expect(skipped.code).toBe(0);
      expect(skipped.report.hosts[host.name]).toMatchObject({ skipped: 1, changed: 0, failed: 0 });
      expect(skipped.report.hosts[host.name]!.tasks[0]!.messages).toEqual([
        'fail2ban is not installed (no fail2ban-client found)',
      ]);

      const failed = await applyJson(
        playbook('required', host.name, `ignoreip: [${workstation}]\nrequired: true`),
      );
      expect(failed.code).not.toBe(0);
      expect(failed.report.hosts[host.name]).toMatchObject({ failed: 1, changed: 0 });
      expect(failed.report.hosts[host.name]!.tasks[0]!.error).toContain('required: true');
      expect(await jailLocal(host)).toBe(before);
    });
  },
);
