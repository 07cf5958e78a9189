/**
 * Server-side checks: one read-only script gathers everything the findings
 * need in a single round trip (sshd state and sockets, `sshd -t`, the
 * effective configuration for the client, TCP wrappers, every firewall
 * backend, fail2ban bans, auth log lines about the client, OOM kills, memory
 * and disks). The parser turns its sectioned output into ServerEvidence.
 */
import net from 'node:net';
import { shellQuote } from '../transport/shell.js';
import type { Connection } from '../transport/types.js';
import { parseSshdT } from '../formats/sshd_effective.js';
import { SSHD_SESSION_LOCATIONS } from '../formats/openssh_version.js';

export interface ServerCheckParams {
  /** The client address the diagnosis is for; a literal IPv4/IPv6 address. */
  client: string;
  port: number;
  /** User for `sshd -T -C user=…` (Match User blocks). */
  user: string;
}

export interface Startups {
  /** Unauthenticated connections the listener counts now. */
  current: number;
  /** The listener's own "N of S-F" limits as its process title shows them. */
  limits: string;
}

/** A line of an sshd configuration file. */
export interface ConfigLine {
  file: string;
  line: number;
  text: string;
}

export interface ServerEvidence {
  client: string;
  port: number;
  sshdPath: string | null;
  /** An sshd process holds a listening socket of this host, or /run/sshd.pid names a live process. */
  sshdRunning: boolean;
  /** "PID ARGS" of each sshd process holding a listening socket (its title shows the startups count). */
  sshdProcesses: string[];
  startups: Startups | null;
  /** `ss -ltnp` lines for TCP listeners (all of them; the findings pick sshd's). */
  listening: string[];
  sshdTest: { ok: boolean; output: string };
  /** The configuration lines `sshd -t` names in its errors, as they read on disk. */
  sshdTestLines: ConfigLine[];
  /** `sshd -T -C …` for the client, keyword (lower case) → values; null when sshd -T failed. */
  effective: Map<string, string[]> | null;
  effectiveError: string | null;
  /** Whether sshd (or its sshd-session, OpenSSH >= 9.8) is linked with libwrap; null when unknown (no ldd). */
  libwrap: boolean | null;
  hostsAllow: string | null;
  hostsDeny: string | null;
  /** iptables-save (or ip6tables-save for an IPv6 client) output; null when the tool is missing. */
  iptables: string | null;
  nft: string | null;
  ufw: string | null;
  fail2ban: { running: boolean; bannedIn: string[]; raw: string };
  /**
   * Auth log lines of refusals, MaxStartups drops and authentication limits (AUTH_LOG_PATTERNS), for
   * every client, logged since sshd's listener last started; oldest first. Match the client with
   * mentionsAddress.
   */
  authLog: string[];
  /** Kernel log lines of sshd killed by the OOM killer. */
  oomKills: string[];
  /** The host's clock (seconds since the epoch) when the checks ran, to date log lines; null when unknown. */
  now: number | null;
  memory: { totalKb: number; availableKb: number } | null;
  disks: { mount: string; usePercent: number }[];
  sshSocketActive: boolean;
}

const SSHD_LOCATIONS = ['/usr/sbin/sshd', '/usr/local/sbin/sshd', '/sbin/sshd', '/usr/bin/sshd'];
const AUTH_LOGS = ['/var/log/auth.log', '/var/log/secure'];
const KERNEL_LOGS = ['/var/log/kern.log', '/var/log/messages'];
/** How far back the logs are read: enough for today's incident, bounded for huge logs. */
const LOG_TAIL_LINES = 20000;
const LOG_MATCH_LINES = 80;

/**
 * What sshd logs when it refuses, drops or cuts off a client: libwrap's refusal, a listener's drop
 * (MaxStartups, and OpenSSH 9.8+'s PerSourcePenalties: "drop connection #N from [ADDR]:PORT on
 * [ADDR]:22 REASON"), and MaxAuthTries reached (both wordings).
 */
export const AUTH_LOG_PATTERNS = [
  'refused connect from',
  'drop connection #',
  'past MaxStartups',
  'maximum authentication attempts exceeded',
  'Too many authentication failures',
  'penalty:',
] as const;

/** Why sshd's listener dropped a connection, from its log line; null for any other line. */
export type ListenerDrop = 'max_startups' | 'penalty';

/**
 * sshd.c's drop_connection(): OpenSSH before 9.8 ends the line with "past MaxStartups", 9.8 and later
 * with "Maxstartups" (sic) or "penalty: REASON" ("failed authentication", "connections without
 * attempting authentication", "caused crash", "exceeded LoginGraceTime", ...).
 */
export function listenerDrop(line: string): ListenerDrop | null {
  if (!/drop connection #\d+/.test(line) && !/past MaxStartups/.test(line)) return null;
  if (/\bpenalty: /.test(line)) return 'penalty';
  return /MaxStartups/i.test(line) ? 'max_startups' : null;
}

/**
 * When a log line was written, in seconds since the epoch: the ISO time at the start of
 * `journalctl -o short-iso` lines and of rsyslog's RFC 3339 lines; null for lines without one
 * (sshd's own `-E` log, old-style syslog dates without a year or zone).
 */
export function logLineTime(line: string): number | null {
  const match = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)(Z|[+-]\d\d:?\d\d)\s/.exec(line);
  if (!match) return null;
  const zone = match[2] === 'Z' ? 'Z' : `${match[2]!.slice(0, 3)}:${match[2]!.slice(-2)}`;
  const ms = Date.parse(`${match[1]}${zone}`);
  return Number.isNaN(ms) ? null : Math.floor(ms / 1000);
}
/** sshd logs this line each time its listener starts: at start, restart and reload (SIGHUP re-executes it). */
const LISTENER_START = 'Server listening on ';

/** sshd's unit is ssh.service on Debian/Ubuntu, sshd.service elsewhere; journalctl takes both. */
const SSHD_UNITS = ['ssh', 'sshd'] as const;

/**
 * Shell that prints the lines of the auth logs (or, without one, sshd's
 * journal) that match AUTH_LOG_PATTERNS, logged since sshd's listener last
 * started. Older lines describe a configuration that is gone: a limit fixed
 * and sshd restarted must not be reported again from its old refusals. sshd's
 * own log (`-E`) has no timestamps, so the bound is its start line, not a time.
 *
 * Hosts without rsyslog (Debian 13, most systemd distributions) have no auth
 * log: there the journal of sshd's unit is read from the start of the
 * listening sshd process on (`--since`, a day when none listens), in
 * short-iso so that each line carries its date (a penalty is lifted after a
 * time), and still cut at the last start line, since a reload (SIGHUP)
 * re-executes the listener in the same process.
 */
export function authLogScript(files: readonly string[]): string {
  const patterns = AUTH_LOG_PATTERNS.map((p) => `-e ${shellQuote(p)}`).join(' ');
  const sinceStart = `awk -v start=${shellQuote(LISTENER_START)} 'index($0, start) { n = 0 } { kept[n++] = $0 } END { for (i = 0; i < n; i++) print kept[i] }'`;
  const matching = `${sinceStart} | grep -F ${patterns} | tail -n ${LOG_MATCH_LINES}`;
  const readable = files.map((f) => `[ -r ${shellQuote(f)} ]`).join(' || ');
  const units = SSHD_UNITS.map((u) => `-u ${u}`).join(' ');
  return `for f in ${files.map(shellQuote).join(' ')}; do
  [ -r "$f" ] && tail -n ${LOG_TAIL_LINES} "$f" | ${matching}
done
if have journalctl && ! { ${readable}; }; then
  since=
  listener=$(ss -Hltnp 2>/dev/null | grep -o '"sshd",pid=[0-9]*' | sed 's/.*pid=//' | head -n 1)
  [ -n "$listener" ] && started=$(ps -o lstart= -p "$listener" 2>/dev/null) && [ -n "$started" ] &&
    since=$(date -d "$started" '+%Y-%m-%d %H:%M:%S' 2>/dev/null)
  journalctl -q --no-pager -o short-iso ${units} --since "\${since:--1d}" 2>/dev/null | tail -n ${LOG_TAIL_LINES} | ${matching}
fi`;
}

/** Shell that prints kernel log lines (dmesg, kern.log or messages, else the journal's kernel lines). */
function kernelLogScript(): string {
  const readable = KERNEL_LOGS.map((f) => `[ -r ${shellQuote(f)} ]`).join(' || ');
  return `{ dmesg 2>/dev/null; for f in ${KERNEL_LOGS.join(' ')}; do [ -r "$f" ] && tail -n ${LOG_TAIL_LINES} "$f"; done
  if have journalctl && ! { ${readable}; }; then journalctl -q --no-pager -k -S -1d 2>/dev/null | tail -n ${LOG_TAIL_LINES}; fi; }`;
}

/**
 * Whether a log line names `address` itself: 10.0.0.1 must not match a line
 * about 10.0.0.10 or 110.0.0.1, as sshd writes addresses ("from ADDR port",
 * "[ADDR]:PORT", "(ADDR)").
 */
export function mentionsAddress(line: string, address: string): boolean {
  let from = 0;
  for (;;) {
    const at = line.indexOf(address, from);
    if (at < 0) return false;
    const before = line[at - 1] ?? '';
    const after = line.slice(at + address.length);
    const joinedBefore = /[0-9A-Za-z.:]/.test(before);
    // A dot after the address ends a sentence; a dot and a digit continue an address.
    const joinedAfter = /^[0-9A-Za-z:]/.test(after) || /^\.\d/.test(after);
    if (!joinedBefore && !joinedAfter) return true;
    from = at + 1;
  }
}

/** Throws unless `client` is a literal IP address: it is put into a script and into grep patterns. */
export function assertClientAddress(client: string): void {
  if (net.isIP(client) === 0) {
    throw new TypeError(`client address ${JSON.stringify(client)} is not an IPv4 or IPv6 address`);
  }
}

/** The one script; every value in it is quoted. */
export function serverCheckScript(params: ServerCheckParams): string {
  assertClientAddress(params.client);
  if (!Number.isInteger(params.port) || params.port < 1 || params.port > 65535) {
    throw new TypeError(`port ${params.port} is out of range`);
  }
  const client = shellQuote(params.client);
  const spec = shellQuote(`user=${params.user},host=${params.client},addr=${params.client}`);
  const save = net.isIP(params.client) === 6 ? 'ip6tables-save' : 'iptables-save';
  return `PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
export LC_ALL=C
client=${client}
section() { printf '\\n### sshfix:%s\\n' "$1"; }
have() { command -v "$1" >/dev/null 2>&1; }
SSHD=
for p in ${SSHD_LOCATIONS.join(' ')} "$(command -v sshd 2>/dev/null)"; do
  if [ -n "$p" ] && [ -x "$p" ]; then SSHD=$p; break; fi
done
section sshd_path; echo "$SSHD"
# The listeners of this host's own sockets: ps alone would also list sshd of other network namespaces (containers).
section ps
for pid in $(ss -Hltnp 2>/dev/null | grep -o '"sshd",pid=[0-9]*' | sed 's/.*pid=//' | sort -u); do
  echo "$pid $(ps -o args= -p "$pid" 2>/dev/null)"
done
section pidfile; pid=$(cat /run/sshd.pid 2>/dev/null) && kill -0 "$pid" 2>/dev/null && echo "$pid"
section ss; ss -Hltnp 2>/dev/null || ss -Hltn 2>/dev/null
if [ -n "$SSHD" ]; then
  test_out=$("$SSHD" -t 2>&1); test_rc=$?
  section sshd_t; [ -n "$test_out" ] && printf '%s\\n' "$test_out"; echo "rc=$test_rc"
  # The lines sshd -t names ("FILE line N: ..." or "FILE: line N: ..."), to know the keyword of a bad value.
  section sshd_t_lines
  printf '%s\\n' "$test_out" | sed -n 's/^\\(\\/[^:]*[^: ]\\):\\{0,1\\} line \\([0-9][0-9]*\\): .*/\\2 \\1/p' | head -n 5 |
  while read -r n f; do [ -r "$f" ] && printf '%s\\t%s\\t%s\\n' "$f" "$n" "$(sed -n "\${n}p" "$f")"; done
  section sshd_T; "$SSHD" -T -C ${spec} 2>&1; echo "rc=$?"
  # OpenSSH >= 9.8 moved the per-connection work, libwrap's check included, into sshd-session.
  section ldd
  if have ldd; then
    for b in "$SSHD" ${SSHD_SESSION_LOCATIONS.join(' ')}; do
      [ -f "$b" ] && ldd "$b" 2>/dev/null | grep -i libwrap && break
    done
    echo "rc=$?"
  fi
fi
for f in /etc/hosts.allow /etc/hosts.deny; do
  # base64: the bytes exactly, a missing final newline included (libwrap treats that line differently).
  section "file $f"; if [ -r "$f" ]; then base64 < "$f"; else echo '### sshfix:absent'; fi
done
section iptables; if have ${save}; then ${save} 2>/dev/null; else echo '### sshfix:absent'; fi
section nft; if have nft; then nft list ruleset 2>/dev/null; else echo '### sshfix:absent'; fi
section ufw; if have ufw; then ufw status 2>/dev/null; else echo '### sshfix:absent'; fi
section fail2ban
if have fail2ban-client && { [ -S /run/fail2ban/fail2ban.sock ] || [ -S /var/run/fail2ban/fail2ban.sock ]; }; then
  timeout 15 fail2ban-client banned 2>&1
fi
section authlog
${authLogScript(AUTH_LOGS)}
section oom
${kernelLogScript()} | grep -iE 'killed process [0-9]+ \\(sshd' | tail -n 5
section meminfo; grep -E '^(MemTotal|MemAvailable):' /proc/meminfo 2>/dev/null
section df; df -P / /var /var/log /run /tmp 2>/dev/null
section sshsocket; have systemctl && systemctl is-active ssh.socket 2>/dev/null
section now; date +%s
section end
`;
}

/** Splits the script's output at its `### sshfix:NAME` markers. */
export function splitSections(stdout: string): Map<string, string> {
  const sections = new Map<string, string>();
  let name: string | null = null;
  let lines: string[] = [];
  const flush = (): void => {
    if (name !== null) sections.set(name, lines.join('\n').trim());
  };
  for (const line of stdout.split('\n')) {
    const marker = /^### sshfix:(.+)$/.exec(line);
    if (marker && marker[1] !== 'absent') {
      flush();
      name = marker[1] ?? '';
      lines = [];
    } else {
      lines.push(line);
    }
  }
  flush();
  return sections;
}

const ABSENT = '### sshfix:absent';

function optional(text: string | undefined): string | null {
  if (text === undefined || text.includes(ABSENT)) return null;
  return text;
}

function optionalBase64(text: string | undefined): string | null {
  const encoded = optional(text);
  return encoded === null ? null : Buffer.from(encoded.replace(/\s+/g, ''), 'base64').toString('utf8');
}

function withExit(text: string): { body: string; rc: number | null } {
  const match = /(?:^|\n)rc=(\d+)\s*$/.exec(text);
  if (!match) return { body: text, rc: null };
  return { body: text.slice(0, match.index).trim(), rc: Number(match[1]) };
}

/** "sshd: /usr/sbin/sshd [listener] 3 of 10-100 startups" → {current: 3, limits: "10-100"}. */
export function parseListenerTitle(psLines: readonly string[]): Startups | null {
  for (const line of psLines) {
    const match = /\[listener\]\s+(\d+)\s+of\s+(\S+)\s+startups/.exec(line);
    if (match) return { current: Number(match[1]), limits: match[2] ?? '' };
  }
  return null;
}

/** fail2ban-client banned: "[{'sshd': ['10.0.0.2']}, {'recidive': []}]" → jails that ban `client`. */
export function parseFail2banBanned(output: string, client: string): string[] {
  const jails: string[] = [];
  for (const match of output.matchAll(/\{\s*'([^']+)'\s*:\s*\[([^\]]*)\]\s*\}/g)) {
    const addresses = [...(match[2] ?? '').matchAll(/'([^']+)'/g)].map((m) => m[1]);
    if (addresses.includes(client)) jails.push(match[1] ?? '');
  }
  return jails;
}

function parseMeminfo(text: string): ServerEvidence['memory'] {
  const total = /MemTotal:\s+(\d+)/.exec(text);
  const available = /MemAvailable:\s+(\d+)/.exec(text);
  if (!total || !available) return null;
  return { totalKb: Number(total[1]), availableKb: Number(available[1]) };
}

function parseDf(text: string): ServerEvidence['disks'] {
  const disks = new Map<string, number>();
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    const use = /^(\d+)%$/.exec(fields[4] ?? '');
    const mount = fields[5];
    if (use && mount) disks.set(mount, Number(use[1]));
  }
  return [...disks].map(([mount, usePercent]) => ({ mount, usePercent }));
}

const nonEmptyLines = (text: string | undefined): string[] =>
  (text ?? '').split('\n').filter((line) => line.trim() !== '');

/** "FILE<TAB>N<TAB>TEXT" lines of the script's sshd_t_lines section. */
export function parseConfigLines(text: string): ConfigLine[] {
  return nonEmptyLines(text).flatMap((row) => {
    const [file, line, ...rest] = row.split('\t');
    const number = Number(line);
    return file && Number.isInteger(number) ? [{ file, line: number, text: rest.join('\t') }] : [];
  });
}

export function parseServerChecks(stdout: string, params: ServerCheckParams): ServerEvidence {
  const s = splitSections(stdout);
  const psLines = nonEmptyLines(s.get('ps'));
  const sshdPath = (s.get('sshd_path') ?? '').trim() || null;
  const sshdT = withExit(s.get('sshd_t') ?? '');
  const sshdBigT = withExit(s.get('sshd_T') ?? '');
  const ldd = s.get('ldd');
  const listener = psLines.length > 0;
  const fail2banRaw = s.get('fail2ban') ?? '';
  return {
    client: params.client,
    port: params.port,
    sshdPath,
    sshdRunning: listener || (s.get('pidfile') ?? '').trim() !== '',
    sshdProcesses: psLines,
    startups: parseListenerTitle(psLines),
    listening: nonEmptyLines(s.get('ss')),
    sshdTest: { ok: sshdT.rc === 0, output: sshdT.body },
    sshdTestLines: parseConfigLines(s.get('sshd_t_lines') ?? ''),
    effective: sshdBigT.rc === 0 ? parseSshdT(sshdBigT.body) : null,
    effectiveError: sshdBigT.rc === 0 || sshdPath === null ? null : sshdBigT.body,
    libwrap: ldd === undefined ? null : withExit(ldd).rc === 0,
    hostsAllow: optionalBase64(s.get('file /etc/hosts.allow')),
    hostsDeny: optionalBase64(s.get('file /etc/hosts.deny')),
    iptables: optional(s.get('iptables')),
    nft: optional(s.get('nft')),
    ufw: optional(s.get('ufw')),
    fail2ban: {
      running: fail2banRaw.trim() !== '',
      bannedIn: parseFail2banBanned(fail2banRaw, params.client),
      raw: fail2banRaw,
    },
    authLog: nonEmptyLines(s.get('authlog')).map((line) => line.trimEnd()),
    oomKills: nonEmptyLines(s.get('oom')),
    now: /^\d+$/.test((s.get('now') ?? '').trim()) ? Number((s.get('now') ?? '').trim()) : null,
    memory: parseMeminfo(s.get('meminfo') ?? ''),
    disks: parseDf(s.get('df') ?? ''),
    sshSocketActive: (s.get('sshsocket') ?? '').trim() === 'active',
  };
}

/** Runs the checks over an open connection (SSH, a jump host, or the local console). */
export async function runServerChecks(
  conn: Connection,
  params: ServerCheckParams,
  timeoutMs: number,
): Promise<ServerEvidence> {
  const result = await conn.runScript(serverCheckScript(params), { timeoutMs });
  if (!result.stdout.includes('### sshfix:end')) {
    throw new Error(
      `${conn.hostName}: the server checks did not complete (exit ${result.exitCode}): ${result.stderr.trim().slice(0, 300)}`,
    );
  }
  return parseServerChecks(result.stdout, params);
}
