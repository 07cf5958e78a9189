/**
 * `sshfix diagnose` on a fleet, as operators run it: many hosts at once at the
 * default --forks, hosts named by address, a server console with no client
 * named, a limit fixed and the host diagnosed again. Each case is a real
 * OpenSSH server (with real iptables and fail2ban where the case needs them),
 * on plain hosts (OpenSSH 9.2, auth.log) and on systemd hosts with
 * ssh.service (OpenSSH 10, logs only in the journal, fail2ban on nftables).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  describeLabKinds,
  LAB_START_TIMEOUT_MS,
  PLAIN,
  startLab,
  SYSTEMD_SERVICE,
  type CommandResult,
  type Lab,
  type LabHost,
} from './lab.js';
import { runCli } from '../support/cli.js';

interface JsonFinding {
  cause: string;
  confidence: 'high' | 'medium' | 'low';
  evidence: string[];
  client?: string;
}
interface JsonHost {
  reachable: boolean;
  client: string | null;
  serverChecks: string | null;
  findings: JsonFinding[];
  probe?: { tcp: { outcome: string; refusal?: { answer: string } } };
}

const CLI = path.resolve('dist/cli/bin.js');

/**
 * Runs the CLI inside a host's namespaces: its console. The controller's node and sshfix are there
 * at the same paths (plain hosts share the controller's files; systemd hosts get them mounted).
 */
function inHost(host: LabHost, argv: string[], timeoutMs = 90_000): Promise<CommandResult> {
  const namespaces = host.kind === 'systemd' ? ['-a'] : ['-n', '-m', '-u'];
  return new Promise((resolve, reject) => {
    const child = spawn('nsenter', ['-t', String(host.anchorPid), ...namespaces, '--', ...argv], {
      cwd: process.cwd(),
      env: {
        PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        HOME: '/tmp',
        LANG: 'C.UTF-8',
      },
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, code: code ?? 128 });
    });
  });
}

function hostsOf(stdout: string): Record<string, JsonHost> {
  return (JSON.parse(stdout) as { hosts: Record<string, JsonHost> }).hosts;
}

async function check(host: LabHost, script: string): Promise<void> {
  const r = await host.exec(script);
  if (r.code !== 0) throw new Error(`${host.name}: ${script}: ${r.stderr}`);
}

const notHigh = (findings: JsonFinding[], cause: string): void =>
  expect(findings.filter((f) => f.cause === cause).map((f) => f.confidence)).not.toContain('high');

/** The first finding above low confidence, or undefined. */
const sure = (findings: JsonFinding[]): JsonFinding[] => findings.filter((f) => f.confidence !== 'low');

/** Hosts: 0-8 the fleet of item "mixed causes", then one host per further case. */
const FLEET = 9;
const STARTUPS = 9;
const AUTH_TRIES = 10;
const CONSOLE = 11;
const INVALID = 12;
const CLIENT_ALIVE = 13;

describeLabKinds('sshfix diagnose on a fleet', [PLAIN, SYSTEMD_SERVICE], (kind) => {
  let lab: Lab;
  let work: string;
  let inventory: string;
  const keys: string[] = [];

  const common = (): string[] => [
    '-i',
    inventory,
    '--known-hosts',
    lab.knownHostsFile,
    '--format',
    'json',
    '--connect-timeout',
    '3',
  ];

  /** ssh offering three wrong keys before the right one, from `from` (a lab host) or the controller. */
  function manyKeysSsh(target: LabHost, from?: LabHost): Promise<number> {
    const args = [
      '-F',
      '/dev/null',
      '-o',
      'BatchMode=yes',
      '-o',
      'IdentitiesOnly=yes',
      ...keys.flatMap((k) => ['-i', k]),
      '-i',
      lab.privateKeyFile,
      '-o',
      'UserKnownHostsFile=/dev/null',
      '-o',
      'StrictHostKeyChecking=no',
      '-o',
      'ConnectTimeout=10',
      `root@${target.address}`,
      'true',
    ];
    const argv = from
      ? ['nsenter', '-t', String(from.anchorPid), '-n', '--', 'ssh', ...args]
      : ['ssh', ...args];
    return new Promise((resolve) => {
      const child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
      child.on('close', (code) => resolve(code ?? 255));
    });
  }

  beforeAll(async () => {
    const systemd = kind.kind === 'systemd';
    lab = await startLab({
      id: systemd ? `dflts${process.pid % 1000}` : 'dfleet',
      hosts: CLIENT_ALIVE + 1,
      ...kind,
      ...(systemd ? { sharedPaths: [process.cwd(), fs.realpathSync(process.execPath)] } : {}),
    });
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-dfleet-'));
    for (let i = 0; i < 3; i++) {
      const key = path.join(work, `extra_${i}`);
      await new Promise((resolve) =>
        spawn('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key], { stdio: 'ignore' }).on(
          'close',
          resolve,
        ),
      );
      keys.push(key);
    }
    inventory = path.join(work, 'inventory.yml');
    fs.writeFileSync(
      inventory,
      `all:\n  hosts:\n${lab.hosts.map((h) => `    ${h.name}: { ansible_host: ${h.address}, ansible_user: root }`).join('\n')}\n  vars:\n    ansible_ssh_private_key_file: ${lab.privateKeyFile}\n`,
    );
  }, LAB_START_TIMEOUT_MS);

  afterAll(async () => {
    await lab?.destroy();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('names each cause of a mixed fleet at the default --forks, and no REJECT as a sure fail2ban ban', async () => {
    const [stopped, banned, rejected] = lab.hosts;
    await stopped!.stopSshd();
    await banned!.startFail2ban();
    await check(banned!, `fail2ban-client set sshd banip ${lab.controllerAddress} >/dev/null`);
    await check(rejected!, `iptables -I INPUT -s ${lab.controllerAddress} -p tcp --dport 22 -j REJECT`);
    const fleet = lab.hosts.slice(0, FLEET).map((h) => h.name);

    const run = await runCli(['diagnose', ...fleet, ...common()]);
    expect(run.code).toBe(0);
    const hosts = hostsOf(run.stdout);

    const down = hosts[stopped!.name]!;
    expect(down.probe?.tcp.refusal?.answer).toBe('rst');
    expect(down.findings[0]?.cause).toBe('sshd_not_running');
    notHigh(down.findings, 'fail2ban_ban');

    for (const host of [banned!, rejected!]) {
      const d = hosts[host.name]!;
      expect(d.probe?.tcp.refusal?.answer).toBe('icmp');
      // On the wire a ban and a plain REJECT are the same: neither is sure without the server's side.
      const causes = sure(d.findings).map((f) => f.cause);
      expect(causes).toEqual(expect.arrayContaining(['fail2ban_ban', 'firewall_reject']));
      notHigh(d.findings, 'fail2ban_ban');
      notHigh(d.findings, 'firewall_reject');
    }
    for (const host of lab.hosts.slice(3, FLEET)) {
      expect({ host: host.name, findings: sure(hosts[host.name]!.findings) }).toEqual({
        host: host.name,
        findings: [],
      });
    }
  });

  it("--via a jump host outside the inventory logs in with the target's credentials", async () => {
    const rejected = lab.hosts[2]!;
    const jump = lab.hosts[3]!;
    const r = await runCli(['diagnose', rejected.name, ...common(), '--via', `root@${jump.address}`]);
    const d = hostsOf(r.stdout)[rejected.name]!;
    expect({ serverChecks: d.serverChecks, first: d.findings[0]?.cause }).toEqual({
      serverChecks: 'jump',
      first: 'firewall_reject',
    });
  });

  it('with nothing configured, logs in with ~/.ssh/id_ed25519 and follows ~/.ssh/config', async () => {
    const home = path.join(work, 'home');
    fs.mkdirSync(path.join(home, '.ssh'), { recursive: true, mode: 0o700 });
    fs.copyFileSync(lab.privateKeyFile, path.join(home, '.ssh', 'id_ed25519'));
    fs.chmodSync(path.join(home, '.ssh', 'id_ed25519'), 0o600);
    const healthy = lab.hosts[4]!;
    fs.writeFileSync(
      path.join(home, '.ssh', 'config'),
      `Host fleet-alias\n  HostName ${healthy.address}\n  User root\n`,
    );
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, LANG: 'C.UTF-8' };
    const run = (argv: string[]): Promise<CommandResult> =>
      new Promise((resolve) => {
        const child = spawn(process.execPath, [CLI, ...argv], { env });
        let stdout = '';
        let stderr = '';
        child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
        child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
        child.on('close', (code) => resolve({ stdout, stderr, code: code ?? 128 }));
      });
    const byAddress = await run([
      'diagnose',
      healthy.address,
      '-u',
      'root',
      '--known-hosts',
      lab.knownHostsFile,
      '--format',
      'json',
    ]);
    expect(hostsOf(byAddress.stdout)[healthy.address]).toMatchObject({
      reachable: true,
      serverChecks: 'ssh',
    });
    const byAlias = await run([
      'diagnose',
      'fleet-alias',
      '--known-hosts',
      lab.knownHostsFile,
      '--format',
      'json',
    ]);
    expect(hostsOf(byAlias.stdout)['fleet-alias']).toMatchObject({
      address: healthy.address,
      reachable: true,
      serverChecks: 'ssh',
    });
  });

  it('names MaxStartups 1:100:1 high on every run, logged in or not', async () => {
    const host = lab.hosts[STARTUPS]!;
    await host.writeFile('/etc/ssh/sshd_config.d/10-startups.conf', 'MaxStartups 1:100:1\n');
    await host.stopSshd();
    await host.startSshd();
    for (let run = 0; run < 3; run++) {
      const r = await runCli(['diagnose', host.name, ...common()]);
      expect(r.code).toBe(0);
      const d = hostsOf(r.stdout)[host.name];
      expect({ run, first: d?.findings[0]?.cause, confidence: d?.findings[0]?.confidence }).toEqual({
        run,
        first: 'max_startups',
        confidence: 'high',
      });
    }
    const probeOnly = await runCli(['diagnose', host.name, ...common(), '--probe-only']);
    expect(hostsOf(probeOnly.stdout)[host.name]?.findings[0]).toMatchObject({
      cause: 'max_startups',
      confidence: 'high',
    });
  });

  it('a fix playbook for a host named by its address selects it through the inventory', async () => {
    const host = lab.hosts[STARTUPS]!;
    const fix = path.join(work, 'fix-startups.yml');
    const r = await runCli(['diagnose', host.address, ...common(), '--fix-playbook', fix]);
    expect(r.code).toBe(0);
    expect(Object.keys(hostsOf(r.stdout))).toEqual([host.name]);
    const plan = await runCli([
      'plan',
      fix,
      '-i',
      inventory,
      '--known-hosts',
      lab.knownHostsFile,
      '--detailed-exitcode',
    ]);
    expect({ code: plan.code, out: plan.stdout }).toMatchObject({ code: 2 });
    expect(plan.stdout).toContain(host.name);
    expect(plan.stdout).toMatch(/MaxStartups/);
  });

  it('counts only log lines of this client since sshd started: no MaxAuthTries finding once it is fixed', async () => {
    const host = lab.hosts[AUTH_TRIES]!;
    await host.writeFile('/etc/ssh/sshd_config.d/10-auth.conf', 'MaxAuthTries 1\n');
    await host.stopSshd();
    await host.startSshd();
    // 10.x.1.10 (host 9) is refused; host 0 is 10.x.1.1, a prefix of it, and never connected.
    const neighbour = lab.hosts[STARTUPS]!;
    const prefixOfNeighbour = lab.hosts[0]!.address;
    expect(neighbour.address.startsWith(prefixOfNeighbour)).toBe(true);
    expect(await manyKeysSsh(host, neighbour)).not.toBe(0);
    const forPrefix = await runCli(['diagnose', host.name, ...common(), '--client', prefixOfNeighbour]);
    const prefixFindings = hostsOf(forPrefix.stdout)[host.name]!.findings;
    notHigh(prefixFindings, 'max_auth_tries');
    expect(prefixFindings.flatMap((f) => f.evidence).join('\n')).not.toContain(neighbour.address);

    // The controller itself is refused, then the limit is raised and sshd restarted.
    expect(await manyKeysSsh(host)).not.toBe(0);
    const before = await runCli(['diagnose', host.name, ...common()]);
    expect(hostsOf(before.stdout)[host.name]!.findings[0]).toMatchObject({
      cause: 'max_auth_tries',
      confidence: 'high',
    });
    await host.writeFile('/etc/ssh/sshd_config.d/10-auth.conf', 'MaxAuthTries 6\n');
    await host.stopSshd();
    await host.startSshd();
    expect(await manyKeysSsh(host)).toBe(0);
    const after = await runCli(['diagnose', host.name, ...common()]);
    expect(sure(hostsOf(after.stdout)[host.name]!.findings)).toEqual([]);
  });

  it('-c local with no host and no client diagnoses this machine for every client it refuses', async () => {
    const host = lab.hosts[CONSOLE]!;
    await check(host, `echo 'sshd: ${lab.controllerAddress}' >> /etc/hosts.deny`);
    await check(host, `iptables -I INPUT -s ${lab.workstationAddress} -p tcp --dport 22 -j REJECT`);
    const r = await inHost(host, [process.execPath, CLI, 'diagnose', '-c', 'local', '--format', 'json']);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const d = hostsOf(r.stdout)[host.name];
    expect(d?.serverChecks).toBe('local');
    const found = sure(d!.findings).map((f) => ({
      cause: f.cause,
      client: f.client,
      confidence: f.confidence,
    }));
    expect(found).toEqual(
      expect.arrayContaining([
        { cause: 'tcp_wrappers_deny', client: lab.controllerAddress, confidence: 'high' },
        { cause: 'firewall_reject', client: lab.workstationAddress, confidence: 'high' },
      ]),
    );
    expect(found).not.toContainEqual(
      expect.objectContaining({ cause: 'tcp_wrappers_deny', client: lab.workstationAddress }),
    );
    expect(found).not.toContainEqual(
      expect.objectContaining({ cause: 'firewall_reject', client: lab.controllerAddress }),
    );
  });

  it('writes a play that removes a directive sshd -t rejects for its value, and sshd comes back', async () => {
    const host = lab.hosts[INVALID]!;
    await host.writeFile('/etc/ssh/sshd_config.d/10-invalid.conf', 'PermitRootLogin maybe\n');
    await host.stopSshd();
    await host.startSshd().catch(() => undefined);
    expect((await lab.ssh(host, 'true')).code).not.toBe(0);
    // On the host's console the files are the host's own.
    const fix = '/root/fix-invalid.yml';
    const d = await inHost(host, [
      process.execPath,
      CLI,
      'diagnose',
      '-c',
      'local',
      '--client',
      lab.controllerAddress,
      '--format',
      'json',
      '--fix-playbook',
      fix,
    ]);
    expect(d.code).toBe(0);
    expect(hostsOf(d.stdout)[host.name]?.findings[0]).toMatchObject({
      cause: 'sshd_config_invalid',
      confidence: 'high',
    });
    const text = await host.readFile(fix);
    expect(text).toMatch(/remove:\s*\n\s*- PermitRootLogin/);
    const localInventory = '/root/local.yml';
    await host.writeFile(localInventory, `all:\n  hosts:\n    ${host.name}: { ansible_connection: local }\n`);
    const applied = await inHost(host, [process.execPath, CLI, 'apply', fix, '-i', localInventory]);
    expect({ code: applied.code, out: applied.stdout + applied.stderr }).toMatchObject({ code: 0 });
    expect((await lab.ssh(host, 'true')).code).toBe(0);
  });

  it('names a ClientAlive limit that drops idle sessions, and its fix playbook sets a sane one', async () => {
    const host = lab.hosts[CLIENT_ALIVE]!;
    await host.writeFile(
      '/etc/ssh/sshd_config.d/10-alive.conf',
      'ClientAliveInterval 5\nClientAliveCountMax 2\n',
    );
    await host.stopSshd();
    await host.startSshd();
    const fix = path.join(work, 'fix-alive.yml');
    const before = await runCli(['diagnose', host.name, ...common(), '--fix-playbook', fix]);
    expect(before.code).toBe(0);
    const found = hostsOf(before.stdout)[host.name]!.findings;
    expect(sure(found).map((f) => f.cause)).toEqual(['client_alive']);
    expect(found[0]!.evidence.join('\n')).toContain('dropped after 10 s');
    const applied = await runCli(['apply', fix, '-i', inventory, '--known-hosts', lab.knownHostsFile]);
    expect({ code: applied.code, out: applied.stdout + applied.stderr }).toMatchObject({ code: 0 });
    const effective = await host.exec('/usr/sbin/sshd -T | grep -i "^clientalive"');
    expect(effective.stdout).toBe('clientaliveinterval 300\nclientalivecountmax 3\n');
    const after = await runCli(['diagnose', host.name, ...common()]);
    expect(sure(hostsOf(after.stdout)[host.name]!.findings)).toEqual([]);
  });
});
