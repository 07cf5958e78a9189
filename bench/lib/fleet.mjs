// @ts-check
/**
 * The benchmark's view of the lab: how every host is broken before a tool
 * runs (the same way on every host and for every tool), how many SSH logins
 * each host accepted, and the end state a tool left — read per layer, as
 * verdicts for the admin workstation's address, so that two tools that
 * reach the same effect with different file text compare equal.
 */
import fs from 'node:fs';
import path from 'node:path';

/** @typedef {import('../../src/lab/lab.js').Lab} Lab */
/** @typedef {import('../../src/lab/lab.js').LabHost} LabHost */

/** Host commands run this many at a time: each is an nsenter process. */
const HOST_COMMAND_CONCURRENCY = 8;

/** What sshd -T shows for the settings the playbook manages. */
export const SSHD_SETTINGS = [
  'maxstartups',
  'maxsessions',
  'maxauthtries',
  'clientaliveinterval',
  'clientalivecountmax',
];

/**
 * Three of the layers that make a client see "Connection reset by peer", all
 * at once: TCP wrappers deny the workstation, the firewall drops it, and a
 * cloud-init drop-in (read before the main file) throttles sshd. Then sshd
 * reloads and the script waits until it listens again.
 * @param {string} workstation
 * @param {'plain' | 'systemd'} [kind]
 */
export function breakScript(workstation, kind = 'plain') {
  return [
    'set -e',
    `printf '# local policy\\nvsftpd: ALL\\nsshd: %s\\n' '${workstation}' >> /etc/hosts.deny`,
    `iptables -A INPUT -s '${workstation}/32' -p tcp --dport 22 -j DROP`,
    "printf '# written by cloud-init\\nMaxStartups 2:50:5\\nMaxAuthTries 2\\nClientAliveInterval 5\\n' > /etc/ssh/sshd_config.d/50-cloud-init.conf",
    ...(kind === 'systemd'
      ? [
          // As on the plain kind, fail2ban is installed but not running: a server per host costs
          // memory and steady CPU, and the playbook then only writes ignoreip.
          'systemctl stop fail2ban.service',
          'systemctl reload ssh.service',
        ]
      : ['kill -HUP "$(cat /run/sshd.pid)"']),
    // sshd re-executes on SIGHUP: wait for the new listener (and its new pid file).
    'sleep 0.2',
    "i=0; until ss -Hltn 'sport = :22' | grep -q .; do i=$((i+1)); [ $i -ge 100 ] && exit 1; sleep 0.05; done",
  ].join('\n');
}

/**
 * @template T, R
 * @param {readonly T[]} items
 * @param {number} limit
 * @param {(item: T) => Promise<R>} task
 * @returns {Promise<R[]>}
 */
export async function mapLimited(items, limit, task) {
  /** @type {R[]} */
  const results = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(/** @type {T} */ (items[index]));
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** @param {Lab} lab */
export async function breakHosts(lab) {
  const script = breakScript(lab.workstationAddress, lab.kind);
  await mapLimited(lab.hosts, HOST_COMMAND_CONCURRENCY, async (host) => {
    const result = await host.exec(script);
    if (result.code !== 0) throw new Error(`breaking ${host.name}: ${result.stderr.trim()}`);
  });
}

/** @param {string} text */
function countAccepted(text) {
  let count = 0;
  for (
    let at = text.indexOf('Accepted publickey');
    at !== -1;
    at = text.indexOf('Accepted publickey', at + 1)
  )
    count++;
  return count;
}

/**
 * Logins each host's sshd accepted so far: its auth.log, read from the
 * controller side; on the systemd kind, sshd-session's journal entries (read
 * by a journalctl started from outside the host's sshd, so that it is not
 * counted as the host's CPU).
 * @param {Lab} lab
 * @returns {Promise<number[]>}
 */
export async function acceptedLogins(lab) {
  if (lab.kind === 'systemd') {
    return mapLimited(lab.hosts, HOST_COMMAND_CONCURRENCY, async (host) =>
      countAccepted(
        (
          await host.exec(
            'journalctl --no-pager -q -o cat SYSLOG_IDENTIFIER=sshd-session SYSLOG_IDENTIFIER=sshd',
          )
        ).stdout,
      ),
    );
  }
  return lab.hosts.map((host) => {
    const file = path.join(host.dir, 'log', 'auth.log');
    return countAccepted(fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '');
  });
}

const NEIGHBOUR_TABLE = '/proc/sys/net/ipv4/neigh/default';

/**
 * The kernel's ARP table starts collecting garbage past gc_thresh2 (512) and
 * refuses entries past gc_thresh3 (1024): a lab of ~1,000 hosts on one bridge
 * then sees "no route to host". Raises the thresholds (never lowers them) for
 * `hosts` neighbours; returns what restores the old values.
 * @param {number} hosts
 * @returns {() => void}
 */
export function roomInNeighbourTable(hosts) {
  const wanted = { gc_thresh1: hosts * 2, gc_thresh2: hosts * 4, gc_thresh3: hosts * 8 };
  /** @type {[string, string][]} */
  const old = [];
  for (const [name, value] of Object.entries(wanted)) {
    const file = path.join(NEIGHBOUR_TABLE, name);
    const current = fs.readFileSync(file, 'utf8').trim();
    if (Number(current) >= value) continue;
    old.push([file, current]);
  }
  // gc_thresh1 <= 2 <= 3 must hold after every write: raise the largest first.
  for (const [file] of [...old].reverse()) {
    fs.writeFileSync(file, String(wanted[/** @type {keyof typeof wanted} */ (path.basename(file))]));
  }
  return () => {
    for (const [file, value] of old) fs.writeFileSync(file, value);
  };
}

const CLOCK_TICKS_PER_S = 100;

/** user + system + reaped children's user + system of /proc/PID/stat, in seconds; 0 when gone. */
function processCpuSeconds(/** @type {string | number} */ pid, withOwn = false) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime, stime, cutime and cstime are fields 14 to 17 of /proc/PID/stat.
    const children = Number(fields[13]) + Number(fields[14]);
    return (children + (withOwn ? Number(fields[11]) + Number(fields[12]) : 0)) / CLOCK_TICKS_PER_S;
  } catch {
    return 0;
  }
}

/**
 * CPU seconds each host has used so far for its SSH work. Plain kind: what
 * the host's sshd has reaped from its children (the cutime + cstime of the
 * listener, which keeps its pid across a SIGHUP re-exec): every connection's
 * sshd, its shell and every command the shell waited for. Systemd kind: every
 * process of the host's PID namespace, its own CPU and its reaped children's
 * (systemd, which runs `systemctl reload`'s ExecReload=, journald, which logs
 * every connection, sshd and its per-connection sshd-session and sshd-auth).
 * In the lab the hosts share the controller's CPUs, so this is work a real
 * fleet would do in parallel elsewhere. A connection still open (an Ansible
 * ControlPersist master) is not counted until it ends.
 * @param {Lab} lab
 * @returns {number[]}
 */
export function hostCpuSeconds(lab) {
  if (lab.kind === 'systemd') {
    /** @type {Map<string, number>} */
    const byNamespace = new Map();
    for (const host of lab.hosts) {
      try {
        byNamespace.set(fs.readlinkSync(`/proc/${host.anchorPid}/ns/pid`), 0);
      } catch {
        // The host is gone.
      }
    }
    for (const entry of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const ns = fs.readlinkSync(`/proc/${entry}/ns/pid`);
        const sum = byNamespace.get(ns);
        if (sum !== undefined) byNamespace.set(ns, sum + processCpuSeconds(entry, true));
      } catch {
        // exited meanwhile
      }
    }
    return lab.hosts.map((host) => {
      try {
        return byNamespace.get(fs.readlinkSync(`/proc/${host.anchorPid}/ns/pid`)) ?? 0;
      } catch {
        return 0;
      }
    });
  }
  return lab.hosts.map((host) => {
    try {
      return processCpuSeconds(fs.readFileSync(path.join(host.dir, 'run', 'sshd.pid'), 'utf8').trim());
    } catch {
      return 0;
    }
  });
}

/**
 * @param {number[]} before
 * @param {number[]} after
 */
export function loginsPerHost(before, after) {
  const deltas = after.map((n, i) => n - (before[i] ?? 0));
  const total = deltas.reduce((a, b) => a + b, 0);
  return { mean: total / Math.max(1, deltas.length), min: Math.min(...deltas), max: Math.max(...deltas) };
}

// ---------------------------------------------------------------------------
// End state

/**
 * @typedef {object} HostState
 * @property {Record<string, string>} sshd  sshd -T values of SSHD_SETTINGS
 * @property {'allow' | 'deny' | 'unknown'} tcpWrappers  hosts_access(5) verdict for sshd and the workstation
 * @property {string} firewall  what INPUT does with a new TCP connection to port 22 from the workstation
 * @property {boolean} fail2banIgnoresAdmin  whether the sshd jail's effective ignoreip holds the admin network
 * @property {string[]} fail2banIgnoreip  that ignoreip, the workstation written as ADMIN
 */

const SECTION = '@@bench-section ';

const STATE_SCRIPT = [
  `echo '${SECTION}sshd'`,
  `/usr/sbin/sshd -T -C user=root,host=admin,addr="$1" 2>&1 | grep -E '^(${SSHD_SETTINGS.join('|')}) '`,
  `echo '${SECTION}allow'; cat /etc/hosts.allow 2>/dev/null`,
  `echo '${SECTION}deny'; cat /etc/hosts.deny 2>/dev/null`,
  `echo '${SECTION}iptables'; iptables -S INPUT 2>&1`,
  // fail2ban reads jail.conf, jail.d/*.conf, jail.local, jail.d/*.local, later files winning.
  `echo '${SECTION}jail'; for f in /etc/fail2ban/jail.conf /etc/fail2ban/jail.d/*.conf /etc/fail2ban/jail.local /etc/fail2ban/jail.d/*.local; do [ -f "$f" ] && cat "$f"; echo; done`,
  'exit 0',
].join('\n');

/**
 * @param {string} text
 * @returns {Map<string, string>}
 */
function sections(text) {
  const out = new Map();
  let name = '';
  for (const line of text.split('\n')) {
    if (line.startsWith(SECTION)) {
      name = line.slice(SECTION.length);
      out.set(name, '');
    } else if (name !== '') out.set(name, `${out.get(name)}${line}\n`);
  }
  return out;
}

/** @param {string} address */
function ipv4ToInt(address) {
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return null;
  return (((parts[0] ?? 0) << 24) | ((parts[1] ?? 0) << 16) | ((parts[2] ?? 0) << 8) | (parts[3] ?? 0)) >>> 0;
}

/**
 * Whether an IPv4 network (a.b.c.d, a.b.c.d/len, a.b.c.d/m.a.s.k) contains `address`; null when not IPv4.
 * @param {string} network
 * @param {string} address
 */
export function ipv4NetworkContains(network, address) {
  const [base = '', mask] = network.split('/');
  const baseInt = ipv4ToInt(base);
  const addressInt = ipv4ToInt(address);
  if (baseInt === null || addressInt === null) return null;
  let maskInt = 0xffffffff;
  if (mask !== undefined) {
    const dotted = ipv4ToInt(mask);
    if (dotted !== null && mask.includes('.')) maskInt = dotted;
    else if (/^\d+$/.test(mask) && Number(mask) <= 32)
      maskInt = Number(mask) === 0 ? 0 : (0xffffffff << (32 - Number(mask))) >>> 0;
    else return null;
  }
  return (baseInt & maskInt) >>> 0 === (addressInt & maskInt) >>> 0;
}

/**
 * The first rule of a hosts_access(5) file that matches daemon sshd and client `address`: 'match',
 * 'none', or 'unknown' for patterns this small evaluator does not model (EXCEPT, host names, @netgroups).
 * @param {string} content
 * @param {string} address
 * @returns {'match' | 'none' | 'unknown'}
 */
export function hostsAccessMatch(content, address) {
  const logical = content.replace(/\\\n/g, ' ').split('\n');
  for (const raw of logical) {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') continue;
    const [daemons = '', clients = ''] = line.split(':');
    const words = (/** @type {string} */ text) => text.split(/[\s,]+/).filter(Boolean);
    if (words(daemons).includes('EXCEPT') || words(clients).includes('EXCEPT')) return 'unknown';
    if (!words(daemons).some((d) => d === 'ALL' || d === 'sshd')) continue;
    for (const client of words(clients)) {
      if (client === 'ALL') return 'match';
      if (client.endsWith('.') && /^[\d.]+$/.test(client)) {
        if (address.startsWith(client)) return 'match';
        continue;
      }
      const contains = ipv4NetworkContains(client, address);
      if (contains === true) return 'match';
      if (contains === null && client !== 'LOCAL') return 'unknown';
    }
  }
  return 'none';
}

/**
 * @param {string} allow
 * @param {string} deny
 * @param {string} address
 * @returns {'allow' | 'deny' | 'unknown'}
 */
export function tcpWrappersVerdict(allow, deny, address) {
  const allowed = hostsAccessMatch(allow, address);
  if (allowed === 'match') return 'allow';
  const denied = hostsAccessMatch(deny, address);
  if (allowed === 'unknown' || denied === 'unknown') return 'unknown';
  return denied === 'match' ? 'deny' : 'allow';
}

/**
 * What the INPUT chain does with a new TCP connection to port 22 from `address`, reading `iptables -S INPUT`:
 * the target of the first rule that matches it (rules with matches this evaluator does not model are
 * reported by their text), else the policy.
 * @param {string} rules
 * @param {string} address
 */
export function firewallVerdict(rules, address) {
  let policy = 'ACCEPT';
  for (const line of rules.split('\n')) {
    const words = line.trim().split(/\s+/);
    if (words[0] === '-P' && words[1] === 'INPUT') policy = words[2] ?? policy;
    if (words[0] !== '-A' || words[1] !== 'INPUT') continue;
    const option = (/** @type {string} */ name) => {
      const i = words.indexOf(name);
      return i === -1 ? undefined : words[i + 1];
    };
    const source = option('-s');
    if (source !== undefined && ipv4NetworkContains(source, address) !== true) continue;
    const protocol = option('-p');
    if (protocol !== undefined && protocol !== 'tcp') continue;
    const port = option('--dport');
    if (port !== undefined && port !== '22') continue;
    const target = option('-j') ?? '(none)';
    const modelled = words.every(
      (w, i) =>
        !w.startsWith('-') ||
        ['-A', '-s', '-p', '-m', '--dport', '-j'].includes(w) ||
        words[i - 1] === '--reject-with' ||
        w === '--reject-with',
    );
    if (!modelled) return `unmodelled rule: ${line.trim()}`;
    if (['ACCEPT', 'DROP', 'REJECT'].includes(target)) return target;
  }
  return `policy ${policy}`;
}

/**
 * The sshd jail's effective ignoreip: the last assignment in [sshd], else in [DEFAULT], over the files in read order.
 * @param {string} concatenated
 */
export function fail2banIgnoreip(concatenated) {
  /** @type {string | undefined} */
  let fromDefault;
  /** @type {string | undefined} */
  let fromSshd;
  let section = '';
  /** @type {'default' | 'sshd' | null} */
  let continuing = null;
  for (const line of concatenated.split('\n')) {
    const header = /^\s*\[([^\]]+)\]/.exec(line);
    if (header) {
      section = (header[1] ?? '').trim();
      continuing = null;
      continue;
    }
    if (continuing !== null && /^\s+\S/.test(line) && !/^\s*[#;]/.test(line)) {
      if (continuing === 'default') fromDefault = `${fromDefault} ${line.trim()}`;
      else fromSshd = `${fromSshd} ${line.trim()}`;
      continue;
    }
    continuing = null;
    const assignment = /^ignoreip\s*[=:]\s*(.*)$/i.exec(line);
    if (!assignment) continue;
    if (section === 'DEFAULT') {
      fromDefault = assignment[1] ?? '';
      continuing = 'default';
    } else if (section === 'sshd') {
      fromSshd = assignment[1] ?? '';
      continuing = 'sshd';
    }
  }
  return (fromSshd ?? fromDefault ?? '').split(/[\s,]+/).filter(Boolean);
}

/**
 * @param {LabHost} host
 * @param {string} workstation
 * @param {string} adminNetwork
 * @returns {Promise<HostState>}
 */
export async function readHostState(host, workstation, adminNetwork) {
  const result = await host.exec(`set -- '${workstation}'\n${STATE_SCRIPT}`);
  const parts = sections(result.stdout);
  /** @type {Record<string, string>} */
  const sshd = {};
  for (const line of (parts.get('sshd') ?? '').split('\n')) {
    const [key, ...value] = line.trim().split(' ');
    if (key !== undefined && SSHD_SETTINGS.includes(key)) sshd[key] = value.join(' ');
  }
  const ignoreip = fail2banIgnoreip(parts.get('jail') ?? '');
  return {
    sshd,
    tcpWrappers: tcpWrappersVerdict(parts.get('allow') ?? '', parts.get('deny') ?? '', workstation),
    firewall: firewallVerdict(parts.get('iptables') ?? '', workstation),
    fail2banIgnoresAdmin: ignoreip.some(
      (entry) => entry === adminNetwork || ipv4NetworkContains(entry, workstation) === true,
    ),
    fail2banIgnoreip: ignoreip.map((entry) => entry.split(workstation).join('ADMIN')).sort(),
  };
}

/**
 * The distinct end states over the fleet with how many hosts are in each: a tool that converged has one.
 * @param {Lab} lab
 * @param {string} adminNetwork
 * @returns {Promise<{ state: HostState, hosts: number, example: string }[]>}
 */
export async function fleetState(lab, adminNetwork) {
  const states = await mapLimited(lab.hosts, HOST_COMMAND_CONCURRENCY, (host) =>
    readHostState(host, lab.workstationAddress, adminNetwork),
  );
  /** @type {Map<string, { state: HostState, hosts: number, example: string }>} */
  const variants = new Map();
  states.forEach((state, i) => {
    const key = JSON.stringify(state);
    const variant = variants.get(key) ?? { state, hosts: 0, example: lab.hosts[i]?.name ?? '?' };
    variant.hosts++;
    variants.set(key, variant);
  });
  return [...variants.values()].sort((a, b) => b.hosts - a.hosts);
}

/**
 * The part of the end state every tool must agree on (ignoreip's exact text may differ; its verdict may not).
 * @param {HostState} state
 */
export function comparableState(state) {
  return {
    sshd: state.sshd,
    tcpWrappers: state.tcpWrappers,
    firewall: state.firewall,
    fail2banIgnoresAdmin: state.fail2banIgnoresAdmin,
  };
}

/**
 * A new connection from the workstation's address to the first `sample` hosts: the effect that matters.
 * @param {Lab} lab
 * @param {number} sample
 * @returns {Promise<string[]>} failures
 */
export async function workstationFailures(lab, sample) {
  const hosts = lab.hosts.slice(0, sample);
  const results = await mapLimited(hosts, HOST_COMMAND_CONCURRENCY, (host) =>
    lab.ssh(host, 'true', { from: lab.workstationAddress, timeoutMs: 20_000 }),
  );
  return results.flatMap((r, i) =>
    r.code === 0 ? [] : [`${hosts[i]?.name}: ${r.stderr.trim() || `exit ${r.code}`}`],
  );
}
