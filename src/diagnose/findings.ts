/**
 * Evidence → findings: why a host resets (or refuses, or ignores) SSH
 * connections from one client, ranked most likely first, each with the
 * evidence lines it rests on, the fix in operator language, and a remedy the
 * fix playbook is built from. Pure: the probe and the server checks gather,
 * this module only reasons.
 *
 * Each rule scores a cause 0-100; a cause named by several rules keeps its
 * best score and collects all their evidence. Confidence is the score's band.
 * Client-side evidence tells most causes of "connection refused" apart: an
 * ICMP answer is a firewall REJECT (fail2ban's by default), a banner from
 * another of our addresses proves the block is by source address, and a
 * reset from every address is a port nobody listens on. It cannot tell a
 * stopped sshd from one that an invalid sshd_config keeps from starting (the
 * same on the wire): the server-side checks settle that.
 */
import type { ProbeEvidence, SourceAttempt, TcpOutcome } from './probe.js';
import type { RefusalAnswer, RefusalEvidence } from './refusal.js';
import {
  listenerDrop,
  logLineTime,
  mentionsAddress,
  type ConfigLine,
  type ServerEvidence,
} from './server_checks.js';
import { cidrContains, parseHostCidr } from '../formats/firewall_cidr.js';
import { traceSshPacket, type PathVerdict } from './firewall_path.js';
import {
  describeVerdict,
  evaluateAccess,
  parseClientSpec,
  parseHostsAccess,
  type Verdict as WrapperVerdict,
} from '../formats/hosts_access.js';

/** Stable ids: an interface (README, JSON output). */
export const CAUSES = [
  'tcp_wrappers_deny',
  'max_startups',
  'max_auth_tries',
  'firewall_drop',
  'firewall_reject',
  'fail2ban_ban',
  'source_penalty',
  'sshd_not_running',
  'sshd_config_invalid',
  'client_alive',
  'resources_exhausted',
  'network_unreachable',
] as const;
export type Cause = (typeof CAUSES)[number];

export type Confidence = 'high' | 'medium' | 'low';

/** What the fix playbook does about a finding. */
export type Remedy =
  | { kind: 'tcp_wrappers'; client: string }
  | { kind: 'firewall'; client: string }
  | { kind: 'fail2ban'; client: string }
  /** PerSourcePenaltyExemptList: `exempt` is the list sshd has now (kept), `client` is added. */
  | { kind: 'source_penalty'; client: string; exempt: string[] }
  | { kind: 'sshd_settings'; settings: Record<string, string | number> }
  | { kind: 'sshd_remove'; keywords: string[]; sshdRunning: boolean }
  | { kind: 'sshd_start' };

export interface Finding {
  cause: Cause;
  confidence: Confidence;
  /** 0-100; findings are sorted by it. */
  score: number;
  evidence: string[];
  fix: string;
  remedy?: Remedy;
  /**
   * Whom it concerns, when one diagnosis covers every client (`-c local` with no --client): an
   * address, or "*" for any client no rule names.
   */
  client?: string;
}

export interface DiagnosisInput {
  port: number;
  /** The client address the diagnosis is for; null when it could not be determined. */
  client: string | null;
  probe?: ProbeEvidence;
  server?: ServerEvidence;
  /** Why no server-side checks ran (for the evidence of client-side findings). */
  serverUnavailable?: string;
}

/** libwrap sleeps before refusing; anything this slow before a reset is that pause. */
const WRAPPERS_PAUSE_MS = 4000;
/** A reset within this time is immediate: a drop by sshd's listener or a firewall, not libwrap. */
const IMMEDIATE_MS = 1500;
const MEMORY_LOW_FRACTION = 0.05;
const DISK_FULL_PERCENT = 98;
const RECOMMENDED_MAX_AUTH_TRIES = 6;
export const RECOMMENDED_MAX_STARTUPS = '30:30:100';
export const RECOMMENDED_CLIENT_ALIVE = { ClientAliveInterval: 300, ClientAliveCountMax: 3 };
/** Below this many seconds of silence before sshd drops a session, idle sessions die visibly. */
const CLIENT_ALIVE_TOO_SHORT_S = 30;
/** PerSourcePenalties came with OpenSSH 9.8 (release notes 9.8, sshd_config(5)), on by default. */
const PENALTIES_SINCE: readonly [number, number] = [9, 8];
/** sshd_config(5) PerSourcePenalties default max: no penalty lasts longer (seconds). */
const DEFAULT_PENALTY_MAX_S = 600;
/** What OpenSSH >= 9.8's listener writes to a connection it drops (sshd.c, drop_connection()). */
const DROP_NOTICE = 'Not allowed at this time';

/** "SSH-2.0-OpenSSH_10.0p2 Debian-7" → [10, 0]; null for other servers. */
export function opensshVersion(banner: string | undefined): [number, number] | null {
  const match = /^SSH-2\.0-OpenSSH_(\d+)\.(\d+)/.exec(banner ?? '');
  return match ? [Number(match[1]), Number(match[2])] : null;
}

export function hasPenalties(version: readonly [number, number] | null): boolean {
  if (version === null) return false;
  const [major, minor] = version;
  return major > PENALTIES_SINCE[0] || (major === PENALTIES_SINCE[0] && minor >= PENALTIES_SINCE[1]);
}

/**
 * The fix text for a penalty: lift the live block, then exempt the admin network. Measured on OpenSSH
 * 10.0 (Debian 13; the lab test "PerSourcePenalties: what lifts a live block"): penalties live in the
 * listener's memory. Under ssh.service, `systemctl reload ssh` (SIGHUP re-executes sshd) and
 * `systemctl restart ssh` both lift them at once. Under ssh.socket only `systemctl restart ssh` lifts
 * them cleanly: a reload kills sshd (it re-executes and cannot bind the socket's port: "Cannot bind any
 * address"; the socket starts a new one on the next connection; the reload job fails, at times only
 * after systemd's 90 s reload time-out), and `systemctl restart ssh.socket` fails while ssh.service runs and
 * leaves the block in place. `listener` is what the server-side checks saw; unknown from the client.
 */
function penaltyFix(client: string, listener: 'service' | 'socket' | 'unknown'): string {
  const lift =
    listener === 'socket'
      ? "`systemctl restart ssh` (the penalties live in the listening sshd's memory; under ssh.socket a reload " +
        'kills sshd, and restarting ssh.socket fails while ssh.service runs)'
      : listener === 'service'
        ? "`systemctl reload ssh` or `systemctl restart ssh` (the penalties live in the listening sshd's memory)"
        : "`systemctl reload ssh` or `systemctl restart ssh` (the penalties live in the listening sshd's " +
          'memory; with ssh.socket use `systemctl restart ssh`)';
  return (
    `sshd's PerSourcePenalties drops ${client} before the banner. Lift it now from another way in (the console, ` +
    `an address it does not penalise): ${lift}, or wait until it expires. ` +
    `Then exempt the admin network (PerSourcePenaltyExemptList ${client}/${client.includes(':') ? 128 : 32} or its subnet) ` +
    `and stop what fails to log in from it.`
  );
}

export function confidenceOf(score: number): Confidence {
  if (score >= 70) return 'high';
  if (score >= 40) return 'medium';
  return 'low';
}

class FindingSet {
  private readonly byCause = new Map<Cause, Finding>();

  add(cause: Cause, score: number, evidence: string[], fix: string, remedy?: Remedy): void {
    const existing = this.byCause.get(cause);
    if (!existing) {
      this.byCause.set(cause, {
        cause,
        score,
        confidence: confidenceOf(score),
        evidence: [...evidence],
        fix,
        ...(remedy ? { remedy } : {}),
      });
      return;
    }
    for (const line of evidence) if (!existing.evidence.includes(line)) existing.evidence.push(line);
    if (score > existing.score) {
      existing.score = score;
      existing.confidence = confidenceOf(score);
      existing.fix = fix;
      if (remedy) existing.remedy = remedy;
    } else if (!existing.remedy && remedy) existing.remedy = remedy;
  }

  sorted(): Finding[] {
    return [...this.byCause.values()].sort(
      (a, b) => b.score - a.score || CAUSES.indexOf(a.cause) - CAUSES.indexOf(b.cause),
    );
  }
}

/** A view of `set` whose additions score at most `cap`. */
function cappedSet(set: FindingSet, cap: number): Pick<FindingSet, 'add'> {
  return {
    add: (cause, score, evidence, fix, remedy) => set.add(cause, Math.min(score, cap), evidence, fix, remedy),
  };
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

// ---------------------------------------------------------------------------
// Client side

const TCP_WORDS: Record<TcpOutcome, string> = {
  connected: 'connected',
  refused: 'refused',
  timeout: 'timed out',
  unreachable: 'unreachable',
  error: 'failed',
};

/** "from 10.0.0.2: banner SSH-2.0-OpenSSH_9.2p1 after 12 ms", "from 10.0.0.1: refused after 1 ms". */
function describeAttempt(a: SourceAttempt): string {
  const { tcp, banner } = a;
  const total = `after ${tcp.ms + (banner?.ms ?? 0)} ms`;
  if (banner?.outcome === 'banner') return `from ${a.source}: banner ${banner.banner ?? ''} ${total}`;
  if (banner) {
    const what = banner.outcome === 'timeout' ? 'no banner' : `${banner.outcome} before the banner`;
    return `from ${a.source}: connected, then ${what} ${total}`;
  }
  return `from ${a.source}: ${TCP_WORDS[tcp.outcome]}${tcp.code ? ` (${tcp.code})` : ''} ${total}`;
}

/** What the repeats of the connect from our other addresses showed. */
function sourceEvidence(
  probe: ProbeEvidence,
  client: string | null,
): { bySource: boolean; lines: string[]; banners: string[] } {
  const others = probe.alternates ?? [];
  if (others.length === 0 || !probe.tcp) return { bySource: false, lines: [], banners: [] };
  const served = others.filter((a) => a.banner?.outcome === 'banner').map((a) => a.source);
  const ours: SourceAttempt = {
    source: client ?? 'our address',
    tcp: probe.tcp,
    ...(probe.banner ? { banner: probe.banner } : {}),
  };
  const lines = [
    [ours, ...others].map(describeAttempt).join('; '),
    served.length > 0
      ? `${served.join(', ')} got sshd's banner: the host and sshd are up, and the block is by source address`
      : `our other address${others.length > 1 ? 'es' : ''} fared no better: nothing shows a block by source address`,
  ];
  const banners = others.flatMap((a) =>
    a.banner?.outcome === 'banner' && a.banner.banner ? [a.banner.banner] : [],
  );
  return { bySource: served.length > 0, lines, banners };
}

function describeRefusal(r: RefusalEvidence): string {
  const counts = `InDestUnreachs ${r.icmpDeltas.map((d) => (d === null ? '?' : `+${d}`)).join(', ') || 'not measured'}`;
  const n = r.icmpDeltas.length;
  switch (r.answer) {
    case 'icmp':
      return `each of ${n} repeated connects was refused by an ICMP destination-unreachable (${counts}): a firewall REJECT rule answered, since Linux answers a SYN to a closed port with a TCP reset, never ICMP`;
    case 'rst':
      return `${r.icmpDeltas.filter((d) => d === 0).length} of ${n} repeated connects were refused with no ICMP destination-unreachable (${counts}): a TCP reset refused them`;
    case 'unknown':
      return `could not tell an ICMP refusal from a TCP reset (${counts} over ${r.attempts} repeated connects)`;
  }
}

type RefusedCause = 'sshd_not_running' | 'sshd_config_invalid' | 'firewall_reject' | 'fail2ban_ban';

interface RefusedRule {
  reason: string;
  /** When another of our addresses got a banner; omitted: ruled out. */
  bySource?: number;
  /** When none did, or none was tried; omitted: ruled out. */
  otherwise?: number;
}

/** The causes of a refused connect, by what refused it (an ICMP error, a TCP reset, unknown). */
const REFUSED_RULES: Record<RefusalAnswer, Partial<Record<RefusedCause, RefusedRule>>> = {
  // A stopped sshd never answers with ICMP: only a firewall rule does. A fail2ban ban is an iptables
  // REJECT too, the same on the wire as one written by hand: only the server side tells them apart,
  // so neither may reach high confidence here; the same holds for a ban whose banaction resets.
  icmp: {
    fail2ban_ban: {
      reason:
        "fail2ban's default banactions (iptables-multiport; nftables-multiport on Debian 13) reject with icmp-port-unreachable",
      bySource: 65,
      otherwise: 55,
    },
    firewall_reject: {
      reason: 'an iptables REJECT answers with icmp-port-unreachable unless told otherwise',
      bySource: 60,
      otherwise: 50,
    },
  },
  rst: {
    firewall_reject: {
      reason: 'a REJECT --reject-with tcp-reset rule answers the SYN with a TCP reset',
      bySource: 65,
      otherwise: 35,
    },
    fail2ban_ban: {
      reason:
        'fail2ban bans answer with ICMP by default; only a banaction set to tcp-reset answers like this',
      bySource: 50,
      otherwise: 20,
    },
    sshd_not_running: {
      reason: 'a TCP reset answering the SYN is what the host sends for a port nobody listens on',
      otherwise: 65,
    },
    sshd_config_invalid: {
      reason:
        'an invalid sshd_config keeps sshd from starting after a restart or reboot: on the wire that is the same as a stopped sshd',
      otherwise: 45,
    },
  },
  unknown: {
    sshd_not_running: { reason: 'nothing may listen there', otherwise: 55 },
    firewall_reject: {
      reason: 'a firewall REJECT (tcp-reset or icmp-port-unreachable) also shows as "connection refused"',
      bySource: 65,
      otherwise: 50,
    },
    fail2ban_ban: {
      reason: 'fail2ban bans with a REJECT rule by default: the client sees "connection refused"',
      bySource: 55,
      otherwise: 35,
    },
    sshd_config_invalid: {
      reason: 'an invalid sshd_config keeps sshd from starting after a restart or reboot',
      otherwise: 25,
    },
  },
};

/** Server evidence settles what the client can only guess: its guesses then rank low. */
const SERVER_SETTLED_CAP = 30;

function fromProbe(outer: FindingSet, input: DiagnosisInput): void {
  const { probe } = input;
  if (!probe) return;
  const set = input.server ? cappedSet(outer, SERVER_SETTLED_CAP) : outer;
  const client = input.client;
  const target = `${probe.address ?? probe.target.host}:${probe.target.port}`;
  const from = client ? ` from ${client}` : '';
  const noServer = input.serverUnavailable ? [`no server-side checks: ${input.serverUnavailable}`] : [];
  if (probe.dns.error !== undefined || probe.dns.addresses.length === 0) {
    set.add(
      'network_unreachable',
      85,
      [`cannot resolve ${probe.target.host}: ${probe.dns.error ?? 'no address'}`],
      `Fix name resolution for ${probe.target.host} (DNS, /etc/hosts) or use its address.`,
    );
    return;
  }
  const tcp = probe.tcp;
  if (!tcp) return;
  const clientRemedy = <K extends 'firewall' | 'fail2ban' | 'tcp_wrappers'>(kind: K): Remedy | undefined =>
    client ? ({ kind, client } as Remedy) : undefined;
  const sources = sourceEvidence(probe, client);
  /** A banner from another of our addresses proves the host and sshd up: the block is by source address. */
  const sourceScore = (otherwise: number, bySource: number): number =>
    sources.bySource ? bySource : otherwise;
  switch (tcp.outcome) {
    case 'timeout':
      set.add(
        'firewall_drop',
        sourceScore(60, 75),
        [
          `TCP connect to ${target}${from} timed out after ${seconds(tcp.ms)} (no answer to the SYN)`,
          ...sources.lines,
          ...noServer,
        ],
        `A firewall silently drops SSH from ${client ?? 'this client'}: allow it (firewall: allow_ssh_from).`,
        clientRemedy('firewall'),
      );
      if (!sources.bySource) {
        set.add(
          'network_unreachable',
          30,
          [`TCP connect to ${target} timed out: the host may also be down or unrouted`],
          'Check that the host is up and routed (console, ping from its network).',
        );
      }
      set.add(
        'fail2ban_ban',
        20,
        ['fail2ban actions that DROP look the same from the client'],
        `Unban ${client ?? 'the client'} and add it to ignoreip.`,
        clientRemedy('fail2ban'),
      );
      return;
    case 'unreachable':
      set.add(
        'network_unreachable',
        sourceScore(60, 30),
        [
          `TCP connect to ${target}${from} failed with ${tcp.code ?? 'an error'} after ${seconds(tcp.ms)}`,
          ...sources.lines,
          ...noServer,
        ],
        'The host is down or not routed from this client: check it from its console or its network.',
      );
      set.add(
        'firewall_reject',
        sourceScore(35, 70),
        [
          `${tcp.code ?? 'the error'} is also what a REJECT --reject-with icmp-host-prohibited answers`,
          ...sources.lines,
        ],
        `Allow SSH from ${client ?? 'this client'} in the host's firewall.`,
        clientRemedy('firewall'),
      );
      return;
    case 'refused': {
      const answer = tcp.refusal?.answer ?? 'unknown';
      const refused = [
        `TCP connect to ${target}${from} refused after ${seconds(tcp.ms)}`,
        ...(tcp.refusal ? [describeRefusal(tcp.refusal)] : []),
      ];
      const fixes: Record<RefusedCause, [string, Remedy | undefined]> = {
        sshd_not_running: [
          'Start sshd (and check `sshd -t`, which keeps it from starting).',
          { kind: 'sshd_start' },
        ],
        sshd_config_invalid: [
          'Run `sshd -t` on the host and fix or remove the reported directive.',
          undefined,
        ],
        firewall_reject: [
          `Allow SSH from ${client ?? 'this client'} and remove the rule rejecting it.`,
          clientRemedy('firewall'),
        ],
        fail2ban_ban: [
          `Unban ${client ?? 'the client'} in every jail and add it to ignoreip.`,
          clientRemedy('fail2ban'),
        ],
      };
      for (const [cause, rule] of Object.entries(REFUSED_RULES[answer]) as [RefusedCause, RefusedRule][]) {
        const score = sources.bySource ? rule.bySource : rule.otherwise;
        if (score === undefined) continue;
        set.add(cause, score, [...refused, rule.reason, ...sources.lines, ...noServer], ...fixes[cause]);
      }
      return;
    }
    case 'error':
      set.add(
        'network_unreachable',
        40,
        [`TCP connect to ${target}${from} failed: ${tcp.code ?? 'unknown error'}`],
        'Check the address, the route and the local source address.',
      );
      return;
    case 'connected':
      break;
  }
  const banner = probe.banner;
  if (banner && banner.outcome !== 'banner') {
    const what =
      banner.outcome === 'timeout'
        ? 'no SSH banner'
        : `connection ${banner.outcome === 'reset' ? 'reset' : 'closed'} by the host`;
    const line = `TCP connected to ${target}${from} in ${seconds(tcp.ms)}, then ${what} after ${seconds(banner.ms)}, before any SSH banner`;
    if (banner.outcome === 'timeout') {
      set.add(
        'resources_exhausted',
        sourceScore(50, 30),
        [line, ...sources.lines, ...noServer],
        'sshd accepts but never answers: check memory, disk and load, then restart sshd.',
      );
      set.add(
        'firewall_drop',
        sourceScore(35, 60),
        [
          `a firewall dropping packets of established connections also leaves the client waiting`,
          ...sources.lines,
        ],
        `Allow SSH from ${client ?? 'this client'} in the host's firewall.`,
        clientRemedy('firewall'),
      );
    } else if (banner.ms >= WRAPPERS_PAUSE_MS) {
      set.add(
        'tcp_wrappers_deny',
        sourceScore(80, 85),
        [
          line,
          `a ${seconds(banner.ms)} pause before the reset is libwrap's refusal (hosts.deny)`,
          ...sources.lines,
          ...noServer,
        ],
        `Let ${client ?? 'this client'} through TCP wrappers (/etc/hosts.allow, /etc/hosts.deny).`,
        clientRemedy('tcp_wrappers'),
      );
    } else if (banner.ms <= IMMEDIATE_MS) {
      const reset = banner.outcome === 'reset';
      const notice = [banner, probe.closedFirst].some((b) => b?.preamble === DROP_NOTICE)
        ? [
            `sshd wrote "${DROP_NOTICE}" before closing: the listener of OpenSSH >= 9.8 dropped it (MaxStartups or PerSourcePenalties)`,
          ]
        : [];
      // MaxStartups drops at random whoever connects; a penalty drops one source every time. Another
      // of our addresses served at once by an sshd that has penalties points at the latter.
      const penalising = sources.banners.find((b) => hasPenalties(opensshVersion(b)));
      if (!reset && (penalising !== undefined || notice.length > 0)) {
        set.add(
          'source_penalty',
          penalising !== undefined ? 82 : 50,
          [
            line,
            ...notice,
            ...sources.lines,
            ...(penalising !== undefined
              ? [
                  `${penalising.slice(8)} has PerSourcePenalties (OpenSSH >= 9.8, on by default): it drops a penalised source address before the banner, and serves the others`,
                ]
              : []),
            ...noServer,
          ],
          penaltyFix(client ?? 'this client', 'unknown'),
          client ? { kind: 'source_penalty', client, exempt: [] } : undefined,
        );
      }
      set.add(
        'max_startups',
        reset ? 50 : penalising !== undefined ? 40 : 65,
        [
          line,
          `sshd drops connections past MaxStartups at once by closing them`,
          ...notice,
          ...sources.lines,
          ...noServer,
        ],
        `Raise MaxStartups (e.g. ${RECOMMENDED_MAX_STARTUPS}) and find who holds unauthenticated connections.`,
        { kind: 'sshd_settings', settings: { MaxStartups: RECOMMENDED_MAX_STARTUPS } },
      );
      set.add(
        'firewall_reject',
        reset ? sourceScore(60, 75) : 40,
        [
          line,
          `a firewall rule that resets established port-${input.port} connections answers with a TCP reset at once`,
          ...sources.lines,
        ],
        `Remove the firewall rule resetting SSH connections from ${client ?? 'this client'}.`,
        clientRemedy('firewall'),
      );
    } else {
      set.add(
        'max_startups',
        45,
        [line, ...sources.lines],
        `Raise MaxStartups (e.g. ${RECOMMENDED_MAX_STARTUPS}).`,
        { kind: 'sshd_settings', settings: { MaxStartups: RECOMMENDED_MAX_STARTUPS } },
      );
      set.add(
        'tcp_wrappers_deny',
        40,
        [line, ...sources.lines],
        `Let ${client ?? 'this client'} through TCP wrappers.`,
        clientRemedy('tcp_wrappers'),
      );
    }
  }
  if (probe.kex && probe.kex.outcome === 'failed') {
    set.add(
      'sshd_config_invalid',
      30,
      [`key exchange with ${target} failed: ${probe.kex.error ?? 'unknown error'}`],
      'Check KexAlgorithms, Ciphers and HostKey in sshd_config (`sshd -T`).',
    );
  }
  const auth = probe.auth;
  if (
    auth &&
    (auth.outcome === 'too_many_failures' || (auth.outcome === 'disconnected' && auth.keysOffered > 1))
  ) {
    const wanted = Math.max(RECOMMENDED_MAX_AUTH_TRIES, auth.keysAvailable + 1);
    // Measured, not guessed: the server's own disconnect message.
    outer.add(
      'max_auth_tries',
      auth.outcome === 'too_many_failures' ? 85 : 55,
      [
        `authentication ended after ${auth.keysOffered} of ${auth.keysAvailable} keys offered: ${auth.error ?? auth.outcome}`,
      ],
      `Offer fewer keys (IdentitiesOnly yes, IdentityFile) or raise MaxAuthTries to ${wanted}.`,
      { kind: 'sshd_settings', settings: { MaxAuthTries: wanted } },
    );
  }
  const b = probe.burst;
  if (b) {
    const dropped = b.resets + b.closedBeforeBanner;
    const servedFirst = probe.banner?.outcome === 'banner';
    const throttle = `Raise MaxStartups (e.g. ${RECOMMENDED_MAX_STARTUPS}); open fewer connections at once.`;
    const remedy: Remedy = { kind: 'sshd_settings', settings: { MaxStartups: RECOMMENDED_MAX_STARTUPS } };
    if (dropped > 0 && b.banners > 0) {
      // Measured, not guessed: some connections were served, others dropped.
      outer.add(
        'max_startups',
        75,
        [
          `of ${b.connections} concurrent connections, ${b.banners} got a banner and ${dropped} were dropped before it (${seconds(b.ms)}): sshd throttles unauthenticated connections`,
        ],
        throttle,
        remedy,
      );
    } else if (dropped === b.connections && servedFirst) {
      // sshd served our first connection a moment ago, then dropped the whole burst: a MaxStartups
      // whose limit our own connections reach at once (1:100:1 drops all past the first). sshd drops
      // by closing; a reset may also be a firewall's connection limit.
      const closedAll = b.closedBeforeBanner === b.connections;
      outer.add(
        'max_startups',
        closedAll ? 75 : 55,
        [
          `sshd served our first connection, then of ${b.connections} concurrent connections none got a banner: all ${b.connections} were ${closedAll ? 'closed' : 'closed or reset'} before it (${seconds(b.ms)}), as sshd drops connections past MaxStartups`,
        ],
        throttle,
        remedy,
      );
    }
  }
}

// ---------------------------------------------------------------------------
// Server side

/** "10:30:100" → 10; "5" → 5. */
function maxStartupsBegin(values: readonly string[] | undefined): number | null {
  const first = values?.[0];
  if (first === undefined) return null;
  const begin = Number(first.split(':')[0]);
  return Number.isFinite(begin) ? begin : null;
}

/**
 * Keywords sshd -t rejects: named in its message ("line 5: Bad configuration
 * option: Foo", "Unsupported option Foo", "Deprecated option Foo"), or, for a
 * bad value ('line 1: unsupported option "maybe".', "Bad number."), the
 * keyword of the line it names, read from the file (`lines`).
 */
export function invalidKeywords(sshdTestOutput: string, lines: readonly ConfigLine[] = []): string[] {
  const found = new Set<string>();
  for (const m of sshdTestOutput.matchAll(/Bad configuration option:\s*(\S+)/gi)) found.add(m[1]!);
  // Case matters: servconf.c writes "Unsupported option Foo" for a keyword, "unsupported option \"x\"" for a value.
  for (const m of sshdTestOutput.matchAll(/Unsupported option\s+([A-Za-z0-9]+)/g)) found.add(m[1]!);
  for (const m of sshdTestOutput.matchAll(/Deprecated option\s+"?([A-Za-z0-9]+)"?/gi)) found.add(m[1]!);
  for (const { text } of lines) {
    // sshd_config(5): "keyword arguments" or "keyword=arguments".
    const keyword = /^\s*([A-Za-z][A-Za-z0-9]*)\s*(?:=|\s|$)/.exec(text)?.[1];
    if (keyword !== undefined && keyword.toLowerCase() !== 'match' && keyword.toLowerCase() !== 'include')
      found.add(keyword);
  }
  return [...found];
}

function wrappersVerdict(server: ServerEvidence): WrapperVerdict | null {
  const client = parseClientSpec(server.client);
  if ('error' in client) return null;
  const allow = parseHostsAccess(server.hostsAllow ?? '', '/etc/hosts.allow');
  const deny = parseHostsAccess(server.hostsDeny ?? '', '/etc/hosts.deny');
  return evaluateAccess({ allow, deny }, 'sshd', client);
}

function describeRule(v: PathVerdict): string {
  const rule = v.rule ? `${v.rule.text}` : `policy of INPUT`;
  return `iptables (${v.chains.join(' → ')}): ${rule}`;
}

function fromFirewall(set: FindingSet, server: ServerEvidence): void {
  const { client, port } = server;
  if (server.iptables === null || server.iptables.trim() === '') return fromNft(set, server);
  const fresh = traceSshPacket(server.iptables, client, port, 'new');
  const established = traceSshPacket(server.iptables, client, port, 'established');
  const firewallRemedy: Remedy = { kind: 'firewall', client };
  const fail2banRemedy: Remedy = { kind: 'fail2ban', client };
  for (const v of [fresh, established]) {
    if (!v) continue;
    const blocked = v.outcome === 'drop' || v.outcome === 'reject' || v.outcome === 'policy_drop';
    if (!blocked) {
      for (const rule of v.uncertainBlockers) {
        set.add(
          rule.args.includes('DROP') ? 'firewall_drop' : 'firewall_reject',
          40,
          [
            `iptables rule that may block SSH from ${client} (matches on more than address and port): ${rule.text}`,
          ],
          `Check this rule; allow SSH from ${client} before it.`,
          firewallRemedy,
        );
      }
      continue;
    }
    const what =
      v.phase === 'new' ? `new SSH connections from ${client}` : `established SSH connections from ${client}`;
    if (v.fail2ban) {
      set.add(
        'fail2ban_ban',
        80,
        [`${describeRule(v)} ${v.outcome === 'drop' ? 'drops' : 'rejects'} ${what}`],
        `Unban ${client} (fail2ban-client unban) and add it to ignoreip.`,
        fail2banRemedy,
      );
      continue;
    }
    const cause =
      v.outcome === 'reject' || (v.phase === 'established' && v.outcome !== 'drop')
        ? 'firewall_reject'
        : 'firewall_drop';
    const verb = v.outcome === 'reject' ? `rejects (${v.rejectWith ?? 'icmp-port-unreachable'})` : 'drops';
    set.add(
      cause,
      v.phase === 'new' ? 90 : 88,
      [`${describeRule(v)} ${verb} ${what}`],
      `Allow SSH from ${client} and remove the blocking rule (firewall: allow_ssh_from, remove_blocking).`,
      firewallRemedy,
    );
  }
}

/**
 * nftables rules outside iptables' own tables, read as text: a drop or reject naming the client or the port.
 * fail2ban's nftables actions (Debian 13's default banaction) keep their rules in a table of their own,
 * `f2b-table` unless configured otherwise: a block there is a ban, as an f2b-* chain is under iptables.
 */
function fromNft(set: FindingSet, server: ServerEvidence): void {
  if (!server.nft) return;
  const port = String(server.port);
  let table = '';
  for (const line of server.nft.split('\n')) {
    const text = line.trim();
    const tableHeader = /^table\s+(\S+\s+\S+)\s*\{/.exec(text);
    if (tableHeader) table = tableHeader[1]!;
    const verdict = /\b(drop|reject)\b/.exec(text)?.[1];
    if (!verdict) continue;
    if (!mentionsAddress(text, server.client) && !new RegExp(`dport\\s+(\\{[^}]*\\b)?${port}\\b`).test(text))
      continue;
    if (/\sf2b-\S*$/.test(table)) {
      set.add(
        'fail2ban_ban',
        60,
        [`nftables rule of fail2ban (table ${table}) that may block SSH from ${server.client}: ${text}`],
        `Unban ${server.client} (fail2ban-client unban) and add it to ignoreip.`,
        { kind: 'fail2ban', client: server.client },
      );
      continue;
    }
    set.add(
      verdict === 'drop' ? 'firewall_drop' : 'firewall_reject',
      60,
      [`nftables rule that may block SSH from ${server.client}: ${text}`],
      `Allow SSH from ${server.client} before this rule.`,
      { kind: 'firewall', client: server.client },
    );
  }
}

/** "max:600" of `sshd -T`'s persourcepenalties (seconds); the default when absent. */
function penaltyMax(values: readonly string[] | undefined): number {
  const max = (values ?? []).map((v) => /^max:(\d+)$/.exec(v)?.[1]).find((v) => v !== undefined);
  return max === undefined ? DEFAULT_PENALTY_MAX_S : Number(max);
}

/**
 * PerSourcePenalties (OpenSSH >= 9.8): the listener's drop lines for the client ("drop connection #0
 * from [ADDR]:PORT on [ADDR]:22 penalty: failed authentication"), unless the client is in
 * PerSourcePenaltyExemptList or penalties are off. The lines are those since the listener started,
 * where the penalties live; one older than the longest penalty (max) describes a penalty that is over.
 */
function fromPenalties(set: FindingSet, server: ServerEvidence): void {
  const { client, effective } = server;
  const penalties = effective?.get('persourcepenalties');
  if (penalties?.[0] === 'no') return;
  const exempt = (effective?.get('persourcepenaltyexemptlist') ?? [])
    .flatMap((v) => v.split(','))
    .filter((v) => v !== '' && v !== 'none');
  const clientCidr = parseHostCidr(client);
  const exempted = exempt.some((entry) => {
    const cidr = parseHostCidr(entry);
    return cidr !== null && clientCidr !== null && cidrContains(cidr, clientCidr);
  });
  const lines = server.authLog.filter((l) => listenerDrop(l) === 'penalty' && mentionsAddress(l, client));
  const last = lines.at(-1);
  if (last === undefined || exempted) return;
  const max = penaltyMax(penalties);
  const loggedAt = logLineTime(last);
  const age = loggedAt !== null && server.now !== null ? server.now - loggedAt : null;
  const expired = age !== null && age > max;
  set.add(
    'source_penalty',
    expired ? 30 : 96,
    [
      ...lines.slice(-3),
      `PerSourcePenalties ${penalties?.join(' ') ?? '(default)'}`,
      `PerSourcePenaltyExemptList ${exempt.join(',') || 'none'}`,
      ...(expired
        ? [`the last drop was ${age} s ago, longer than the longest penalty (max:${max}): it has expired`]
        : []),
    ],
    penaltyFix(client, server.sshSocketActive ? 'socket' : 'service'),
    { kind: 'source_penalty', client, exempt },
  );
}

function fromServer(set: FindingSet, input: DiagnosisInput): void {
  const server = input.server;
  if (!server) return;
  const { client, port } = server;
  const sshdListens = server.listening.some(
    (l) => l.includes('sshd') && new RegExp(`:${port}\\s`).test(`${l} `),
  );
  const portListens = server.listening.some((l) => new RegExp(`[:\\]]${port}\\s`).test(l));
  const invalid =
    !server.sshdTest.ok && !/Missing privilege separation directory/.test(server.sshdTest.output);
  const testLines = server.sshdTest.output
    .split('\n')
    .filter((l) => l.trim() !== '')
    .slice(0, 5);

  if (server.sshdPath === null) {
    set.add('sshd_not_running', 90, ['no sshd binary found on the host'], 'Install openssh-server.');
  } else if (!server.sshdRunning || (!portListens && !server.sshSocketActive)) {
    const state = !server.sshdRunning ? 'no sshd listener process runs' : `nothing listens on port ${port}`;
    if (invalid) {
      set.add(
        'sshd_config_invalid',
        95,
        [`${state}, and \`sshd -t\` fails:`, ...testLines],
        'Fix or remove the directive `sshd -t` reports, then start sshd.',
        {
          kind: 'sshd_remove',
          keywords: invalidKeywords(server.sshdTest.output, server.sshdTestLines),
          sshdRunning: false,
        },
      );
      set.add('sshd_not_running', 70, [state], 'Start sshd once its configuration is valid.', {
        kind: 'sshd_start',
      });
    } else {
      set.add('sshd_not_running', 92, [state, '`sshd -t` passes: sshd can be started'], 'Start sshd.', {
        kind: 'sshd_start',
      });
    }
  } else if (invalid) {
    set.add(
      'sshd_config_invalid',
      60,
      [
        'sshd runs, but the configuration on disk fails `sshd -t` (it will not start after the next restart or reboot):',
        ...testLines,
      ],
      'Fix or remove the directive `sshd -t` reports before anything restarts sshd.',
      {
        kind: 'sshd_remove',
        keywords: invalidKeywords(server.sshdTest.output, server.sshdTestLines),
        sshdRunning: true,
      },
    );
  } else if (!sshdListens && !server.sshSocketActive && portListens) {
    set.add(
      'sshd_not_running',
      50,
      [`port ${port} is held by another process than sshd`],
      `Free port ${port} for sshd.`,
    );
  }

  // TCP wrappers
  const verdict = wrappersVerdict(server);
  const refusedLines = server.authLog.filter(
    (l) => /refused connect from/.test(l) && mentionsAddress(l, client),
  );
  if (verdict?.access === 'refused' || refusedLines.length > 0) {
    const linked = server.libwrap !== false;
    const evidence = [
      ...(verdict && verdict.access === 'refused'
        ? [`hosts_access verdict for sshd from ${client}: ${describeVerdict(verdict)}`]
        : []),
      ...(server.libwrap === true
        ? ['sshd is linked with libwrap']
        : server.libwrap === false
          ? ['sshd is not linked with libwrap: hosts.allow/deny have no effect on it']
          : []),
      ...refusedLines.slice(-3),
      ...(verdict?.access === 'granted'
        ? [`hosts.allow/deny grant ${client} now: the refusals above are older than the files' last change`]
        : []),
    ];
    // libwrap reads the files on every connection: once they grant the client, logged refusals are history.
    const score = verdict?.access === 'granted' ? 40 : linked || refusedLines.length > 0 ? 95 : 20;
    set.add(
      'tcp_wrappers_deny',
      score,
      evidence,
      `Let ${client} through TCP wrappers (tcp_wrappers: not_denied / allow).`,
      { kind: 'tcp_wrappers', client },
    );
  }

  // MaxStartups
  const effective = server.effective;
  const begin = maxStartupsBegin(effective?.get('maxstartups'));
  const dropLines = server.authLog.filter((l) => listenerDrop(l) === 'max_startups');
  const current = server.startups?.current ?? null;
  const limitReached = current !== null && begin !== null && current >= begin;
  if (dropLines.length > 0 || limitReached) {
    const evidence = [
      ...(effective ? [`MaxStartups ${effective.get('maxstartups')?.join(' ') ?? '(default)'}`] : []),
      ...(current !== null
        ? [`unauthenticated connections now: ${current} (listener: ${server.startups?.limits})`]
        : []),
      ...dropLines.slice(-3),
    ];
    set.add(
      'max_startups',
      limitReached ? 90 : 75,
      evidence,
      `Raise MaxStartups (e.g. ${RECOMMENDED_MAX_STARTUPS}) and find who holds unauthenticated connections.`,
      { kind: 'sshd_settings', settings: { MaxStartups: RECOMMENDED_MAX_STARTUPS } },
    );
  } else if (begin !== null && begin <= 2) {
    set.add(
      'max_startups',
      35,
      [
        `MaxStartups ${effective?.get('maxstartups')?.join(' ')}: sshd drops new connections once ${begin} are unauthenticated`,
      ],
      `Raise MaxStartups (e.g. ${RECOMMENDED_MAX_STARTUPS}).`,
      { kind: 'sshd_settings', settings: { MaxStartups: RECOMMENDED_MAX_STARTUPS } },
    );
  }

  fromPenalties(set, server);

  // MaxAuthTries
  const maxAuthTries = Number(effective?.get('maxauthtries')?.[0] ?? NaN);
  const authLines = server.authLog.filter(
    (l) =>
      mentionsAddress(l, client) &&
      /maximum authentication attempts exceeded|Too many authentication failures/i.test(l),
  );
  const offered = input.probe?.auth?.keysOffered ?? 0;
  const available = input.probe?.auth?.keysAvailable ?? 0;
  if (Number.isFinite(maxAuthTries) && (authLines.length > 0 || available > maxAuthTries)) {
    const wanted = Math.max(RECOMMENDED_MAX_AUTH_TRIES, available + 1);
    set.add(
      'max_auth_tries',
      authLines.length > 0 ? 88 : 70,
      [
        `MaxAuthTries ${maxAuthTries} for ${client}`,
        ...(available > 0
          ? [`the client offers ${available} keys (${offered} offered before the outcome)`]
          : []),
        ...authLines.slice(-3),
      ],
      `Offer fewer keys (IdentitiesOnly yes) or raise MaxAuthTries to ${wanted}.`,
      { kind: 'sshd_settings', settings: { MaxAuthTries: wanted } },
    );
  } else if (Number.isFinite(maxAuthTries) && maxAuthTries <= 2) {
    set.add(
      'max_auth_tries',
      35,
      [
        `MaxAuthTries ${maxAuthTries}: a client with more keys in its agent is disconnected before its right key`,
      ],
      `Raise MaxAuthTries to ${RECOMMENDED_MAX_AUTH_TRIES}.`,
      { kind: 'sshd_settings', settings: { MaxAuthTries: RECOMMENDED_MAX_AUTH_TRIES } },
    );
  }

  // ClientAlive
  const interval = Number(effective?.get('clientaliveinterval')?.[0] ?? 0);
  const countMax = Number(effective?.get('clientalivecountmax')?.[0] ?? 3);
  if (interval > 0 && countMax > 0 && interval * countMax < CLIENT_ALIVE_TOO_SHORT_S) {
    set.add(
      'client_alive',
      45,
      [
        `ClientAliveInterval ${interval} × ClientAliveCountMax ${countMax}: sessions are dropped after ${interval * countMax} s without an answer`,
      ],
      'Use ClientAliveInterval 300 and ClientAliveCountMax 3.',
      { kind: 'sshd_settings', settings: { ...RECOMMENDED_CLIENT_ALIVE } },
    );
  }

  fromFirewall(set, server);

  // fail2ban
  if (server.fail2ban.bannedIn.length > 0) {
    set.add(
      'fail2ban_ban',
      93,
      [`fail2ban bans ${client} in jail(s): ${server.fail2ban.bannedIn.join(', ')}`],
      `Unban ${client} and add it to ignoreip (fail2ban: unban, ignoreip).`,
      { kind: 'fail2ban', client },
    );
  }

  // Resources
  if (server.oomKills.length > 0) {
    set.add(
      'resources_exhausted',
      80,
      server.oomKills.slice(-3),
      'Find what exhausts memory; restart sshd.',
      {
        kind: 'sshd_start',
      },
    );
  }
  const memory = server.memory;
  if (memory && memory.totalKb > 0 && memory.availableKb / memory.totalKb < MEMORY_LOW_FRACTION) {
    set.add(
      'resources_exhausted',
      55,
      [
        `only ${Math.round(memory.availableKb / 1024)} MiB of ${Math.round(memory.totalKb / 1024)} MiB memory available`,
      ],
      'Free memory (find the process that holds it).',
    );
  }
  for (const disk of server.disks.filter((d) => d.usePercent >= DISK_FULL_PERCENT)) {
    set.add(
      'resources_exhausted',
      50,
      [`${disk.mount} is ${disk.usePercent}% full`],
      `Free space on ${disk.mount}: sshd and PAM need to write logs and state.`,
    );
  }
}

/** Ranked findings for one host, most likely first. */
export function diagnose(input: DiagnosisInput): Finding[] {
  const set = new FindingSet();
  fromServer(set, input);
  // With server evidence, client-side guesses only add evidence or rank below the server's facts.
  fromProbe(set, input);
  return set.sorted();
}

/** Whether a host looks healthy: nothing above low confidence. */
export function isHealthy(findings: readonly Finding[]): boolean {
  return findings.every((f) => f.confidence === 'low');
}
