/**
 * A fleet apply on a busy controller: every CPU of the machine is taken by a
 * busy loop the test starts (and stops on every path), and 20 broken hosts
 * are fixed at --forks 20. Each host must converge: no rollback, no host
 * unreachable. Under load a handshake takes many times its quiet time; when
 * every host's handshake (and every confirmation) runs at once, they share
 * the CPUs and all reach their time limit together.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeLab, LAB_START_TIMEOUT_MS, labInventory, startLab, type Lab } from './lab.js';
import { runCli } from '../support/cli.js';

const HOSTS = 20;

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
 * One shell busy loop per CPU, in a process group of its own, so that one
 * signal stops all of them. Stopped by the returned function, and at the
 * latest when this process exits.
 */
function startCpuHog(): () => void {
  const hogs: ChildProcess[] = os
    .cpus()
    .map(() => spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore', detached: true }));
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

describeLab('apply on a busy controller', () => {
  let lab: Lab;
  let work: string;
  let inventory: string;
  let stopHog: (() => void) | undefined;

  beforeAll(async () => {
    lab = await startLab({ id: 'load', hosts: HOSTS });
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-load-'));
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
    await lab?.destroy();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('20 hosts at --forks 20 converge with every CPU busy: no rollback, none unreachable', async () => {
    const args = [
      path.resolve('playbooks', 'fix-connection-reset.yml'),
      '-i',
      inventory,
      '--known-hosts',
      lab.knownHostsFile,
      '--forks',
      String(HOSTS),
      '--format',
      'json',
    ];
    stopHog = startCpuHog();
    let apply;
    try {
      apply = await runCli(['apply', ...args]);
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
