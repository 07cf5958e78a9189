/**
 * Follows a packet of an SSH connection from the client through the host's
 * iptables filter/INPUT chain (and the chains it jumps to), and says which
 * rule decides its fate. Two packets are followed: the SYN of a new connection
 * (state NEW) and a packet of the established connection, because a rule that
 * resets established port-22 connections lets the TCP handshake through and
 * then kills the connection before the banner. No I/O.
 */
import { parseHostCidr, type IpFamily } from '../formats/firewall_cidr.js';
import { isFail2banName, ruleMayMatch, type SshAllowance } from '../formats/firewall_rules.js';
import {
  iptablesRuleMatch,
  parseIptablesSave,
  type IptablesChain,
  type IptablesRule,
  type IptablesTable,
} from '../formats/firewall_iptables.js';

export type PacketPhase = 'new' | 'established';

export interface PathVerdict {
  phase: PacketPhase;
  outcome: 'accept' | 'drop' | 'reject' | 'policy_accept' | 'policy_drop';
  /** The deciding rule, absent when the chain policy decided. */
  rule?: IptablesRule;
  /** REJECT's --reject-with, when the rule has one. */
  rejectWith?: string;
  /** Chains walked to the decision, e.g. ["INPUT", "f2b-sshd"]. */
  chains: string[];
  /** The decision was made in a fail2ban chain (f2b-*). */
  fail2ban: boolean;
  /** Rules that may also block but match on something we do not model (interfaces, rate limits...). */
  uncertainBlockers: IptablesRule[];
}

/** The states a rule's `--state` / `--ctstate` match lists, and the arguments without that match. */
export function splitStateMatch(args: readonly string[]): { states: string[] | null; rest: string[] } {
  const rest: string[] = [];
  let states: string[] | null = null;
  for (let i = 0; i < args.length; i++) {
    const word = args[i]!;
    if ((word === '-m' || word === '--match') && (args[i + 1] === 'state' || args[i + 1] === 'conntrack')) {
      i++;
      continue;
    }
    if (word === '--state' || word === '--ctstate') {
      states = (args[i + 1] ?? '').toUpperCase().split(',');
      i++;
      continue;
    }
    rest.push(word);
  }
  return { states, rest };
}

function rejectWith(args: readonly string[]): string | undefined {
  const index = args.indexOf('--reject-with');
  return index >= 0 ? args[index + 1] : undefined;
}

const MAX_CHAIN_DEPTH = 32;

/**
 * Walks `chain` for one packet; returns a terminal decision, or null when the
 * packet falls off the end (or RETURNs) of a user chain.
 */
function walk(
  table: IptablesTable,
  chain: IptablesChain,
  allowance: SshAllowance,
  phase: PacketPhase,
  path: string[],
  uncertain: IptablesRule[],
): Omit<PathVerdict, 'uncertainBlockers' | 'phase'> | null {
  const chains = new Set(table.chains.keys());
  const here = [...path, chain.name];
  if (here.length > MAX_CHAIN_DEPTH) return null;
  for (const rule of chain.rules) {
    const { states, rest } = splitStateMatch(rule.args);
    const wanted = phase === 'new' ? 'NEW' : 'ESTABLISHED';
    if (states !== null && !states.includes(wanted)) continue;
    const match =
      states === null
        ? rule.match
        : iptablesRuleMatch(rest, rule.match.family === 'any' ? 4 : rule.match.family, chains);
    if (!ruleMayMatch(match, allowance)) continue;
    // A source list that does not contain the client entirely may still match part of it: for one address it does.
    const blocking = match.verdict === 'drop' || match.verdict === 'reject';
    if (match.extraMatches || match.sources.kind === 'unknown' || match.ports.kind === 'unknown') {
      if (blocking) uncertain.push(rule);
      continue;
    }
    const fail2ban = here.some(isFail2banName);
    if (match.verdict === 'accept') return { outcome: 'accept', rule, chains: here, fail2ban };
    if (blocking) {
      const reason = rejectWith(rule.args);
      return {
        outcome: match.verdict === 'drop' ? 'drop' : 'reject',
        rule,
        chains: here,
        fail2ban,
        ...(reason !== undefined ? { rejectWith: reason } : {}),
      };
    }
    if (match.verdict === 'return') return null;
    if ((match.verdict === 'jump' || match.verdict === 'goto') && match.target !== undefined) {
      const target = table.chains.get(match.target);
      if (!target) continue;
      const decided = walk(table, target, allowance, phase, here, uncertain);
      if (decided) return decided;
      if (match.verdict === 'goto') return null;
    }
  }
  return null;
}

/** The fate of a new and of an established SSH packet from `client` to `port`; null without a filter/INPUT chain. */
export function traceSshPacket(
  iptablesSave: string,
  client: string,
  port: number,
  phase: PacketPhase,
): PathVerdict | null {
  const source = parseHostCidr(client);
  if (!source) return null;
  const family: IpFamily = source.family;
  const table = parseIptablesSave(iptablesSave, family).tables.get('filter');
  const input = table?.chains.get('INPUT');
  if (!table || !input) return null;
  const uncertain: IptablesRule[] = [];
  const decided = walk(table, input, { source, port }, phase, [], uncertain);
  if (decided) return { ...decided, phase, uncertainBlockers: uncertain };
  return {
    phase,
    outcome: input.policy === 'DROP' ? 'policy_drop' : 'policy_accept',
    chains: ['INPUT'],
    fail2ban: false,
    uncertainBlockers: uncertain,
  };
}
