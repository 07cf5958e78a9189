/**
 * `sshfix diagnose` against real OpenSSH servers: each cause of the issue is
 * injected into its own host, against the controller's address. Two cases per
 * host:
 *  A. client side only: diagnose from the controller, which cannot get in
 *     (for MaxAuthTries, which does not lock the controller's single key out,
 *     with --probe-only);
 *  B. a second way in: diagnose on the server's console (`-c local`, run inside
 *     the host's namespaces) for the controller's address — or, for
 *     MaxAuthTries, over the controller's own login.
 * Then the fix playbook written by B is applied the same way, and a new
 * connection from the controller must succeed.
 *
 * On plain hosts (OpenSSH 9.2, auth.log) and on systemd hosts with
 * ssh.service (OpenSSH 10, logs only in the journal, fail2ban on nftables);
 * under ssh.socket the cases where the listener matters (MaxStartups, sshd
 * down, an invalid sshd_config), since there systemd holds port 22.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  describeLabKinds,
  LAB_START_TIMEOUT_MS,
  PLAIN,
  startLab,
  SYSTEMD_SERVICE,
  SYSTEMD_SOCKET,
  type CommandResult,
  type Lab,
  type LabHost,
  kindLabel,
  type LabKind,
} from './lab.js';
import { runCli } from '../support/cli.js';

interface JsonFinding {
  cause: string;
  confidence: 'high' | 'medium' | 'low';
  evidence: string[];
  fix: string;
}
interface JsonAttempt {
  tcp: { outcome: string; refusal?: { answer: string; icmpDeltas: (number | null)[] } };
  banner?: { outcome: string; banner?: string };
}
interface JsonProbe extends JsonAttempt {
  alternates?: (JsonAttempt & { source: string })[];
}
interface JsonHost {
  reachable: boolean;
  client: string | null;
  serverChecks: string | null;
  findings: JsonFinding[];
  probe?: JsonProbe;
}

interface Scenario {
  cause: string;
  /** Breaks the host for the controller's address. */
  inject(host: LabHost, lab: Lab): Promise<void>;
  /** Client-side only: the first finding (default: the cause itself). */
  clientSideFirst?: string;
  /** Client-side only: what the probe measured, the evidence the ranking must rest on. */
  clientSideProbe?(probe: JsonProbe, lab: Lab, first: JsonFinding): void;
  /** The second way in is the controller's own login (the cause does not lock it out). */
  serverViaLogin?: boolean;
  /** Where the listener matters: also run under ssh.socket, where systemd holds port 22. */
  listener?: boolean;
  /** Tells two scenarios of one cause apart in test names. */
  variant?: string;
  /** With a second way in, nothing else is named above low confidence: the fix touches this layer only. */
  serverSideAlone?: boolean;
}

const sshdDropIn = (host: LabHost, text: string): Promise<void> =>
  host.writeFile('/etc/ssh/sshd_config.d/10-diagnose-test.conf', text);

async function restartSshd(host: LabHost): Promise<void> {
  await host.stopSshd();
  await host.startSshd();
}

async function check(host: LabHost, script: string): Promise<void> {
  const r = await host.exec(script);
  if (r.code !== 0) throw new Error(`${host.name}: ${script}: ${r.stderr}`);
}

/** Unauthenticated connections held open while MaxStartups 1:100:1 is in force ("under concurrent connections"). */
const heldSockets: net.Socket[] = [];

function holdConnection(address: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: address, port: 22 });
    socket.on('error', () => undefined);
    socket.once('data', () => resolve());
    socket.once('close', () => resolve());
    heldSockets.push(socket);
  });
}

const extraKeys: string[] = [];

/** The repeat from the admin workstation's address, which no scenario blocks. */
function fromWorkstation(probe: JsonProbe, lab: Lab): JsonAttempt | undefined {
  return probe.alternates?.find((a) => a.source === lab.workstationAddress);
}

/** Blocked by source address: the workstation's address got sshd's banner, and the first finding says so. */
function servedFromWorkstation(probe: JsonProbe, lab: Lab, first: JsonFinding): void {
  expect(fromWorkstation(probe, lab)?.banner).toMatchObject({
    outcome: 'banner',
    banner: expect.stringMatching(/^SSH-2\.0-/),
  });
  const line = first.evidence.find((l) => l.includes(`from ${lab.workstationAddress}: banner SSH-2.0-`));
  expect(line).toMatch(/ after \d+ ms/);
}

/** Nothing listens: every repeated connect was refused by a TCP reset, from both of our addresses. */
function refusedEverywhere(probe: JsonProbe, lab: Lab): void {
  expect(probe.tcp.refusal?.answer).toBe('rst');
  expect(fromWorkstation(probe, lab)?.tcp.outcome).toBe('refused');
}

const SCENARIOS: Scenario[] = [
  {
    cause: 'tcp_wrappers_deny',
    inject: (host, lab) => check(host, `echo 'sshd: ${lab.controllerAddress}' >> /etc/hosts.deny`),
    clientSideProbe: servedFromWorkstation,
  },
  {
    cause: 'max_startups',
    listener: true,
    inject: async (host) => {
      await sshdDropIn(host, 'MaxStartups 1:100:1\n');
      await restartSshd(host);
      await holdConnection(host.address);
    },
  },
  {
    cause: 'firewall_drop',
    inject: (host, lab) =>
      check(host, `iptables -I INPUT -s ${lab.controllerAddress} -p tcp --dport 22 -j DROP`),
    clientSideProbe: servedFromWorkstation,
  },
  {
    cause: 'firewall_reject',
    inject: (host, lab) =>
      check(
        host,
        `iptables -I INPUT -s ${lab.controllerAddress} -p tcp --dport 22 -j REJECT --reject-with tcp-reset`,
      ),
    // Refused by a reset, as a closed port would be; but the workstation's address gets a banner.
    // A fail2ban ban that resets looks the same on the wire: first, but not sure from this side.
    clientSideProbe: (probe, lab, first) => {
      expect(probe.tcp.refusal?.answer).toBe('rst');
      servedFromWorkstation(probe, lab, first);
      expect(first.confidence).toBe('medium');
    },
  },
  {
    // A reset of established port-22 connections: the handshake passes, the connection dies before the banner.
    cause: 'firewall_reject',
    variant: 'reset of established connections',
    inject: (host, lab) =>
      check(
        host,
        `iptables -I INPUT -s ${lab.controllerAddress} -p tcp --dport 22 -m conntrack --ctstate ESTABLISHED -j REJECT --reject-with tcp-reset`,
      ),
    clientSideProbe: servedFromWorkstation,
  },
  {
    cause: 'sshd_not_running',
    listener: true,
    inject: (host) => host.stopSshd(),
    clientSideProbe: refusedEverywhere,
  },
  {
    cause: 'fail2ban_ban',
    // fail2ban's own REJECT (iptables f2b-* chain, or nftables f2b-table on Debian 13) is the ban, not a second cause.
    serverSideAlone: true,
    inject: async (host, lab) => {
      await host.startFail2ban();
      await check(host, `fail2ban-client set sshd banip ${lab.controllerAddress} >/dev/null`);
    },
    // Debian's default banaction (iptables-multiport on Debian 12, nftables-multiport on 13) rejects with
    // icmp-port-unreachable: an ICMP answer, which a plain iptables REJECT also gives: first, but not sure
    // from this side.
    clientSideProbe: (probe, lab, first) => {
      expect(probe.tcp.refusal?.answer).toBe('icmp');
      expect(first.evidence.join('\n')).toMatch(
        /refused by an ICMP destination-unreachable \(InDestUnreachs \+\d/,
      );
      servedFromWorkstation(probe, lab, first);
      expect(first.confidence).toBe('medium');
    },
  },
  {
    cause: 'max_auth_tries',
    inject: async (host) => {
      await sshdDropIn(host, 'MaxAuthTries 1\n');
      await restartSshd(host);
    },
    serverViaLogin: true,
  },
  {
    // An invalid directive on disk, then a restart: sshd does not come back.
    cause: 'sshd_config_invalid',
    listener: true,
    inject: async (host) => {
      await check(host, `printf 'MaxStartupz 10\\n' >> /etc/ssh/sshd_config`);
      await host.stopSshd();
      await host.startSshd().catch(() => undefined);
    },
    // From the client this is exactly a stopped sshd: nothing listens on port 22, and the SYN is answered
    // by the host's TCP reset from every address. Only the server side can see `sshd -t` fail, so client
    // side the first finding is sshd_not_running, with sshd_config_invalid among the findings (asserted
    // for every scenario below).
    clientSideFirst: 'sshd_not_running',
    clientSideProbe: refusedEverywhere,
  },
];

/**
 * Runs a command inside a host's namespaces (its console). The controller's node and sshfix are
 * there at the same paths: plain hosts share the controller's files, systemd hosts get them
 * mounted (startLab's sharedPaths).
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

const CLI = path.resolve('dist/cli/bin.js');

function parseHost(stdout: string, name: string): JsonHost {
  const doc = JSON.parse(stdout) as { hosts: Record<string, JsonHost> };
  const host = doc.hosts[name];
  if (!host) throw new Error(`no host ${name} in ${stdout}`);
  return host;
}

/** ssh offering the extra keys first, as an agent with several keys would. */
function sshWithManyKeys(lab: Lab, host: LabHost): Promise<number> {
  const args = [
    '-F',
    '/dev/null',
    '-o',
    'BatchMode=yes',
    '-o',
    'IdentitiesOnly=yes',
    ...extraKeys.flatMap((k) => ['-i', k]),
    '-i',
    lab.privateKeyFile,
    '-o',
    `UserKnownHostsFile=${lab.knownHostsFile}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'ConnectTimeout=10',
    `root@${host.address}`,
    'true',
  ];
  return new Promise((resolve) => {
    const child = spawn('ssh', args, { stdio: 'ignore' });
    child.on('close', (code) => resolve(code ?? 255));
  });
}

/** Taken after a connection: under socket activation ssh.service is active only once a connection has started it. */
const UNIT_STATES =
  'for u in ssh.service ssh.socket; do echo "$u $(systemctl is-enabled $u) $(systemctl is-active $u)"; done';

/** The scenarios run on a kind of host: under ssh.socket those where the listener matters. */
const scenariosFor = (kind: LabKind): Scenario[] =>
  kind.sshdUnit === 'socket' ? SCENARIOS.filter((s) => s.listener === true) : SCENARIOS;

describeLabKinds(
  'sshfix diagnose names the cause of a reset and writes its fix',
  [PLAIN, SYSTEMD_SERVICE, SYSTEMD_SOCKET],
  (kind) => {
    const SCENARIOS = scenariosFor(kind);
    /** The unit that listens on port 22 on a systemd host; none on a plain one. */
    const listenerUnit = kind.kind === 'systemd' ? `ssh.${kind.sshdUnit ?? 'service'}` : undefined;
    let lab: Lab;
    let work: string;
    let inventory: string;
    const healthyIndex = SCENARIOS.length;
    let viaJump: JsonHost | undefined;
    const outcomes = new Map<
      number,
      { clientSide: JsonHost; serverSide: JsonHost; fixed: CommandResult; fix: string }
    >();

    const common = (): string[] => [
      '--known-hosts',
      lab.knownHostsFile,
      '--private-key',
      lab.privateKeyFile,
      '-u',
      'root',
      '--format',
      'json',
      '--connect-timeout',
      '3',
    ];

    async function runScenario(index: number): Promise<void> {
      const scenario = SCENARIOS[index]!;
      const host = lab.hosts[index]!;
      await scenario.inject(host, lab);
      const offered = scenario.cause === 'max_auth_tries' ? extraKeys.flatMap((k) => ['--offer-key', k]) : [];
      let fixFile = path.join(work, `fix-${host.name}.yml`);

      const before =
        scenario.cause === 'max_auth_tries'
          ? await sshWithManyKeys(lab, host)
          : (await lab.ssh(host, 'true')).code;
      if (before === 0)
        throw new Error(`${host.name}: injecting ${scenario.cause} did not block the controller`);

      // A: the client side only.
      const a = await runCli([
        'diagnose',
        host.name,
        '-i',
        inventory,
        ...common(),
        ...offered,
        ...(scenario.serverViaLogin ? ['--probe-only'] : []),
      ]);
      if (a.code !== 0) throw new Error(`${host.name}: diagnose (client side) exited ${a.code}: ${a.stderr}`);
      const clientSide = parseHost(a.stdout, host.name);

      // A jump host is a second way in too: the healthy host is not refused by this host's hosts.deny.
      if (index === 0 && scenario.cause === 'tcp_wrappers_deny') {
        const jump = lab.hosts[SCENARIOS.length]!;
        const v = await runCli(['diagnose', host.name, '-i', inventory, ...common(), '--via', jump.name]);
        viaJump = parseHost(v.stdout, host.name);
      }

      // B: a second way in; it writes the fix playbook, applied the same way.
      let serverSide: JsonHost;
      let fixed: CommandResult;
      if (scenario.serverViaLogin) {
        const b = await runCli([
          'diagnose',
          host.name,
          '-i',
          inventory,
          ...common(),
          ...offered,
          '--fix-playbook',
          fixFile,
        ]);
        serverSide = parseHost(b.stdout, host.name);
        const applied = await runCli([
          'apply',
          fixFile,
          '-i',
          inventory,
          '--known-hosts',
          lab.knownHostsFile,
        ]);
        fixed = { stdout: applied.stdout, stderr: applied.stderr, code: applied.code };
      } else {
        // On the host's console the files are the host's own.
        fixFile = '/root/fix.yml';
        const localInventory = '/root/local.yml';
        await host.writeFile(
          localInventory,
          `all:\n  hosts:\n    ${host.name}: { ansible_connection: local }\n`,
        );
        const b = await inHost(host, [
          process.execPath,
          CLI,
          'diagnose',
          host.name,
          '-c',
          'local',
          '--client',
          lab.controllerAddress,
          '--format',
          'json',
          '--fix-playbook',
          fixFile,
        ]);
        if (b.code !== 0) throw new Error(`${host.name}: diagnose -c local exited ${b.code}: ${b.stderr}`);
        serverSide = parseHost(b.stdout, host.name);
        fixed = await inHost(host, [
          process.execPath,
          CLI,
          'apply',
          fixFile,
          '-i',
          localInventory,
          '-c',
          'local',
        ]);
      }
      const fix = scenario.serverViaLogin
        ? fs.existsSync(fixFile)
          ? fs.readFileSync(fixFile, 'utf8')
          : ''
        : await host.readFile(fixFile).catch(() => '');
      outcomes.set(index, { clientSide, serverSide, fixed, fix });
      // For a look at what diagnose saw when a case fails: SSHFIX_DIAG_DEBUG=/some/dir.
      const debugDir = process.env.SSHFIX_DIAG_DEBUG;
      if (debugDir) {
        fs.mkdirSync(debugDir, { recursive: true });
        const dump = { scenario: scenario.cause, clientSide, serverSide, fixed, fix };
        const name = `${kindLabel(kind).replace('/', '-')}-${index}.json`;
        fs.writeFileSync(path.join(debugDir, name), JSON.stringify(dump, null, 2));
      }
    }

    beforeAll(async () => {
      const systemd = kind.kind === 'systemd';
      lab = await startLab({
        id: systemd ? `diag${kind.sshdUnit === 'socket' ? 'k' : 's'}${process.pid % 1000}` : 'diag',
        hosts: SCENARIOS.length + 1,
        ...kind,
        ...(systemd ? { sharedPaths: [process.cwd(), fs.realpathSync(process.execPath)] } : {}),
      });
      work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-diag-'));
      extraKeys.length = 0;
      for (let i = 0; i < 3; i++) {
        const key = path.join(work, `extra_${i}`);
        const r = await new Promise<number>((resolve) =>
          spawn('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key], { stdio: 'ignore' }).on(
            'close',
            (c) => resolve(c ?? 1),
          ),
        );
        if (r !== 0) throw new Error('ssh-keygen failed');
        extraKeys.push(key);
      }
      inventory = path.join(work, 'inventory.yml');
      fs.writeFileSync(
        inventory,
        `all:\n  hosts:\n${lab.hosts.map((h) => `    ${h.name}: { ansible_host: ${h.address}, ansible_user: root }`).join('\n')}\n  vars:\n    ansible_ssh_private_key_file: ${lab.privateKeyFile}\n`,
      );
      const failures: string[] = [];
      await Promise.all(
        SCENARIOS.map((_, i) => runScenario(i).catch((e: unknown) => void failures.push(String(e)))),
      );
      if (failures.length > 0) throw new Error(failures.join('\n'));
    }, LAB_START_TIMEOUT_MS);

    afterAll(async () => {
      for (const s of heldSockets) s.destroy();
      await lab?.destroy();
      if (work) fs.rmSync(work, { recursive: true, force: true });
    });

    SCENARIOS.forEach((scenario, index) => {
      describe(`host ${index + 1}: ${scenario.cause}${scenario.variant ? ` (${scenario.variant})` : ''}`, () => {
        it(`client side only: names ${scenario.clientSideFirst ?? 'it'} first, from the evidence, and cannot get in`, () => {
          const { clientSide } = outcomes.get(index)!;
          const first = clientSide.findings[0];
          expect(first).toBeDefined();
          expect(first!.cause).toBe(scenario.clientSideFirst ?? scenario.cause);
          expect(clientSide.findings.map((f) => f.cause)).toContain(scenario.cause);
          expect(clientSide.serverChecks).toBeNull();
          expect(clientSide.client).toBe(lab.controllerAddress);
          expect(clientSide.probe).toBeDefined();
          scenario.clientSideProbe?.(clientSide.probe!, lab, first!);
        });

        it('with a second way in: names it first with high confidence and evidence', () => {
          const { serverSide } = outcomes.get(index)!;
          const first = serverSide.findings[0];
          expect(first?.cause).toBe(scenario.cause);
          expect(first?.confidence).toBe('high');
          expect(first?.evidence.length).toBeGreaterThan(0);
          expect(serverSide.serverChecks).not.toBeNull();
          if (scenario.serverSideAlone) {
            expect(serverSide.findings.filter((f) => f.confidence !== 'low').map((f) => f.cause)).toEqual([
              scenario.cause,
            ]);
          }
        });

        it(`the written fix playbook restores a new connection${listenerUnit ? `, through ${listenerUnit}` : ''}`, async () => {
          const { fixed, fix } = outcomes.get(index)!;
          expect(fix).not.toBe('');
          expect({ code: fixed.code, out: fixed.stdout + fixed.stderr }).toMatchObject({ code: 0 });
          const host = lab.hosts[index]!;
          const after =
            scenario.cause === 'max_auth_tries'
              ? await sshWithManyKeys(lab, host)
              : (await lab.ssh(host, 'true')).code;
          expect(after).toBe(0);
          if (listenerUnit) {
            // The listener the host is set up with: not ssh.service run by itself beside a dead ssh.socket.
            const units = await host.exec(UNIT_STATES);
            expect(units.stdout).toBe(
              kind.sshdUnit === 'socket'
                ? 'ssh.service disabled active\nssh.socket enabled active\n'
                : 'ssh.service enabled active\nssh.socket disabled inactive\n',
            );
          }
        });
      });
    });

    (SCENARIOS[0]?.cause === 'tcp_wrappers_deny' ? it : it.skip)(
      '--via a jump host runs the server-side checks for the refused controller',
      () => {
        expect(viaJump?.serverChecks).toBe('jump');
        expect(viaJump?.client).toBe(lab.controllerAddress);
        expect(viaJump?.findings[0]).toMatchObject({ cause: 'tcp_wrappers_deny', confidence: 'high' });
        expect(viaJump?.findings[0]?.evidence.join('\n')).toContain('/etc/hosts.deny');
      },
    );

    it('a healthy host yields no finding above low confidence, from either side', async () => {
      const host = lab.hosts[healthyIndex]!;
      const viaLogin = await runCli(['diagnose', host.name, '-i', inventory, ...common()]);
      const clientSide = parseHost(viaLogin.stdout, host.name);
      expect(clientSide.reachable).toBe(true);
      expect(clientSide.serverChecks).toBe('ssh');
      expect(clientSide.findings.filter((f) => f.confidence !== 'low')).toEqual([]);
      // A banner on the first connect: no repeated connects, from anywhere.
      expect(clientSide.probe?.banner?.outcome).toBe('banner');
      expect(clientSide.probe?.tcp.refusal).toBeUndefined();
      expect(clientSide.probe?.alternates).toBeUndefined();
      const local = await inHost(host, [
        process.execPath,
        CLI,
        'diagnose',
        host.name,
        '-c',
        'local',
        '--client',
        lab.controllerAddress,
        '--format',
        'json',
      ]);
      expect(parseHost(local.stdout, host.name).findings.filter((f) => f.confidence !== 'low')).toEqual([]);
    });
  },
);
