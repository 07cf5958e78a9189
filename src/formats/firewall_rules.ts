/**
 * What every firewall backend's rules boil down to for the SSH question:
 * which sources, which TCP ports, and what happens to a matching packet. The
 * backend parsers (iptables-save, nft, ufw, firewalld) translate their rules
 * into `RuleMatch`; the decisions below are shared, so "is SSH from X blocked
 * before it is allowed?" means the same on every backend. No I/O.
 */
import { cidrContains, cidrEquals, cidrOverlaps, type Cidr, type IpFamily } from './firewall_cidr.js';

export type Verdict = 'accept' | 'drop' | 'reject' | 'jump' | 'goto' | 'return' | 'other' | 'none';

/** A set of values a rule matches: everything, a known list, or something we cannot evaluate (a named set). */
export type MatchSet<T> =
  { kind: 'any' } | { kind: 'list'; items: T[]; negated: boolean } | { kind: 'unknown' };

export interface PortRange {
  from: number;
  to: number;
}

export interface RuleMatch {
  verdict: Verdict;
  /** Chain a jump/goto leads to. */
  target?: string;
  /** Address family the rule is limited to (an `ip saddr` match limits an inet rule to IPv4). */
  family: IpFamily | 'any';
  sources: MatchSet<Cidr>;
  /** 'tcp' also when only TCP can match; 'other' for udp/icmp-only rules. */
  protocol: 'tcp' | 'any' | 'other' | 'unknown';
  ports: MatchSet<PortRange>;
  /** Matches we do not model (interface, conntrack state, limits...): they only narrow the rule. */
  extraMatches: boolean;
}

/** A rule that matches everything and decides nothing: parsers narrow it as they read the rule. */
export function openRuleMatch(family: IpFamily | 'any'): RuleMatch {
  return {
    verdict: 'none',
    family,
    sources: { kind: 'any' },
    protocol: 'any',
    ports: { kind: 'any' },
    extraMatches: false,
  };
}

/** One address and port the playbook wants SSH allowed from/to. */
export interface SshAllowance {
  source: Cidr;
  port: number;
}

function familyMatches(rule: RuleMatch, family: IpFamily): boolean {
  return rule.family === 'any' || rule.family === family;
}

function sourceMayMatch(sources: MatchSet<Cidr>, source: Cidr): boolean {
  if (sources.kind !== 'list') return true;
  const sameFamily = sources.items.filter((c) => c.family === source.family);
  if (!sources.negated) return sameFamily.some((c) => cidrOverlaps(c, source));
  // "! -s N" matches some of `source` unless N covers all of it.
  return !sameFamily.some((c) => cidrContains(c, source));
}

function portMayMatch(ports: MatchSet<PortRange>, port: number): boolean {
  if (ports.kind !== 'list') return true;
  const inside = ports.items.some((r) => r.from <= port && port <= r.to);
  return ports.negated ? !inside : inside;
}

function tcpMayMatch(rule: RuleMatch): boolean {
  return rule.protocol !== 'other';
}

/** True when a packet of a new SSH connection from `a.source` to `a.port` could hit this rule. */
export function ruleMayMatch(rule: RuleMatch, a: SshAllowance): boolean {
  return (
    familyMatches(rule, a.source.family) &&
    sourceMayMatch(rule.sources, a.source) &&
    portMayMatch(rule.ports, a.port) &&
    tcpMayMatch(rule)
  );
}

export function isDropOrReject(rule: RuleMatch): boolean {
  return rule.verdict === 'drop' || rule.verdict === 'reject';
}

/** A DROP/REJECT that could stop SSH from `a`. */
export function mayBlock(rule: RuleMatch, a: SshAllowance): boolean {
  return isDropOrReject(rule) && ruleMayMatch(rule, a);
}

/** Exactly the rule sshfix adds: accept TCP from a.source to a.port, nothing else. */
export function isExactAllow(rule: RuleMatch, a: SshAllowance): boolean {
  return (
    rule.verdict === 'accept' &&
    !rule.extraMatches &&
    rule.protocol === 'tcp' &&
    rule.sources.kind === 'list' &&
    !rule.sources.negated &&
    rule.sources.items.length === 1 &&
    cidrEquals(rule.sources.items[0]!, a.source) &&
    rule.ports.kind === 'list' &&
    !rule.ports.negated &&
    rule.ports.items.length === 1 &&
    rule.ports.items[0]!.from === a.port &&
    rule.ports.items[0]!.to === a.port
  );
}

/**
 * A DROP/REJECT aimed at the allowed sources on the SSH ports and nothing
 * else: every source it names lies inside an allowed source, every port it
 * names is an SSH port (TCP or any protocol). Rules that also cover other addresses or
 * ports (a blanket DROP, a /8 ban, "all ports") are someone else's policy and
 * stay; the allow rule placed before them is what lets SSH through.
 */
export function isRemovableBlock(rule: RuleMatch, allowances: SshAllowance[]): boolean {
  // "deny from X to any port 22" (any protocol) is how most people write an SSH block.
  if (!isDropOrReject(rule) || (rule.protocol !== 'tcp' && rule.protocol !== 'any')) return false;
  const { sources, ports } = rule;
  if (sources.kind !== 'list' || sources.negated || sources.items.length === 0) return false;
  if (ports.kind !== 'list' || ports.negated || ports.items.length === 0) return false;
  const allowedPorts = new Set(allowances.map((a) => a.port));
  const portsOk = ports.items.every((r) => r.to - r.from < 65536 && rangeWithin(r, allowedPorts));
  const sourcesOk = sources.items.every((c) => allowances.some((a) => cidrContains(a.source, c)));
  return portsOk && sourcesOk;
}

function rangeWithin(range: PortRange, allowed: Set<number>): boolean {
  for (let p = range.from; p <= range.to; p++) if (!allowed.has(p)) return false;
  return true;
}

/** Rules of one chain, in order, with the backend's own handle on each. */
export interface ChainRules<R> {
  name: string;
  rules: { rule: R; match: RuleMatch }[];
}

export interface ChainLookup<R> {
  /** A chain that a jump/goto may enter; undefined when it does not exist or must not be followed (fail2ban's). */
  (name: string): ChainRules<R> | undefined;
}

export interface AllowPlacement<R> {
  /** The exact allow rule where it is, if present. */
  existing?: R;
  /** Rules before it (or in chains they jump to) that may drop/reject the allowance. */
  blockersBefore: R[];
  /** True when the allow rule is missing or comes after a blocker. */
  needsInsert: boolean;
}

/**
 * Where the allow rule for `a` stands in `chain`: present, and whether
 * something that may drop/reject it comes first (an ACCEPT after a DROP is
 * dead). Jumps are followed through `lookup` (depth-limited, cycle-safe).
 */
export function placeAllow<R>(
  chain: ChainRules<R>,
  a: SshAllowance,
  lookup: ChainLookup<R>,
): AllowPlacement<R> {
  const blockersBefore: R[] = [];
  for (const { rule, match } of chain.rules) {
    if (isExactAllow(match, a)) {
      return { existing: rule, blockersBefore, needsInsert: blockersBefore.length > 0 };
    }
    if (mayBlock(match, a) || reachesBlocker(match, a, lookup, new Set([chain.name])))
      blockersBefore.push(rule);
  }
  return { blockersBefore, needsInsert: true };
}

function reachesBlocker<R>(
  match: RuleMatch,
  a: SshAllowance,
  lookup: ChainLookup<R>,
  seen: Set<string>,
): boolean {
  if ((match.verdict !== 'jump' && match.verdict !== 'goto') || !match.target) return false;
  if (!ruleMayMatch(match, a) || seen.has(match.target) || seen.size > 16) return false;
  const chain = lookup(match.target);
  if (!chain) return false;
  seen.add(match.target);
  return chain.rules.some((r) => mayBlock(r.match, a) || reachesBlocker(r.match, a, lookup, seen));
}

/** Names of the chains reachable from `start` through jumps/gotos that `lookup` allows, `start` first. */
export function reachableChains<R>(start: ChainRules<R>, lookup: ChainLookup<R>): ChainRules<R>[] {
  const out: ChainRules<R>[] = [start];
  const seen = new Set([start.name]);
  for (let i = 0; i < out.length; i++) {
    for (const { match } of out[i]!.rules) {
      if ((match.verdict === 'jump' || match.verdict === 'goto') && match.target && !seen.has(match.target)) {
        seen.add(match.target);
        const next = lookup(match.target);
        if (next) out.push(next);
      }
    }
  }
  return out;
}

/** fail2ban's chains and tables are its own: sshfix's fail2ban resource handles bans. */
export function isFail2banName(name: string): boolean {
  return /^f2b-/i.test(name);
}

/** Every (source, port) pair the task asks for, sources in playbook order. */
export function allowancesFor(sources: Cidr[], ports: number[]): SshAllowance[] {
  return sources.flatMap((source) => ports.map((port) => ({ source, port })));
}
