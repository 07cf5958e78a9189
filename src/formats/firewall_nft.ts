/**
 * nftables rulesets in the block form that `nft -a list ruleset` prints and
 * /etc/nftables.conf usually uses: parsing (tables, chains, hooks, rules with
 * their handles and line spans), translation of rules into `RuleMatch`, the
 * plan for every input base chain (an accept in one base chain does not stop
 * a drop in another, so each one that filters the traffic needs the allow
 * rule first), and the same edits applied losslessly to the text. No I/O.
 */
import { formatCidr, formatCidrShort, parseHostCidr, type Cidr, type IpFamily } from './firewall_cidr.js';
import {
  isFail2banName,
  isRemovableBlock,
  mayBlock,
  placeAllow,
  reachableChains,
  type ChainRules,
  type MatchSet,
  type PortRange,
  type RuleMatch,
  type SshAllowance,
  openRuleMatch,
} from './firewall_rules.js';

export type NftFamily = 'ip' | 'ip6' | 'inet' | 'arp' | 'bridge' | 'netdev';

export interface NftRule {
  /** The rule as written, without `# handle N`, on one line. */
  text: string;
  handle?: number;
  /** First and last line index (a rule with a long set spans lines). */
  firstLine: number;
  lastLine: number;
  match: RuleMatch;
}

export interface NftChain {
  name: string;
  type?: string;
  hook?: string;
  policy?: string;
  /** Line index of `chain NAME {`, and of the last header statement (type/policy) if any. */
  line: number;
  headerEndLine: number;
  /** Indentation of the chain's statements. */
  indent: string;
  rules: NftRule[];
}

export interface NftTable {
  family: NftFamily;
  name: string;
  line: number;
  chains: Map<string, NftChain>;
}

export interface NftRuleset {
  lines: string[];
  tables: NftTable[];
}

export const tableKey = (t: { family: string; name: string }): string => `${t.family} ${t.name}`;

/** Splits a rule into words; `{ ... }` sets and "..." strings stay whole. */
export function splitNftWords(text: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < text.length) {
    while (text[i] === ' ' || text[i] === '\t') i++;
    if (i >= text.length) break;
    const start = i;
    if (text[i] === '{') {
      let depth = 0;
      for (; i < text.length; i++) {
        if (text[i] === '{') depth++;
        else if (text[i] === '}' && --depth === 0) {
          i++;
          break;
        }
      }
    } else if (text[i] === '"') {
      i = text.indexOf('"', i + 1);
      i = i === -1 ? text.length : i + 1;
    } else {
      while (i < text.length && text[i] !== ' ' && text[i] !== '\t') i++;
    }
    words.push(text.slice(start, i));
  }
  return words;
}

/** Braces outside strings and comments: how deep a line leaves us. */
function braceDelta(line: string): number {
  let delta = 0;
  let quoted = false;
  for (const c of line) {
    if (c === '"') quoted = !quoted;
    else if (!quoted && c === '#') break;
    else if (!quoted && c === '{') delta++;
    else if (!quoted && c === '}') delta--;
  }
  return delta;
}

function stripComment(line: string): { body: string; handle?: number } {
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '"') quoted = !quoted;
    else if (c === '#' && !quoted) {
      const handle = /^#\s*handle\s+(\d+)/.exec(line.slice(i));
      return { body: line.slice(0, i).trim(), ...(handle ? { handle: Number(handle[1]) } : {}) };
    }
  }
  return { body: line.trim() };
}

const FAMILIES = new Set<string>(['ip', 'ip6', 'inet', 'arp', 'bridge', 'netdev']);

/** Parses block-form nftables text; what it does not understand (define, include, one-line chains) is left alone. */
export function parseNftRuleset(text: string): NftRuleset {
  const lines = text.split('\n');
  const tables: NftTable[] = [];
  let table: NftTable | undefined;
  let chain: NftChain | undefined;
  /** Depth of a block we skip (set, map, flowtable...), relative to where it opened. */
  let skipDepth = 0;
  let pendingRule: { text: string; firstLine: number; depth: number } | undefined;

  const finishRule = (lastLine: number, handle?: number): void => {
    if (!pendingRule || !chain || !table) return;
    const familyOf: IpFamily | 'any' = table.family === 'ip' ? 4 : table.family === 'ip6' ? 6 : 'any';
    chain.rules.push({
      text: pendingRule.text,
      firstLine: pendingRule.firstLine,
      lastLine,
      ...(handle !== undefined ? { handle } : {}),
      match: nftRuleMatch(pendingRule.text, familyOf),
    });
    pendingRule = undefined;
  };

  lines.forEach((raw, index) => {
    const { body, handle } = stripComment(raw);
    if (pendingRule) {
      pendingRule.text += ` ${body}`;
      pendingRule.depth += braceDelta(body);
      if (pendingRule.depth <= 0) finishRule(index, handle);
      return;
    }
    if (body === '') return;
    if (skipDepth > 0) {
      skipDepth += braceDelta(body);
      return;
    }
    if (!table) {
      const m = /^table\s+(?:(\w+)\s+)?(\S+)\s*\{$/.exec(body);
      if (m && (m[1] === undefined || FAMILIES.has(m[1]))) {
        table = { family: (m[1] ?? 'ip') as NftFamily, name: m[2]!, line: index, chains: new Map() };
        tables.push(table);
      } else if (braceDelta(body) > 0) skipDepth = braceDelta(body);
      return;
    }
    if (!chain) {
      const m = /^chain\s+(\S+)\s*\{$/.exec(body);
      if (m) {
        chain = { name: m[1]!, line: index, headerEndLine: index, indent: '', rules: [] };
        table.chains.set(chain.name, chain);
      } else if (body === '}') table = undefined;
      else if (braceDelta(body) > 0) skipDepth = braceDelta(body);
      return;
    }
    if (body === '}') {
      chain = undefined;
      return;
    }
    if (!chain.indent) chain.indent = /^\s*/.exec(raw)![0];
    const header = /^type\s+(\w+)\s+hook\s+(\w+)\b/.exec(body);
    const policy = /(?:^|;\s*)policy\s+(\w+)\s*;?/.exec(body);
    if (header || (policy && /^policy\b/.test(body))) {
      if (header) [chain.type, chain.hook] = [header[1], header[2]];
      if (policy) chain.policy = policy[1];
      chain.headerEndLine = index;
      return;
    }
    pendingRule = { text: body, firstLine: index, depth: braceDelta(body) };
    if (pendingRule.depth <= 0) finishRule(index, handle);
  });
  return { lines, tables };
}

function parsePorts(value: string): MatchSet<PortRange> {
  const items = value.startsWith('{') ? value.slice(1, -1).split(',') : [value];
  const ranges: PortRange[] = [];
  for (const item of items.map((s) => s.trim())) {
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(item);
    if (item === 'ssh') ranges.push({ from: 22, to: 22 });
    else if (!m) return { kind: 'unknown' };
    else ranges.push({ from: Number(m[1]), to: Number(m[2] ?? m[1]) });
  }
  return { kind: 'list', items: ranges, negated: false };
}

function parseAddresses(value: string): MatchSet<Cidr> {
  const items = value.startsWith('{') ? value.slice(1, -1).split(',') : [value];
  const cidrs: Cidr[] = [];
  for (const item of items.map((s) => s.trim()).filter(Boolean)) {
    const cidr = parseHostCidr(item);
    if (!cidr) return { kind: 'unknown' };
    cidrs.push(cidr);
  }
  return { kind: 'list', items: cidrs, negated: false };
}

const negate = <T>(set: MatchSet<T>): MatchSet<T> =>
  set.kind === 'list' ? { ...set, negated: !set.negated } : set.kind === 'any' ? set : { kind: 'unknown' };

/** Statements that do not narrow what a rule matches. */
const NON_MATCHING = new Set([
  'counter',
  'log',
  'comment',
  'packets',
  'bytes',
  'prefix',
  'level',
  'flags',
  'with',
  'type',
  'reset',
]);

/** Translates one rule's text; `family` is the table's (4/6 for ip/ip6 tables). */
export function nftRuleMatch(text: string, family: IpFamily | 'any'): RuleMatch {
  const match: RuleMatch = openRuleMatch(family);
  const words = splitNftWords(text);
  /** Reads `[op] value` after a selector; returns the value and whether it was negated. */
  const operand = (i: number): { value: string; negated: boolean; next: number } => {
    const op = words[i];
    if (op === '!=' || op === '==' || op === 'eq' || op === 'ne') {
      return { value: words[i + 1] ?? '', negated: op === '!=' || op === 'ne', next: i + 2 };
    }
    return { value: op ?? '', negated: false, next: i + 1 };
  };
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    const selector = words[i + 1];
    if ((word === 'ip' || word === 'ip6') && selector !== undefined) {
      match.family = word === 'ip' ? 4 : 6;
      const o = operand(i + 2);
      if (selector === 'saddr') {
        const set =
          o.value.startsWith('@') || o.value.startsWith('$')
            ? { kind: 'unknown' as const }
            : parseAddresses(o.value);
        match.sources = o.negated ? negate(set) : set;
      } else if ((selector === 'protocol' || selector === 'nexthdr') && !o.value.startsWith('{')) {
        match.protocol = o.negated
          ? o.value === 'tcp'
            ? 'other'
            : 'unknown'
          : o.value === 'tcp'
            ? 'tcp'
            : 'other';
      } else match.extraMatches = true;
      i = o.next - 1;
    } else if (
      (word === 'tcp' || word === 'udp' || word === 'th' || word === 'sctp') &&
      selector !== undefined
    ) {
      if (word === 'tcp') match.protocol = 'tcp';
      else if (word !== 'th') match.protocol = 'other';
      const o = operand(i + 2);
      if (selector === 'dport') {
        const set =
          o.value.startsWith('@') || o.value.startsWith('$')
            ? { kind: 'unknown' as const }
            : parsePorts(o.value);
        match.ports = o.negated ? negate(set) : set;
      } else match.extraMatches = true;
      i = o.next - 1;
    } else if (word === 'meta' && (selector === 'l4proto' || selector === 'nfproto')) {
      const o = operand(i + 2);
      if (selector === 'l4proto') {
        const tcpOnly = o.value === 'tcp' || o.value === '6';
        match.protocol = o.negated
          ? tcpOnly
            ? 'other'
            : 'unknown'
          : tcpOnly
            ? 'tcp'
            : o.value.includes('tcp')
              ? 'unknown'
              : 'other';
      } else if (!o.negated && (o.value === 'ipv4' || o.value === 'ipv6'))
        match.family = o.value === 'ipv4' ? 4 : 6;
      else match.extraMatches = true;
      i = o.next - 1;
    } else if (word === 'accept' || word === 'drop' || word === 'reject' || word === 'return') {
      match.verdict = word;
      if (word === 'reject') break;
    } else if ((word === 'jump' || word === 'goto') && selector !== undefined) {
      match.verdict = word;
      match.target = selector;
      break;
    } else if (word === 'queue' || word === 'continue') match.verdict = 'other';
    else if (word === 'comment') i++;
    else if (/^[a-z]/.test(word) && !NON_MATCHING.has(word) && !/^\d/.test(word)) {
      // ct state, iifname, limit, fib, mark...: they only narrow the rule.
      match.extraMatches = true;
    }
  }
  return match;
}

// ---------------------------------------------------------------------------
// Planning

export interface NftChainRef {
  family: NftFamily;
  table: string;
  chain: string;
}

export interface NftEdit {
  /** Allow rules to insert at the top of each chain, in final order. */
  inserts: { at: NftChainRef; allowances: SshAllowance[] }[];
  removals: { at: NftChainRef; rule: NftRule }[];
  messages: string[];
  warnings: string[];
}

function coversFamily(family: NftFamily, ip: IpFamily): boolean {
  return family === 'inet' || (family === 'ip' && ip === 4) || (family === 'ip6' && ip === 6);
}

function chainRules(chain: NftChain): ChainRules<NftRule> {
  return { name: chain.name, rules: chain.rules.map((rule) => ({ rule, match: rule.match })) };
}

/** Tables sshfix leaves alone: iptables-nft's (given), fail2ban's, and firewalld's own. */
export function isForeignTable(table: NftTable, iptablesTables: ReadonlySet<string>): string | null {
  if (iptablesTables.has(tableKey(table))) return 'managed by iptables-nft';
  if (isFail2banName(table.name)) return "fail2ban's";
  if (table.name === 'firewalld') return "firewalld's";
  return null;
}

const describe = (at: NftChainRef): string => `${at.family} ${at.table} ${at.chain}`;

/**
 * For every filter chain hooked on input (in tables sshfix may edit): the
 * exact allow rule must come before anything that may drop or reject the
 * allowance; with removeBlocking, rules aimed at exactly those sources on
 * that port are deleted (by handle). Tables left alone that may still block
 * the allowance produce a warning, since their drop still applies.
 */
export function planNftEdit(
  ruleset: NftRuleset,
  allowances: SshAllowance[],
  removeBlocking: boolean,
  iptablesTables: ReadonlySet<string>,
): NftEdit {
  const edit: NftEdit = { inserts: [], removals: [], messages: [], warnings: [] };
  for (const table of ruleset.tables) {
    if (!['ip', 'ip6', 'inet'].includes(table.family)) continue;
    const lookup = (name: string): ChainRules<NftRule> | undefined => {
      const c = table.chains.get(name);
      return c && !isFail2banName(name) ? chainRules(c) : undefined;
    };
    const foreign = isForeignTable(table, iptablesTables);
    for (const chain of table.chains.values()) {
      if (chain.type !== 'filter' || chain.hook !== 'input') continue;
      const at: NftChainRef = { family: table.family, table: table.name, chain: chain.name };
      const mine = allowances.filter((a) => coversFamily(table.family, a.source.family));
      if (foreign) {
        for (const a of mine) {
          const blocker = chain.rules.find((r) => mayBlock(r.match, a));
          if (blocker && foreign !== "fail2ban's")
            edit.warnings.push(
              `table ${tableKey(table)} (${foreign}) may still drop SSH from ${formatCidr(a.source)}: '${blocker.text}'`,
            );
        }
        continue;
      }
      const rules = chainRules(chain);
      const toInsert: SshAllowance[] = [];
      for (const a of mine) {
        const placement = placeAllow(rules, a, lookup);
        if (!placement.needsInsert) continue;
        const what = `SSH from ${formatCidr(a.source)} to port ${a.port}`;
        if (placement.existing) {
          edit.removals.push({ at, rule: placement.existing });
          edit.messages.push(
            `${describe(at)}: ${what} is accepted only after '${placement.blockersBefore[0]!.text}' (an accept after a drop is dead) → moved to the top`,
          );
        } else if (placement.blockersBefore.length > 0) {
          edit.messages.push(
            `${describe(at)}: ${what} is blocked by '${placement.blockersBefore[0]!.text}' → accept inserted at the top`,
          );
        } else {
          edit.messages.push(`${describe(at)}: no rule accepts ${what} → accept inserted at the top`);
        }
        toInsert.push(a);
      }
      if (toInsert.length > 0) edit.inserts.push({ at, allowances: toInsert });
      if (!removeBlocking || mine.length === 0) continue;
      for (const reachable of reachableChains(rules, lookup)) {
        for (const { rule, match } of reachable.rules) {
          if (!isRemovableBlock(match, mine) || edit.removals.some((r) => r.rule === rule)) continue;
          const ref = { ...at, chain: reachable.name };
          edit.removals.push({ at: ref, rule });
          edit.messages.push(`${describe(ref)}: '${rule.text}' blocks an allowed source → removed`);
        }
      }
    }
  }
  return edit;
}

/** The rule text sshfix adds: `ip saddr 10.20.0.0/16 tcp dport 22 accept`, as nft prints it. */
export function allowRuleText(a: SshAllowance): string {
  return `${a.source.family === 4 ? 'ip' : 'ip6'} saddr ${formatCidrShort(a.source)} tcp dport ${a.port} accept`;
}

/** Command words for `nft`, in the order they must run: misplaced accepts deleted, inserts, blocking rules deleted. */
export function nftCommands(edit: NftEdit): string[][] {
  const commands: string[][] = [];
  const deleteWords = (r: { at: NftChainRef; rule: NftRule }): string[] => [
    'nft',
    'delete',
    'rule',
    r.at.family,
    r.at.table,
    r.at.chain,
    'handle',
    String(r.rule.handle),
  ];
  const misplaced = edit.removals.filter((r) => r.rule.match.verdict === 'accept');
  const blocking = edit.removals.filter((r) => r.rule.match.verdict !== 'accept');
  commands.push(...misplaced.map(deleteWords));
  for (const { at, allowances } of edit.inserts) {
    // `insert` without a position puts the rule first: insert the last one first.
    for (const a of [...allowances].reverse())
      commands.push(['nft', 'insert', 'rule', at.family, at.table, at.chain, ...allowRuleText(a).split(' ')]);
  }
  commands.push(...blocking.map(deleteWords));
  return commands;
}

/**
 * Applies `edit` to the text the ruleset was parsed from: allow rules go
 * right after the chain's type/policy line, with its indentation; removed
 * rules lose all their lines. Everything else stays byte-identical.
 */
export function applyNftEdit(ruleset: NftRuleset, edit: NftEdit): string {
  const removed = new Set<number>();
  for (const { rule } of edit.removals) for (let l = rule.firstLine; l <= rule.lastLine; l++) removed.add(l);
  const additions = new Map<number, string[]>();
  for (const { at, allowances } of edit.inserts) {
    const table = ruleset.tables.find((t) => t.family === at.family && t.name === at.table);
    const chain = table?.chains.get(at.chain);
    if (!chain) continue;
    const indent = chain.indent || '\t\t';
    additions.set(chain.headerEndLine, [
      ...(additions.get(chain.headerEndLine) ?? []),
      ...allowances.map((a) => `${indent}${allowRuleText(a)}`),
    ]);
  }
  const out: string[] = [];
  ruleset.lines.forEach((line, i) => {
    if (!removed.has(i)) out.push(line);
    out.push(...(additions.get(i) ?? []));
  });
  return out.join('\n');
}

/** A listing made stable for display: no handles, no counters. */
export function normalizeNftListing(text: string): string {
  return text
    .split('\n')
    .map((l) => l.replace(/\s*# handle \d+$/, '').replace(/ counter packets \d+ bytes \d+/, ' counter'))
    .join('\n');
}

/** The text of the given tables only (for before/after views). */
export function tablesText(text: string, keys: ReadonlySet<string>): string {
  const lines = text.split('\n');
  const out: string[] = [];
  for (const table of parseNftRuleset(text).tables) {
    if (!keys.has(tableKey(table))) continue;
    let depth = 0;
    for (let i = table.line; i < lines.length; i++) {
      out.push(lines[i]!);
      depth += braceDelta(stripComment(lines[i]!).body);
      if (depth === 0) break;
    }
  }
  return out.length > 0 ? `${out.join('\n')}\n` : '';
}

/** Tables that currently hold at least one rule and that sshfix may edit: whether nftables is "in use". */
export function ownRuleTables(ruleset: NftRuleset, iptablesTables: ReadonlySet<string>): NftTable[] {
  return ruleset.tables.filter(
    (t) =>
      isForeignTable(t, iptablesTables) === null && [...t.chains.values()].some((c) => c.rules.length > 0),
  );
}
