/**
 * Interrupted applies against real OpenSSH hosts. A dead-man timer outlives
 * the process that armed it: a run that dies on SIGINT leaves it armed, a
 * newer run then succeeds, and the old timer reverts everything a minute
 * later, fixes included.
 *
 * The real CLI runs as a child process and gets real signals. Each signal is
 * sent at an exact point of the run: a handler restarts an init script of the
 * test's own, which holds the change batch until the test lets it go (or cuts
 * new connections, to hold the confirmation), and the test waits until the
 * host shows that point was reached.
 */
import { spawn, type ChildProcess } from 'node:child_process';
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

/** Jest runs from the repository root (package.json). */
const REPO = process.cwd();
const BIN = path.join(REPO, 'dist/cli/bin.js');
const SSHD_CONFIG = '/etc/ssh/sshd_config';
const MARKERS = ['/etc/sshfix-intr-1', '/etc/sshfix-intr-2'];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Cli {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
  /** Resolves once `pattern` shows on stderr. */
  stderrShows(pattern: RegExp): Promise<void>;
}

function spawnCli(args: string[]): Cli {
  let stdout = '';
  let stderr = '';
  const waiters: Array<() => void> = [];
  const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    async stderrShows(pattern) {
      while (!pattern.test(stderr)) {
        const more = new Promise<void>((resolve) => waiters.push(resolve));
        const done = await Promise.race([more.then(() => false), exited.then(() => true)]);
        if (done && !pattern.test(stderr))
          throw new Error(`sshfix exited before printing ${pattern}:\n${stdout}\n${stderr}`);
      }
    },
  };
}

// Both timer kinds: a `setsid` process (plain hosts), a transient systemd timer (systemd hosts).
describeLabKinds(
  'interrupted apply: every host settled, no timer left armed in silence',
  [PLAIN, SYSTEMD_SERVICE],
  (kind) => {
    let lab: Lab;
    let work: string;
    let h: LabHost[];

    beforeAll(async () => {
      lab = await startLab({ id: kind.kind === 'plain' ? 'intr' : 'intrsd', hosts: 7, ...kind });
      h = lab.hosts;
      work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-intr-'));
      for (const host of h) {
        await installService(
          host,
          'sshfix-hold',
          // Holds the change batch here until the test lets it go (at most a minute).
          'touch /run/sshfix-held; i=0; while [ ! -e /run/sshfix-go ] && [ $i -lt 600 ]; do i=$((i+1)); sleep 0.1; done; rm -f /run/sshfix-go /run/sshfix-held',
        );
        await installService(
          host,
          'sshfix-cut',
          // New connections from the controller time out; the session sshfix has keeps working.
          `iptables -I INPUT -s ${lab.controllerAddress} -p tcp --dport 22 --syn -j DROP`,
        );
      }
    }, LAB_START_TIMEOUT_MS);

    afterAll(async () => {
      await lab?.destroy();
      if (work) fs.rmSync(work, { recursive: true, force: true });
    });

    /** A service the `service` resource restarts: an init script, or a oneshot unit (a restart waits for it). */
    async function installService(host: LabHost, name: string, body: string): Promise<void> {
      if (host.kind === 'plain') {
        await host.writeFile(`/etc/init.d/${name}`, `#!/bin/sh\n${body}\n`);
        const r = await host.exec(`chmod 755 /etc/init.d/${name}`);
        if (r.code !== 0) throw new Error(`cannot install /etc/init.d/${name}: ${r.stderr}`);
        return;
      }
      await host.writeFile(`/usr/local/sbin/${name}`, `#!/bin/sh\n${body}\n`);
      await host.writeFile(
        `/etc/systemd/system/${name}.service`,
        `[Service]\nType=oneshot\nTimeoutStartSec=infinity\nExecStart=/bin/sh /usr/local/sbin/${name}\n`,
      );
      const r = await host.exec('systemctl daemon-reload');
      if (r.code !== 0) throw new Error(`cannot install ${name}.service: ${r.stderr}`);
    }

    function inventory(hosts: LabHost[]): string {
      const file = path.join(work, `inventory-${hosts.map((x) => x.name).join('-')}.yml`);
      const lines = hosts.map((x) => `    ${x.name}: { ansible_host: ${x.address}, ansible_user: root }`);
      fs.writeFileSync(
        file,
        `all:\n  hosts:\n${lines.join('\n')}\n  vars:\n    ansible_ssh_private_key_file: ${lab.privateKeyFile}\n`,
      );
      return file;
    }

    /** Three changes; `fault` (a service restarted by a handler) runs after the files are written, before sshd reloads. */
    function playbook(fault?: string): string {
      const file = path.join(work, `playbook-${fault ?? 'plain'}.yml`);
      fs.writeFileSync(
        file,
        `
- name: interrupt
  hosts: all
  tasks:
    - name: sshd limits
      sshd_config: { settings: { MaxAuthTries: 4 } }
      notify: [${fault ? 'fault, ' : ''}reload sshd]
    - name: marker one
      file: { dest: ${MARKERS[0]}, content: "one\\n" }
    - name: marker two
      file: { dest: ${MARKERS[1]}, content: "two\\n" }
  handlers:
${fault ? `    - name: fault\n      service: { name: ${fault}, state: restarted }\n` : ''}    - name: reload sshd
      service: { name: sshd, state: reloaded }
`,
      );
      return file;
    }

    function applyArgs(pb: string, hosts: LabHost[], extra: string[] = []): string[] {
      return ['apply', pb, '-i', inventory(hosts), '--known-hosts', lab.knownHostsFile, ...extra];
    }

    async function applyJson(pb: string, hosts: LabHost[], extra: string[] = []) {
      const cli = spawnCli(applyArgs(pb, hosts, ['--format', 'json', ...extra]));
      const code = await cli.exited;
      let parsed: { hosts: Record<string, JsonHost> };
      try {
        parsed = JSON.parse(cli.stdout()) as { hosts: Record<string, JsonHost> };
      } catch {
        throw new Error(`no JSON from sshfix (exit ${code}): ${cli.stdout()}\n${cli.stderr()}`);
      }
      return { code, hosts: parsed.hosts, stderr: cli.stderr() };
    }

    async function waitUntil(what: string, condition: () => Promise<boolean>, timeoutMs = 60_000) {
      const end = Date.now() + timeoutMs;
      while (Date.now() < end) {
        if (await condition()) return;
        await sleep(100);
      }
      if (!(await condition())) throw new Error(`timed out waiting for ${what}`);
    }

    const held = async (host: LabHost) => (await host.exec('test -e /run/sshfix-held')).code === 0;
    const letGo = async (host: LabHost) => {
      await host.exec('touch /run/sshfix-go');
      await waitUntil('the held batch to go on', async () => !(await held(host)));
    };

    async function sshdT(host: LabHost, key: string): Promise<string[]> {
      const r = await host.exec(`/usr/sbin/sshd -T | grep -i '^${key} ' || true`);
      return r.stdout.trim().split('\n').filter(Boolean);
    }

    /**
     * How often sshd logged a reload. The journal of a systemd host stores
     * messages a moment after sshd sends them: with `atLeast`, waits (bounded)
     * for that many before counting.
     */
    async function reloads(host: LabHost, atLeast = 0): Promise<number> {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const count = ((await host.sshdLog()).match(/Received SIGHUP; restarting/g) ?? []).length;
        if (count >= atLeast || Date.now() > deadline) return count;
        await sleep(200);
      }
    }

    /** Each run directory on the host: its outcome, and whether its timer (process or systemd unit) still runs. */
    async function runs(host: LabHost): Promise<Array<{ id: string; outcome: string; timerAlive: boolean }>> {
      const r = await host.exec(
        'for d in /var/backups/sshfix/[0-9]*; do [ -d "$d" ] || continue; ' +
          'o=$(cat "$d/outcome" 2>/dev/null || echo none); p=$(cat "$d/timer.pid" 2>/dev/null); ' +
          'alive=no; [ -n "$p" ] && tr "\\0" " " < /proc/$p/cmdline 2>/dev/null | grep -qF "sshfix-rollback $d " && alive=yes; ' +
          // A transient systemd timer on hosts that run systemd.
          'systemctl is-active --quiet "sshfix-rollback-${d##*/}.timer" 2>/dev/null && alive=yes; ' +
          'echo "${d##*/} $o $alive"; done',
      );
      return r.stdout
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((line) => {
          const [id = '', outcome = '', alive = ''] = line.split(' ');
          return { id, outcome, timerAlive: alive === 'yes' };
        });
    }

    async function markers(host: LabHost): Promise<string> {
      return (await host.exec(`cat ${MARKERS.join(' ')} 2>/dev/null; true`)).stdout;
    }

    async function expectNewConnectionWorks(host: LabHost): Promise<void> {
      const r = await lab.ssh(host, 'echo in');
      expect({ code: r.code, stdout: r.stdout.trim() }).toEqual({ code: 0, stdout: 'in' });
    }

    /** The host's recap line (text output). */
    function recapLine(stdout: string, host: LabHost): string {
      const recap = stdout.split('\nRECAP')[1] ?? '';
      return recap.split('\n').find((l) => l.startsWith(`${host.name} `)) ?? '';
    }

    test('one SIGINT while the changes are applied: they finish and are confirmed, hosts not started are left alone, the recap says so', async () => {
      const [host, later] = [h[0]!, h[1]!];
      const cli = spawnCli(applyArgs(playbook('sshfix-hold'), [host, later], ['--forks', '1']));
      try {
        await waitUntil('the change batch to be held', () => held(host));
        cli.child.kill('SIGINT');
        await cli.stderrShows(/SIGINT: stopping/);
      } finally {
        await letGo(host);
      }
      expect(await cli.exited).toBe(130);
      const out = cli.stdout();
      expect(out).toMatch(/\nRECAP \(interrupted by SIGINT\)\n/);
      expect(recapLine(out, host)).toMatch(/changed=5 .*state: confirmed/);
      expect(recapLine(out, later)).toMatch(/failed=1 .*state: not started: nothing changed/);

      // Confirmed, and no timer left to revert it.
      const hostRuns = await runs(host);
      expect(hostRuns.map((r) => [r.outcome, r.timerAlive])).toEqual([['confirmed', false]]);
      expect(await sshdT(host, 'maxauthtries')).toEqual(['maxauthtries 4']);
      expect(await markers(host)).toBe('one\ntwo\n');
      // The host that had not started was not touched.
      expect(await runs(later)).toEqual([]);
      expect(await markers(later)).toBe('');

      // A later run is correct: nothing to do where the change was confirmed, the rest converges.
      const again = await applyJson(playbook(), [host, later]);
      expect(again.code).toBe(0);
      expect(again.hosts[host.name]!.changed).toBe(0);
      expect(again.hosts[later.name]!.changed).toBe(4);
      for (const x of [host, later]) {
        expect((await runs(x)).filter((r) => r.timerAlive || r.outcome !== 'confirmed')).toEqual([]);
        await expectNewConnectionWorks(x);
      }
    }, 180_000);

    test('a second SIGINT while the confirmation waits: the host is restored now, not left to its timer', async () => {
      const host = h[2]!;
      const before = await host.readFile(SSHD_CONFIG);
      const dropCount = async () =>
        Number(
          (
            await host.exec(
              `iptables -L INPUT -v -n -x | awk '$3 == "DROP" && $8 == "${lab.controllerAddress}" { print $1; exit }'`,
            )
          ).stdout.trim() || 0,
        );
      // Time-outs far beyond the test's own: only the second SIGINT can end the confirmation (and the run).
      const cli = spawnCli(
        applyArgs(playbook('sshfix-cut'), [host], ['--connect-timeout', '600', '--confirm-timeout', '600']),
      );
      try {
        await waitUntil('the confirmation to knock on the cut port', async () => (await dropCount()) > 0);
        cli.child.kill('SIGINT');
        await cli.stderrShows(/SIGINT: stopping/);
        cli.child.kill('SIGINT');
        expect(await cli.exited).toBe(130);
      } finally {
        cli.child.kill('SIGKILL');
        await host.exec(`iptables -D INPUT -s ${lab.controllerAddress} -p tcp --dport 22 --syn -j DROP`);
      }
      const out = cli.stdout();
      expect(recapLine(out, host)).toMatch(/state: rolled back: the previous state is restored/);
      expect(out).toMatch(
        /rolled back: the run was interrupted \(SIGINT, twice\) before the change was confirmed/,
      );
      expect((await runs(host)).map((r) => [r.outcome, r.timerAlive])).toEqual([['restored', false]]);
      expect(await host.readFile(SSHD_CONFIG)).toBe(before);
      expect(await sshdT(host, 'maxauthtries')).toEqual(['maxauthtries 6']);
      expect(await markers(host)).toBe('');
      await expectNewConnectionWorks(host);
    }, 180_000);

    test('a second SIGINT while the batch runs leaves the timer armed and says so; other runs refuse the host until it is decided', async () => {
      const host = h[3]!;
      const before = await host.readFile(SSHD_CONFIG);
      const cli = spawnCli(applyArgs(playbook('sshfix-hold'), [host], ['--confirm-timeout', '300']));
      try {
        await waitUntil('the change batch to be held', () => held(host));
        cli.child.kill('SIGINT');
        await cli.stderrShows(/SIGINT: stopping/);
        cli.child.kill('SIGINT');
        expect(await cli.exited).toBe(130);
      } finally {
        await letGo(host);
      }
      const [armed, ...others] = await runs(host);
      expect(others).toEqual([]);
      expect(armed).toMatchObject({ outcome: 'none', timerAlive: true });
      const runDir = `/var/backups/sshfix/${armed!.id}`;
      // Loud: in the recap and as a warning, with the host, the time and the backup.
      expect(recapLine(cli.stdout(), host)).toMatch(
        new RegExp(
          `state: ROLLBACK TIMER STILL ARMED: restores the previous state at \\S+ \\(backup in ${runDir}\\)`,
        ),
      );
      expect(cli.stderr()).toMatch(
        new RegExp(
          `WARNING: ${host.name}: its rollback timer is still armed: .* at \\S+ \\(backup in ${runDir}\\)`,
        ),
      );

      // Another process finds the undecided run on the host and leaves the host alone.
      const refused = await applyJson(playbook(), [host]);
      expect(refused.code).toBe(1);
      const task = refused.hosts[host.name]!.tasks[0]!;
      expect(task.task).toBe('(undecided transaction)');
      expect(task.error).toMatch(
        new RegExp(
          `^refused: another sshfix run has not decided its change on this host yet: run ${armed!.id} .*` +
            `restores that run's backup at \\S+ \\(in \\d+ s, by the host's clock\\).*` +
            `sh ${runDir}/restore.sh on the host\\).*Nothing was changed`,
        ),
      );
      expect((await runs(host)).map((r) => r.id)).toEqual([armed!.id]);

      // Decided as the message says: the old run's backup is restored, then a new run converges.
      expect((await host.exec(`sh ${runDir}/restore.sh`)).code).toBe(0);
      expect(await host.readFile(SSHD_CONFIG)).toBe(before);
      const converged = await applyJson(playbook(), [host]);
      expect(converged.code).toBe(0);
      expect(converged.hosts[host.name]!.changed).toBe(4);
      expect(await sshdT(host, 'maxauthtries')).toEqual(['maxauthtries 4']);
      expect((await runs(host)).filter((r) => r.timerAlive)).toEqual([]);
      await expectNewConnectionWorks(host);
    }, 180_000);

    test('a controller killed (SIGKILL) mid-batch cannot say anything: the next run finds its armed timer and refuses the host', async () => {
      const host = h[6]!;
      const cli = spawnCli(applyArgs(playbook('sshfix-hold'), [host], ['--confirm-timeout', '300']));
      try {
        await waitUntil('the change batch to be held', () => held(host));
        cli.child.kill('SIGKILL');
        await cli.exited;
      } finally {
        await letGo(host);
      }
      const [armed] = await runs(host);
      expect(armed).toMatchObject({ outcome: 'none', timerAlive: true });
      // The kind of timer this host arms: a `setsid` process, or a transient systemd timer.
      expect(await host.readFile(`/var/backups/sshfix/${armed!.id}/manifest`)).toMatch(
        host.kind === 'plain' ? /^timer process \d+$/m : /^timer systemd sshfix-rollback-\S+$/m,
      );

      const refused = await applyJson(playbook(), [host]);
      expect(refused.code).toBe(1);
      expect(refused.hosts[host.name]!.tasks.map((t) => [t.task, t.status])).toEqual([
        ['(undecided transaction)', 'failed'],
      ]);
      expect(refused.hosts[host.name]!.tasks[0]!.error).toContain(`run ${armed!.id} `);
      expect((await runs(host)).map((r) => r.id)).toEqual([armed!.id]);
      // Had the second run gone ahead, this timer would have undone it: restoring now is what it would do.
      expect((await host.exec(`sh /var/backups/sshfix/${armed!.id}/restore.sh`)).code).toBe(0);
      expect((await applyJson(playbook(), [host])).code).toBe(0);
      expect(await sshdT(host, 'maxauthtries')).toEqual(['maxauthtries 4']);
    }, 180_000);

    test('--no-rollback: a run cut off between writing sshd_config and reloading sshd is finished by the next run', async () => {
      const host = h[4]!;
      const reloadsBefore = await reloads(host);
      const cli = spawnCli(applyArgs(playbook('sshfix-hold'), [host], ['--no-rollback']));
      try {
        await waitUntil('the change batch to be held', () => held(host));
        cli.child.kill('SIGINT');
        await cli.stderrShows(/SIGINT: stopping/);
        cli.child.kill('SIGINT');
        expect(await cli.exited).toBe(130);
      } finally {
        await letGo(host);
      }
      expect(recapLine(cli.stdout(), host)).toMatch(/state: CUT OFF WHILE APPLYING \(--no-rollback\)/);
      // Written, never reloaded.
      expect(await host.readFile(SSHD_CONFIG)).toMatch(/^MaxAuthTries 4$/m);
      expect(await reloads(host)).toBe(reloadsBefore);

      const next = await applyJson(playbook(), [host], ['--no-rollback']);
      expect(next.code).toBe(0);
      const sshdTask = next.hosts[host.name]!.tasks.find((t) => t.task === 'sshd limits')!;
      expect(sshdTask.status).toBe('changed');
      expect(sshdTask.messages.join('\n')).toMatch(
        /sshd \(pid \d+\) has not loaded what is on disk: \/etc\/ssh\/sshd_config changed at \S+, after sshd last read its configuration at \S+/,
      );
      expect(await reloads(host, reloadsBefore + 1)).toBe(reloadsBefore + 1);

      const settled = await applyJson(playbook(), [host], ['--no-rollback']);
      expect(settled.code).toBe(0);
      expect(settled.hosts[host.name]!.changed).toBe(0);
      expect(await reloads(host)).toBe(reloadsBefore + 1);
    }, 180_000);
  },
);

interface JsonHost {
  unreachable: boolean;
  error?: string;
  changed: number;
  failed: number;
  tasks: Array<{ task: string; status: string; error?: string; messages: string[] }>;
}
