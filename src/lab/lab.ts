/**
 * A fleet of real SSH hosts on one Linux machine (see LAB.md).
 *
 * Each host is a `sleep infinity` anchor process holding its own network,
 * mount and UTS namespaces. Its network is a veth pair into the lab's bridge;
 * its /etc is an overlay over the machine's /etc (so atomic renames work, as on
 * a real host) and /run, /var/log, /var/backups, /root and /var/lib/fail2ban are per-host
 * directories under the lab's state directory. Everything else runs inside it
 * through `nsenter -t ANCHOR -n -m -u`.
 *
 * A host of the systemd kind is instead a Debian 13 root booted with
 * systemd-nspawn into the host's network namespace (systemd as PID 1,
 * OpenSSH 10, sshd started by ssh.service or by ssh.socket); commands run in
 * it through `nsenter -t PID1 -a`.
 *
 * Labs in concurrent jest workers get distinct ids, bridges and /16 subnets
 * from a small registry of lease files under /run/sshfix-lab/.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureSystemdRoot, systemdRootPath } from './systemd_root.js';

export interface CommandResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface ExecOptions {
  stdin?: string;
  timeoutMs?: number;
}

/**
 * 'plain': Debian 12's sshd started directly, no init system (OpenSSH 9.2).
 * 'systemd': Debian 13 booted with systemd as PID 1 (OpenSSH 10).
 */
export type LabHostKind = 'plain' | 'systemd';
/** How systemd starts sshd on a host of the systemd kind: ssh.service, or ssh.socket (Ubuntu >= 22.10's way). */
export type SshdUnitMode = 'service' | 'socket';

export interface LabHost {
  /** e.g. "lab3-h01"; also its hostname inside the UTS namespace. */
  name: string;
  kind: LabHostKind;
  /** IPv4 on the lab bridge. */
  address: string;
  /** The process that holds the host's namespaces: the anchor, or systemd (PID 1) of a systemd host. */
  anchorPid: number;
  /** The host's state directory on the controller (plain: overlay upper, run, log, root; systemd: console log). */
  dir: string;
  /** "ssh-ed25519 AAAA..." of its own host key. */
  hostKeyLine: string;
  /** Runs `sh -c script` inside all the host's namespaces, as root. */
  exec(script: string, opts?: ExecOptions): Promise<CommandResult>;
  /** Reads a file by its path as seen inside the host. */
  readFile(path: string): Promise<string>;
  writeFile(path: string, content: string): Promise<void>;
  /** The pid in /run/sshd.pid when that process is alive; null otherwise. */
  sshdPid(): Promise<number | null>;
  /**
   * Starts the stock sshd and waits until port 22 listens. Plain: logging to
   * /var/log/auth.log. Systemd: its unit (ssh.service, or ssh.socket in socket mode).
   */
  startSshd(): Promise<void>;
  /** Stops sshd; on a systemd host in socket mode also ssh.socket, so nothing listens. */
  stopSshd(): Promise<void>;
  /** What sshd logged: /var/log/auth.log, or the journal on a systemd host. */
  sshdLog(): Promise<string>;
  /**
   * Starts a per-host fail2ban server and waits until it answers `ping`. Plain:
   * unless the test wrote its own, jail.local enables the sshd jail with backend =
   * polling on /var/log/auth.log (sshd's `-E` log has no syslog prefix: inject bans
   * with `banip`). Systemd: Debian's fail2ban.service (systemd backend, nftables).
   */
  startFail2ban(): Promise<void>;
}

export interface Lab {
  id: string;
  kind: LabHostKind;
  /** The controller's address on the bridge (root namespace). */
  controllerAddress: string;
  /** A second address on the bridge: the "admin workstation". */
  workstationAddress: string;
  hosts: LabHost[];
  /** ed25519 key of the controller, authorized for root on every host. */
  privateKeyFile: string;
  /** known_hosts with every host's key, one plain entry per address. */
  knownHostsFile: string;
  /** ssh from the controller (or from `from`) with the real OpenSSH client, strict host key checking. */
  ssh(host: LabHost, command: string, opts?: { from?: string; timeoutMs?: number }): Promise<CommandResult>;
  /** Removes every trace of the lab; safe to call more than once. */
  destroy(): Promise<void>;
}

export interface StartLabOptions {
  /** Lower-case letters and digits, starting with a letter; names the bridge, veths and hosts. */
  id: string;
  hosts: number;
  /** sshd always runs on every host; this also starts fail2ban on each. */
  fail2ban?: boolean;
  /** 'plain' unless given. */
  kind?: LabHostKind;
  /** Systemd hosts only: which unit starts sshd ('service' unless given). */
  sshdUnit?: SshdUnitMode;
  /**
   * Systemd hosts only: absolute paths of the controller, each mounted read-only at the same
   * path inside every host, so that a test can run the controller's node and sshfix on a
   * host's console (`sshfix diagnose -c local`). Plain hosts see the controller's files anyway.
   */
  sharedPaths?: string[];
}

const REGISTRY_DIR = '/run/sshfix-lab';
const REGISTRY_MUTEX = path.join(REGISTRY_DIR, 'registry.mutex');
/** Subnets 10.200.0.0/16 … 10.253.0.0/16; 10.254 and 10.255 are left alone. */
const FIRST_SUBNET_OCTET = 200;
const MAX_LABS = 54;
const SUBNET_PREFIX = 16;
const HOST_ADDRESSES_PER_OCTET = 254;
const INTERFACE_NAME_MAX = 15;
const NETNS_PREFIX = 'sshfix-';
/** Host creation is mostly waiting on small processes; more than this only adds contention on 2 cores. */
const BRING_UP_CONCURRENCY = 8;
const DEFAULT_EXEC_TIMEOUT_MS = 60_000;
const DEFAULT_SSH_TIMEOUT_MS = 30_000;
/** Above libwrap's 5 s pause, so a hosts.deny refusal shows as a reset, not as a client time-out. */
const SSH_CONNECT_TIMEOUT_S = 10;

/** Commands inside a host see a fixed, root-like environment, not the test runner's. */
const HOST_ENV = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: '/root',
  LANG: 'C.UTF-8',
};
/** The controller's own commands: no ssh-agent, no user ssh config. */
const CONTROLLER_ENV = {
  PATH: `${process.env.PATH ?? ''}:/usr/local/sbin:/usr/sbin:/sbin`,
  HOME: process.env.HOME ?? '/root',
  LANG: 'C.UTF-8',
};

// ---------------------------------------------------------------------------
// Running processes

interface RunOptions extends ExecOptions {
  env?: NodeJS.ProcessEnv;
}

/**
 * Runs a command and collects its output. The command gets its own process
 * group so that a time-out kills the whole tree (nsenter → sh → children),
 * whose inherited pipes would otherwise keep the call open.
 */
function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: options.env ?? CONTROLLER_ENV,
      cwd: '/',
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid);
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${command}: ${error.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) {
        reject(new Error(`${command} ${args.join(' ')} timed out after ${timeoutMs} ms\n${stderr}`));
      } else {
        resolve({ stdout, stderr, code: code ?? 128 + signalNumber(signal) });
      }
    });
    // A command that does not read its stdin closes the pipe early: not an error.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.stdin ?? '');
  });
}

async function runChecked(
  command: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<string> {
  const result = await run(command, args, options);
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (exit ${result.code}): ${result.stderr.trim()}`);
  }
  return result.stdout;
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function signalNumber(signal: NodeJS.Signals | null): number {
  if (signal === null) return 0;
  return os.constants.signals[signal];
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `task` over `items` with at most `limit` in flight; throws the first failure after all settle. */
async function forEachLimited<T, R>(
  items: readonly T[],
  limit: number,
  task: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  const failures: unknown[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      try {
        results[index] = await task(items[index] as T, index);
      } catch (error) {
        failures.push(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failures.length > 0) throw failures[0];
  return results;
}

// ---------------------------------------------------------------------------
// Names and addresses

interface LabLayout {
  id: string;
  bridge: string;
  stateDir: string;
  subnetOctet: number;
}

function validateOptions({ id, hosts, kind, sshdUnit, sharedPaths }: StartLabOptions): void {
  if (!/^[a-z][a-z0-9]{0,9}$/.test(id)) {
    throw new Error(`lab id "${id}": use 1-10 lower-case letters and digits, starting with a letter`);
  }
  if (sshdUnit !== undefined && kind !== 'systemd') {
    throw new Error(`lab "${id}": sshdUnit is for hosts of the systemd kind`);
  }
  for (const shared of sharedPaths ?? []) {
    // systemd-nspawn's --bind-ro takes SOURCE[:DESTINATION[:OPTIONS]].
    if (!path.isAbsolute(shared) || shared.includes(':')) {
      throw new Error(`lab "${id}": shared path ${JSON.stringify(shared)} must be absolute, without ":"`);
    }
  }
  const maxHosts = HOST_ADDRESSES_PER_OCTET * 255;
  if (!Number.isInteger(hosts) || hosts < 1 || hosts > maxHosts) {
    throw new Error(`lab "${id}": hosts must be an integer from 1 to ${maxHosts}, got ${hosts}`);
  }
  if (vethName(id, hosts).length > INTERFACE_NAME_MAX) {
    throw new Error(
      `lab "${id}": ${hosts} hosts need interface names longer than 15 characters; shorten the id`,
    );
  }
}

const bridgeName = (id: string): string => `${id}-br`;
const vethName = (id: string, hostNumber: number): string => `${id}-${hostNumber}`;
const netnsName = (hostName: string): string => `${NETNS_PREFIX}${hostName}`;
const labStateDir = (id: string): string => path.join(REGISTRY_DIR, id);

function hostName(id: string, hostNumber: number, hostCount: number): string {
  const width = Math.max(2, String(hostCount).length);
  return `${id}-h${String(hostNumber).padStart(width, '0')}`;
}

/** Hosts fill 10.N.1.1–10.N.1.254, then 10.N.2.1…; 10.N.0.x is for the controller side. */
function hostAddress(subnetOctet: number, hostNumber: number): string {
  const offset = hostNumber - 1;
  const third = 1 + Math.floor(offset / HOST_ADDRESSES_PER_OCTET);
  const fourth = 1 + (offset % HOST_ADDRESSES_PER_OCTET);
  return `10.${subnetOctet}.${third}.${fourth}`;
}

// ---------------------------------------------------------------------------
// Registry: one lease file per subnet index, so concurrent labs never share a subnet

interface Lease {
  id: string;
  pid: number;
  /** Start time of `pid` (from /proc/PID/stat), so a recycled pid does not look like the owner. */
  startTime: string;
}

const leaseFile = (index: number): string => path.join(REGISTRY_DIR, `${index}.lock`);

function processStartTime(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22; the command name (field 2) may contain spaces, so count from its closing parenthesis.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function readLease(index: number): Lease | null {
  try {
    return JSON.parse(fs.readFileSync(leaseFile(index), 'utf8')) as Lease;
  } catch {
    return null;
  }
}

const isLeaseAlive = (lease: Lease): boolean => processStartTime(lease.pid) === lease.startTime;

function ownLease(id: string): Lease {
  return { id, pid: process.pid, startTime: processStartTime(process.pid) ?? '' };
}

/**
 * Serialises lease changes between processes. A holder that died inside the
 * section leaves the directory behind; it is taken over once clearly old.
 */
async function withRegistryMutex<T>(section: () => Promise<T>): Promise<T> {
  const staleAfterMs = 60_000;
  const giveUpAt = Date.now() + 2 * staleAfterMs;
  for (;;) {
    try {
      fs.mkdirSync(REGISTRY_MUTEX);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const ageMs =
        Date.now() - (fs.statSync(REGISTRY_MUTEX, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (ageMs > staleAfterMs) fs.rmSync(REGISTRY_MUTEX, { recursive: true, force: true });
      if (Date.now() > giveUpAt) throw new Error(`lab registry ${REGISTRY_MUTEX} stayed locked`);
      await sleep(50);
    }
  }
  try {
    return await section();
  } finally {
    fs.rmSync(REGISTRY_MUTEX, { recursive: true, force: true });
  }
}

/**
 * Takes the first free subnet index for `id`. Leases of dead processes are
 * reclaimed (their labs removed first), as is an undestroyed lab with the same
 * id from this process; the same id owned by another live process is an error,
 * since removing its lab would break that run.
 */
async function acquireSubnetIndex(id: string): Promise<number> {
  fs.mkdirSync(REGISTRY_DIR, { recursive: true });
  return withRegistryMutex(async () => {
    let freeIndex: number | null = null;
    for (let index = 0; index < MAX_LABS; index++) {
      const lease = readLease(index);
      if (lease === null) {
        freeIndex ??= index;
        continue;
      }
      const ownedByOtherLiveProcess = isLeaseAlive(lease) && lease.pid !== process.pid;
      if (lease.id === id && ownedByOtherLiveProcess) {
        throw new Error(`lab id "${id}" is in use by process ${lease.pid}; give this lab another id`);
      }
      if (lease.id === id || !isLeaseAlive(lease)) {
        await removeLabResources(lease.id);
        fs.rmSync(leaseFile(index), { force: true });
        freeIndex ??= index;
      }
    }
    if (freeIndex === null) throw new Error(`all ${MAX_LABS} lab subnets are in use (${REGISTRY_DIR})`);
    fs.writeFileSync(leaseFile(freeIndex), JSON.stringify(ownLease(id)), { flag: 'wx' });
    return freeIndex;
  });
}

function releaseSubnetIndex(index: number, id: string): void {
  const lease = readLease(index);
  if (lease !== null && lease.id === id && lease.pid === process.pid)
    fs.rmSync(leaseFile(index), { force: true });
}

// ---------------------------------------------------------------------------
// Tear-down (also used to clear what a crashed run left behind)

function labNamespaces(id: string): string[] {
  const entries = fs.existsSync('/run/netns') ? fs.readdirSync('/run/netns') : [];
  return entries.filter((name) => name.startsWith(`${NETNS_PREFIX}${id}-h`));
}

function labInterfaces(id: string): string[] {
  const found = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8', env: CONTROLLER_ENV });
  const pattern = new RegExp(`^\\d+: (${id}-(?:\\d+|br))[@:]`);
  return (found.stdout ?? '')
    .split('\n')
    .map((line) => pattern.exec(line)?.[1])
    .filter((name): name is string => name !== undefined);
}

/**
 * Every veth of a lab carries this link group, so one `ip link del group`
 * removes them all in one kernel operation (one by one, each deletion costs a
 * ~20 ms network synchronisation). An FNV-1a hash of the id, never group 0,
 * which every other interface is in.
 */
function linkGroup(id: string): number {
  let hash = 0x811c9dc5;
  for (const char of `sshfix-lab:${id}`) {
    hash = Math.imul(hash ^ char.charCodeAt(0), 0x01000193) >>> 0;
  }
  return (hash % 0x7ffffffe) + 1;
}

/** What `ip netns pids` finds, for many namespaces in one pass over /proc. */
function processesInNetns(namespaces: readonly string[]): number[] {
  const wanted = new Set<string>();
  for (const netns of namespaces) {
    const inode = fs.statSync(path.join('/run/netns', netns), { throwIfNoEntry: false })?.ino;
    if (inode !== undefined) wanted.add(`net:[${inode}]`);
  }
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (wanted.has(fs.readlinkSync(`/proc/${entry}/ns/net`))) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/**
 * Kills every process in the lab's namespaces, then deletes veths (explicitly:
 * namespace teardown is asynchronous, and a leftover veth blocks re-creating a
 * host), namespaces, the bridge and the state directory.
 */
async function removeLabResources(id: string): Promise<void> {
  await stopSystemdHosts(labStateDir(id));
  const namespaces = labNamespaces(id);
  // A second pass catches children forked (e.g. by sshd for a connection) while the first was killing.
  for (let pass = 0; pass < 3; pass++) {
    const pids = processesInNetns(namespaces);
    if (pids.length === 0) break;
    pids.forEach(killPid);
  }
  for (const cgroup of labCgroups(id)) await removeCgroupTree(cgroup);
  // Fails harmlessly when the group is empty.
  await run('ip', ['link', 'del', 'group', String(linkGroup(id))]);
  const interfaces = labInterfaces(id);
  const batch = [
    ...interfaces.filter((name) => name !== bridgeName(id)).map((name) => `link del ${name}`),
    ...namespaces.map((netns) => `netns del ${netns}`),
    ...interfaces.filter((name) => name === bridgeName(id)).map((name) => `link del ${name}`),
  ];
  if (batch.length > 0) {
    // -force: keep going past entries that vanished meanwhile.
    await run('ip', ['-force', '-batch', '-'], { stdin: `${batch.join('\n')}\n` });
  }
  await removeStateDir(labStateDir(id));
}

/**
 * Removing a directory that was mounted in a namespace just torn down waits on
 * the kernel for ~50 ms; removing the hosts' directories in parallel lets those
 * waits overlap (100 hosts: 6 s one by one).
 */
async function removeStateDir(dir: string): Promise<void> {
  const entries = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
  await Promise.all(
    entries.map((entry) => fs.promises.rm(path.join(dir, entry), { recursive: true, force: true })),
  );
  fs.rmSync(dir, { recursive: true, force: true });
}

function killPid(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // exited meanwhile
  }
}

// ---------------------------------------------------------------------------
// Bring-up

/** sshd as the init script starts it, with its log where fail2ban and tests look. */
const START_SSHD = 'mkdir -p /run/sshd && /usr/sbin/sshd -E /var/log/auth.log';

/**
 * Runs inside the new netns and fresh mount + UTS namespaces, then becomes the
 * anchor. /run is mounted last because the state directories live under it.
 */
const ANCHOR_SCRIPT = `
set -eu
name=$1 dir=$2 address=$3
ip link set lo up
ip addr add "$address" dev eth0
ip link set eth0 up
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$dir/etc-upper,workdir=$dir/etc-work" /etc
mount --bind "$dir/log" /var/log
mount --bind "$dir/root" /root
if [ -d /var/lib/fail2ban ]; then mount --bind "$dir/fail2ban-lib" /var/lib/fail2ban; fi
# sshfix keeps its per-run backups here: each host needs its own, as on a real fleet.
mkdir -p /var/backups
mount --bind "$dir/backups" /var/backups
mount --bind "$dir/run" /run
hostname "$name"
echo "$name" > /etc/hostname
printf '127.0.1.1\\t%s\\n' "$name" >> /etc/hosts
# A symlink (systemd-resolved) would point into the host's empty /run.
rm -f /etc/resolv.conf
echo 'nameserver 127.0.0.1' > /etc/resolv.conf
# Exactly one host key per host, as on a real fleet.
rm -f /etc/ssh/ssh_host_*
ssh-keygen -q -t ed25519 -N '' -C "root@$name" -f /etc/ssh/ssh_host_ed25519_key
# 'service ssh start|restart' keeps logging where startSshd() logs.
echo 'SSHD_OPTS="-E /var/log/auth.log"' > /etc/default/ssh
# sshd listens before it detaches, so port 22 is open once this returns.
${START_SSHD}
echo ready
exec sleep infinity </dev/null >/dev/null 2>&1
`;

function prepareHostDir(dir: string, authorizedKey: string): void {
  for (const sub of ['etc-upper', 'etc-work', 'run', 'log', 'fail2ban-lib', 'backups']) {
    fs.mkdirSync(path.join(dir, sub), { recursive: true });
  }
  fs.mkdirSync(path.join(dir, 'root', '.ssh'), { recursive: true, mode: 0o700 });
  fs.chmodSync(path.join(dir, 'root'), 0o700);
  fs.writeFileSync(path.join(dir, 'root', '.ssh', 'authorized_keys'), authorizedKey, { mode: 0o600 });
}

/** Starts the anchor and resolves with its pid once the namespaces are set up. */
function startAnchor(name: string, dir: string, addressWithPrefix: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const args = [
      'netns',
      'exec',
      netnsName(name),
      'unshare',
      '--mount',
      '--uts',
      '--propagation',
      'private',
    ];
    const child = spawn('ip', [...args, 'sh', '-c', ANCHOR_SCRIPT, 'anchor', name, dir, addressWithPrefix], {
      env: HOST_ENV,
      cwd: '/',
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const fail = (reason: string): void => reject(new Error(`host ${name}: anchor failed: ${reason}`));
    child.on('error', (error) => fail(error.message));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      if (stdout.includes('ready\n') && child.pid !== undefined) {
        // ip netns exec and unshare exec in place, so the spawned pid is the anchor.
        child.unref();
        child.stdout.destroy();
        child.stderr.destroy();
        resolve(child.pid);
      }
    });
    child.on('exit', (code) => {
      if (!stdout.includes('ready\n')) fail(`exit ${code}: ${stderr.trim()}`);
    });
  });
}

interface HostSpec {
  name: string;
  veth: string;
  address: string;
  dir: string;
}

async function createHosts(
  layout: LabLayout,
  count: number,
  authorizedKey: string,
  kind: { kind: LabHostKind; sshdUnit: SshdUnitMode; sharedPaths: string[]; root?: string },
): Promise<LabHost[]> {
  const specs: HostSpec[] = Array.from({ length: count }, (_, i) => {
    const name = hostName(layout.id, i + 1, count);
    return {
      name,
      veth: vethName(layout.id, i + 1),
      address: hostAddress(layout.subnetOctet, i + 1),
      dir: path.join(layout.stateDir, name),
    };
  });
  // The root-namespace half of every host in one ip process: cheaper than one per host.
  const wiring = specs.flatMap(({ name, veth }) => [
    `netns add ${netnsName(name)}`,
    `link add ${veth} group ${linkGroup(layout.id)} type veth peer name eth0 netns ${netnsName(name)}`,
    `link set ${veth} master ${layout.bridge} up`,
  ]);
  await runChecked('ip', ['-batch', '-'], { stdin: `${wiring.join('\n')}\n` });

  if (kind.kind === 'systemd') {
    const root = kind.root!;
    return forEachLimited(specs, SYSTEMD_BOOT_CONCURRENCY, (spec) =>
      bootSystemdHost(spec, root, kind.sshdUnit, authorizedKey, kind.sharedPaths, labCgroups(layout.id)),
    );
  }
  return forEachLimited(specs, BRING_UP_CONCURRENCY, async (spec) => {
    prepareHostDir(spec.dir, authorizedKey);
    const anchorPid = await startAnchor(spec.name, spec.dir, `${spec.address}/${SUBNET_PREFIX}`);
    const publicKey = fs.readFileSync(
      path.join(spec.dir, 'etc-upper', 'ssh', 'ssh_host_ed25519_key.pub'),
      'utf8',
    );
    const hostKeyLine = publicKey.trim().split(/\s+/).slice(0, 2).join(' ');
    const identity = { name: spec.name, address: spec.address, anchorPid, dir: spec.dir, hostKeyLine };
    return makeHost({ ...identity, kind: 'plain' }, plainHostOps);
  });
}

// ---------------------------------------------------------------------------
// Bring-up of a systemd host

/** Each boot keeps a core busy for a few seconds: more at once only slows every one of them. */
const SYSTEMD_BOOT_CONCURRENCY = 2;
const SYSTEMD_BOOT_TIMEOUT_S = 180;
const NSPAWN_PID_FILE = 'nspawn.pid';
const NSPAWN_STOP_TIMEOUT_MS = 30_000;

/**
 * The cgroups systemd keeps its units in on the controller, as directories:
 * the cgroup2 hierarchy and, on hybrid or legacy set-ups, the v1 `name=systemd`
 * one, each at this process's own place in it.
 */
function controllerSystemdCgroups(): string[] {
  const ownPaths = new Map<string, string>();
  for (const line of fs.readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n')) {
    const [, controllers, ownPath] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    if (controllers !== undefined && ownPath !== undefined) ownPaths.set(controllers, ownPath);
  }
  const dirs: string[] = [];
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').trim().split('\n')) {
    // id parent major:minor root mount-point options [optional fields] - type source super-options
    const [before, after] = line.split(' - ');
    const [, , , mountRoot, mountPoint] = (before ?? '').split(' ');
    const [type, , superOptions] = (after ?? '').split(' ');
    const hierarchy =
      type === 'cgroup2'
        ? ''
        : type === 'cgroup' && superOptions?.split(',').includes('name=systemd')
          ? 'name=systemd'
          : null;
    const ownPath = hierarchy === null ? undefined : ownPaths.get(hierarchy);
    if (ownPath === undefined || mountRoot === undefined || mountPoint === undefined) continue;
    const relative = path.posix.relative(mountRoot, ownPath);
    if (relative.startsWith('..')) continue;
    dirs.push(path.posix.join(mountPoint, relative));
  }
  return dirs;
}

/**
 * Every systemd host gets cgroups of its own under `sshfix-lab-<id>`. Without
 * them, systemd-nspawn --keep-unit puts every container in the controller's
 * cgroup, and their systemds share one `payload/system.slice/…` tree: one
 * host removing a unit's cgroup as another starts the same unit made that
 * start fail ("Failed to spawn executor: No such file or directory"), e.g.
 * systemd-user-sessions.service, leaving /run/nologin behind.
 */
function labCgroups(id: string): string[] {
  return controllerSystemdCgroups().map((parent) => path.join(parent, `sshfix-lab-${id}`));
}

/** Removes a cgroup and its children, deepest first; a cgroup still holding processes stays. */
async function removeCgroupTree(dir: string): Promise<void> {
  let children: fs.Dirent[];
  try {
    children = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const child of children) if (child.isDirectory()) await removeCgroupTree(path.join(dir, child.name));
  // Killed processes leave their cgroup a moment after SIGKILL.
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      fs.rmdirSync(dir);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      if ((error as NodeJS.ErrnoException).code !== 'EBUSY') throw error;
      await sleep(100);
    }
  }
}

/** `nsenter` into every namespace of the host's PID 1 (mount, pid, cgroup, ipc, net, uts). */
const systemdNsenter = (pid1: number): string[] => ['-t', String(pid1), '-a'];

/**
 * Runs inside the booted host: the lab's key for root, the sshd unit mode,
 * then waits until port 22 listens and prints the host key.
 */
function systemdSetupScript(mode: SshdUnitMode): string {
  const listening = `ss -Hltn 'sport = :22' | grep -q .`;
  return [
    'set -eu',
    'mkdir -p -m 0700 /root/.ssh',
    'cat > /root/.ssh/authorized_keys',
    'chmod 0600 /root/.ssh/authorized_keys',
    // Ubuntu >= 22.10's default; on Debian a choice (LAB.md).
    ...(mode === 'socket'
      ? ['systemctl -q disable --now ssh.service', 'systemctl -q enable --now ssh.socket']
      : []),
    waitUntilScript(listening, 30),
    'cat /etc/ssh/ssh_host_ed25519_key.pub',
  ].join('\n');
}

/** Polls until `pid`'s child is in a pid namespace of its own: the host's PID 1. */
async function hostInit(nspawnPid: number, name: string): Promise<number> {
  const ownPidNs = fs.readlinkSync('/proc/self/ns/pid');
  const giveUpAt = Date.now() + SYSTEMD_BOOT_TIMEOUT_S * 1000;
  while (Date.now() < giveUpAt) {
    let children: number[] = [];
    try {
      children = fs
        .readFileSync(`/proc/${nspawnPid}/task/${nspawnPid}/children`, 'utf8')
        .trim()
        .split(/\s+/)
        .filter(Boolean)
        .map(Number);
    } catch {
      throw new Error(`host ${name}: systemd-nspawn exited during boot`);
    }
    for (const child of children) {
      try {
        if (fs.readlinkSync(`/proc/${child}/ns/pid`) !== ownPidNs) return child;
      } catch {
        // exited meanwhile
      }
    }
    await sleep(50);
  }
  throw new Error(`host ${name}: systemd-nspawn started no init within ${SYSTEMD_BOOT_TIMEOUT_S} s`);
}

/**
 * Boots one host from the shared root into its netns (the flags LAB.md
 * gives), waits until systemd reports running (or degraded) and sshd
 * listens. The console goes to a log in the host's state directory.
 */
async function bootSystemdHost(
  spec: HostSpec,
  root: string,
  mode: SshdUnitMode,
  authorizedKey: string,
  sharedPaths: readonly string[],
  labCgroupDirs: readonly string[],
): Promise<LabHost> {
  const netns = netnsName(spec.name);
  fs.mkdirSync(spec.dir, { recursive: true, mode: 0o700 });
  const cgroups = labCgroupDirs.map((dir) => path.join(dir, spec.name));
  for (const cgroup of cgroups) fs.mkdirSync(cgroup, { recursive: true });
  // The shell moves itself into the host's cgroups, then becomes systemd-nspawn (same pid).
  const intoCgroups = cgroups.map((cgroup) => `echo $$ > '${cgroup}/cgroup.procs'`).join(' && ');
  await runChecked('ip', ['-n', netns, '-batch', '-'], {
    stdin: `link set lo up\naddr add ${spec.address}/${SUBNET_PREFIX} dev eth0\nlink set eth0 up\n`,
  });
  const consoleLog = fs.openSync(path.join(spec.dir, 'console.log'), 'w');
  const nspawn = spawn(
    'sh',
    [
      '-c',
      `${intoCgroups || ':'} && exec "$@"`,
      'sh',
      'systemd-nspawn',
      // No system bus on the controller; many hosts share one root.
      '--register=no',
      '--keep-unit',
      '-D',
      root,
      // Every host writes to a tmpfs of its own over the shared root.
      '--volatile=overlay',
      // iptables and nft inside the host.
      '--capability=CAP_NET_ADMIN,CAP_NET_RAW',
      `--network-namespace-path=/run/netns/${netns}`,
      // The root's resolv.conf (127.0.0.1): no query may leave the lab.
      '--resolv-conf=off',
      ...sharedPaths.map((shared) => `--bind-ro=${shared}`),
      '-M',
      spec.name,
      `--hostname=${spec.name}`,
      '-b',
    ],
    {
      env: { ...CONTROLLER_ENV, SYSTEMD_NSPAWN_LOCK: '0' },
      cwd: '/',
      detached: true,
      stdio: ['ignore', consoleLog, consoleLog],
    },
  );
  fs.closeSync(consoleLog);
  const nspawnPid = nspawn.pid;
  if (nspawnPid === undefined) throw new Error(`host ${spec.name}: cannot start systemd-nspawn`);
  nspawn.unref();
  fs.writeFileSync(path.join(spec.dir, NSPAWN_PID_FILE), String(nspawnPid));
  const pid1 = await hostInit(nspawnPid, spec.name);
  const inHost = (script: string, options: ExecOptions = {}): Promise<CommandResult> =>
    run('nsenter', [...systemdNsenter(pid1), '--', 'sh', '-c', script], { ...options, env: HOST_ENV });

  // Until systemd listens on its socket, systemctl fails ("offline"): asked again until it answers.
  // A boot with a failed unit is no host to test on: "degraded" names the failed units and fails.
  const booted = await inHost(
    `i=0; until s=$(systemctl is-system-running --wait 2>/dev/null); [ "$s" = running ] || [ "$s" = degraded ]; do
       i=$((i+1)); [ $i -ge ${SYSTEMD_BOOT_TIMEOUT_S * 5} ] && { echo "$s"; exit 1; }; sleep 0.2; done
     [ "$s" = running ] || { echo "$s:" $(systemctl list-units --failed --plain --no-legend | cut -d' ' -f1); exit 1; }
     echo "$s"`,
    { timeoutMs: SYSTEMD_BOOT_TIMEOUT_S * 1000 },
  );
  if (booted.code !== 0) {
    const tail = fs
      .readFileSync(path.join(spec.dir, 'console.log'), 'utf8')
      .split('\n')
      .slice(-15)
      .join('\n');
    throw new Error(`host ${spec.name}: systemd did not boot cleanly (${booted.stdout.trim()})\n${tail}`);
  }
  const setUp = await inHost(systemdSetupScript(mode), { stdin: authorizedKey });
  if (setUp.code !== 0) {
    throw new Error(`host ${spec.name}: setting up sshd failed (exit ${setUp.code}): ${setUp.stderr.trim()}`);
  }
  const hostKeyLine = setUp.stdout.trim().split('\n').pop()!.split(/\s+/).slice(0, 2).join(' ');
  const identity = { name: spec.name, address: spec.address, anchorPid: pid1, dir: spec.dir, hostKeyLine };
  return makeHost({ ...identity, kind: 'systemd' }, systemdHostOps(mode));
}

/** A pid from a host's pid file, if it still names that host's systemd-nspawn. */
function liveNspawn(dir: string): number | null {
  const pid = Number(fs.readFileSync(path.join(dir, NSPAWN_PID_FILE), { encoding: 'utf8', flag: 'r' }));
  if (!Number.isInteger(pid) || pid <= 1) return null;
  try {
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv[0]?.endsWith('systemd-nspawn') && argv.includes(path.basename(dir)) ? pid : null;
  } catch {
    return null;
  }
}

/**
 * SIGTERM to systemd-nspawn powers its host off cleanly (units stopped, the
 * volatile overlay unmounted); whatever still runs after the wait is killed
 * with the rest of the lab's processes.
 */
async function stopSystemdHosts(stateDir: string): Promise<void> {
  const entries = fs.existsSync(stateDir) ? fs.readdirSync(stateDir) : [];
  const pids = entries
    .map((entry) => path.join(stateDir, entry))
    .filter((dir) => fs.existsSync(path.join(dir, NSPAWN_PID_FILE)))
    .map((dir) => {
      try {
        return liveNspawn(dir);
      } catch {
        return null;
      }
    })
    .filter((pid): pid is number => pid !== null);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // exited meanwhile
    }
  }
  const giveUpAt = Date.now() + NSPAWN_STOP_TIMEOUT_MS;
  const alive = (pid: number): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  while (pids.some(alive) && Date.now() < giveUpAt) await sleep(100);
  pids.filter(alive).forEach(killPid);
  for (const entry of entries) {
    // nspawn leaves this empty directory per machine name behind on the controller.
    fs.rmSync(path.join('/run/systemd/nspawn/propagate', entry), { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------
// One host

type HostIdentity = Pick<LabHost, 'name' | 'kind' | 'address' | 'anchorPid' | 'dir' | 'hostKeyLine'>;

/** What differs between the kinds of host: how to enter it, and how sshd and fail2ban are run. */
interface HostOps {
  nsenter(anchorPid: number): string[];
  startSshd: string;
  /** True once sshd (or the socket that starts it) accepts connections on port 22. */
  listening: string;
  stopSshd: string;
  sshdLog: string;
  /** Scripts run in order before waiting for `fail2ban-client ping`; each may read the stdin given. */
  startFail2ban: Array<{ script: string; stdin?: string }>;
}

/** Written only when the test has not provided its own jail.local. */
const LAB_JAIL_LOCAL = `[DEFAULT]
backend = polling

[sshd]
enabled = true
backend = polling
logpath = /var/log/auth.log
`;
/** Debian 12's fail2ban warns on every command without it. */
const LAB_FAIL2BAN_LOCAL = `[Definition]
allowipv6 = auto
`;

const plainHostOps: HostOps = {
  nsenter: (anchorPid) => ['-t', String(anchorPid), '-n', '-m', '-u'],
  startSshd: START_SSHD,
  listening: `[ -s /run/sshd.pid ] && ss -Hltn 'sport = :22' | grep -q .`,
  stopSshd:
    'start-stop-daemon --stop --quiet --oknodo --retry 5 --pidfile /run/sshd.pid --exec /usr/sbin/sshd' +
    ' && rm -f /run/sshd.pid',
  sshdLog: 'cat /var/log/auth.log',
  startFail2ban: [
    { script: '[ -e /etc/fail2ban/jail.local ] || cat > /etc/fail2ban/jail.local', stdin: LAB_JAIL_LOCAL },
    {
      script: '[ -e /etc/fail2ban/fail2ban.local ] || cat > /etc/fail2ban/fail2ban.local',
      stdin: LAB_FAIL2BAN_LOCAL,
    },
    { script: 'mkdir -p /run/fail2ban && fail2ban-client -q -x start' },
  ],
};

function systemdHostOps(mode: SshdUnitMode): HostOps {
  return {
    nsenter: systemdNsenter,
    startSshd: `systemctl start ${mode === 'socket' ? 'ssh.socket' : 'ssh.service'}`,
    listening: `ss -Hltn 'sport = :22' | grep -q .`,
    // In socket mode the socket would start sshd again on the next connection.
    stopSshd: 'systemctl stop ssh.socket ssh.service',
    // OpenSSH 10 logs as sshd and, per connection, as sshd-session.
    sshdLog: 'journalctl --no-pager -q -o cat SYSLOG_IDENTIFIER=sshd SYSLOG_IDENTIFIER=sshd-session',
    startFail2ban: [{ script: 'systemctl start fail2ban.service' }],
  };
}

/** Polls a shell condition inside the host; the loop runs there so it costs one process spawn. */
function waitUntilScript(condition: string, timeoutSeconds: number): string {
  const tries = timeoutSeconds * 20;
  return `i=0; until ${condition}; do i=$((i+1)); [ $i -ge ${tries} ] && exit 1; sleep 0.05; done`;
}

function makeHost(identity: HostIdentity, ops: HostOps): LabHost {
  const nsenter = (argv: readonly string[], options: ExecOptions = {}): Promise<CommandResult> =>
    run('nsenter', [...ops.nsenter(identity.anchorPid), '--', ...argv], {
      ...options,
      env: HOST_ENV,
    });

  const execChecked = async (what: string, script: string, options: ExecOptions = {}): Promise<string> => {
    const result = await nsenter(['sh', '-c', script], options);
    if (result.code !== 0) {
      throw new Error(`host ${identity.name}: ${what} failed (exit ${result.code}): ${result.stderr.trim()}`);
    }
    return result.stdout;
  };

  const host: LabHost = {
    ...identity,
    exec: (script, options) => nsenter(['sh', '-c', script], options),

    async readFile(file) {
      const result = await nsenter(['cat', '--', file]);
      if (result.code !== 0)
        throw new Error(`host ${identity.name}: cannot read ${file}: ${result.stderr.trim()}`);
      return result.stdout;
    },

    async writeFile(file, content) {
      const result = await nsenter(['sh', '-c', 'cat > "$1"', 'write', file], { stdin: content });
      if (result.code !== 0)
        throw new Error(`host ${identity.name}: cannot write ${file}: ${result.stderr.trim()}`);
    },

    async sshdPid() {
      const result = await nsenter([
        'sh',
        '-c',
        'pid=$(cat /run/sshd.pid 2>/dev/null) && kill -0 "$pid" 2>/dev/null && echo "$pid"',
      ]);
      const pid = Number.parseInt(result.stdout.trim(), 10);
      return Number.isNaN(pid) ? null : pid;
    },

    async startSshd() {
      await execChecked('starting sshd', ops.startSshd);
      await execChecked('waiting for sshd to listen on port 22', waitUntilScript(ops.listening, 10));
    },

    async stopSshd() {
      await execChecked('stopping sshd', ops.stopSshd);
    },

    sshdLog: () => execChecked('reading the sshd log', ops.sshdLog),

    async startFail2ban() {
      for (const step of ops.startFail2ban) {
        await execChecked(
          'starting fail2ban',
          step.script,
          step.stdin !== undefined ? { stdin: step.stdin } : {},
        );
      }
      await execChecked('waiting for fail2ban', waitUntilScript('fail2ban-client ping >/dev/null 2>&1', 20));
    },
  };
  return host;
}

// ---------------------------------------------------------------------------
// The lab

/**
 * An Ansible YAML inventory of the lab's hosts (or some of them): root over
 * the lab's key, `admin_network` set to the workstation's address, plus `vars`.
 */
export function labInventory(
  lab: Lab,
  options: { hosts?: LabHost[]; vars?: Record<string, string> } = {},
): string {
  const vars = { admin_network: `${lab.workstationAddress}/32`, ...options.vars };
  return [
    'all:',
    '  vars:',
    '    ansible_user: root',
    `    ansible_ssh_private_key_file: ${lab.privateKeyFile}`,
    ...Object.entries(vars).map(([k, v]) => `    ${k}: ${JSON.stringify(v)}`),
    '  hosts:',
    ...(options.hosts ?? lab.hosts).map((h) => `    ${h.name}: { ansible_host: ${h.address} }`),
    '',
  ].join('\n');
}

export async function startLab(options: StartLabOptions): Promise<Lab> {
  validateOptions(options);
  const { id } = options;
  const kind = options.kind ?? 'plain';
  // Before any lease: a first build takes minutes, and holds no lab resources meanwhile.
  const root = kind === 'systemd' ? await ensureSystemdRoot() : undefined;
  // Leftovers of a crashed run with this id go first; a live owner elsewhere makes this throw.
  const subnetIndex = await acquireSubnetIndex(id);
  const subnetOctet = FIRST_SUBNET_OCTET + subnetIndex;
  const layout: LabLayout = { id, bridge: bridgeName(id), stateDir: labStateDir(id), subnetOctet };
  const controllerAddress = `10.${subnetOctet}.0.1`;
  const workstationAddress = `10.${subnetOctet}.0.2`;

  let destroyed: Promise<void> | null = null;
  const destroy = (): Promise<void> => {
    destroyed ??= removeLabResources(id).finally(() => releaseSubnetIndex(subnetIndex, id));
    return destroyed;
  };

  try {
    // Leftovers that never had a lease (a crash between lease removal and tear-down, manual runs).
    await removeLabResources(id);
    fs.mkdirSync(layout.stateDir, { recursive: true, mode: 0o700 });
    ensureNeighbourTable(options.hosts);
    if (kind === 'systemd') ensureInotifyInstances(options.hosts);
    await createBridge(layout.bridge, [controllerAddress, workstationAddress]);

    const privateKeyFile = path.join(layout.stateDir, 'id_ed25519');
    await runChecked('ssh-keygen', [
      '-q',
      '-t',
      'ed25519',
      '-N',
      '',
      '-C',
      `sshfix-lab-${id}`,
      '-f',
      privateKeyFile,
    ]);
    const authorizedKey = fs.readFileSync(`${privateKeyFile}.pub`, 'utf8');

    const hosts = await createHosts(layout, options.hosts, authorizedKey, {
      kind,
      sshdUnit: options.sshdUnit ?? 'service',
      sharedPaths: options.sharedPaths ?? [],
      ...(root !== undefined ? { root } : {}),
    });
    if (options.fail2ban === true) {
      await forEachLimited(hosts, BRING_UP_CONCURRENCY, (host) => host.startFail2ban());
    }

    const knownHostsFile = path.join(layout.stateDir, 'known_hosts');
    fs.writeFileSync(knownHostsFile, hosts.map((host) => `${host.address} ${host.hostKeyLine}\n`).join(''));

    return {
      id,
      kind,
      controllerAddress,
      workstationAddress,
      hosts,
      privateKeyFile,
      knownHostsFile,
      ssh: (host, command, sshOptions = {}) =>
        run(
          'ssh',
          [...sshClientOptions(privateKeyFile, knownHostsFile, sshOptions.from), host.address, command],
          {
            timeoutMs: sshOptions.timeoutMs ?? DEFAULT_SSH_TIMEOUT_MS,
          },
        ),
      destroy,
    };
  } catch (error) {
    await destroy();
    throw error;
  }
}

/**
 * The root namespace keeps one ARP entry per lab host it talks to. Linux's
 * default table (gc_thresh3 = 1024 entries) overflows on a lab of ~1,000
 * hosts: the kernel then drops neighbours, and connections to some hosts fail
 * with "no route to host" or time out, depending on timing. The thresholds are
 * raised (never lowered) to leave room for this lab and a few others.
 */
function ensureNeighbourTable(hosts: number): void {
  const wanted: Array<[string, number]> = [
    ['gc_thresh2', 2 * hosts + 512],
    ['gc_thresh3', 4 * hosts + 1024],
  ];
  for (const [name, value] of wanted) {
    const file = `/proc/sys/net/ipv4/neigh/default/${name}`;
    const current = Number(fs.readFileSync(file, 'utf8').trim());
    if (!(current >= value)) fs.writeFileSync(file, String(value));
  }
}

/**
 * systemd as PID 1 (and journald, udev, logind in each host) holds inotify instances, all counted
 * against root on this machine: the default limit (fs.inotify.max_user_instances = 128) runs out
 * after about fifteen systemd hosts, and the next one dies at boot with "Failed to allocate manager
 * object: Too many open files". Raised (never lowered) to leave room for this lab and others.
 */
function ensureInotifyInstances(hosts: number): void {
  const file = '/proc/sys/fs/inotify/max_user_instances';
  const wanted = 32 * hosts + 1024;
  const current = Number(fs.readFileSync(file, 'utf8').trim());
  if (!(current >= wanted)) fs.writeFileSync(file, String(wanted));
}

async function createBridge(bridge: string, addresses: readonly string[]): Promise<void> {
  await runChecked('ip', ['link', 'add', bridge, 'type', 'bridge']);
  // Keeps the root namespace's IPv6 neighbour discovery and router solicitations off the lab.
  const disableIpv6 = `/proc/sys/net/ipv6/conf/${bridge}/disable_ipv6`;
  if (fs.existsSync(disableIpv6)) fs.writeFileSync(disableIpv6, '1');
  for (const address of addresses) {
    await runChecked('ip', ['addr', 'add', `${address}/${SUBNET_PREFIX}`, 'dev', bridge]);
  }
  await runChecked('ip', ['link', 'set', bridge, 'up']);
}

function sshClientOptions(
  privateKeyFile: string,
  knownHostsFile: string,
  from: string | undefined,
): string[] {
  const options = [
    '-F',
    '/dev/null',
    '-l',
    'root',
    '-o',
    'BatchMode=yes',
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    `IdentityFile=${privateKeyFile}`,
    '-o',
    `UserKnownHostsFile=${knownHostsFile}`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'UpdateHostKeys=no',
    '-o',
    `ConnectTimeout=${SSH_CONNECT_TIMEOUT_S}`,
  ];
  return from === undefined ? options : [...options, '-b', from];
}

// ---------------------------------------------------------------------------
// Availability

let cachedAvailability: { ok: true } | { ok: false; reason: string } | undefined;

/** Whether this machine can run a lab (root, `ip netns`, overlayfs, sshd present); the reason when not. */
export function labAvailability(): { ok: true } | { ok: false; reason: string } {
  cachedAvailability ??= checkAvailability();
  return cachedAvailability;
}

let cachedSystemdAvailability: { ok: true } | { ok: false; reason: string } | undefined;

/**
 * Whether this machine can also boot hosts of the systemd kind: a plain lab,
 * systemd-nspawn, and the root built or debootstrap to build it.
 */
export function systemdLabAvailability(): { ok: true } | { ok: false; reason: string } {
  cachedSystemdAvailability ??= checkSystemdAvailability();
  return cachedSystemdAvailability;
}

function checkSystemdAvailability(): { ok: true } | { ok: false; reason: string } {
  const plain = labAvailability();
  if (!plain.ok) return plain;
  const tools = ['systemd-nspawn', 'flock', ...(fs.existsSync(systemdRootPath()) ? [] : ['debootstrap'])];
  const missing = tools.filter(
    (tool) => spawnSync('sh', ['-c', 'command -v "$1"', 'sh', tool], { env: CONTROLLER_ENV }).status !== 0,
  );
  if (missing.length > 0) {
    return {
      ok: false,
      reason: `missing: ${missing.join(', ')} (apt-get install systemd-container debootstrap)`,
    };
  }
  return { ok: true };
}

function checkAvailability(): { ok: true } | { ok: false; reason: string } {
  if (process.platform !== 'linux') return { ok: false, reason: `needs Linux, this is ${process.platform}` };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'needs root (network and mount namespaces)' };
  const missing = ['ip', 'nsenter', 'unshare', 'ssh', 'ssh-keygen', 'ss', 'start-stop-daemon'].filter(
    (tool) => spawnSync('sh', ['-c', 'command -v "$1"', 'sh', tool], { env: CONTROLLER_ENV }).status !== 0,
  );
  if (!fs.existsSync('/usr/sbin/sshd')) missing.push('/usr/sbin/sshd (openssh-server)');
  if (missing.length > 0) return { ok: false, reason: `missing: ${missing.join(', ')}` };
  const netns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8', env: CONTROLLER_ENV });
  if (netns.status !== 0) return { ok: false, reason: `ip netns does not work: ${netns.stderr.trim()}` };
  const filesystems = fs.readFileSync('/proc/filesystems', 'utf8');
  if (!/\toverlay$/m.test(filesystems))
    return { ok: false, reason: 'the kernel has no overlayfs (modprobe overlay)' };
  return { ok: true };
}
