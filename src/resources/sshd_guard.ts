/**
 * Lockout guards: before apply, would the resulting sshd configuration still
 * let the operator in? `sshd -t` accepts configurations that lock you out
 * (TRAPS.md): AllowUsers/AllowGroups/DenyUsers/DenyGroups that exclude the
 * connecting user, `PermitRootLogin no` for a root login, `PasswordAuthentication
 * no` for a password login, a Port the firewall drops, a ListenAddress that is
 * not on the host.
 *
 * Everything here is pure and fed by facts gathered in one round trip: the
 * effective configuration before and after (`sshd -T -C` for this very
 * connection, so Match blocks are evaluated by sshd itself), the login's
 * user, groups, address and port, the host's addresses and its iptables
 * rules. A finding is reported only if the *current* configuration does not
 * produce the same finding: we are connected through it, so a finding it
 * shares is a gap in our evaluation, not a lockout to come.
 */
import { batchRecords, newMarker, shellQuote, stagedFileWrite } from '../transport/shell.js';
import type { ExecResult } from '../transport/types.js';
import type { GuardLogin, LockoutGuard, ListenerMove } from './types.js';
import { cidrContains, parseHostCidr, type Cidr, type IpFamily } from '../formats/firewall_cidr.js';
import { parseIptablesSave, type IptablesRuleset } from '../formats/firewall_iptables.js';
import { traceIptablesInput } from '../formats/firewall_iptables_path.js';
import { parseSshdT } from '../formats/sshd_effective.js';
import { isActiveTest, isEnabledTest, systemctlShowLines } from '../formats/systemd_units.js';

export type AuthMethodUsed = 'publickey' | 'password' | 'keyboard-interactive' | 'local';

/** Who is connected and how. */
export interface LoginFacts {
  user: string;
  groups: string[];
  authMethod?: AuthMethodUsed;
  /** From SSH_CONNECTION on the host: the controller's address as the host sees it. */
  clientAddress?: string;
  /** The host address and port this connection reached. */
  localAddress?: string;
  localPort?: number;
}

export interface LockoutFacts {
  login: LoginFacts;
  /** `sshd -T -C ...` of the live configuration, and of the planned (staged) one. */
  current: ReadonlyMap<string, readonly string[]>;
  planned: ReadonlyMap<string, readonly string[]>;
  /** Addresses configured on the host (`ip -o addr`). */
  hostAddresses: string[];
  /** iptables-save outputs (filter table) per variant in use. */
  iptables: { family: IpFamily; variant: string; text: string }[];
}

export interface LockoutFinding {
  /** Stable identity of the finding: the rule plus the values it was computed from. */
  key: string;
  message: string;
}

// ---------------------------------------------------------------------------
// OpenSSH pattern matching (match.c)

/** `*` and `?` wildcards over the whole text (match_pattern). */
export function matchPattern(text: string, pattern: string): boolean {
  const source = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${source}$`, 's').test(text);
}

/** A comma list with `!` negations (match_pattern_list): a negated hit wins over any positive one. */
export function matchPatternList(text: string, list: string): 'match' | 'negated' | 'none' {
  let result: 'match' | 'none' = 'none';
  for (const raw of list.split(',')) {
    const negated = raw.startsWith('!');
    const pattern = negated ? raw.slice(1) : raw;
    if (pattern === '' || !matchPattern(text, pattern)) continue;
    if (negated) return 'negated';
    result = 'match';
  }
  return result;
}

type Tri = 'yes' | 'no' | 'unknown';

/**
 * The host part of `user@host`: addresses, CIDRs and wildcard patterns are
 * decided against the client address. Names are matched by sshd against the
 * reverse-DNS name only with UseDNS yes; then we cannot tell.
 */
function matchHostPart(list: string, clientAddress: string | undefined, useDns: boolean): Tri {
  if (clientAddress === undefined) return 'unknown';
  const client = parseHostCidr(clientAddress);
  let result: Tri = 'no';
  for (const raw of list.split(',')) {
    const negated = raw.startsWith('!');
    const pattern = negated ? raw.slice(1) : raw;
    let hit: Tri;
    const cidr = pattern.includes('/') ? parseHostCidr(pattern) : null;
    if (cidr && client) hit = cidr.family === client.family && cidrContains(cidr, client) ? 'yes' : 'no';
    else if (/^[0-9a-fA-F.:*?]+$/.test(pattern)) hit = matchPattern(clientAddress, pattern) ? 'yes' : 'no';
    else hit = useDns ? 'unknown' : matchPattern(clientAddress, pattern) ? 'yes' : 'no';
    if (hit === 'yes' && negated) return 'no';
    if (hit === 'unknown') result = 'unknown';
    else if (hit === 'yes' && result !== 'unknown') result = 'yes';
  }
  return result;
}

/** One AllowUsers/DenyUsers entry against the login (match_user). */
export function matchUserEntry(entry: string, login: LoginFacts, useDns: boolean): Tri {
  const at = entry.lastIndexOf('@');
  if (at === -1) return matchPattern(login.user, entry) ? 'yes' : 'no';
  if (!matchPattern(login.user, entry.slice(0, at))) return 'no';
  return matchHostPart(entry.slice(at + 1), login.clientAddress, useDns);
}

function groupListMatches(entry: string, groups: readonly string[]): boolean {
  return groups.some((g) => matchPatternList(g, entry) === 'match');
}

// ---------------------------------------------------------------------------
// Findings on one effective configuration

const first = (config: ReadonlyMap<string, readonly string[]>, key: string): string | undefined =>
  config.get(key)?.[0]?.toLowerCase();

/** sshd -T prints one line per entry for these lists. */
const entries = (config: ReadonlyMap<string, readonly string[]>, key: string): string[] =>
  (config.get(key) ?? []).flatMap((line) => line.split(/\s+/)).filter(Boolean);

function accessFindings(config: ReadonlyMap<string, readonly string[]>, login: LoginFacts): LockoutFinding[] {
  const findings: LockoutFinding[] = [];
  const useDns = first(config, 'usedns') === 'yes';
  const who = login.clientAddress ? `${login.user} from ${login.clientAddress}` : login.user;
  const denyUsers = entries(config, 'denyusers');
  const denying = denyUsers.filter((e) => matchUserEntry(e, login, useDns) !== 'no');
  if (denying.length > 0) {
    findings.push({
      key: `denyusers:${denyUsers.join(' ')}`,
      message: `DenyUsers ${denying.join(' ')} ${denying.some((e) => matchUserEntry(e, login, useDns) === 'yes') ? 'matches' : 'may match'} ${who}, the user sshfix logs in as`,
    });
  }
  const allowUsers = entries(config, 'allowusers');
  if (allowUsers.length > 0) {
    const results = allowUsers.map((e) => matchUserEntry(e, login, useDns));
    if (!results.includes('yes')) {
      findings.push({
        key: `allowusers:${allowUsers.join(' ')}`,
        message: `AllowUsers ${allowUsers.join(' ')} ${results.includes('unknown') ? 'may not admit' : 'does not admit'} ${who}, the user sshfix logs in as`,
      });
    }
  }
  const denyGroups = entries(config, 'denygroups');
  const deniedBy = denyGroups.filter((e) => groupListMatches(e, login.groups));
  if (deniedBy.length > 0) {
    findings.push({
      key: `denygroups:${denyGroups.join(' ')}`,
      message: `DenyGroups ${deniedBy.join(' ')} matches a group of ${login.user} (${login.groups.join(' ')})`,
    });
  }
  const allowGroups = entries(config, 'allowgroups');
  if (allowGroups.length > 0 && !allowGroups.some((e) => groupListMatches(e, login.groups))) {
    findings.push({
      key: `allowgroups:${allowGroups.join(' ')}`,
      message: `AllowGroups ${allowGroups.join(' ')} admits none of the groups of ${login.user} (${login.groups.join(' ') || 'none known'})`,
    });
  }
  return findings;
}

function authFindings(config: ReadonlyMap<string, readonly string[]>, login: LoginFacts): LockoutFinding[] {
  const findings: LockoutFinding[] = [];
  const method = login.authMethod;
  const permitRoot = first(config, 'permitrootlogin');
  if (login.user === 'root' && permitRoot !== undefined) {
    const passwordOnly = method === 'password' || method === 'keyboard-interactive';
    if (permitRoot === 'no') {
      findings.push({
        key: `permitrootlogin:no`,
        message: 'PermitRootLogin no while sshfix logs in as root',
      });
    } else if (permitRoot === 'forced-commands-only') {
      findings.push({
        key: `permitrootlogin:forced-commands-only`,
        message:
          'PermitRootLogin forced-commands-only while sshfix logs in as root and runs its own commands',
      });
    } else if ((permitRoot === 'prohibit-password' || permitRoot === 'without-password') && passwordOnly) {
      findings.push({
        key: `permitrootlogin:${permitRoot}`,
        message: `PermitRootLogin ${permitRoot} while sshfix logs in as root with a password`,
      });
    }
  }
  if (method === 'password' && first(config, 'passwordauthentication') === 'no') {
    findings.push({
      key: 'passwordauthentication:no',
      message: 'PasswordAuthentication no while sshfix is authenticated by password',
    });
  }
  if (method === 'publickey' && first(config, 'pubkeyauthentication') === 'no') {
    findings.push({
      key: 'pubkeyauthentication:no',
      message: 'PubkeyAuthentication no while sshfix is authenticated by a key',
    });
  }
  const authMethods = (config.get('authenticationmethods') ?? []).join(' ').trim();
  if (method && method !== 'local' && authMethods !== '' && authMethods !== 'any') {
    const chains = authMethods.split(/\s+/);
    if (!chains.some((chain) => chain.split(',').every((m) => m.split(':')[0] === method))) {
      findings.push({
        key: `authenticationmethods:${authMethods}`,
        message: `AuthenticationMethods ${authMethods} does not accept ${method} alone, the method sshfix logs in with`,
      });
    }
  }
  return findings;
}

export interface ListenEntry {
  address: string;
  port: number;
}

/** `listenaddress 0.0.0.0:22`, `listenaddress [::]:2222` (sshd -T forms). */
export function parseListenAddress(text: string): ListenEntry | null {
  const word = text.trim().split(/\s+/)[0] ?? '';
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(word);
  const plain = /^([^:]+):(\d+)$/.exec(word);
  const m = bracketed ?? plain;
  if (!m) return null;
  return { address: m[1]!, port: Number(m[2]) };
}

const isWildcard = (address: string): boolean => address === '0.0.0.0' || address === '::';

function familyOf(address: string): IpFamily | null {
  return parseHostCidr(address)?.family ?? null;
}

/** Ports sshd would listen on for connections to `localAddress` (wildcards of its family count). */
export function portsFor(config: ReadonlyMap<string, readonly string[]>, localAddress: string): number[] {
  const family = familyOf(localAddress);
  const listen = (config.get('listenaddress') ?? []).map(parseListenAddress).filter((e) => e !== null);
  const ports = listen
    .filter((e) => e.address === localAddress || (isWildcard(e.address) && familyOf(e.address) === family))
    .map((e) => e.port);
  return [...new Set(ports)];
}

/**
 * The port to reach sshd on after the change: the one used now if sshd
 * still listens on it, else the first new one. `undefined` when sshd would
 * not listen on this address at all.
 */
export function nextPort(
  config: ReadonlyMap<string, readonly string[]>,
  localAddress: string | undefined,
  currentPort: number,
): number | undefined {
  if (localAddress === undefined) {
    const ports = (config.get('port') ?? []).map(Number).filter((p) => Number.isInteger(p) && p > 0);
    return ports.includes(currentPort) || ports.length === 0 ? currentPort : ports[0];
  }
  const ports = portsFor(config, localAddress);
  if (ports.length === 0) return undefined;
  return ports.includes(currentPort) ? currentPort : ports[0];
}

function listenFindings(
  facts: LockoutFacts,
  config: ReadonlyMap<string, readonly string[]>,
): LockoutFinding[] {
  const findings: LockoutFinding[] = [];
  const { login } = facts;
  const listen = (config.get('listenaddress') ?? []).map(parseListenAddress).filter((e) => e !== null);
  const hostAddresses = new Set(facts.hostAddresses);
  if (facts.hostAddresses.length > 0) {
    for (const entry of listen) {
      if (isWildcard(entry.address) || hostAddresses.has(entry.address)) continue;
      findings.push({
        key: `listenaddress-missing:${entry.address}`,
        message: `ListenAddress ${entry.address} is not an address of this host (it has ${facts.hostAddresses.join(', ')})`,
      });
    }
  }
  if (login.localAddress === undefined || login.localPort === undefined) return findings;
  const port = nextPort(config, login.localAddress, login.localPort);
  if (port === undefined) {
    findings.push({
      key: `listen-none:${login.localAddress}`,
      message: `sshd would no longer listen on ${login.localAddress}, the address sshfix is connected to`,
    });
    return findings;
  }
  if (port !== login.localPort && login.clientAddress !== undefined) {
    const verdict = firewallVerdict(facts.iptables, login.clientAddress, port);
    if (verdict.verdict === 'block') {
      findings.push({
        key: `firewall-port:${port}`,
        message: `sshd would move to port ${port}, which the firewall does not admit from ${login.clientAddress} (${verdict.reason})`,
      });
    }
  }
  return findings;
}

function findingsOf(facts: LockoutFacts, config: ReadonlyMap<string, readonly string[]>): LockoutFinding[] {
  return [
    ...accessFindings(config, facts.login),
    ...authFindings(config, facts.login),
    ...listenFindings(facts, config),
  ];
}

/** Lockouts the planned configuration would cause that the current one does not. */
export function findLockouts(facts: LockoutFacts): LockoutFinding[] {
  if (facts.planned.size === 0) return [];
  const existing = new Set(facts.current.size > 0 ? findingsOf(facts, facts.current).map((f) => f.key) : []);
  return findingsOf(facts, facts.planned).filter((f) => !existing.has(f.key));
}

// ---------------------------------------------------------------------------
// Firewall: would a new TCP connection from `client` to `port` get in?

export interface FirewallVerdict {
  verdict: 'admit' | 'block' | 'unknown';
  reason: string;
}

/** Evaluates filter/INPUT of one iptables-save dump for the SYN of a new connection. */
export function iptablesVerdict(ruleset: IptablesRuleset, client: Cidr, port: number): FirewallVerdict {
  const path = traceIptablesInput(ruleset, client, port, 'new');
  if (!path) return { verdict: 'admit', reason: 'no filter/INPUT chain' };
  if (path.outcome === 'accept') return { verdict: 'admit', reason: `accepted by "${path.rule?.text}"` };
  if (path.outcome === 'drop' || path.outcome === 'reject')
    return { verdict: 'block', reason: `"${path.rule?.text}"` };
  if (path.outcome === 'policy_accept') return { verdict: 'admit', reason: 'INPUT policy ACCEPT' };
  if (path.uncertainAccept)
    return { verdict: 'unknown', reason: 'INPUT policy DROP, and an ACCEPT rule may or may not match' };
  return { verdict: 'block', reason: `INPUT policy DROP and no rule accepts tcp/${port}` };
}

/** Blocked if any iptables variant in use blocks; admitted if all admit. */
export function firewallVerdict(
  dumps: LockoutFacts['iptables'],
  clientAddress: string,
  port: number,
): FirewallVerdict {
  const client = parseHostCidr(clientAddress);
  if (!client) return { verdict: 'unknown', reason: `cannot parse the client address ${clientAddress}` };
  const verdicts = dumps
    .filter((d) => d.family === client.family)
    .map((d) => ({
      ...iptablesVerdict(parseIptablesSave(d.text, d.family), client, port),
      variant: d.variant,
    }));
  const blocked = verdicts.find((v) => v.verdict === 'block');
  if (blocked) return { verdict: 'block', reason: `${blocked.variant}: ${blocked.reason}` };
  if (verdicts.some((v) => v.verdict === 'unknown'))
    return { verdict: 'unknown', reason: verdicts.map((v) => v.reason).join('; ') };
  return { verdict: 'admit', reason: verdicts.map((v) => v.reason).join('; ') || 'no iptables rules' };
}

// ---------------------------------------------------------------------------
// Gathering the facts: one script, one round trip

export interface SshdActivationFacts {
  /** systemd is PID 1 (/run/systemd/system exists). */
  systemd: boolean;
  /** `systemctl is-active ssh.socket` (or `is-enabled`) says yes: Ubuntu >= 22.10's default. Or sshd.socket (Fedora's). */
  sshSocket: boolean;
  /** The socket unit, when sshSocket: ssh.socket, or sshd.socket. */
  socketUnit?: string;
}

/** The sockets that may hand sshd its listener, in the order asked: Debian's and Ubuntu's, then Fedora's. */
const ACTIVATION_SOCKETS = ['ssh.socket', 'sshd.socket'];

/** Probe text for SshdActivationFacts; its output is parsed by parseSshdActivation. */
export const SSHD_ACTIVATION_PROBE = [
  'if [ -d /run/systemd/system ]; then s=systemd; else s=none; fi',
  'k=no',
  'if [ $s = systemd ]; then',
  // Both sockets' states from one systemctl; is-enabled only where the socket is not active (systemd_units.ts).
  ...systemctlShowLines(ACTIVATION_SOCKETS, ['LoadState', 'ActiveState']),
  ...ACTIVATION_SOCKETS.map(
    (unit, i) =>
      `  ${i === 0 ? 'if' : 'elif'} ${isActiveTest(i)} || ${isEnabledTest(i, unit)}; then k=${unit}`,
  ),
  '  fi',
  'fi',
  'echo "$s $k"',
].join('\n');

export function parseSshdActivation(stdout: string): SshdActivationFacts {
  const [init, socket] = stdout.trim().split(/\s+/);
  const socketUnit = socket === 'ssh.socket' || socket === 'sshd.socket' ? socket : undefined;
  return {
    systemd: init === 'systemd',
    sshSocket: socketUnit !== undefined,
    ...(socketUnit ? { socketUnit } : {}),
  };
}

/** The staged sshd_config tree a guard judges: the part of the sshd_config resource's plan data it reads. */
export interface StagedSshdTree {
  sshd: string;
  mainPath: string;
  stageRoot: string;
  stagedMain: string;
  staged: Record<string, string>;
  /** `sshd -T -C` argument that matches no Match block: plain `sshd -T` refuses `Match LocalPort`. */
  unmatchedSpec: string;
}

/**
 * One fact: its output straight out between records carrying the script's
 * nonce ($m), so no temporary file or base64 process is needed and host data
 * (sshd -T output, firewall rules) cannot forge a record.
 */
function factSection(name: string, body: string): string {
  return [
    `echo "$m ${name}"`,
    `( ${body}\n) </dev/null 2>/dev/null; rc=$?`,
    `printf '\\n%s ${name} rc %s\\n' "$m" "$rc"`,
  ].join('\n');
}

/**
 * The controller's connection as the host sees it: SSH_CONNECTION of this
 * shell, or — when sudo cleared the environment — of the nearest ancestor.
 */
const FIND_SSH_CONNECTION = [
  'sc=${SSH_CONNECTION:-}; pid=$$',
  'while [ -z "$sc" ] && [ -n "$pid" ] && [ "$pid" -gt 1 ]; do',
  '  sc=$(tr "\\0" "\\n" < "/proc/$pid/environ" 2>/dev/null | sed -n "s/^SSH_CONNECTION=//p" | head -n 1)',
  '  pid=$(sed -n "s/^PPid:[[:space:]]*//p" "/proc/$pid/status" 2>/dev/null)',
  'done',
].join('\n');

/**
 * The addresses in `ip -o addr show` output ("2: eth0    inet 10.0.0.5/24 brd ..."):
 * the word after inet/inet6, without its prefix length. Parsed here rather
 * than with awk and cut on the host, two processes fewer per changed host.
 */
export function addressesOf(ipOutput: string): string[] {
  const addresses: string[] = [];
  for (const line of ipOutput.split('\n')) {
    const words = line.trim().split(/\s+/);
    const at = words.findIndex((w) => w === 'inet' || w === 'inet6');
    const address = at >= 0 ? words[at + 1]?.split('/')[0] : undefined;
    if (address) addresses.push(address);
  }
  return addresses;
}

export function buildLockoutFactsScript(tree: StagedSshdTree, loginUser: string, marker: string): string {
  const sshd = shellQuote(tree.sshd);
  const root = shellQuote(tree.stageRoot);
  // Staged files sit at their absolute paths under the root; this name is none of them.
  const plannedErrors = shellQuote(`${tree.stageRoot}/.sshfix-planned.err`);
  return [
    'umask 077',
    `m=${marker}`,
    `trap ${shellQuote(`rm -rf ${root}`)} EXIT`,
    '[ -d /run/sshd ] || mkdir -p /run/sshd',
    FIND_SSH_CONNECTION,
    'set -- $sc',
    // Without the connection (no SSH_CONNECTION found), what connections matching no Match block get.
    `ctx=${shellQuote(tree.unmatchedSpec)}`,
    `u=${shellQuote(loginUser)}`,
    '[ $# -ge 4 ] && ctx="user=$u,host=$1,addr=$1,laddr=$3,lport=$4"',
    factSection('connection', 'echo "$sc"'),
    factSection('groups', 'id -Gn -- "$u"'),
    factSection('current', `${sshd} -T -f ${shellQuote(tree.mainPath)} -C "$ctx"`),
    `rm -rf ${root} && mkdir -p ${root} || exit 1`,
    ...Object.entries(tree.staged).map(([path, content], i) =>
      stagedFileWrite(path, content, `SSHFIX_GUARD_${i}`),
    ),
    // Its message, when it fails, is the verdict on the change (plannedRejection).
    factSection('planned', `${sshd} -T -f ${shellQuote(tree.stagedMain)} -C "$ctx" 2>${plannedErrors}`),
    factSection('planned-error', `cat ${plannedErrors}`),
    factSection('addresses', 'ip -o addr show 2>/dev/null'),
    factSection('iptables', 'iptables-save -t filter 2>/dev/null'),
    factSection('ip6tables', 'ip6tables-save -t filter 2>/dev/null'),
    // Legacy tables only where the kernel lists one: the legacy tools would otherwise instantiate them.
    factSection(
      'iptables-legacy',
      '{ read -r _ < /proc/net/ip_tables_names; } 2>/dev/null && iptables-legacy-save -t filter 2>/dev/null',
    ),
    factSection(
      'ip6tables-legacy',
      '{ read -r _ < /proc/net/ip6_tables_names; } 2>/dev/null && ip6tables-legacy-save -t filter 2>/dev/null',
    ),
    factSection('activation', SSHD_ACTIVATION_PROBE),
    '',
  ].join('\n');
}

export interface GatheredFacts extends LockoutFacts {
  activation: SshdActivationFacts;
  /** `sshd -T -C` accepted the planned (staged) tree. */
  plannedAccepted: boolean;
  /** What `sshd -T -C` said when it refused the planned (staged) configuration, but not the live one. */
  plannedError?: string;
}

export function parseLockoutFacts(
  stdout: string,
  login: Pick<LoginFacts, 'user' | 'authMethod'>,
  marker: string,
): GatheredFacts {
  const sections = new Map<string, { rc: number; text: string }>();
  const texts = new Map<string, string>();
  for (const [name, kind, body, rest] of batchRecords(stdout, marker)) {
    if (kind === '') texts.set(name, body);
    else if (kind === 'rc') sections.set(name, { rc: Number(rest[0]), text: texts.get(name) ?? '' });
  }
  const ok = (name: string): string => {
    const s = sections.get(name);
    return s && s.rc === 0 ? s.text : '';
  };
  const planned = sections.get('planned');
  // Only a refusal the live configuration does not share is about the change: an sshd too old
  // to evaluate Match blocks with a partial -C (before 8.1) refuses both.
  const plannedRefused = planned !== undefined && planned.rc !== 0 && sections.get('current')?.rc === 0;
  const [clientAddress, , localAddress, localPort] = ok('connection').trim().split(/\s+/);
  const iptables: LockoutFacts['iptables'] = [];
  for (const [variant, family] of [
    ['iptables', 4],
    ['ip6tables', 6],
    ['iptables-legacy', 4],
    ['ip6tables-legacy', 6],
  ] as const) {
    const text = ok(variant);
    if (text.includes('*filter')) iptables.push({ variant, family, text });
  }
  return {
    login: {
      user: login.user,
      groups: ok('groups').trim().split(/\s+/).filter(Boolean),
      ...(login.authMethod !== undefined ? { authMethod: login.authMethod } : {}),
      ...(clientAddress ? { clientAddress } : {}),
      ...(localAddress ? { localAddress } : {}),
      ...(localPort && Number.isInteger(Number(localPort)) ? { localPort: Number(localPort) } : {}),
    },
    current: parseSshdT(ok('current')),
    planned: parseSshdT(ok('planned')),
    hostAddresses: addressesOf(ok('addresses')),
    iptables,
    activation: parseSshdActivation(ok('activation')),
    plannedAccepted: planned?.rc === 0,
    ...(plannedRefused
      ? { plannedError: (texts.get('planned-error') ?? '').trim() || `exit code ${planned.rc}` }
      : {}),
  };
}

/**
 * A configuration `sshd -T -C` refuses for this very connection is refused by
 * every sshd that serves it: each new connection would die. `sshd -t` cannot
 * tell (it evaluates no Match block): `AuthenticationMethods any` read after
 * a matching block that already set methods is fatal only then (OpenSSH 9.2
 * servconf.c: "any" must appear alone). So the failure is a verdict, and its
 * message the reason; never a gap in the facts.
 */
export function plannedRejection(facts: GatheredFacts, stageRoot: string): string | undefined {
  if (facts.plannedError === undefined) return undefined;
  return facts.plannedError.split(stageRoot).join('');
}

/** Whether the change moves where sshd listens (for socket activation). */
export function listeningChanged(facts: LockoutFacts): { port: boolean; listenAddress: boolean } {
  const same = (key: string) =>
    JSON.stringify([...(facts.current.get(key) ?? [])].sort()) ===
    JSON.stringify([...(facts.planned.get(key) ?? [])].sort());
  return { port: !same('port'), listenAddress: !same('listenaddress') };
}

/**
 * Why a change of where sshd listens is refused on this host, if it is: under
 * socket activation sshd_config's Port and ListenAddress would change nothing
 * (Debian's ssh.socket has no generator that reads them; Launchpad #2069041),
 * and the run would report a change that never takes effect.
 */
export function socketListenRefusal(
  activation: SshdActivationFacts,
  changed: { port: boolean; listenAddress: boolean },
): string | undefined {
  if (!activation.systemd || !activation.sshSocket) return undefined;
  const keywords = [changed.port ? 'Port' : '', changed.listenAddress ? 'ListenAddress' : ''].filter(Boolean);
  if (keywords.length === 0) return undefined;
  const socket = activation.socketUnit ?? 'ssh.socket';
  return (
    `sshd on this host is socket-activated (${socket}), so ${socket}'s ListenStream decides where it ` +
    `listens and ${keywords.join(' and ')} in sshd_config would change nothing. Change ListenStream in a ` +
    `drop-in (/etc/systemd/system/${socket}.d/*.conf; then systemctl daemon-reload and restart ${socket}), ` +
    'or leave ' +
    keywords.join(' and ') +
    ' as they are'
  );
}

const HOSTKEYS_MARK = '@@sshfix-hostkeys';

/**
 * Where sshd listens after the change, read with `sshd -T` over the old
 * session (a step run after the handlers), with the host keys it serves.
 */
export function listenerScript(tree: StagedSshdTree): string {
  const sshd = shellQuote(tree.sshd);
  return [
    't=$(mktemp) || exit 70',
    'trap \'rm -f "$t"\' EXIT',
    '[ -d /run/sshd ] || mkdir -p /run/sshd',
    `${sshd} -T -f ${shellQuote(tree.mainPath)} -C ${shellQuote(tree.unmatchedSpec)} > "$t" || exit 1`,
    `grep -E '^(port|listenaddress) ' "$t"`,
    `echo ${HOSTKEYS_MARK}`,
    `for k in $(awk '$1 == "hostkey" { print $2 }' "$t"); do [ -f "$k.pub" ] && cat "$k.pub"; done`,
  ].join('\n');
}

/**
 * The new port, when sshd no longer listens where this connection reached it
 * (`login.localPort`, else `currentPort`), with the host keys it serves there:
 * a new port has no known_hosts entry yet. Undefined: sshd still listens there.
 */
export function readListenerMove(
  result: ExecResult,
  login: LoginFacts,
  currentPort: number,
): ListenerMove | undefined {
  if (result.exitCode !== 0) return undefined;
  const [configText = '', keysText = ''] = result.stdout.split(HOSTKEYS_MARK);
  const config = parseSshdT(configText);
  const reachedPort = login.localPort ?? currentPort;
  const port = nextPort(config, login.localAddress, reachedPort);
  if (port === undefined || port === reachedPort) return undefined;
  const hostKeys = keysText
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((w) => w.length >= 2 && w[0] !== '')
    .map(([type, key]): [string, string] => [type!, key!]);
  return { port, hostKeys };
}

/**
 * The lockout guard of a staged sshd_config tree: facts gathered by one
 * script, judged here.
 */
export function sshdLockoutGuard(tree: StagedSshdTree, login: GuardLogin): LockoutGuard {
  const marker = newMarker();
  return {
    script: buildLockoutFactsScript(tree, login.user, marker),
    // `sshd -T` loads and checks everything `sshd -t` does before it prints (sshd.c: the
    // extended test only adds the dump), here on the same staged tree the sshd_config task's
    // validation would stage again: one sshd start and a staging per changed host fewer.
    validatesPlan: true,
    judge(result) {
      const facts = parseLockoutFacts(result.stdout, login, marker);
      const changed = listeningChanged(facts);
      const refusal = socketListenRefusal(facts.activation, changed);
      // A tree sshd -t accepts may still be one sshd -T -C refuses for this very connection.
      const rejected = plannedRejection(facts, tree.stageRoot);
      return {
        findings: findLockouts(facts).map((f) => f.message),
        ...(facts.plannedAccepted ? { validated: true } : {}),
        ...(refusal !== undefined ? { refusal } : {}),
        ...(rejected !== undefined
          ? {
              rejection: `sshd -T -C for sshfix's own connection rejects the new configuration: ${rejected}`,
            }
          : {}),
        ...(changed.port || changed.listenAddress
          ? {
              listener: {
                script: listenerScript(tree),
                read: (listened: ExecResult, currentPort: number) =>
                  readListenerMove(listened, facts.login, currentPort),
              },
            }
          : {}),
      };
    },
  };
}
