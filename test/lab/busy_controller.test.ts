/**
 * A fleet apply on a controller that gets only a sliver of one CPU: 30
 * broken hosts fixed at --forks 30, with the run, every host's sshd and 4
 * busy loops the test starts (and stops on every path) all pinned to one
 * CPU. Each host must converge: no rollback, no host unreachable.
 *
 * Busy loops alone barely slow a fleet that mostly waits (the scheduler
 * favours tasks that wake up), so this process pins itself to one CPU before
 * the lab starts: every host's sshd, the run and the busy loops inherit it.
 * The run then gets about a sixth of that CPU, and its event loop stalls for
 * up to a second and a half at a time: a change batch's answer reaches it
 * seconds after the host restarted its confirm window, and the confirmation's
 * new connection needs seconds more. With --confirm-timeout 6 (8 here) the host's
 * timer fired while that connection was still logging in, although the
 * host's sshd had answered it; the host's deadline now moves once the new
 * connection has finished its key exchange (transaction.ts).
 */
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { describeLab, LAB_START_TIMEOUT_MS } from './lab.js';
import { expectFleetFixed, startBrokenFleet, startBusyLoops, type BrokenFleet } from './busy_fleet.js';

/** Jest runs from the repository root (package.json); the run is a process of its own, as in CI. */
const BIN = path.join(process.cwd(), 'dist/cli/bin.js');

const HOSTS = 30;
/** Busy loops on the one CPU the test runs on. */
const BUSY_LOOPS = 4;
const CONFIRM_TIMEOUT_S = 8;

/** Pins this process (every thread) and what it starts later to `cpus`, e.g. "0" or "0-1". */
function pinTo(cpus: string): void {
  const pinned = spawnSync('taskset', ['-a', '-p', '-c', cpus, String(process.pid)], { encoding: 'utf8' });
  if (pinned.status !== 0) throw new Error(`taskset -c ${cpus}: ${pinned.stderr.trim()}`);
}

/** The CPUs this process may run on now, as taskset lists them. */
function currentCpus(): string {
  const shown = spawnSync('taskset', ['-p', '-c', String(process.pid)], { encoding: 'utf8' });
  const list = /:\s*(\S+)\s*$/.exec(shown.stdout ?? '')?.[1];
  if (shown.status !== 0 || list === undefined) throw new Error(`taskset -p: ${shown.stderr.trim()}`);
  return list;
}

/** sshfix as its own process (on the CPU this one is pinned to): exit code and stdout. */
function runSshfix(args: string[]): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout }));
  });
}

/**
 * A reproduction, not part of `npm test`: its outcome depends on what else
 * the machine runs on CPU 0. At --confirm-timeout 8 it rolled back no host in
 * 11 runs (5 on a loaded machine, 6 on a quiet one), but with two more busy
 * loops on the machine it rolled back 3 of 30 hosts in 1 run of 4: their new
 * connections finished the key exchange and then needed more than the one
 * extra timeout to log in. Run it with SSHFIX_BUSY_CONTROLLER=1 after
 * `npm run build`.
 */
const runReproduction = process.env.SSHFIX_BUSY_CONTROLLER === '1' ? describeLab : describe.skip;

runReproduction('apply on a controller pinned to one busy CPU', () => {
  let fleet: BrokenFleet | undefined;
  let stopHog: (() => void) | undefined;
  let cpusBefore: string | undefined;

  beforeAll(async () => {
    cpusBefore = currentCpus();
    pinTo('0');
    fleet = await startBrokenFleet('busy', HOSTS);
  }, LAB_START_TIMEOUT_MS);

  afterAll(async () => {
    stopHog?.();
    if (cpusBefore !== undefined) pinTo(cpusBefore);
    await fleet?.destroy();
  });

  test(`${HOSTS} hosts at --forks ${HOSTS} converge on one busy CPU with --confirm-timeout ${CONFIRM_TIMEOUT_S}: no rollback, none unreachable`, async () => {
    const { lab, applyArgs } = fleet!;
    stopHog = startBusyLoops(BUSY_LOOPS);
    let apply;
    try {
      apply = await runSshfix(['apply', ...applyArgs(['--confirm-timeout', String(CONFIRM_TIMEOUT_S)])]);
    } finally {
      stopHog();
    }
    await expectFleetFixed(lab, apply);
  }, 600_000);
});
