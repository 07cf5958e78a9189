/**
 * ssh_config and jump hosts against real OpenSSH servers. Host C refuses the
 * controller (TCP wrappers) but accepts jump host B, the situation of a
 * bastion-only network: sshfix reaches C through B using nothing but the
 * operator's ssh_config, shares one connection to B between all targets, keeps
 * its handshakes through B below MaxStartups, and refuses a B whose host key
 * is not the known one.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeLab, startLab, type Lab, type LabHost } from './lab.js';
import { runCli } from '../support/cli.js';
import { jumpPool, MAX_FORWARDED_HANDSHAKES_PER_JUMP } from '../../src/transport/jump.js';

const PLAYBOOK = `
- name: through the bastion
  hosts: all
  tasks:
    - name: sshd limits
      sshd_config:
        settings:
          MaxAuthTries: 3
      notify: reload sshd
  handlers:
    - name: reload sshd
      service: { name: sshd, state: reloaded }
`;

/** Many inventory aliases of the one host C, all behind B: their handshakes all land on C's sshd. */
const ALIAS_COUNT = 20;

interface JsonReport {
  hosts: Record<string, { changed: number; failed: number; unreachable: boolean; error?: string }>;
}

async function effectiveSetting(host: LabHost, keyword: string): Promise<string | undefined> {
  const out = await host.exec('/usr/sbin/sshd -T');
  return out.stdout
    .split('\n')
    .find((line) => line.startsWith(`${keyword} `))
    ?.split(' ')[1];
}

async function authLog(host: LabHost): Promise<string> {
  return host.readFile('/var/log/auth.log');
}

/** Lines of `log` written after `before` was read (logs only grow during a test). */
function newLines(before: string, after: string): string {
  return after.slice(before.length);
}

/** Established TCP connections on B's port 22 whose peer is the controller. */
async function controllerSessionsOn(host: LabHost, controller: string): Promise<number> {
  const out = await host.exec(`ss -Htn state established '( sport = :22 )' dst ${controller}`);
  return out.stdout.split('\n').filter((line) => line.trim() !== '').length;
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const giveUpAt = Date.now() + timeoutMs;
  while (Date.now() < giveUpAt) {
    if (await condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return condition();
}

describeLab('ssh_config and jump hosts on real OpenSSH servers', () => {
  let lab: Lab;
  let work: string;
  let jump: LabHost;
  let target: LabHost;
  let other: LabHost;
  let playbook: string;

  beforeAll(async () => {
    lab = await startLab({ id: 'jump', hosts: 3 });
    [jump, target, other] = lab.hosts as [LabHost, LabHost, LabHost];
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-jump-'));
    playbook = path.join(work, 'limits.yml');
    fs.writeFileSync(playbook, PLAYBOOK);
    // C refuses the controller at the TCP wrapper, accepts everyone else (B included).
    await target.writeFile('/etc/hosts.deny', `sshd: ${lab.controllerAddress}\n`);
    // Past 10 unauthenticated connections, drop every new one: C and B log each drop.
    for (const host of [jump, target]) {
      await host.writeFile('/etc/ssh/sshd_config.d/05-maxstartups.conf', 'MaxStartups 10:100:10\n');
      await host.stopSshd();
      await host.startSshd();
    }
    expect(await effectiveSetting(target, 'maxstartups')).toBe('10:100:10');
  }, 180000);

  afterAll(async () => {
    await lab?.destroy();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('the controller cannot reach C directly (the premise of the other tests)', async () => {
    const direct = await lab.ssh(target, 'true');
    expect(direct.code).not.toBe(0);
    expect(direct.stderr).toMatch(/Connection reset by peer|Connection closed/);
  });

  test('apply -F converges C through B, named by its ssh_config alias only', async () => {
    const sshConfig = path.join(work, 'ssh_config');
    fs.writeFileSync(
      sshConfig,
      [
        'Host c-alias',
        `  HostName ${target.address}`,
        '  User root',
        `  ProxyJump root@${jump.address}`,
        `  IdentityFile ${lab.privateKeyFile}`,
        `  UserKnownHostsFile ${lab.knownHostsFile}`,
        '',
      ].join('\n'),
    );
    const inventory = path.join(work, 'alias.yml');
    fs.writeFileSync(inventory, 'all:\n  hosts:\n    c-alias:\n');
    const targetLogBefore = await authLog(target);

    const run = await runCli(['apply', playbook, '-i', inventory, '-F', sshConfig, '--format', 'json']);
    expect(run.stderr).toBe('');
    const report = JSON.parse(run.stdout) as JsonReport;
    expect(report.hosts['c-alias']).toMatchObject({ unreachable: false, failed: 0 });
    expect(run.code).toBe(0);

    // The effect on C, by sshd's own view of its configuration.
    expect(await effectiveSetting(target, 'maxauthtries')).toBe('3');
    // And C saw the login come from B, not from the controller.
    const logged = newLines(targetLogBefore, await authLog(target));
    expect(logged).toMatch(
      new RegExp(`Accepted publickey for root from ${jump.address.replace(/\./g, '\\.')} `),
    );
    expect(logged).not.toContain(`from ${lab.controllerAddress} port`);
  });

  test(`${ALIAS_COUNT} targets behind one jump host share one connection and stay below MaxStartups`, async () => {
    const sshConfig = path.join(work, 'ssh_config_many');
    fs.writeFileSync(
      sshConfig,
      [
        'Host c??',
        `  HostName ${target.address}`,
        `  ProxyJump bastion`,
        'Host bastion',
        `  HostName ${jump.address}`,
        'Host *',
        '  User root',
        `  IdentityFile ${lab.privateKeyFile}`,
        `  UserKnownHostsFile ${lab.knownHostsFile}`,
        '',
      ].join('\n'),
    );
    const aliases = Array.from({ length: ALIAS_COUNT }, (_, i) => `c${String(i + 1).padStart(2, '0')}`);
    const inventory = path.join(work, 'many.yml');
    fs.writeFileSync(inventory, `all:\n  hosts:\n${aliases.map((a) => `    ${a}:\n`).join('')}`);
    const [targetLogBefore, jumpLogBefore] = await Promise.all([authLog(target), authLog(jump)]);
    const connectionsBefore = jumpPool.stats.jumpConnectionsOpened;
    jumpPool.stats.peakHandshakesPerJump = 0;

    const run = await runCli(['plan', playbook, '-i', inventory, '-F', sshConfig, '--format', 'json']);
    const report = JSON.parse(run.stdout) as JsonReport;
    for (const alias of aliases) {
      expect(`${alias}: ${report.hosts[alias]?.error ?? 'reached'}`).toBe(`${alias}: reached`);
    }

    // Neither sshd dropped a connection of ours ("drop connection #N from [ADDR]:PORT ... past MaxStartups").
    const [targetLog, jumpLog] = await Promise.all([authLog(target), authLog(jump)]);
    expect(newLines(targetLogBefore, targetLog)).not.toMatch(/past MaxStartups/);
    expect(newLines(jumpLogBefore, jumpLog)).not.toMatch(/past MaxStartups/);
    // All of them went through one connection to B, at most the cap of handshakes at a time.
    expect(jumpPool.stats.jumpConnectionsOpened - connectionsBefore).toBe(1);
    expect(jumpPool.stats.peakHandshakesPerJump).toBe(MAX_FORWARDED_HANDSHAKES_PER_JUMP);
    expect(jumpPool.stats.peakHandshakesPerJump).toBeLessThan(10);
    const logins = newLines(targetLogBefore, targetLog).match(/Accepted publickey for root/g) ?? [];
    expect(logins).toHaveLength(ALIAS_COUNT);
    // Closing the last target closed the connection to B.
    expect(jumpPool.openJumpConnections).toBe(0);
    expect(
      await waitFor(async () => (await controllerSessionsOn(jump, lab.controllerAddress)) === 0, 5000),
    ).toBe(true);
  });

  test('a jump host whose key is not the known one is refused before any login, and C is left alone', async () => {
    // known_hosts claims the third host's key for B's address.
    const knownHosts = path.join(work, 'known_hosts_wrong_jump');
    fs.writeFileSync(
      knownHosts,
      `${jump.address} ${other.hostKeyLine}\n${target.address} ${target.hostKeyLine}\n`,
    );
    const sshConfig = path.join(work, 'ssh_config_wrong_key');
    fs.writeFileSync(
      sshConfig,
      [
        'Host c-alias',
        `  HostName ${target.address}`,
        '  User root',
        `  ProxyJump root@${jump.address}`,
        `  IdentityFile ${lab.privateKeyFile}`,
        `  UserKnownHostsFile ${knownHosts}`,
        // Must not make sshfix accept a changed key either.
        '  StrictHostKeyChecking no',
        '',
      ].join('\n'),
    );
    const inventory = path.join(work, 'wrong.yml');
    fs.writeFileSync(inventory, 'all:\n  hosts:\n    c-alias:\n');
    const configBefore = await target.readFile('/etc/ssh/sshd_config');
    const [targetLogBefore, jumpLogBefore] = await Promise.all([authLog(target), authLog(jump)]);

    const run = await runCli(['apply', playbook, '-i', inventory, '-F', sshConfig, '--format', 'json']);
    const report = JSON.parse(run.stdout) as JsonReport;
    expect(report.hosts['c-alias']).toMatchObject({ unreachable: true });
    expect(report.hosts['c-alias']?.error).toMatch(
      new RegExp(
        `through jump host ${jump.address.replace(/\./g, '\\.')}: host key .* does not match known_hosts`,
      ),
    );
    expect(run.code).toBe(4);
    // No key was offered to B, nothing reached C, known_hosts was not rewritten.
    expect(newLines(jumpLogBefore, await authLog(jump))).not.toMatch(/Accepted|Failed publickey/);
    expect(newLines(targetLogBefore, await authLog(target))).not.toMatch(/Accepted/);
    expect(await target.readFile('/etc/ssh/sshd_config')).toBe(configBefore);
    expect(fs.readFileSync(knownHosts, 'utf8').split('\n').filter(Boolean)).toHaveLength(2);
  });
});
