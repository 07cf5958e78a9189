/**
 * The one walk of filter/INPUT for an SSH packet from one client: which rule
 * decides its fate, and which rules might have decided it had they matched
 * on something we do not model. The lockout guard asks it about the SYN of a
 * new connection ("would the client still get in?"); diagnose also asks it
 * about a packet of an established connection, because a rule that resets
 * established port-22 connections lets the handshake through and kills the
 * connection before the banner. No I/O.
 *
 * Each rule is judged yes / no / maybe for the packet: conntrack and state
 * matches are decided from the phase (a SYN is NEW, with `!` honoured), an
 * input interface of `lo` never sees a remote client, and any other match we
 * do not model (limits, sets, other interfaces) makes a rule "maybe".
 */
import { cidrContains, type Cidr, type IpFamily } from './firewall_cidr.js';
import { isFail2banName, type RuleMatch } from './firewall_rules.js';
import {
  iptablesRuleMatch,
  type IptablesChain,
  type IptablesRule,
  type IptablesRuleset,
  type IptablesTable,
} from './firewall_iptables.js';

/** The first packet of a new connection (conntrack NEW), or one of an established connection. */
export type PacketPhase = 'new' | 'established';

export type RuleHit = 'yes' | 'no' | 'maybe';

export interface IptablesPath {
  phase: PacketPhase;
  outcome: 'accept' | 'drop' | 'reject' | 'policy_accept' | 'policy_drop';
  /** The deciding rule; absent when the INPUT policy decided. */
  rule?: IptablesRule;
  /** REJECT's --reject-with, when the deciding rule has one. */
  rejectWith?: string;
  /** Chains walked to the decision, e.g. ["INPUT", "f2b-sshd"]. */
  chains: string[];
  /** The decision was made in a fail2ban chain (f2b-*). */
  fail2ban: boolean;
  /** DROP/REJECT rules before the decision that may match (they match on more than we model). */
  uncertainBlockers: IptablesRule[];
  /** An ACCEPT before the decision may match: a policy DROP may not be the packet's fate. */
  uncertainAccept: boolean;
}

const STATE_OPTIONS = new Set(['--ctstate', '--state']);
const PHASE_STATE: Record<PacketPhase, string> = { new: 'NEW', established: 'ESTABLISHED' };
/** A chain that jumps deeper than this is a loop (iptables itself refuses loops). */
const MAX_CHAIN_DEPTH = 32;

/** Whether a rule matches the packet for sure, never, or maybe, and the rule read without its state match. */
export function ruleHit(
  args: readonly string[],
  family: IpFamily,
  chains: ReadonlySet<string>,
  client: Cidr,
  port: number,
  phase: PacketPhase,
): { hit: RuleHit; match: RuleMatch } {
  const remaining: string[] = [];
  let decidedNo = false;
  for (let i = 0; i < args.length; i++) {
    const word = args[i]!;
    const next = args[i + 1] ?? '';
    if ((word === '-m' || word === '--match') && (next === 'conntrack' || next === 'state')) {
      i++;
      continue;
    }
    if (STATE_OPTIONS.has(word)) {
      const negated = remaining[remaining.length - 1] === '!';
      if (negated) remaining.pop();
      const listed = next.toUpperCase().split(',').includes(PHASE_STATE[phase]);
      if (listed === negated) decidedNo = true;
      i++;
      continue;
    }
    if ((word === '-i' || word === '--in-interface') && next === 'lo' && remaining.at(-1) !== '!') {
      // Loopback carries only this host's own traffic, never a remote client's.
      decidedNo = true;
    }
    remaining.push(word);
  }
  const match = iptablesRuleMatch(remaining, family, chains);
  if (decidedNo) return { hit: 'no', match };
  if (match.family !== 'any' && match.family !== client.family) return { hit: 'no', match };
  if (match.protocol === 'other') return { hit: 'no', match };
  let sourceHit: RuleHit = 'yes';
  if (match.sources.kind === 'unknown') sourceHit = 'maybe';
  else if (match.sources.kind === 'list') {
    const inside = match.sources.items.some((c) => c.family === client.family && cidrContains(c, client));
    sourceHit = inside !== match.sources.negated ? 'yes' : 'no';
  }
  let portHit: RuleHit = 'yes';
  if (match.ports.kind === 'unknown') portHit = 'maybe';
  else if (match.ports.kind === 'list') {
    const inside = match.ports.items.some((r) => r.from <= port && port <= r.to);
    portHit = inside !== match.ports.negated ? 'yes' : 'no';
  }
  if (sourceHit === 'no' || portHit === 'no') return { hit: 'no', match };
  if (sourceHit === 'maybe' || portHit === 'maybe' || match.extraMatches || match.protocol === 'unknown')
    return { hit: 'maybe', match };
  return { hit: 'yes', match };
}

function rejectWith(args: readonly string[]): string | undefined {
  const index = args.indexOf('--reject-with');
  return index >= 0 ? args[index + 1] : undefined;
}

type Decision = Pick<IptablesPath, 'outcome' | 'rule' | 'rejectWith' | 'chains' | 'fail2ban'>;

interface Walk {
  table: IptablesTable;
  family: IpFamily;
  client: Cidr;
  port: number;
  phase: PacketPhase;
  chainNames: ReadonlySet<string>;
  uncertainBlockers: IptablesRule[];
  uncertainAccept: boolean;
}

/** A terminal decision in `chain` (or a chain it jumps to), or null when the packet returns from it. */
function walkChain(
  walk: Walk,
  chain: IptablesChain,
  path: readonly string[],
  sure: boolean,
): Decision | null {
  const here = [...path, chain.name];
  if (here.length > MAX_CHAIN_DEPTH || path.includes(chain.name)) return null;
  for (const rule of chain.rules) {
    const { hit, match } = ruleHit(
      rule.args,
      walk.family,
      walk.chainNames,
      walk.client,
      walk.port,
      walk.phase,
    );
    if (hit === 'no') continue;
    const certain = sure && hit === 'yes';
    const fail2ban = here.some(isFail2banName);
    switch (match.verdict) {
      case 'accept':
        if (certain) return { outcome: 'accept', rule, chains: here, fail2ban };
        walk.uncertainAccept = true;
        break;
      case 'drop':
      case 'reject': {
        if (!certain) {
          walk.uncertainBlockers.push(rule);
          break;
        }
        const reason = rejectWith(rule.args);
        return {
          outcome: match.verdict,
          rule,
          chains: here,
          fail2ban,
          ...(reason !== undefined ? { rejectWith: reason } : {}),
        };
      }
      case 'return':
        if (certain) return null;
        break;
      case 'jump':
      case 'goto': {
        const target = match.target !== undefined ? walk.table.chains.get(match.target) : undefined;
        if (!target) break;
        // Behind a "maybe" jump every decision is only a possibility: it is recorded, not taken.
        const decided = walkChain(walk, target, here, certain);
        if (decided && certain) return decided;
        if (match.verdict === 'goto' && certain) return null;
        break;
      }
      default:
        break;
    }
  }
  return null;
}

/** The fate of one SSH packet from `client` to `port` in filter/INPUT; null when there is no such chain. */
export function traceIptablesInput(
  ruleset: IptablesRuleset,
  client: Cidr,
  port: number,
  phase: PacketPhase,
): IptablesPath | null {
  const table = ruleset.tables.get('filter');
  const input = table?.chains.get('INPUT');
  if (!table || !input) return null;
  const walk: Walk = {
    table,
    family: ruleset.family,
    client,
    port,
    phase,
    chainNames: new Set(table.chains.keys()),
    uncertainBlockers: [],
    uncertainAccept: false,
  };
  const decided = walkChain(walk, input, [], true);
  const uncertain = { uncertainBlockers: walk.uncertainBlockers, uncertainAccept: walk.uncertainAccept };
  if (decided) return { phase, ...decided, ...uncertain };
  return {
    phase,
    outcome: input.policy.toUpperCase() === 'DROP' ? 'policy_drop' : 'policy_accept',
    chains: ['INPUT'],
    fail2ban: false,
    ...uncertain,
  };
}
