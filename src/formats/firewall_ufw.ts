/**
 * ufw's own rule database: the `### tuple ###` lines of /etc/ufw/user.rules
 * (IPv4) and user6.rules (IPv6), which `ufw status` renders and numbers (all
 * IPv4 rules first, then IPv6). The plan puts `allow from X to any port P
 * proto tcp` before any deny/reject that may match it and (with
 * remove_blocking) deletes deny/reject rules aimed at exactly those sources on
 * that port. Planning from the database means an existing rule is never
 * re-added ("Skipping adding existing rule") and no ufw process is started
 * when nothing needs to change. No I/O.
 */
import { formatCidr, formatCidrShort, parseHostCidr, type IpFamily } from './firewall_cidr.js';
import {
  isRemovableBlock,
  placeAllow,
  type ChainRules,
  type MatchSet,
  type PortRange,
  type RuleMatch,
  type SshAllowance,
  type Verdict,
} from './firewall_rules.js';

export interface UfwRule {
  family: IpFamily;
  /** allow, deny, reject, limit (without _log suffix). */
  action: string;
  log: '' | 'log' | 'log-all';
  route: boolean;
  protocol: string;
  dport: string;
  dst: string;
  sport: string;
  src: string;
  dapp: string;
  sapp: string;
  direction: 'in' | 'out';
  interfaceIn: string;
  interfaceOut: string;
  /** The tuple as written, for messages. */
  tuple: string;
  match: RuleMatch;
}

const VERDICTS: Record<string, Verdict> = { allow: 'accept', deny: 'drop', reject: 'reject', limit: 'other' };

function ufwPorts(value: string): MatchSet<PortRange> {
  if (value === 'any') return { kind: 'any' };
  const items: PortRange[] = [];
  for (const part of value.split(',')) {
    const m = /^(\d{1,5})(?::(\d{1,5}))?$/.exec(part);
    if (!m) return { kind: 'unknown' };
    items.push({ from: Number(m[1]), to: Number(m[2] ?? m[1]) });
  }
  return { kind: 'list', items, negated: false };
}

function ufwMatch(r: Omit<UfwRule, 'match' | 'tuple'>): RuleMatch {
  const anyAddress = (a: string): boolean => a === '0.0.0.0/0' || a === '::/0' || a === 'any';
  const src = anyAddress(r.src) ? null : parseHostCidr(r.src);
  return {
    // Route and outgoing rules never see an incoming SSH connection.
    verdict: r.route || r.direction !== 'in' ? 'none' : (VERDICTS[r.action] ?? 'other'),
    family: r.family,
    sources: anyAddress(r.src)
      ? { kind: 'any' }
      : src
        ? { kind: 'list', items: [src], negated: false }
        : { kind: 'unknown' },
    protocol: r.protocol === 'tcp' ? 'tcp' : r.protocol === 'any' ? 'any' : 'other',
    ports: ufwPorts(r.dport),
    extraMatches:
      !anyAddress(r.dst) ||
      r.sport !== 'any' ||
      r.interfaceIn !== '' ||
      r.interfaceOut !== '' ||
      r.sapp !== '',
  };
}

/** Parses the tuples of user.rules (family 4) or user6.rules (family 6), in file order. */
export function parseUfwRules(text: string, family: IpFamily): UfwRule[] {
  const rules: UfwRule[] = [];
  for (const line of text.split('\n')) {
    const m = /^### tuple ###\s*(.*)$/.exec(line.trim());
    if (!m) continue;
    const tuple = m[1]!.replace(/\s+comment=\S*$/, '');
    const f = tuple.split(/\s+/);
    if (f.length < 6 || f.length > 9) continue;
    const [actionField = '', protocol = 'any', dport = 'any', dst = '', sport = 'any', src = ''] = f;
    const route = actionField.startsWith('route:');
    const [action = '', log = ''] = actionField.replace(/^route:/, '').split('_');
    let direction: 'in' | 'out' = 'in';
    let interfaceIn = '';
    let interfaceOut = '';
    if (f.length === 7 || f.length === 9) {
      const last = f[f.length - 1]!;
      direction = last.startsWith('out') ? 'out' : 'in';
      for (const part of last.split('!')) {
        const [dir, iface = ''] = part.split(/_(.*)/);
        if (dir === 'in') interfaceIn = iface;
        else if (dir === 'out') interfaceOut = iface;
      }
    }
    const app = (v: string | undefined): string =>
      v === undefined || v === '-' ? '' : v.replace(/%20/g, ' ');
    const base = {
      family,
      action,
      log: (log === 'log' || log === 'log-all' ? log : '') as UfwRule['log'],
      route,
      protocol,
      dport,
      dst,
      sport,
      src,
      dapp: f.length >= 8 ? app(f[6]) : '',
      sapp: f.length >= 8 ? app(f[7]) : '',
      direction,
      interfaceIn,
      interfaceOut,
    };
    rules.push({ ...base, tuple, match: ufwMatch(base) });
  }
  return rules;
}

/** The `ufw` words after the action that name this rule, as `ufw status`/`ufw delete` spell it. */
export function ufwRuleSpec(rule: UfwRule): string[] {
  const words: string[] = [rule.action];
  if (rule.direction !== 'in' || rule.interfaceIn || rule.interfaceOut) {
    words.push(rule.direction);
    const iface = rule.direction === 'in' ? rule.interfaceIn : rule.interfaceOut;
    if (iface) words.push('on', iface);
  }
  if (rule.log) words.push(rule.log);
  const address = (a: string): string => (a === '0.0.0.0/0' || a === '::/0' ? 'any' : a);
  words.push('from', address(rule.src));
  if (rule.sapp) words.push('app', rule.sapp);
  else if (rule.sport !== 'any') words.push('port', rule.sport);
  words.push('to', address(rule.dst));
  if (rule.dapp) words.push('app', rule.dapp);
  else if (rule.dport !== 'any') words.push('port', rule.dport);
  if (rule.protocol !== 'any' && !rule.dapp && !rule.sapp) words.push('proto', rule.protocol);
  return words;
}

/** `allow from 10.20.0.0/16 to any port 22 proto tcp`. */
export function ufwAllowSpec(a: SshAllowance): string[] {
  return ['allow', 'from', formatCidrShort(a.source), 'to', 'any', 'port', String(a.port), 'proto', 'tcp'];
}

export interface UfwPlan {
  /** Command words, in order. */
  commands: string[][];
  messages: string[];
  /** The rule lists after the plan, as `ufw status numbered` would list them (for the before/after view). */
  before: string;
  after: string;
}

function asChain(rules: UfwRule[]): ChainRules<UfwRule> {
  return { name: 'ufw-user-input', rules: rules.map((rule) => ({ rule, match: rule.match })) };
}

/** One line per rule, numbered as `ufw status numbered` numbers them. */
export function ufwListing(v4: string[], v6: string[]): string {
  return [...v4, ...v6.map((r) => `${r} (v6)`)]
    .map((r, i) => `[${String(i + 1).padStart(2)}] ${r}\n`)
    .join('');
}

/**
 * Orders of business: a misplaced allow rule is deleted (re-adding it would
 * only print "Skipping adding existing rule"), then the allow rule goes to
 * position 1 of its family (`ufw insert 1` for IPv4; for IPv6 `ufw insert`
 * takes the position in the combined list, after every IPv4 rule), then
 * blocking rules are deleted by their specification.
 */
export function planUfw(
  v4: UfwRule[],
  v6: UfwRule[],
  allowances: SshAllowance[],
  removeBlocking: boolean,
): UfwPlan {
  const commands: string[][] = [];
  const messages: string[] = [];
  const lists: Record<IpFamily, string[][]> = {
    4: v4.map((r) => [...ufwRuleSpec(r)]),
    6: v6.map((r) => [...ufwRuleSpec(r)]),
  };
  const render = (): [string[], string[]] => [
    lists[4].map((w) => w.join(' ')),
    lists[6].map((w) => w.join(' ')),
  ];
  const before = ufwListing(...render());
  const byFamily: Record<IpFamily, UfwRule[]> = { 4: v4, 6: v6 };
  const deletions: { rule: UfwRule; why: string }[] = [];
  const inserts: SshAllowance[] = [];
  for (const a of allowances) {
    const rules = byFamily[a.source.family];
    const placement = placeAllow(asChain(rules), a, () => undefined);
    const what = `SSH from ${formatCidr(a.source)} to port ${a.port}`;
    if (!placement.needsInsert) continue;
    if (placement.existing) {
      deletions.push({ rule: placement.existing, why: 'misplaced' });
      messages.push(
        `ufw: ${what} is allowed only after '${ufwRuleSpec(placement.blockersBefore[0]!).join(' ')}' (an allow after a deny is dead) → moved to the top`,
      );
    } else if (placement.blockersBefore.length > 0) {
      messages.push(
        `ufw: ${what} is denied by '${ufwRuleSpec(placement.blockersBefore[0]!).join(' ')}' → allow inserted at the top`,
      );
    } else {
      messages.push(`ufw: no rule allows ${what} → allow inserted at the top`);
    }
    inserts.push(a);
  }
  const deleteRule = (rule: UfwRule): void => {
    const spec = ufwRuleSpec(rule);
    commands.push(['ufw', 'delete', ...spec]);
    const list = lists[rule.family];
    const index = list.findIndex((w) => w.join(' ') === spec.join(' '));
    if (index !== -1) list.splice(index, 1);
  };
  // ufw sees a rule with the same tuple and another action as the same rule:
  // `ufw insert 1 allow …` over `deny …` only prints "Skipping inserting
  // existing rule". Such a twin has to go first, whatever remove_blocking says.
  const sameTuple = (rule: UfwRule, a: SshAllowance) =>
    rule.family === a.source.family &&
    ufwRuleSpec(rule).slice(1).join(' ') === ufwAllowSpec(a).slice(1).join(' ');
  for (const a of inserts) {
    for (const rule of byFamily[a.source.family]) {
      if (
        !rule.route &&
        rule.action !== 'allow' &&
        sameTuple(rule, a) &&
        !deletions.some((d) => d.rule === rule)
      ) {
        deletions.push({ rule, why: 'same tuple' });
        messages.push(
          `ufw: '${ufwRuleSpec(rule).join(' ')}' has the allow rule's tuple (ufw would skip the insert) → deleted first`,
        );
      }
    }
  }
  for (const d of deletions) deleteRule(d.rule);
  // Within a family each insert goes first, so the last is inserted first to keep playbook order.
  const ordered = ([4, 6] as const).flatMap((f) => inserts.filter((a) => a.source.family === f).reverse());
  for (const a of ordered) {
    const spec = ufwAllowSpec(a);
    const list = lists[a.source.family];
    if (list.length === 0) commands.push(['ufw', ...spec]);
    else {
      const position = a.source.family === 4 ? 1 : lists[4].length + 1;
      commands.push(['ufw', 'insert', String(position), ...spec]);
    }
    list.unshift(spec);
  }
  if (removeBlocking) {
    for (const rule of [...v4, ...v6]) {
      const mine = allowances.filter((a) => a.source.family === rule.family);
      if (deletions.some((d) => d.rule === rule)) continue;
      if (mine.length > 0 && isRemovableBlock(rule.match, mine)) {
        messages.push(`ufw: '${ufwRuleSpec(rule).join(' ')}' blocks an allowed source → deleted`);
        deleteRule(rule);
      }
    }
  }
  return { commands, messages, before, after: ufwListing(...render()) };
}
