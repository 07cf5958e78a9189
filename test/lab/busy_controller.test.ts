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
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeLab, LAB_START_TIMEOUT_MS, labInventory, startLab, type Lab } from './lab.js';

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

/** The bench's breakage (bench/lib/fleet.mjs): TCP wrappers, the firewall and a throttling drop-in. */
function breakScript(workstation: string): string {
  return [
    'set -e',
    `printf 'sshd: %s\\n' '${workstation}' >> /etc/hosts.deny`,
    `iptables -A INPUT -s '${workstation}/32' -p tcp --dport 22 -j DROP`,
    "printf 'MaxStartups 2:50:5\\nMaxAuthTries 2\\nClientAliveInterval 5\\n' > /etc/ssh/sshd_config.d/50-cloud-init.conf",
    'kill -HUP "$(cat /run/sshd.pid)"',
    'sleep 0.2',
    "i=0; until ss -Hltn 'sport = :22' | grep -q .; do i=$((i+1)); [ $i -ge 100 ] && exit 1; sleep 0.05; done",
  ].join('\n');
}

/**
 * BUSY_LOOPS shell busy loops (on this process's CPU), each in a process
 * group of its own. Stopped by the returned function, and at the latest when
 * this process exits.
 */
function startCpuHog(): () => void {
  const hogs: ChildProcess[] = Array.from({ length: BUSY_LOOPS }, () =>
    spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore', detached: true }),
  );
  const stop = (): void => {
    for (const hog of hogs) {
      if (hog.pid !== undefined && hog.exitCode === null && hog.signalCode === null) {
        try {
          process.kill(-hog.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    process.off('exit', stop);
  };
  process.on('exit', stop);
  return stop;
}

interface Report {
  hosts: Record<
    string,
    { changed: number; failed: number; unreachable: boolean; error?: string; tasks: { error?: string }[] }
  >;
  summary: { unreachable: number; failed: number };
}

describeLab('apply on a controller pinned to one busy CPU', () => {
  let lab: Lab;
  let work: string;
  let inventory: string;
  let stopHog: (() => void) | undefined;
  let cpusBefore: string | undefined;

  beforeAll(async () => {
    cpusBefore = currentCpus();
    pinTo('0');
    lab = await startLab({ id: 'busy', hosts: HOSTS });
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-busy-'));
    inventory = path.join(work, 'inventory.yml');
    fs.writeFileSync(inventory, labInventory(lab));
    const script = breakScript(lab.workstationAddress);
    for (const host of lab.hosts) {
      const broken = await host.exec(script);
      if (broken.code !== 0) throw new Error(`breaking ${host.name}: ${broken.stderr}`);
    }
  }, LAB_START_TIMEOUT_MS);

  afterAll(async () => {
    stopHog?.();
    if (cpusBefore !== undefined) pinTo(cpusBefore);
    await lab?.destroy();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test(`${HOSTS} hosts at --forks ${HOSTS} converge on one busy CPU with --confirm-timeout ${CONFIRM_TIMEOUT_S}: no rollback, none unreachable`, async () => {
    const args = [
      path.resolve('playbooks', 'fix-connection-reset.yml'),
      '-i',
      inventory,
      '--known-hosts',
      lab.knownHostsFile,
      '--forks',
      String(HOSTS),
      '--confirm-timeout',
      String(CONFIRM_TIMEOUT_S),
      '--format',
      'json',
    ];
    stopHog = startCpuHog();
    let apply;
    try {
      apply = await runSshfix(['apply', ...args]);
    } finally {
      stopHog();
    }
    const report = JSON.parse(apply.stdout) as Report;
    const troubles = Object.entries(report.hosts).flatMap(([name, h]) =>
      h.unreachable || h.failed > 0
        ? [`${name}: ${h.error ?? h.tasks.find((t) => t.error !== undefined)?.error ?? 'failed'}`]
        : [],
    );
    expect(troubles).toEqual([]);
    expect(report.summary).toMatchObject({ unreachable: 0, failed: 0 });
    for (const host of lab.hosts) expect(report.hosts[host.name]?.changed).toBeGreaterThan(0);
    expect(apply.code).toBe(0);

    // Converged: sshd's own view, and the workstation gets in again (a new connection, quiet machine).
    for (const host of lab.hosts) {
      const effective = await host.exec('/usr/sbin/sshd -T | grep -i ^maxstartups');
      expect(`${host.name} ${effective.stdout.trim()}`).toBe(`${host.name} maxstartups 30:30:100`);
    }
    for (const host of lab.hosts.slice(0, 3))
      expect((await lab.ssh(host, 'true', { from: lab.workstationAddress })).code).toBe(0);
  }, 600_000);
});
