/**
 * The transaction scripts run by this machine's /bin/sh against a temporary
 * backup root: backup, restore (by the controller and by the dead-man timer),
 * disarm, pruning. No firewall or sshd steps here (they would act on this
 * machine); those are exercised by the lab suite (test/lab/faults.test.ts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  beginTransaction,
  buildBeginScript,
  buildExtendScript,
  buildRearmScript,
  buildRestoreScript,
  confirmDeadlineMs,
  confirmRetryDelay,
  rearmedTransaction,
  disarmTransaction,
  isRunId,
  latestExtendedDue,
  newRunId,
  parseUndecidedRuns,
  UndecidedTransactionError,
  undecidedRunsMessage,
  undecidedRunsScript,
  REFUSED_RETRY_DELAYS_MS,
  rollbackTransaction,
  touchedFiles,
  transactionSpecFor,
  type Transaction,
  type TransactionSpec,
} from '../../../src/executor/transaction.js';
import type { ResourcePlan } from '../../../src/plan/types.js';
import { localShell } from '../../support/local_sh.js';

let dir: string;
let root: string;
const armed: Transaction[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-tx-'));
  root = path.join(dir, 'backups');
});

afterEach(async () => {
  // Never leave a timer behind: disarm whatever a test did not decide.
  for (const tx of armed.splice(0)) await disarmTransaction(localShell(), tx).catch(() => undefined);
  fs.rmSync(dir, { recursive: true, force: true });
});

function spec(files: string[], overrides: Partial<TransactionSpec> = {}): TransactionSpec {
  return {
    runId: newRunId(),
    files,
    firewall: false,
    reloadSshd: false,
    reloadFail2ban: false,
    confirmTimeoutS: 30,
    backupRoot: root,
    ...overrides,
  };
}

async function begin(s: TransactionSpec): Promise<Transaction> {
  const tx = await beginTransaction(localShell(), s);
  armed.push(tx);
  return tx;
}

/** Alive and not a zombie (where PID 1 does not reap orphans, a killed timer lingers as one). */
function processAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
  } catch {
    return false;
  }
}
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (condition()) return true;
    await sleep(50);
  }
  return condition();
}

describe('confirmation retries', () => {
  test('a refusal (sshd re-executing after SIGHUP) is retried soon and often, within a few seconds', () => {
    const delays: number[] = [];
    const failures = { refused: 0, other: 0 };
    for (;;) {
      failures.refused++;
      const delay = confirmRetryDelay(failures, 'refused');
      if (delay === null) break;
      delays.push(delay);
    }
    expect(delays[0]).toBeLessThanOrEqual(100);
    expect(delays).toEqual([...REFUSED_RETRY_DELAYS_MS]);
    const total = delays.reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThanOrEqual(3000);
    expect(total).toBeLessThanOrEqual(6000);
  });

  test('other failures get three attempts a second apart, refusals before them notwithstanding', () => {
    expect(confirmRetryDelay({ refused: 0, other: 1 }, 'other')).toBe(1000);
    expect(confirmRetryDelay({ refused: 3, other: 2 }, 'other')).toBe(1000);
    expect(confirmRetryDelay({ refused: 0, other: 3 }, 'other')).toBeNull();
  });

  test('a late handshake is retried for as long as the host leaves time, with no count of its own', () => {
    expect(confirmRetryDelay({ refused: 0, other: 0 }, 'late')).not.toBeNull();
    expect(confirmRetryDelay({ refused: 8, other: 3 }, 'late')).not.toBeNull();
  });
});

describe('the confirmation window runs from the reload', () => {
  const armedTx = (overrides: Partial<Transaction> = {}): Transaction => ({
    spec: spec([], { confirmTimeoutS: 60 }),
    runDir: '/var/backups/sshfix/x',
    timer: { kind: 'process', pgid: 1234 },
    armedAtMs: 1_000_000,
    restoresAfterS: 60,
    hostArmedAtS: 500.25,
    ...overrides,
  });
  const rearm = (stdout: string, exitCode = 0) => ({ stdout, stderr: '', exitCode });

  test('without a rearm, the confirmation counts on the timeout from the batch being sent, less the margin', () => {
    expect(confirmDeadlineMs(armedTx())).toBe(1_000_000 + 60_000 - 2000);
  });

  test("a rearm moves the deadline to the host's due time, measured from its uptime at arming", () => {
    // Armed at uptime 500.25; the batch reloaded sshd at uptime 530.x: due at 530 + 1 + 60 = 591.
    const tx = rearmedTransaction(armedTx(), rearm('sshfix-rearmed 591\n'));
    expect(tx.restoresAfterS).toBeCloseTo(90.75);
    expect(confirmDeadlineMs(tx)).toBe(1_000_000 + 90_750 - 2000);
  });

  test('a rearm that did not run, came too late or cannot be related to the arming changes nothing', () => {
    const tx = armedTx();
    expect(rearmedTransaction(tx, undefined)).toBe(tx);
    expect(rearmedTransaction(tx, rearm('sshfix-rearm-too-late\n'))).toBe(tx);
    expect(rearmedTransaction(tx, rearm('sshfix-rearmed 591\n', 1))).toBe(tx);
    expect(rearmedTransaction(tx, rearm(''))).toBe(tx);
    const noUptime = armedTx({ hostArmedAtS: undefined });
    expect(rearmedTransaction(noUptime, rearm('sshfix-rearmed 591\n'))).toBe(noUptime);
    // Never earlier than the timeout from arming.
    expect(rearmedTransaction(tx, rearm('sshfix-rearmed 520\n'))).toBe(tx);
  });

  test('the begin script reports the uptime it armed at, and the timer waits for a deadline the rearm moved', async () => {
    const file = path.join(dir, 'f');
    fs.writeFileSync(file, 'old\n');
    const tx = await begin(spec([file], { confirmTimeoutS: 1 }));
    expect(tx.hostArmedAtS).toBeGreaterThan(0);
    // The batch restarts the window as if its timeout were 30 s.
    const moved = await localShell().runScript(buildRearmScript({ ...tx.spec, confirmTimeoutS: 30 }));
    const later = rearmedTransaction(tx, moved);
    expect(later.restoresAfterS).toBeGreaterThan(30);
    fs.writeFileSync(file, 'new\n');
    // Past the first deadline (1 s), the timer is still waiting: the run is not decided.
    await sleep(3000);
    expect(fs.existsSync(path.join(tx.runDir, 'decided'))).toBe(false);
    expect(await disarmTransaction(localShell(), tx)).toBe('confirmed');
    armed.pop();
    expect(fs.readFileSync(file, 'utf8')).toBe('new\n');
  });

  test('a rearm after the timer fired says it is too late and moves nothing', async () => {
    const file = path.join(dir, 'f');
    fs.writeFileSync(file, 'old\n');
    const tx = await begin(spec([file], { confirmTimeoutS: 1 }));
    await waitFor(() => fs.existsSync(path.join(tx.runDir, 'decided')), 10_000);
    const moved = await localShell().runScript(buildRearmScript({ ...tx.spec, confirmTimeoutS: 30 }));
    expect(moved.stdout.trim()).toBe('sshfix-rearm-too-late');
    expect(rearmedTransaction(tx, moved)).toBe(tx);
    await waitFor(() => fs.readFileSync(path.join(tx.runDir, 'outcome'), 'utf8').trim() === 'restored', 5000);
    armed.pop();
  });

  test('a confirmation that reached sshd may move the deadline by one more timeout at most, never sooner', () => {
    // Due at uptime 591 (armed at 500.25, restoring 90.75 s later): no move past 591 + 60.
    expect(latestExtendedDue(armedTx({ restoresAfterS: 90.75 }))).toBe(651);
    expect(latestExtendedDue(armedTx({ hostArmedAtS: undefined }))).toBeUndefined();
  });

  test("an extension moves the host's deadline to the window after now, capped, and never earlier", async () => {
    const tx = await begin(spec([], { confirmTimeoutS: 30 }));
    const due = (): number => Number(fs.readFileSync(path.join(tx.runDir, 'deadline'), 'utf8'));
    const armedDue = due();
    const uptime = (): number => Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
    // Capped: the host restores no later than latestDue, however long the extension asks for.
    const capped = await localShell().runScript(buildExtendScript(tx.spec, 600, armedDue + 5));
    expect(capped.stdout.trim()).toBe(`sshfix-rearmed ${armedDue + 5}`);
    expect(rearmedTransaction(tx, capped).restoresAfterS).toBe(armedDue + 5 - tx.hostArmedAtS!);
    // An extension shorter than the time the host already gives moves nothing back.
    const shorter = await localShell().runScript(buildExtendScript(tx.spec, 1, armedDue + 100));
    expect(shorter.stdout.trim()).toBe(`sshfix-rearmed ${armedDue + 5}`);
    // Within the cap: the window after now.
    const before = Math.floor(uptime());
    const moved = await localShell().runScript(buildExtendScript(tx.spec, 60, armedDue + 100));
    expect(due()).toBeGreaterThanOrEqual(before + 1 + 60);
    expect(due()).toBeLessThanOrEqual(Math.floor(uptime()) + 1 + 60);
    expect(moved.stdout.trim()).toBe(`sshfix-rearmed ${due()}`);
  });

  test('an extension after the timer fired says it is too late', async () => {
    const tx = await begin(spec([], { confirmTimeoutS: 1 }));
    await waitFor(() => fs.existsSync(path.join(tx.runDir, 'decided')), 10_000);
    const moved = await localShell().runScript(buildExtendScript(tx.spec, 30, 1e9));
    expect(moved.stdout.trim()).toBe('sshfix-rearm-too-late');
    expect(rearmedTransaction(tx, moved)).toBe(tx);
    await waitFor(() => fs.readFileSync(path.join(tx.runDir, 'outcome'), 'utf8').trim() === 'restored', 5000);
    armed.pop();
  });

  test('a confirmation retried after its answer was lost still confirms', async () => {
    const tx = await begin(spec([]));
    expect(await disarmTransaction(localShell(), tx)).toBe('confirmed');
    expect(await disarmTransaction(localShell(), tx)).toBe('confirmed');
    armed.pop();
  });
});

describe('run ids', () => {
  test('sort by time and match the pattern pruning relies on', () => {
    const a = newRunId(new Date('2024-01-02T03:04:05.678Z'), 'abcdef');
    expect(a).toBe('20240102T030405Z-abcdef');
    expect(isRunId(a)).toBe(true);
    expect(isRunId('../../etc')).toBe(false);
    expect(newRunId(new Date('2025-01-01T00:00:00Z')) > a).toBe(true);
  });

  test('a run id that could escape the backup root is refused', () => {
    expect(() => buildBeginScript(spec([], { runId: '../x' }))).toThrow(/invalid run id/);
  });
});

describe('backup and restore', () => {
  test('the controller restores files (content, mode) and removes files that were absent', async () => {
    const existing = path.join(dir, 'hosts.deny');
    const created = path.join(dir, 'new.conf');
    fs.writeFileSync(existing, 'old\n', { mode: 0o640 });
    const tx = await begin(spec([existing, created, existing]));
    expect(tx.timer.kind).toBe('process');
    const runDir = path.join(root, tx.spec.runId);
    expect(fs.statSync(runDir).mode & 0o777).toBe(0o700);
    const manifest = fs.readFileSync(path.join(runDir, 'manifest'), 'utf8');
    expect(manifest).toContain(`file 0 present ${existing}`);
    expect(manifest).toContain(`file 1 absent ${created}`);

    fs.writeFileSync(existing, 'new content\n');
    fs.chmodSync(existing, 0o600);
    fs.writeFileSync(created, 'created\n');
    await rollbackTransaction(localShell(), tx);
    armed.pop();

    expect(fs.readFileSync(existing, 'utf8')).toBe('old\n');
    expect(fs.statSync(existing).mode & 0o777).toBe(0o640);
    expect(fs.existsSync(created)).toBe(false);
    expect(fs.readFileSync(path.join(runDir, 'outcome'), 'utf8').trim()).toBe('restored');
    // The timer was stopped: its process group is gone.
    if (tx.timer.kind === 'process') {
      const pgid = tx.timer.pgid;
      expect(await waitFor(() => !processAlive(pgid), 3000)).toBe(true);
    }
    // No temp files left beside the targets.
    expect(fs.readdirSync(dir).sort()).toEqual(['backups', 'hosts.deny']);
  });

  test('a confirmed run is never restored, not even when restore.sh runs later', async () => {
    const file = path.join(dir, 'sshd_config');
    fs.writeFileSync(file, 'Port 22\n');
    const tx = await begin(spec([file]));
    fs.writeFileSync(file, 'Port 2222\n');
    expect(await disarmTransaction(localShell(), tx)).toBe('confirmed');
    armed.pop();
    if (tx.timer.kind === 'process') {
      const pgid = tx.timer.pgid;
      expect(await waitFor(() => !processAlive(pgid), 3000)).toBe(true);
    }
    const again = await localShell().runScript(`sh ${path.join(tx.runDir, 'restore.sh')}`);
    expect(again.exitCode).toBe(0);
    expect(fs.readFileSync(file, 'utf8')).toBe('Port 2222\n');
    expect(fs.readFileSync(path.join(tx.runDir, 'outcome'), 'utf8').trim()).toBe('confirmed');
  });

  test('the dead-man timer restores on its own when nobody confirms, and the controller then learns it is too late', async () => {
    const file = path.join(dir, 'hosts.allow');
    fs.writeFileSync(file, 'sshd: ALL\n');
    const tx = await begin(spec([file], { confirmTimeoutS: 1 }));
    fs.writeFileSync(file, 'half-written');
    const restored = await waitFor(
      () =>
        fs.existsSync(path.join(tx.runDir, 'outcome')) &&
        fs.readFileSync(path.join(tx.runDir, 'outcome'), 'utf8').trim() === 'restored',
      10_000,
    );
    expect(restored).toBe(true);
    expect(fs.readFileSync(file, 'utf8')).toBe('sshd: ALL\n');
    expect(await disarmTransaction(localShell(), tx)).toBe('too-late');
    armed.pop();
  });

  test('--again restores a second time what was written after the timer fired', async () => {
    const file = path.join(dir, 'f');
    fs.writeFileSync(file, 'old\n');
    const tx = await begin(spec([file], { confirmTimeoutS: 1 }));
    await waitFor(() => fs.existsSync(path.join(tx.runDir, 'decided')), 10_000);
    await waitFor(() => fs.readFileSync(path.join(tx.runDir, 'outcome'), 'utf8').trim() === 'restored', 5000);
    fs.writeFileSync(file, 'written after the timer fired\n');
    await rollbackTransaction(localShell(), tx, true);
    armed.pop();
    expect(fs.readFileSync(file, 'utf8')).toBe('old\n');
  });

  test('a symlink is restored as the same symlink', async () => {
    const target = path.join(dir, 'real');
    const link = path.join(dir, 'link');
    fs.writeFileSync(target, 'x\n');
    fs.symlinkSync(target, link);
    const tx = await begin(spec([link]));
    fs.rmSync(link);
    fs.writeFileSync(link, 'a regular file now\n');
    await rollbackTransaction(localShell(), tx);
    armed.pop();
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.readlinkSync(link)).toBe(target);
  });

  test('shell metacharacters in paths are data, never code (CWE-78)', async () => {
    // File names cannot hold '/', so the canary is relative: to the shell's working directory.
    const canary = `sshfix-canary-${process.pid}`;
    const nasty = path.join(dir, `a'b $(touch ${canary}) \`touch ${canary}\`;x\nz`);
    fs.writeFileSync(nasty, 'old\n');
    const tx = await begin(spec([nasty]));
    fs.writeFileSync(nasty, 'new\n');
    await rollbackTransaction(localShell(), tx);
    armed.pop();
    expect(fs.readFileSync(nasty, 'utf8')).toBe('old\n');
    expect(fs.existsSync(canary)).toBe(false);
    expect(fs.existsSync(path.join(dir, canary))).toBe(false);
  });

  test('keeps the 10 newest decided runs and undecided recent ones', async () => {
    fs.mkdirSync(root, { recursive: true });
    const old = Array.from({ length: 12 }, (_, i) => newRunId(new Date(Date.UTC(2020, 0, 1 + i)), 'aaaaaa'));
    for (const id of old) {
      fs.mkdirSync(path.join(root, id));
      fs.writeFileSync(path.join(root, id, 'outcome'), 'confirmed\n');
    }
    const undecided = newRunId(new Date(Date.UTC(2019, 0, 1)), 'bbbbbb');
    fs.mkdirSync(path.join(root, undecided));
    fs.mkdirSync(path.join(root, 'not-a-run'));
    const tx = await begin(spec([]));
    const left = fs.readdirSync(root).sort();
    // This run plus the 9 newest old ones are the 10 kept; the undecided one, foreign names and the lock stay.
    expect(left).toEqual([undecided, ...old.slice(3), tx.spec.runId, 'not-a-run', '.lock'].sort());
  });

  test('a backup that cannot be made aborts with the reason, before any timer is armed', async () => {
    const notADirectory = path.join(dir, 'plain-file');
    fs.writeFileSync(notADirectory, 'x');
    const file = path.join(dir, 'f');
    fs.writeFileSync(file, 'x');
    const s = spec([file], { backupRoot: path.join(notADirectory, 'backups') });
    await expect(beginTransaction(localShell(), s)).rejects.toThrow(
      /^cannot prepare the rollback \(backup and dead-man timer\): .*cannot create the backup directory/s,
    );
    // No timer process points at this run's directory.
    const ours = await localShell().runScript(
      `for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < "$f" 2>/dev/null | grep -F ${JSON.stringify(s.runId)}; done | wc -l`,
    );
    expect(ours.stdout.trim()).toBe('0');
  });
});

describe('runs that have not decided (their timers outlive them)', () => {
  const undecided = async () =>
    parseUndecidedRuns((await localShell().runScript(undecidedRunsScript(root))).stdout);

  test('an armed run is found with when its timer fires; a decided one is not', async () => {
    const before = Math.floor(Date.now() / 1000);
    const tx = await begin(spec([], { confirmTimeoutS: 30 }));
    const found = await undecided();
    expect(found.runs).toEqual([{ runId: tx.spec.runId, armedAtS: expect.any(Number), deadlineS: 30 }]);
    expect(found.runs[0]!.armedAtS).toBeGreaterThanOrEqual(before);
    expect(found.hostNowS).toBeGreaterThanOrEqual(found.runs[0]!.armedAtS);
    expect(await disarmTransaction(localShell(), tx)).toBe('confirmed');
    armed.pop();
    expect(await undecided()).toEqual({ runs: [] });
  });

  test('a run whose timer is gone (the host rebooted) blocks nobody', async () => {
    const tx = await begin(spec([]));
    if (tx.timer.kind !== 'process') throw new Error('this machine arms process timers');
    process.kill(-tx.timer.pgid, 'SIGKILL');
    const pgid = tx.timer.pgid;
    expect(await waitFor(() => !processAlive(pgid), 3000)).toBe(true);
    expect(await undecided()).toEqual({ runs: [] });
  });

  test('the begin script refuses while another run is undecided, and creates nothing', async () => {
    const first = await begin(spec([]));
    const second = spec([]);
    const refused = beginTransaction(localShell(), second);
    await expect(refused).rejects.toThrow(UndecidedTransactionError);
    await expect(refused).rejects.toThrow(new RegExp(`run ${first.spec.runId} \\(started `));
    expect(fs.existsSync(path.join(root, second.runId))).toBe(false);
  });

  test('restore.sh run by hand, as the refusal says, restores and stops the timer', async () => {
    const file = path.join(dir, 'hosts.allow');
    fs.writeFileSync(file, 'old\n');
    const tx = await begin(spec([file]));
    fs.writeFileSync(file, 'new\n');
    const run = await localShell().runScript(`sh ${path.join(tx.runDir, 'restore.sh')}`);
    expect(run.exitCode).toBe(0);
    armed.pop();
    expect(fs.readFileSync(file, 'utf8')).toBe('old\n');
    if (tx.timer.kind === 'process') {
      const pgid = tx.timer.pgid;
      expect(await waitFor(() => !processAlive(pgid), 3000)).toBe(true);
    }
    expect(await undecided()).toEqual({ runs: [] });
  });

  test('the refusal says which run, when its timer fires and how to restore it now', () => {
    const runId = '20260101T120000Z-abcdef';
    const message = undecidedRunsMessage([{ runId, armedAtS: 1767268800, deadlineS: 60 }], 1767268830, root);
    expect(message).toBe(
      `refused: another sshfix run has not decided its change on this host yet: run ${runId} ` +
        '(started 2026-01-01T12:00:00Z) has neither confirmed nor restored its change here, and its rollback ' +
        "timer restores that run's backup at 2026-01-01T12:01:00Z (in 30 s, by the host's clock) unless that run " +
        `confirms it first (to restore it now: sh ${root}/${runId}/restore.sh on the host). ` +
        'Nothing was changed; run again once it is decided',
    );
  });
});

describe('restore.sh', () => {
  test('without sshd or firewall work it touches only the listed files', () => {
    const script = buildRestoreScript(spec(['/etc/hosts.deny']));
    expect(script).not.toMatch(/iptables|nft|sshd\.pid|fail2ban/);
    expect(script).toContain("restore_file 0 '/etc/hosts.deny'");
  });

  test('with firewall and sshd it restores snapshots in one nft transaction and reloads or starts sshd', () => {
    const script = buildRestoreScript(spec([], { firewall: true, reloadSshd: true, reloadFail2ban: true }));
    expect(script).toContain('{ echo "flush ruleset"; cat "$fw/nft.ruleset"; } | nft -f -');
    expect(script).toContain('"$v-restore" < "$fw/$v.save"');
    expect(script).toContain('kill -HUP "$pid"');
    expect(script).toContain('service ssh start');
    // Under systemd the way sshd ran when the run began (recorded by the begin script) decides.
    expect(script).toContain('read -r u m < "$dir/sshd-unit"');
    expect(script).toContain('systemctl restart "$u.service"');
    expect(script).not.toContain('systemctl restart ssh.socket');
    expect(script).toContain('fail2ban-client reload');
  });
});

describe('transactionSpecFor', () => {
  const plan = (overrides: Partial<ResourcePlan>): ResourcePlan => ({
    action: 'change',
    messages: [],
    warnings: [],
    fileChanges: [],
    commands: [],
    ...overrides,
  });
  const change = (p: string) => ({ path: p, before: null, beforeSha256: null, after: '' });

  test('collects every touched file once, including removals shown as state diffs', () => {
    const removal = plan({
      commands: [{ description: 'rm -f -- /etc/old', script: "rm -f -- '/etc/old'" }],
      stateDiffs: [
        { label: '/etc/old', before: 'x', after: '' },
        { label: 'iptables INPUT (IPv4)', before: '', after: '' },
      ],
    });
    expect(touchedFiles(removal)).toEqual(['/etc/old']);
    const s = transactionSpecFor(
      [
        plan({ fileChanges: [change('/etc/hosts.deny')] }),
        plan({ fileChanges: [change('/etc/hosts.deny')], touchedPaths: ['/etc/x'] }),
        removal,
      ],
      { runId: newRunId(), confirmTimeoutS: 60 },
    );
    expect(s.files).toEqual(['/etc/hosts.deny', '/etc/x', '/etc/old']);
    expect(s).toMatchObject({ firewall: false, reloadSshd: false, reloadFail2ban: false });
  });

  test('what the rollback restores and reloads follows the effects the plans declare', () => {
    const s = transactionSpecFor(
      [
        plan({ fileChanges: [change('/etc/ssh/sshd_config')], effects: { sshd: true } }),
        plan({
          commands: [{ description: 'x', script: "iptables -I INPUT 1 -s '10.0.0.1' -j ACCEPT" }],
          effects: { firewall: true },
        }),
      ],
      { runId: newRunId(), confirmTimeoutS: 60 },
    );
    // Restoring the firewall drops fail2ban's chains: fail2ban reloads too.
    expect(s).toMatchObject({ firewall: true, reloadSshd: true, reloadFail2ban: true });
    const fail2ban = transactionSpecFor([plan({ effects: { fail2ban: true } })], {
      runId: newRunId(),
      confirmTimeoutS: 60,
    });
    expect(fail2ban).toMatchObject({ firewall: false, reloadSshd: false, reloadFail2ban: true });
    // Shell text is not read: a command the plan does not declare as firewall work is just a command.
    const undeclared = transactionSpecFor(
      [plan({ commands: [{ description: 'x', script: "service 'ssh' reload; iptables -F" }] })],
      { runId: newRunId(), confirmTimeoutS: 60 },
    );
    expect(undeclared).toMatchObject({ firewall: false, reloadSshd: false, reloadFail2ban: false });
  });
});
