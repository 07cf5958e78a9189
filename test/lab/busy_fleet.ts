/**
 * What the busy-controller lab tests share (under_load, busy_controller): the
 * bench's broken fleet, busy loops that stop on every path, and what a
 * converged fleet looks like after the shipped fix-connection-reset playbook.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { labInventory, startLab, type Lab } from './lab.js';

/** The bench's breakage (bench/lib/fleet.mjs): TCP wrappers, the firewall and a throttling drop-in. */
export function breakScript(workstation: string): string {
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

/** Breaks every host of the lab with breakScript. */
export async function breakFleet(lab: Lab): Promise<void> {
  const script = breakScript(lab.workstationAddress);
  for (const host of lab.hosts) {
    const broken = await host.exec(script);
    if (broken.code !== 0) throw new Error(`breaking ${host.name}: ${broken.stderr}`);
  }
}

/** A started lab, broken by breakScript, with its inventory written: what both busy-controller tests fix. */
export interface BrokenFleet {
  lab: Lab;
  /** `apply`'s arguments after the command: the shipped playbook, the inventory, known hosts, --forks. */
  applyArgs(extra?: readonly string[]): string[];
  /** Destroys the lab and removes the inventory's directory; safe after a failed start. */
  destroy(): Promise<void>;
}

export async function startBrokenFleet(id: string, hosts: number): Promise<BrokenFleet> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `sshfix-${id}-`));
  let lab: Lab | undefined;
  const destroy = async (): Promise<void> => {
    await lab?.destroy();
    fs.rmSync(work, { recursive: true, force: true });
  };
  try {
    lab = await startLab({ id, hosts });
    const inventory = path.join(work, 'inventory.yml');
    fs.writeFileSync(inventory, labInventory(lab));
    await breakFleet(lab);
    const started = lab;
    return {
      lab: started,
      applyArgs: (extra = []) => [
        path.resolve('playbooks', 'fix-connection-reset.yml'),
        '-i',
        inventory,
        '--known-hosts',
        started.knownHostsFile,
        '--forks',
        String(hosts),
        ...extra,
        '--format',
        'json',
      ],
      destroy,
    };
  } catch (error) {
    await destroy();
    throw error;
  }
}

/**
 * `count` shell busy loops (on the CPUs this process may use), each in a
 * process group of its own. Stopped by the returned function, and at the
 * latest when this process exits.
 */
export function startBusyLoops(count: number): () => void {
  const hogs: ChildProcess[] = Array.from({ length: count }, () =>
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

interface FleetReport {
  hosts: Record<
    string,
    { changed: number; failed: number; unreachable: boolean; error?: string; tasks: { error?: string }[] }
  >;
  summary: { unreachable: number; failed: number };
}

/**
 * The apply's JSON report and exit code say every host changed, none failed
 * or unreachable; then sshd's own view on every host, and the workstation
 * gets in again over a new connection (on a quiet machine).
 */
export async function expectFleetFixed(
  lab: Lab,
  apply: { code: number | null; stdout: string },
): Promise<void> {
  const report = JSON.parse(apply.stdout) as FleetReport;
  const troubles = Object.entries(report.hosts).flatMap(([name, h]) =>
    h.unreachable || h.failed > 0
      ? [`${name}: ${h.error ?? h.tasks.find((t) => t.error !== undefined)?.error ?? 'failed'}`]
      : [],
  );
  expect(troubles).toEqual([]);
  expect(report.summary).toMatchObject({ unreachable: 0, failed: 0 });
  for (const host of lab.hosts) expect(report.hosts[host.name]?.changed).toBeGreaterThan(0);
  expect(apply.code).toBe(0);

  for (const host of lab.hosts) {
    const effective = await host.exec('/usr/sbin/sshd -T | grep -i ^maxstartups');
    expect(`${host.name} ${effective.stdout.trim()}`).toBe(`${host.name} maxstartups 30:30:100`);
  }
  for (const host of lab.hosts.slice(0, 3))
    expect((await lab.ssh(host, 'true', { from: lab.workstationAddress })).code).toBe(0);
}
