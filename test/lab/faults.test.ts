/**
 * Fault injection against real OpenSSH hosts (issue #4, "Never lock anyone
 * out"). Every scenario ends by proving that a NEW ssh connection gets in,
 * and that every file the run touched is entirely old or entirely new.
 *
 * Faults are injected at exact points of a run by the run itself: a `file`
 * task or handler whose `validate` command cuts the network or kills sshd
 * runs right before that task's write, and handlers run after every task and
 * before verification — so "during the write" and "during the verification"
 * are deterministic, not races against a poller.
 *
 * On three kinds of lab host: plain (no init system: init.d scripts, the
 * timer is a process), and systemd with ssh.service or ssh.socket (faults
 * are units of the test's own, the dead-man timer is a systemd-run timer,
 * and the restore must leave sshd's units as it found them).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  describeLabKinds,
  LAB_START_TIMEOUT_MS,
  PLAIN,
  startLab,
  SYSTEMD_SERVICE,
  SYSTEMD_SOCKET,
  type Lab,
  type LabHost,
} from './lab.js';
import { runCli, type CliRun } from '../support/cli.js';

const CONFIRM_TIMEOUT_S = 12;
/** Jest runs from the repository root (package.json). */
const REPO = process.cwd();

interface JsonTask {
  task: string;
  status: string;
  error?: string;
  warnings: string[];
}
interface JsonHost {
  unreachable: boolean;
  error?: string;
  changed: number;
  failed: number;
  tasks: JsonTask[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Taken after a connection: under socket activation ssh.service is active
 * only once a connection has started it.
 */
const UNIT_STATES =
  'for u in ssh.service ssh.socket; do echo "$u $(systemctl is-enabled $u) $(systemctl is-active $u)"; done';

describeLabKinds(
  'transactional apply: confirm or revert under faults',
  [PLAIN, SYSTEMD_SERVICE, SYSTEMD_SOCKET],
  (kind) => {
    let lab: Lab;
    let work: string;
    let h: LabHost[];
    const systemd = kind.kind === 'systemd';
    const socket = kind.sshdUnit === 'socket';

    beforeAll(async () => {
      const id = systemd ? `flt${socket ? 'k' : 's'}${process.pid % 1000}` : 'flt';
      lab = await startLab({ id, hosts: 6, ...kind });
      h = lab.hosts;
      work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-flt-'));
    }, LAB_START_TIMEOUT_MS);

    afterAll(async () => {
      await lab?.destroy();
      if (work) fs.rmSync(work, { recursive: true, force: true });
    });

    function inventory(hosts: LabHost[]): string {
      const file = path.join(work, `inventory-${hosts.map((x) => x.name).join('-')}.yml`);
      const lines = hosts.map((x) => `        ${x.name}: { ansible_host: ${x.address}, ansible_user: root }`);
      fs.writeFileSync(
        file,
        `all:\n  children:\n    fleet:\n      hosts:\n${lines.join('\n')}\n  vars:\n    ansible_ssh_private_key_file: ${lab.privateKeyFile}\n`,
      );
      return file;
    }

    let playbookCount = 0;
    function playbook(text: string): string {
      const file = path.join(work, `playbook-${++playbookCount}.yml`);
      fs.writeFileSync(file, text);
      return file;
    }

    function cliArgs(pb: string, hosts: LabHost[], extra: string[] = []): string[] {
      return [
        'apply',
        pb,
        '-i',
        inventory(hosts),
        '--known-hosts',
        lab.knownHostsFile,
        '--format',
        'json',
        '--confirm-timeout',
        String(CONFIRM_TIMEOUT_S),
        '--connect-timeout',
        '4',
        ...extra,
      ];
    }

    async function apply(
      pb: string,
      hosts: LabHost[],
      extra: string[] = [],
    ): Promise<CliRun & { hosts: Record<string, JsonHost> }> {
      const run = await runCli(cliArgs(pb, hosts, extra));
      let parsed: { hosts: Record<string, JsonHost> };
      try {
        parsed = JSON.parse(run.stdout) as { hosts: Record<string, JsonHost> };
      } catch {
        throw new Error(`no JSON from sshfix (exit ${run.code}): ${run.stdout}\n${run.stderr}`);
      }
      return { ...run, hosts: parsed.hosts };
    }

    async function read(host: LabHost, file: string): Promise<string | null> {
      const r = await host.exec(`cat -- '${file}'`);
      return r.code === 0 ? r.stdout : null;
    }

    async function snapshot(host: LabHost, files: string[]): Promise<Map<string, string | null>> {
      return new Map(await Promise.all(files.map(async (f) => [f, await read(host, f)] as const)));
    }

    async function expectUnchanged(host: LabHost, before: Map<string, string | null>): Promise<void> {
      for (const [file, content] of before)
        expect({ file, content: await read(host, file) }).toEqual({ file, content });
    }

    async function expectNewConnectionWorks(host: LabHost): Promise<void> {
      const r = await lab.ssh(host, 'echo in');
      expect({ code: r.code, stdout: r.stdout.trim(), stderr: r.code === 0 ? '' : r.stderr }).toEqual({
        code: 0,
        stdout: 'in',
        stderr: '',
      });
    }

    async function sshdT(host: LabHost, key: string): Promise<string[]> {
      const r = await host.exec(`/usr/sbin/sshd -T | grep -i '^${key} ' || true`);
      return r.stdout.trim().split('\n').filter(Boolean);
    }

    async function outcomes(host: LabHost): Promise<string[]> {
      const r = await host.exec('cat /var/backups/sshfix/*/outcome 2>/dev/null');
      return r.stdout.trim().split('\n').filter(Boolean);
    }

    async function waitUntil(
      what: string,
      condition: () => Promise<boolean>,
      timeoutMs: number,
    ): Promise<void> {
      const end = Date.now() + timeoutMs;
      while (Date.now() < end) {
        if (await condition()) return;
        await sleep(250);
      }
      if (!(await condition())) throw new Error(`timed out waiting for ${what}`);
    }

    /**
     * The delay, in seconds, the host's armed rollback timer was given: the systemd timer's
     * OnActiveSec, or the argument of the `sleep` under the setsid timer's recorded pid.
     */
    async function armedRollbackSeconds(host: LabHost): Promise<number> {
      const r = await host.exec(
        systemd
          ? 'systemctl show -P TimersMonotonic $(systemctl list-units --all --plain --no-legend "sshfix-rollback-*.timer" | cut -d" " -f1)'
          : 'for f in /var/backups/sshfix/*/timer.pid; do ps -o args= --ppid "$(cat "$f")"; done',
      );
      const seconds = systemd ? /OnActiveUSec=(\d+)s\b/.exec(r.stdout) : /^sleep (\d+)$/m.exec(r.stdout);
      if (!seconds) throw new Error(`no armed rollback timer on ${host.name}: ${r.stdout}${r.stderr}`);
      return Number(seconds[1]);
    }

    /** Waits for the host's own dead-man timer to restore; a time-out says what the host shows. */
    async function waitForRestore(host: LabHost, what: string): Promise<void> {
      try {
        await waitUntil(
          what,
          async () => (await outcomes(host)).includes('restored'),
          (CONFIRM_TIMEOUT_S + 10) * 1000,
        );
      } catch (error) {
        const units = systemd
          ? '; systemctl list-units --all --no-pager "sshfix-rollback-*"; journalctl --no-pager -q -n 40 -u "sshfix-rollback-*"'
          : '';
        const shown = await host.exec(
          `cat /var/backups/sshfix/*/manifest /var/backups/sshfix/*/outcome${units}`,
        );
        throw new Error(`${(error as Error).message}; the host shows:\n${shown.stdout}${shown.stderr}`);
      }
    }

    const SSHD_CONFIG = '/etc/ssh/sshd_config';

    const sshdPlaybook = (settings: string, extraHandlers = '') => `
- name: sshd
  hosts: all
  tasks:
    - name: sshd settings
      sshd_config:
        settings: ${settings}
      notify: [reload sshd${extraHandlers ? ', fault' : ''}]
  handlers:
    - name: reload sshd
      service: { name: sshd, state: reloaded }
${extraHandlers}`;

    /**
     * Faults land at an exact point of the change batch: a `service` task or
     * handler restarts a service of the test's own, which blocks or cuts the
     * network right there (validations all run before anything changes). An
     * init script on a plain host; on a systemd host a oneshot unit, whose
     * `systemctl restart` returns once its script has run.
     */
    async function faultService(host: LabHost, name: string, body: string): Promise<void> {
      const script = systemd ? `/usr/local/sbin/${name}` : `/etc/init.d/${name}`;
      await host.writeFile(script, `#!/bin/sh\n${body}\n`);
      let r = await host.exec(`chmod 755 ${script}`);
      if (r.code === 0 && systemd) {
        await host.writeFile(
          `/etc/systemd/system/${name}.service`,
          `[Unit]\nDescription=lab fault ${name}\n\n[Service]\nType=oneshot\nExecStart=${script}\n`,
        );
        r = await host.exec('systemctl daemon-reload');
      }
      if (r.code !== 0) throw new Error(`cannot install the fault service ${name}: ${r.stderr}`);
    }

    /** How an operator reloads sshd on this kind of host (under ssh.socket a SIGHUP would kill it). */
    const reloadSshd = !systemd
      ? 'kill -HUP $(cat /run/sshd.pid)'
      : socket
        ? 'systemctl restart ssh.service'
        : 'systemctl reload ssh.service';

    /** sshd's units as found (systemd), to compare after a restore; nothing to compare without systemd. */
    async function unitStates(host: LabHost): Promise<string> {
      return systemd ? (await host.exec(UNIT_STATES)).stdout : '';
    }
    const faultHandler = (name: string) => `    - name: fault
      service: { name: ${name}, state: restarted }
`;

    test('(1) AllowUsers of another user: refused by the guard; with --force, the new connection fails and it is rolled back', async () => {
      const host = h[0]!;
      await expectNewConnectionWorks(host);
      const units = await unitStates(host);
      const before = await snapshot(host, [SSHD_CONFIG]);
      const pb = playbook(sshdPlaybook('{ AllowUsers: nobody }'));

      const refused = await apply(pb, [host]);
      expect(refused.code).toBe(1);
      const task = refused.hosts[host.name]!.tasks.find((t) => t.task === 'sshd settings')!;
      expect(task.status).toBe('failed');
      expect(task.error).toMatch(
        /^refused: this change would lock sshfix out: AllowUsers nobody does not admit root from /,
      );
      await expectUnchanged(host, before);
      expect(await outcomes(host)).toEqual([]);

      const forced = await apply(pb, [host], ['--force']);
      expect(forced.code).toBe(1);
      const forcedTask = forced.hosts[host.name]!.tasks.find((t) => t.task === 'sshd settings')!;
      expect(forcedTask.status).toBe('failed');
      expect(forcedTask.error).toMatch(
        /^rolled back: a new SSH connection to port 22 failed after the change: .*authentication as root failed/,
      );
      expect(forcedTask.warnings.join('\n')).toMatch(
        /applied despite the lockout guard \(--force\): AllowUsers nobody/,
      );
      await expectUnchanged(host, before);
      expect(await sshdT(host, 'allowusers')).toEqual([]);
      expect(await outcomes(host)).toEqual(['restored']);
      await expectNewConnectionWorks(host);
      expect(await unitStates(host)).toBe(units);
    }, 120_000);

    test('(2) Port 2222 behind a firewall that admits only 22: refused; with --force, rolled back', async () => {
      const host = h[1]!;
      const firewall =
        'iptables -A INPUT -i lo -j ACCEPT && iptables -A INPUT -p tcp --dport 22 -j ACCEPT && iptables -P INPUT DROP';
      expect((await host.exec(firewall)).code).toBe(0);
      try {
        const before = await snapshot(host, [SSHD_CONFIG]);
        const pb = playbook(sshdPlaybook('{ Port: 2222 }'));
        if (socket) {
          // ssh.socket decides where sshd listens: the change would never take effect, --force or not.
          for (const extra of [[], ['--force']]) {
            const run = await apply(pb, [host], extra);
            expect(run.code).toBe(1);
            expect(run.hosts[host.name]!.tasks[0]!.error).toMatch(
              /^refused: sshd on this host is socket-activated \(ssh\.socket\)/,
            );
            await expectUnchanged(host, before);
          }
          expect(await outcomes(host)).toEqual([]);
          await expectNewConnectionWorks(host);
          return;
        }
        const refused = await apply(pb, [host]);
        expect(refused.code).toBe(1);
        expect(refused.hosts[host.name]!.tasks[0]!.error).toMatch(
          /sshd would move to port 2222, which the firewall does not admit from .*INPUT policy DROP/,
        );
        await expectUnchanged(host, before);

        const forced = await apply(pb, [host], ['--force']);
        expect(forced.code).toBe(1);
        expect(forced.hosts[host.name]!.tasks[0]!.error).toMatch(
          /^rolled back: a new SSH connection to port 2222 failed after the change/,
        );
        await expectUnchanged(host, before);
        expect(await sshdT(host, 'port')).toEqual(['port 22']);
        await expectNewConnectionWorks(host);
      } finally {
        await host.exec('iptables -P INPUT ACCEPT && iptables -F INPUT');
      }
    }, 120_000);

    test('(3) a hosts.deny rule covering the controller: the new connection is reset, rolled back', async () => {
      const host = h[2]!;
      const before = await snapshot(host, ['/etc/hosts.deny']);
      const pb = playbook(`
- name: wrappers
  hosts: all
  tasks:
    - name: deny the controller
      file:
        dest: /etc/hosts.deny
        content: "sshd: ${lab.controllerAddress}\\n"
`);
      const run = await apply(pb, [host]);
      expect(run.code).toBe(1);
      // libwrap pauses 5 s before the reset (TRAPS.md), longer than the 4 s connect timeout used here.
      expect(run.hosts[host.name]!.tasks[0]!.error).toMatch(
        /^rolled back: a new SSH connection to port 22 failed after the change: .*(reset by peer|no SSH handshake)/,
      );
      await expectUnchanged(host, before);
      await expectNewConnectionWorks(host);
    }, 120_000);

    test('(4) the controller is killed with SIGKILL right after the reload: the host restores itself within the deadline', async () => {
      const host = h[3]!;
      const bin = path.join(REPO, 'dist/cli/bin.js');
      expect(fs.existsSync(bin)).toBe(true); // npm run build (pretest) makes it
      await expectNewConnectionWorks(host);
      const before = await snapshot(host, [SSHD_CONFIG]);
      const units = await unitStates(host);
      // The second handler keeps the run busy after the reload, so the kill lands between reload and
      // confirmation. Handlers run in the order they are defined: once it has started, sshd was reloaded.
      await faultService(host, 'sshfix-fault4', 'touch /run/sshfix-fault4.started; sleep 60');
      const pb = playbook(sshdPlaybook('{ MaxAuthTries: 2 }', faultHandler('sshfix-fault4')));
      const child = spawn(process.execPath, [bin, ...cliArgs(pb, [host])], { cwd: REPO, stdio: 'ignore' });
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      try {
        await waitUntil(
          'the new configuration to be live',
          async () =>
            ((await read(host, SSHD_CONFIG)) ?? '').includes('MaxAuthTries 2') &&
            (await read(host, '/run/sshfix-fault4.started')) !== null,
          60_000,
        );
      } finally {
        child.kill('SIGKILL');
      }
      await exited;
      // The timer is armed to fire within the confirmation deadline, and precisely: its settings
      // are asserted, not the time the restore took, which depends on how busy the machine is.
      expect(await armedRollbackSeconds(host)).toBeLessThanOrEqual(CONFIRM_TIMEOUT_S);
      if (systemd) {
        // systemd fires a timer up to AccuracySec= late (1 min unless set): the deadline must be kept.
        const timer = await host.exec(
          'systemctl show -P AccuracyUSec $(systemctl list-units --all --plain --no-legend "sshfix-rollback-*.timer" | cut -d" " -f1)',
        );
        expect(timer.stdout.trim()).toBe('1s');
      }
      expect(await sshdT(host, 'maxauthtries')).toEqual(['maxauthtries 2']);
      await waitForRestore(host, 'the host to restore by itself');
      await expectUnchanged(host, before);
      expect(await sshdT(host, 'maxauthtries')).toEqual(['maxauthtries 6']);
      await expectNewConnectionWorks(host);
      expect(await unitStates(host)).toBe(units);
      if (systemd) {
        // The dead-man timer of a systemd host is a transient timer unit: gone once it has run.
        expect((await host.exec('systemctl list-timers --all --no-legend "sshfix-rollback-*"')).stdout).toBe(
          '',
        );
      }
    }, 150_000);

    describe('(5) the connection is cut (packets dropped on the host)', () => {
      const cut = () => `iptables -I INPUT -s ${lab.controllerAddress} -j DROP`;
      const uncut = (host: LabHost) => host.exec(`iptables -D INPUT -s ${lab.controllerAddress} -j DROP`);

      test('during the write: no partial file, and what was already written is restored', async () => {
        const host = h[4]!;
        const before = await snapshot(host, ['/etc/hosts.allow', '/etc/issue.net']);
        await faultService(host, 'sshfix-cut5', cut());
        const pb = playbook(`
- name: cut during write
  hosts: all
  tasks:
    - name: written before the cut
      file: { dest: /etc/hosts.allow, content: "# fault 5\\nsshd: ALL\\n" }
    - name: the connection is cut here
      service: { name: sshfix-cut5, state: restarted }
    - name: written after the cut
      file: { dest: /etc/issue.net, content: "new banner\\n" }
`);
        try {
          const run = await apply(pb, [host], ['--command-timeout', '8']);
          expect(run.code).toBe(4);
          expect(run.hosts[host.name]!.unreachable).toBe(true);
          expect(run.hosts[host.name]!.error).toMatch(
            /the host restores its previous state by itself by .* \(dead-man timer/,
          );
          await waitForRestore(host, 'the timer to restore');
        } finally {
          await uncut(host);
        }
        await expectUnchanged(host, before);
        expect((await host.exec('ls -a /etc | grep -c sshfix || true')).stdout.trim()).toBe('0');
        await expectNewConnectionWorks(host);
      }, 150_000);

      test('during the verification: the live change is restored and sshd reloaded', async () => {
        const host = h[4]!;
        await host.exec('rm -rf /var/backups/sshfix');
        const before = await snapshot(host, [SSHD_CONFIG]);
        await faultService(host, 'sshfix-cut5b', cut());
        const pb = playbook(sshdPlaybook('{ MaxAuthTries: 3 }', faultHandler('sshfix-cut5b')));
        try {
          const run = await apply(pb, [host], ['--command-timeout', '8']);
          expect(run.code).toBe(4);
          expect(run.hosts[host.name]!.error).toMatch(/restores its previous state by itself/);
          await waitForRestore(host, 'the timer to restore');
        } finally {
          await uncut(host);
        }
        await expectUnchanged(host, before);
        expect(await sshdT(host, 'maxauthtries')).toEqual(['maxauthtries 6']);
        await expectNewConnectionWorks(host);
      }, 150_000);
    });

    /**
     * Under systemd a killed sshd is started again by ssh.service's Restart=on-failure
     * (or by ssh.socket): there sshd goes away for good when its units are stopped
     * (KillMode=process: the run's own session stays).
     */
    const sshdGone = systemd ? 'systemctl stop ssh.socket ssh.service' : 'kill -9 $(cat /run/sshd.pid)';

    test(`(6) sshd ${systemd ? 'stopped' : 'killed'} mid-run: the confirmation fails, the restore brings sshd back`, async () => {
      const host = h[2]!;
      await host.exec('rm -rf /var/backups/sshfix');
      await expectNewConnectionWorks(host);
      const units = await unitStates(host);
      const before = await snapshot(host, [SSHD_CONFIG, '/etc/sshfix-fault6']);
      const pb = playbook(
        sshdPlaybook(
          '{ MaxAuthTries: 3 }',
          `    - name: fault
      file: { dest: /etc/sshfix-fault6, content: "x\\n", validate: "${sshdGone} && test -f %s" }
`,
        ),
      );
      const run = await apply(pb, [host]);
      const sshdTask = run.hosts[host.name]!.tasks.find((t) => t.task === 'sshd settings')!;
      if (socket) {
        // The handler restarts ssh.service (never a reload under ssh.socket), which starts sshd
        // listening by itself without the socket: the new connection gets in and confirms the run.
        expect(run.code).toBe(0);
        expect(sshdTask.status).toBe('changed');
        expect(await outcomes(host)).toEqual(['confirmed']);
        expect(await sshdT(host, 'maxauthtries')).toEqual(['maxauthtries 3']);
        await expectNewConnectionWorks(host);
        expect((await host.exec(UNIT_STATES)).stdout).toBe(
          'ssh.service disabled active\nssh.socket enabled inactive\n',
        );
        // Back to socket activation for the tests that follow.
        await host.exec('systemctl stop ssh.service && systemctl start ssh.socket');
        await expectNewConnectionWorks(host);
        expect(await unitStates(host)).toBe(units);
        return;
      }
      expect(run.code).toBe(1);
      // systemd refuses to reload a stopped unit, before any new connection is tried.
      expect(sshdTask.error).toMatch(
        systemd
          ? /^rolled back: reload sshd failed/
          : /^rolled back: a new SSH connection to port 22 failed after the change: .*refused/,
      );
      await expectUnchanged(host, before);
      expect(await outcomes(host)).toEqual(['restored']);
      await expectNewConnectionWorks(host);
      expect(await host.sshdPid()).not.toBeNull();
      expect(await unitStates(host)).toBe(units);
    }, 120_000);

    /**
     * The host's own way of reloading sshd fails: an init script whose reload
     * exits 1, or an ExecReload= that fails in a drop-in for ssh.service.
     */
    const breakReload = systemd
      ? 'mkdir -p /etc/systemd/system/ssh.service.d && printf "[Service]\\nExecReload=\\nExecReload=/bin/false\\n" > /etc/systemd/system/ssh.service.d/lab-reload-fails.conf && systemctl daemon-reload'
      : 'cp -p /etc/init.d/ssh /run/ssh.init && printf "#!/bin/sh\\n[ \\"\\$1\\" = reload ] && exit 1\\nexec /run/ssh.init \\"\\$@\\"\\n" > /etc/init.d/ssh';
    const repairReload = systemd
      ? 'rm -rf /etc/systemd/system/ssh.service.d && systemctl daemon-reload'
      : 'cp -p /run/ssh.init /etc/init.d/ssh';

    test(`(10) the host's sshd reload fails: ${socket ? 'never used under ssh.socket' : 'rolled back'}`, async () => {
      const host = h[1]!;
      await host.exec('rm -rf /var/backups/sshfix');
      await expectNewConnectionWorks(host);
      const units = await unitStates(host);
      const before = await snapshot(host, [SSHD_CONFIG]);
      const sighups = (log: string): number => log.split('Received SIGHUP').length - 1;
      const sighupsBefore = sighups(await host.sshdLog());
      expect((await host.exec(breakReload)).code).toBe(0);
      try {
        const run = await apply(playbook(sshdPlaybook('{ MaxAuthTries: 3 }')), [host]);
        const sshdTask = run.hosts[host.name]!.tasks.find((t) => t.task === 'sshd settings')!;
        if (socket) {
          // sshd is restarted there, never reloaded: the broken reload does not matter.
          expect(run.code).toBe(0);
          expect(sshdTask.status).toBe('changed');
          expect(await outcomes(host)).toEqual(['confirmed']);
          expect(await sshdT(host, 'maxauthtries')).toEqual(['maxauthtries 3']);
        } else {
          expect(run.code).toBe(1);
          expect(sshdTask.error).toMatch(/^rolled back: reload sshd failed/);
          expect(sshdTask.error).not.toMatch(/incomplete/);
          await expectUnchanged(host, before);
          // The restore put the old file into effect all the same: sshd got its SIGHUP.
          expect(sighups(await host.sshdLog())).toBe(sighupsBefore + 1);
          expect(await outcomes(host)).toEqual(['restored']);
          expect(await sshdT(host, 'maxauthtries')).toEqual(['maxauthtries 6']);
        }
        await expectNewConnectionWorks(host);
        expect(await unitStates(host)).toBe(units);
      } finally {
        await host.exec(`${repairReload}; rm -rf /var/backups/sshfix`);
      }
    }, 120_000);

    test('(11) new connections get through the key exchange but the login hangs: rolled back', async () => {
      const host = h[3]!;
      await expectNewConnectionWorks(host);
      const units = await unitStates(host);
      const before = await snapshot(host, [SSHD_CONFIG]);
      const earlier = await outcomes(host);
      // No authorized_keys file: sshd runs the command for the key offered, and waits for it: the key exchange
      // completes, the login never does. The command ends by itself, so no login hangs for long.
      const hang = '/usr/local/sbin/sshfix-fault11-keys';
      expect((await host.exec(`printf '#!/bin/sh\\nsleep 40\\n' > ${hang} && chmod 0755 ${hang}`)).code).toBe(
        0,
      );
      const pb = playbook(
        sshdPlaybook(
          `{ AuthorizedKeysFile: none, AuthorizedKeysCommand: ${hang}, AuthorizedKeysCommandUser: nobody }`,
        ),
      );

      const forced = await apply(pb, [host], ['--force']);
      expect(forced.code).toBe(1);
      const task = forced.hosts[host.name]!.tasks.find((t) => t.task === 'sshd settings')!;
      expect(task.status).toBe('failed');
      expect(task.error).toMatch(
        /^rolled back: a new SSH connection to port 22 failed after the change: .*its sshd finished the key exchange, but the login did not finish/,
      );
      await expectUnchanged(host, before);
      expect(await outcomes(host)).toEqual([...earlier, 'restored']);
      await expectNewConnectionWorks(host);
      expect(await unitStates(host)).toBe(units);
    }, 180_000);

    test('(7) an unreachable host among reachable ones: the others are changed and confirmed', async () => {
      const [a, b, down] = [h[0]!, h[1]!, h[5]!];
      await down.stopSshd();
      try {
        const pb = playbook(`
- name: motd
  hosts: all
  tasks:
    - name: marker
      file: { dest: /etc/sshfix-fault7, content: "converged\\n" }
`);
        const run = await apply(pb, [a, b, down]);
        expect(run.code).toBe(4);
        expect(run.hosts[down.name]!.unreachable).toBe(true);
        for (const up of [a, b]) {
          expect(run.hosts[up.name]!.tasks.map((t) => t.status)).toEqual(['changed']);
          expect(await read(up, '/etc/sshfix-fault7')).toBe('converged\n');
          expect((await outcomes(up)).at(-1)).toBe('confirmed');
          await expectNewConnectionWorks(up);
          await up.exec('rm -f /etc/sshfix-fault7');
        }
        expect(await read(down, '/etc/sshfix-fault7')).toBeNull();
      } finally {
        await down.startSshd();
      }
      await expectNewConnectionWorks(down);
    }, 120_000);

    test('(8) a changed host key: refused before authentication, nothing changed', async () => {
      const host = h[0]!;
      const key = '/etc/ssh/ssh_host_ed25519_key';
      await host.exec(`cp -p ${key} /run/saved_key && cp -p ${key}.pub /run/saved_key.pub`);
      await host.exec(`rm -f ${key} ${key}.pub && ssh-keygen -q -t ed25519 -N '' -f ${key} && ${reloadSshd}`);
      const before = await snapshot(host, [SSHD_CONFIG]);
      try {
        await sleep(500);
        const run = await apply(playbook(sshdPlaybook('{ MaxAuthTries: 3 }')), [host]);
        expect(run.code).toBe(4);
        expect(run.hosts[host.name]!.error).toMatch(/host key for .* does not match known_hosts/);
        await expectUnchanged(host, before);
        expect(await outcomes(host)).not.toContain('restoring');
      } finally {
        await host.exec(
          `cp -p /run/saved_key ${key} && cp -p /run/saved_key.pub ${key}.pub && ${reloadSshd}`,
        );
        await sleep(500);
      }
      await expectNewConnectionWorks(host);
    }, 120_000);

    test('(9) a write that fails (read-only target directory): the earlier write is undone, nothing changed', async () => {
      const host = h[2]!;
      await host.exec(
        'mkdir -p /etc/sshfix-ro && mount --bind /etc/sshfix-ro /etc/sshfix-ro && mount -o remount,bind,ro /etc/sshfix-ro',
      );
      try {
        const before = await snapshot(host, ['/etc/hosts.allow', '/etc/sshfix-ro/x.conf']);
        const pb = playbook(`
- name: read-only
  hosts: all
  tasks:
    - name: first write
      file: { dest: /etc/hosts.allow, content: "# fault 9\\n" }
    - name: write into a read-only directory
      file: { dest: /etc/sshfix-ro/x.conf, content: "x\\n" }
`);
        const run = await apply(pb, [host]);
        expect(run.code).toBe(1);
        const [first, second] = run.hosts[host.name]!.tasks;
        expect(second!.error).toMatch(/writing files failed: .*Read-only file system.*; rolled back$/s);
        expect(first!.error).toBe('rolled back: write into a read-only directory failed');
        await expectUnchanged(host, before);
        await expectNewConnectionWorks(host);
      } finally {
        await host.exec('umount /etc/sshfix-ro; rmdir /etc/sshfix-ro');
      }
    }, 120_000);

    test('--no-rollback applies bare: no backup, no timer', async () => {
      const host = h[1]!;
      await host.exec('rm -rf /var/backups/sshfix');
      const pb = playbook(`
- name: bare
  hosts: all
  tasks:
    - name: marker
      file: { dest: /etc/sshfix-bare, content: "bare\\n" }
`);
      const run = await apply(pb, [host], ['--no-rollback']);
      expect(run.code).toBe(0);
      expect(await read(host, '/etc/sshfix-bare')).toBe('bare\n');
      expect((await host.exec('ls /var/backups/sshfix 2>/dev/null | wc -l')).stdout.trim()).toBe('0');
      await host.exec('rm -f /etc/sshfix-bare');
    }, 60_000);
  },
);
