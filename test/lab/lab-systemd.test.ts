/**
 * The lab's second kind of host: Debian 13 booted with systemd as PID 1 into
 * the lab's network namespaces, sshd started by ssh.service or by ssh.socket.
 * Each must behave like a separate server, and tear-down must power it off
 * and leave nothing behind.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { describeLab, LAB_START_TIMEOUT_MS, startLab, SYSTEMD_SERVICE, SYSTEMD_SOCKET } from './lab.js';
import type { Lab, LabHost } from './lab.js';

const suffix = process.pid % 10_000;

function only(lab: Lab): LabHost {
  const host = lab.hosts[0];
  if (host === undefined) throw new Error(`lab ${lab.id} has no host`);
  return host;
}

async function until(probe: () => Promise<boolean>, timeoutMs = 20_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describeLab(
  'lab hosts of the systemd kind',
  () => {
    let services: Lab;
    let socket: Lab;

    beforeAll(async () => {
      services = await startLab({ id: `sds${suffix}`, hosts: 2, ...SYSTEMD_SERVICE });
      socket = await startLab({ id: `sdk${suffix}`, hosts: 1, ...SYSTEMD_SOCKET });
    }, LAB_START_TIMEOUT_MS);

    afterAll(async () => {
      await services?.destroy();
      await socket?.destroy();
    });

    it('boots systemd as PID 1 with OpenSSH 10, its own name and its own host key, reachable over ssh', async () => {
      const hosts = [...services.hosts, ...socket.hosts];
      expect(new Set(hosts.map((h) => h.hostKeyLine)).size).toBe(3);
      for (const [lab, host] of [
        ...services.hosts.map((h) => [services, h] as const),
        [socket, only(socket)] as const,
      ]) {
        expect(host.kind).toBe('systemd');
        const result = await lab.ssh(
          host,
          'hostname; cat /proc/1/comm; systemctl is-system-running; sshd -V 2>&1; test -e /run/nologin && echo nologin || echo login',
        );
        expect(result.code).toBe(0);
        // No pam_nologin message: systemd-user-sessions.service ran.
        expect(result.stderr).toBe('');
        const [name, init, state, version, nologin] = result.stdout.split('\n');
        expect(name).toBe(host.name);
        expect(init).toBe('systemd');
        expect(state).toBe('running');
        expect(nologin).toBe('login');
        expect(version).toMatch(/^OpenSSH_10\./);
        expect(host.hostKeyLine).toMatch(/^ssh-ed25519 AAAA\S+$/);
        expect((await lab.ssh(host, 'true', { from: lab.workstationAddress })).code).toBe(0);
      }
    });

    it('starts sshd by ssh.service in service mode and by ssh.socket in socket mode', async () => {
      const states =
        'for u in ssh.service ssh.socket; do echo "$u $(systemctl is-enabled $u) $(systemctl is-active $u)"; done';
      expect((await only(services).exec(states)).stdout).toBe(
        'ssh.service enabled active\nssh.socket disabled inactive\n',
      );
      const socketStates = (await only(socket).exec(states)).stdout;
      expect(socketStates).toMatch(/^ssh\.service disabled /m);
      expect(socketStates).toMatch(/^ssh\.socket enabled active$/m);
    });

    it('shows the socket-activation trap: SIGHUP makes socket-activated sshd die, the socket starts it again', async () => {
      const lab = socket;
      const host = only(lab);
      expect((await lab.ssh(host, 'true')).code).toBe(0);
      const pid = await host.sshdPid();
      expect(pid).not.toBeNull();
      expect((await host.exec(`kill -HUP ${pid}`)).code).toBe(0);
      expect(await until(async () => (await host.sshdLog()).includes('Cannot bind any address'))).toBe(true);
      // The socket still listens and starts a new sshd for the next connection.
      expect(await until(async () => (await lab.ssh(host, 'true')).code === 0)).toBe(true);
    });

    it("runs each host's systemd in cgroups of its own, not in one tree shared by every host", async () => {
      // Shared, one host's systemd removed a unit's cgroup while another's was starting the same
      // unit there, and that start failed: systemd-user-sessions.service left /run/nologin behind.
      const hosts = [...services.hosts, ...socket.hosts];
      const cgroupsOf = (pid: number): string[] =>
        fs
          .readFileSync(`/proc/${pid}/cgroup`, 'utf8')
          .trim()
          .split('\n')
          .filter((line) => /^\d+:(name=systemd)?:/.test(line));
      const seen = hosts.flatMap((host) => cgroupsOf(host.anchorPid).map((line) => `${host.name} ${line}`));
      expect(seen.length).toBeGreaterThanOrEqual(hosts.length);
      for (const host of hosts)
        for (const line of cgroupsOf(host.anchorPid)) expect(line).toContain(`/sshfix-lab-`);
      const paths = seen.map((entry) => entry.replace(/^\S+ /, ''));
      expect(new Set(paths).size).toBe(paths.length);
    });

    it('keeps iptables and nft rules inside one host', async () => {
      const [first, second] = services.hosts as [LabHost, LabHost];
      expect(
        (await first.exec('nft add table inet sshfixlab && iptables -A INPUT -s 192.0.2.1 -j DROP')).code,
      ).toBe(0);
      try {
        expect((await second.exec('nft list tables')).stdout).not.toContain('sshfixlab');
        expect((await second.exec('iptables -S INPUT')).stdout).not.toContain('192.0.2.1');
        expect(spawnSync('nft', ['list', 'tables'], { encoding: 'utf8' }).stdout).not.toContain('sshfixlab');
      } finally {
        await first.exec('nft delete table inet sshfixlab; iptables -D INPUT -s 192.0.2.1 -j DROP');
      }
    });

    it('has firewalld installed but neither enabled nor running: only a suite that asks for it starts it', async () => {
      for (const host of [...services.hosts, ...socket.hosts]) {
        const r = await host.exec(
          'command -v firewall-cmd; systemctl is-enabled firewalld.service; systemctl is-active firewalld.service; nft list tables',
        );
        expect(`${host.name}: ${r.stdout}`).toMatch(
          new RegExp(`^${host.name}: /usr/bin/firewall-cmd\ndisabled\ninactive\n`),
        );
        expect(r.stdout).not.toContain('table inet firewalld');
      }
    });

    it('stops and starts sshd through its unit: refused while stopped, reachable again after', async () => {
      for (const lab of [services, socket]) {
        const host = lab.hosts[lab.hosts.length - 1]!;
        await host.stopSshd();
        const refused = await lab.ssh(host, 'true');
        expect(refused.code).toBe(255);
        expect(refused.stderr).toMatch(/Connection refused/);
        await host.startSshd();
        expect((await lab.ssh(host, 'true')).code).toBe(0);
      }
    });

    it('runs fail2ban (systemd backend) whose ban blocks the workstation but not the controller', async () => {
      const host = only(services);
      await host.startFail2ban();
      expect((await host.exec(`fail2ban-client set sshd banip ${services.workstationAddress}`)).code).toBe(0);
      const banned = await services.ssh(host, 'true', {
        from: services.workstationAddress,
        timeoutMs: 20_000,
      });
      expect(banned.code).toBe(255);
      expect((await services.ssh(host, 'true')).code).toBe(0);
      expect((await host.exec(`fail2ban-client set sshd unbanip ${services.workstationAddress}`)).code).toBe(
        0,
      );
    });

    it('powers the hosts off and leaves no namespace, process, cgroup or state directory behind', async () => {
      const inits = services.hosts.map((h) => h.anchorPid);
      const dirs = services.hosts.map((h) => h.dir);
      const labCgroups = (): string =>
        spawnSync(
          'find',
          ['/sys/fs/cgroup', '-maxdepth', '6', '-type', 'd', '-name', `sshfix-lab-${services.id}`],
          {
            encoding: 'utf8',
          },
        ).stdout;
      expect(labCgroups()).not.toBe('');
      await services.destroy();
      await services.destroy();
      const namespaces = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
      expect(namespaces).not.toContain(`sshfix-${services.id}-`);
      for (const pid of inits) expect(fs.existsSync(`/proc/${pid}`)).toBe(false);
      for (const dir of dirs) expect(fs.existsSync(dir)).toBe(false);
      expect(labCgroups()).toBe('');
      const nspawns = spawnSync('pgrep', ['-af', 'systemd-nspawn'], { encoding: 'utf8' }).stdout;
      for (const host of services.hosts) expect(nspawns).not.toContain(` ${host.name} `);
    });
  },
  SYSTEMD_SERVICE,
);
