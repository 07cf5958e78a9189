/**
 * The facts a host's plan rests on, read from real hosts: reading them again
 * after traffic (packet counters, iptables-save's timestamps, fail2ban's ban
 * timeouts counting down) finds nothing changed; a firewall rule added by
 * hand, or a file edited, is named exactly.
 */
import { openConnection } from '../../src/transport/connect.js';
import type { Connection } from '../../src/transport/types.js';
import { planHost, type BoundPlay, type BoundTask } from '../../src/executor/host_run.js';
import { changedFacts } from '../../src/plan/facts.js';
import { RESOURCES } from '../../src/resources/registry.js';
import {
  describeLabKinds,
  LAB_START_TIMEOUT_MS,
  labConnectionSpec,
  PLAIN,
  startLab,
  SYSTEMD_SERVICE,
  type Lab,
  type LabHost,
} from './lab.js';

describeLabKinds('a host plan rests on facts a later reading can check', [PLAIN, SYSTEMD_SERVICE], (kind) => {
  let lab: Lab;
  let host: LabHost;
  let conn: Connection;

  beforeAll(async () => {
    lab = await startLab({
      id: kind.kind === 'plain' ? 'hpf' : `hpf${process.pid % 10_000}`,
      hosts: 1,
      fail2ban: true,
      ...kind,
    });
    host = lab.hosts[0]!;
    conn = await openConnection(labConnectionSpec(lab, host));
  }, LAB_START_TIMEOUT_MS);

  afterAll(async () => {
    await conn?.close();
    await lab?.destroy();
  });

  const task = (name: string, resource: string, args: unknown): BoundTask => ({
    play: 'p',
    name,
    resource: RESOURCES.get(resource)!,
    args,
    notify: [],
  });
  const play = (): BoundPlay => ({
    name: 'p',
    playbookDir: '/',
    vars: {},
    tasks: [
      task('firewall', 'firewall', { allow_ssh_from: [lab.workstationAddress] }),
      task('fail2ban', 'fail2ban', { ignoreip: [lab.workstationAddress] }),
      task('sshd', 'sshd_config', { settings: { MaxAuthTries: 4 } }),
      task('wrappers', 'tcp_wrappers', { allow: [{ clients: [lab.workstationAddress] }] }),
    ],
    handlers: [],
  });

  test('the same host read again after traffic and a ban: nothing changed', async () => {
    await host.exec('fail2ban-client set sshd banip 192.0.2.77');
    const first = await planHost(conn, play(), {});
    expect(first.tasks.map((t) => t.error)).toEqual([undefined, undefined, undefined, undefined]);
    // Plain data, every resource's plan data included: it survives being saved as JSON.
    expect(first.tasks.map((t) => t.plan?.action)).toEqual(['change', 'change', 'change', 'change']);
    expect(JSON.parse(JSON.stringify(first))).toStrictEqual(first);
    const described = first.facts.map((f) => f.description);
    expect(described).toEqual(expect.arrayContaining(['firewall ruleset', 'fail2ban state', 'sshd version']));
    expect(first.facts.find((f) => f.key === 'host:sshd-version')?.value).toMatch(/^\d+\.\d+$/);
    expect(first.facts.find((f) => f.key === 'host:sshd-unit')?.value).toBe(
      kind.kind === 'plain' ? 'none' : 'service ssh',
    );
    // Traffic moves the packet counters; seconds pass for timestamps and ban timeouts.
    for (let i = 0; i < 3; i++) expect((await lab.ssh(host, 'true')).code).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const second = await planHost(conn, play(), {});
    expect(changedFacts(first.facts, second.facts)).toEqual([]);
  });

  test('a rule added and hosts.allow edited by hand are named, and nothing else', async () => {
    const first = await planHost(conn, play(), {});
    await host.exec('iptables -A INPUT -s 192.0.2.99 -p tcp --dport 2222 -j DROP');
    await host.exec('echo "sshd: 192.0.2.98" >> /etc/hosts.allow');
    const later = await planHost(conn, play(), {});
    expect(
      changedFacts(first.facts, later.facts)
        .map((c) => c.description)
        .sort(),
    ).toEqual(['/etc/hosts.allow', 'firewall ruleset']);
  });
});
