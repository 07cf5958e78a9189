/**
 * The lab itself: each host must behave like a separate Debian server as far
 * as sshd, TCP wrappers, iptables and fail2ban are concerned, and tearing the
 * lab down must leave the machine as it was.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { describeLab, startLab } from './lab.js';
import type { Lab, LabHost } from './lab.js';

/** Concurrent runs (jest workers, two CI jobs on one machine) need distinct ids. */
const LAB_ID = `smoke${process.pid % 100_000}`;
const KEX_REFUSAL = /kex_exchange_identification|Connection reset/;

function hostAt(lab: Lab, index: number): LabHost {
  const host = lab.hosts[index];
  if (host === undefined) throw new Error(`lab ${lab.id} has no host #${index}`);
  return host;
}

function rootNamespaceIptables(): string {
  return spawnSync('iptables', ['-S'], { encoding: 'utf8' }).stdout;
}

describeLab('lab of real SSH hosts', () => {
  let lab: Lab;
  let rootHostsDeny: string;
  let rootIptables: string;

  beforeAll(async () => {
    rootHostsDeny = fs.readFileSync('/etc/hosts.deny', 'utf8');
    rootIptables = rootNamespaceIptables();
    lab = await startLab({ id: LAB_ID, hosts: 3 });
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  it('reaches every host over ssh and each reports its own hostname', async () => {
    expect(lab.hosts).toHaveLength(3);
    for (const host of lab.hosts) {
      const result = await lab.ssh(host, 'hostname');
      expect(result).toMatchObject({ code: 0, stdout: `${host.name}\n` });
    }
  });

  it('gives every host exactly one host key of its own, checked by the client', async () => {
    const keys = lab.hosts.map((host) => host.hostKeyLine);
    expect(new Set(keys).size).toBe(lab.hosts.length);
    for (const host of lab.hosts) {
      expect(host.hostKeyLine).toMatch(/^ssh-ed25519 AAAA\S+$/);
      const listed = await host.exec('ls /etc/ssh | grep ^ssh_host_');
      expect(listed.stdout.split('\n').filter(Boolean)).toEqual([
        'ssh_host_ed25519_key',
        'ssh_host_ed25519_key.pub',
      ]);
    }
    // The client really verifies: a known_hosts with another host's key under this address is refused.
    const [first, second] = [hostAt(lab, 0), hostAt(lab, 1)];
    const wrongKnownHosts = `${lab.knownHostsFile}.wrong`;
    fs.writeFileSync(wrongKnownHosts, `${first.address} ${second.hostKeyLine}\n`);
    const spoofed = spawnSync(
      'ssh',
      [
        ...['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-i', lab.privateKeyFile],
        ...['-o', `UserKnownHostsFile=${wrongKnownHosts}`, '-o', 'GlobalKnownHostsFile=/dev/null'],
        ...['-o', 'StrictHostKeyChecking=yes', `root@${first.address}`, 'true'],
      ],
      { encoding: 'utf8', timeout: 20_000 },
    );
    expect(spoofed.status).toBe(255);
    expect(spoofed.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
  });

  it('refuses the controller named in one host’s hosts.deny while the workstation still gets in', async () => {
    const host = hostAt(lab, 0);
    const original = await host.readFile('/etc/hosts.deny');
    await host.writeFile('/etc/hosts.deny', `${original}sshd: ${lab.controllerAddress}\n`);
    try {
      const refused = await lab.ssh(host, 'true');
      expect(refused.code).toBe(255);
      expect(refused.stderr).toMatch(KEX_REFUSAL);

      const fromWorkstation = await lab.ssh(host, 'echo $SSH_CLIENT', { from: lab.workstationAddress });
      expect(fromWorkstation.code).toBe(0);
      expect(fromWorkstation.stdout.split(' ')[0]).toBe(lab.workstationAddress);

      // The overlay is per host: the others and the machine's own /etc are untouched.
      expect(await lab.ssh(hostAt(lab, 1), 'true')).toMatchObject({ code: 0 });
      expect(fs.readFileSync('/etc/hosts.deny', 'utf8')).toBe(rootHostsDeny);
    } finally {
      await host.writeFile('/etc/hosts.deny', original);
    }
    expect(await lab.ssh(host, 'true')).toMatchObject({ code: 0 });
  });

  it('supports `service ssh reload` without changing reachability or stopping sshd', async () => {
    const host = hostAt(lab, 0);
    const pidBefore = await host.sshdPid();
    expect(pidBefore).not.toBeNull();

    const reload = await host.exec('service ssh reload');
    expect(reload.code).toBe(0);
    expect(reload.stdout).toMatch(/Reloading/);

    // SIGHUP makes sshd re-execute itself in place: same pid, new configuration.
    await expect(waitForValue(() => host.sshdPid())).resolves.toBe(pidBefore);
    expect(await lab.ssh(host, 'hostname')).toMatchObject({ code: 0, stdout: `${host.name}\n` });
    expect(await host.readFile('/var/log/auth.log')).toMatch(/Received SIGHUP; restarting\./);
  });

  it('stops and starts sshd on one host: refused while stopped, reachable again after', async () => {
    const host = hostAt(lab, 2);
    await host.stopSshd();
    expect(await host.sshdPid()).toBeNull();
    const refused = await lab.ssh(host, 'true');
    expect(refused.code).toBe(255);
    expect(refused.stderr).toMatch(/Connection refused/);

    await host.startSshd();
    expect(await host.sshdPid()).not.toBeNull();
    expect(await lab.ssh(host, 'hostname')).toMatchObject({ code: 0, stdout: `${host.name}\n` });
  });

  it('keeps an iptables DROP inside one host away from the others and from the machine', async () => {
    const host = hostAt(lab, 1);
    const drop = await host.exec('iptables -I INPUT -p tcp --dport 22 -j DROP');
    expect(drop.code).toBe(0);
    try {
      // A DROP shows as a time-out, not as a refusal.
      await expect(lab.ssh(host, 'true', { timeoutMs: 3_000 })).rejects.toThrow(/timed out/);
      for (const other of [hostAt(lab, 0), hostAt(lab, 2)]) {
        expect(await lab.ssh(other, 'true')).toMatchObject({ code: 0 });
        expect((await other.exec('iptables -S INPUT')).stdout).not.toMatch(/DROP/);
      }
      expect(rootNamespaceIptables()).toBe(rootIptables);
    } finally {
      await host.exec('iptables -D INPUT -p tcp --dport 22 -j DROP');
    }
    expect(await lab.ssh(host, 'true')).toMatchObject({ code: 0 });
  });

  it('runs a per-host fail2ban whose ban blocks the workstation but not the controller', async () => {
    const host = hostAt(lab, 2);
    await host.startFail2ban();
    const ban = await host.exec(`fail2ban-client set sshd banip ${lab.workstationAddress}`);
    expect(ban.code).toBe(0);
    expect((await host.exec('iptables -S f2b-sshd')).stdout).toContain(`-s ${lab.workstationAddress}/32`);

    const banned = await lab.ssh(host, 'true', { from: lab.workstationAddress });
    expect(banned.code).toBe(255);
    expect(banned.stderr).toMatch(/Connection refused/);
    expect(await lab.ssh(host, 'true')).toMatchObject({ code: 0 });
    // The ban lives in this host's tables only.
    expect(await lab.ssh(hostAt(lab, 0), 'true', { from: lab.workstationAddress })).toMatchObject({
      code: 0,
    });
  });

  it('leaves no namespace, interface, process or state directory behind, even when destroyed twice', async () => {
    const anchors = lab.hosts.map((host) => host.anchorPid);
    const states = lab.hosts.map((host) => host.dir);
    await lab.destroy();
    await lab.destroy();

    const namespaces = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
    expect(namespaces).not.toContain(`sshfix-${lab.id}-`);
    const links = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout;
    expect(links).not.toMatch(new RegExp(`\\d+: ${lab.id}-`));
    for (const pid of anchors) expect(await waitForValue(async () => isGone(pid))).toBe(true);
    for (const dir of states) expect(fs.existsSync(dir)).toBe(false);
  });
});

function isGone(pid: number): boolean | null {
  try {
    process.kill(pid, 0);
    return null;
  } catch {
    return true;
  }
}

/** Polls until `probe` yields a non-null value (sshd's pid file is briefly absent during a reload). */
async function waitForValue<T>(
  probe: () => Promise<T | null> | T | null,
  timeoutMs = 5_000,
): Promise<T | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
