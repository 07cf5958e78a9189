/**
 * iptables-save format: parsing (tables, chains, rules with their line
 * numbers), translation of each rule into a `RuleMatch`, the plan that puts
 * an exact allow rule at the top of filter/INPUT and removes rules that block
 * the allowed sources on the SSH port, and the same edits applied losslessly
 * to a saved rules file (/etc/iptables/rules.v4, rules.v6). No I/O.
 */
import { formatCidr, parseHostCidr, type Cidr, type IpFamily } from './firewall_cidr.js';
import {
  isFail2banName,
  isRemovableBlock,
  placeAllow,
  reachableChains,
  type ChainRules,
  type PortRange,
  type RuleMatch,
  type SshAllowance,
  type Verdict,
  openRuleMatch,
} from './firewall_rules.js';

export interface IptablesRule {
  table: string;
  chain: string;
  /** 0-based line index in the text it was parsed from. */
  line: number;
  /** The `-A CHAIN ...` line as saved. */
  text: string;
  /** Arguments after `-A CHAIN`, unquoted. */
  args: string[];
  match: RuleMatch;
}

export interface IptablesChain {
  name: string;
  /** ACCEPT/DROP for built-in chains, "-" for user chains. */
  policy: string;
  /** Line index of the `:CHAIN POLICY [p:b]` declaration. */
  line: number;
  rules: IptablesRule[];
}

export interface IptablesTable {
  name: string;
  /** Line index of `*name`, and of its `COMMIT`. */
  line: number;
  commitLine: number;
  chains: Map<string, IptablesChain>;
}

export interface IptablesRuleset {
  family: IpFamily;
  lines: string[];
  tables: Map<string, IptablesTable>;
}

/** Splits a saved rule into words: iptables-save puts "..." around values with spaces and escapes `"` and `\`. */
export function splitSaveWords(line: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (line[i] === ' ' || line[i] === '\t') i++;
    if (i >= line.length) break;
    let word = '';
    if (line[i] === '"') {
      i++;
      while (i < line.length && line[i] !== '"') {
        if (line[i] === '\\' && i + 1 < line.length) i++;
        word += line[i];
        i++;
      }
      i++;
    } else {
      while (i < line.length && line[i] !== ' ' && line[i] !== '\t') word += line[i++];
    }
    words.push(word);
  }
  return words;
}

/** Renders words as iptables-save would (quotes around words with spaces or quotes). */
export function joinSaveWords(words: string[]): string {
  return words.map((w) => (w === '' || /[\s"\\]/.test(w) ? `"${w.replace(/[\\"]/g, '\\$&')}"` : w)).join(' ');
}

const BUILTIN_VERDICTS: Record<string, Verdict> = {
  ACCEPT: 'accept',
  DROP: 'drop',
  REJECT: 'reject',
  RETURN: 'return',
};

function parsePortSpec(spec: string): PortRange[] | null {
  const ranges: PortRange[] = [];
  for (const part of spec.split(',')) {
    const m = /^(\d{1,5})?(?::(\d{1,5})?)?$/.exec(part);
    if (!m || part === '') return null;
    const isRange = part.includes(':');
    const from = m[1] !== undefined ? Number(m[1]) : 0;
    const to = isRange ? (m[2] !== undefined ? Number(m[2]) : 65535) : from;
    if (from > 65535 || to > 65535 || from > to) return null;
    ranges.push({ from, to });
  }
  return ranges;
}

/** Translates the arguments of one saved rule; `chains` tells user chains from extension targets. */
export function iptablesRuleMatch(args: string[], family: IpFamily, chains: ReadonlySet<string>): RuleMatch {
  const match: RuleMatch = openRuleMatch(family);
  let negateNext = false;
  for (let i = 0; i < args.length; i++) {
    const word = args[i]!;
    const next = args[i + 1];
    const negated = negateNext;
    negateNext = false;
    switch (word) {
      case '!':
        negateNext = true;
        break;
      case '-s':
      case '--source': {
        const cidrs = (next ?? '').split(',').map(parseHostCidr);
        match.sources = cidrs.every((c): c is Cidr => c !== null)
          ? { kind: 'list', items: cidrs, negated }
          : { kind: 'unknown' };
        i++;
        break;
      }
      case '-p':
      case '--protocol': {
        const proto = (next ?? '').toLowerCase();
        if (negated) match.protocol = proto === 'tcp' ? 'other' : 'unknown';
        else match.protocol = proto === 'tcp' || proto === '6' ? 'tcp' : proto === 'all' ? 'any' : 'other';
        i++;
        break;
      }
      case '--dport':
      case '--destination-port':
      case '--dports':
      case '--destination-ports': {
        const ranges = parsePortSpec(next ?? '');
        match.ports = ranges ? { kind: 'list', items: ranges, negated } : { kind: 'unknown' };
        i++;
        break;
      }
      case '-m':
      case '--match':
        // tcp/multiport/comment only qualify the options that follow; others narrow the rule.
        if (!['tcp', 'multiport', 'comment'].includes(next ?? '')) match.extraMatches = true;
        if (next === 'set' || next === 'iprange') match.sources = { kind: 'unknown' };
        i++;
        break;
      case '--comment':
        i++;
        break;
      case '-j':
      case '--jump':
      case '-g':
      case '--goto': {
        const target = next ?? '';
        const builtin = BUILTIN_VERDICTS[target];
        if (builtin) match.verdict = builtin;
        else if (chains.has(target)) {
          match.verdict = word === '-g' || word === '--goto' ? 'goto' : 'jump';
          match.target = target;
        } else match.verdict = 'other';
        i++;
        // Target options (--reject-with ...) follow; they do not change what matches.
        i = args.length;
        break;
      }
      default:
        if (word.startsWith('-')) {
          match.extraMatches = true;
          if (next !== undefined && !next.startsWith('-') && next !== '!') i++;
        }
    }
  }
  return match;
}

/** Parses iptables-save / ip6tables-save output or a rules.v4/rules.v6 file. */
export function parseIptablesSave(text: string, family: IpFamily): IptablesRuleset {
  const lines = text.split('\n');
  const tables = new Map<string, IptablesTable>();
  const pending: {
    table: IptablesTable;
    chain: IptablesChain;
    line: number;
    text: string;
    args: string[];
  }[] = [];
  let table: IptablesTable | undefined;
  lines.forEach((raw, index) => {
    const line = raw.trim();
    if (line.startsWith('*')) {
      table = { name: line.slice(1), line: index, commitLine: -1, chains: new Map() };
      tables.set(table.name, table);
    } else if (line === 'COMMIT' && table) {
      table.commitLine = index;
      table = undefined;
    } else if (line.startsWith(':') && table) {
      const [name = '', policy = '-'] = line.slice(1).split(/\s+/);
      table.chains.set(name, { name, policy, line: index, rules: [] });
    } else if ((line.startsWith('-A ') || line.startsWith('--append ')) && table) {
      const words = splitSaveWords(line);
      const chainName = words[1] ?? '';
      let chain = table.chains.get(chainName);
      if (!chain) {
        chain = { name: chainName, policy: '-', line: index, rules: [] };
        table.chains.set(chainName, chain);
      }
      pending.push({ table, chain, line: index, text: line, args: words.slice(2) });
    }
  });
  // Rules are translated once every chain is known: "-j NAME" is a jump only if NAME is a chain.
  for (const p of pending) {
    const match = iptablesRuleMatch(p.args, family, new Set(p.table.chains.keys()));
    p.chain.rules.push({
      table: p.table.name,
      chain: p.chain.name,
      line: p.line,
      text: p.text,
      args: p.args,
      match,
    });
  }
  return { family, lines, tables };
}

/** Number of rules and non-ACCEPT policies: whether an iptables variant is in use at all. */
export function iptablesRuleCount(ruleset: IptablesRuleset): number {
  let count = 0;
  for (const t of ruleset.tables.values())
    for (const c of t.chains.values())
      count += c.rules.length + (c.policy !== '-' && c.policy !== 'ACCEPT' ? 1 : 0);
  return count;
}

function chainRules(chain: IptablesChain): ChainRules<IptablesRule> {
  return { name: chain.name, rules: chain.rules.map((rule) => ({ rule, match: rule.match })) };
}

function filterLookup(table: IptablesTable | undefined) {
  return (name: string): ChainRules<IptablesRule> | undefined => {
    const chain = table?.chains.get(name);
    return chain && !isFail2banName(name) ? chainRules(chain) : undefined;
  };
}

/** The words of the allow rule sshfix adds, as iptables-save prints it. */
export function allowRuleArgs(a: SshAllowance): string[] {
  return ['-s', formatCidr(a.source), '-p', 'tcp', '-m', 'tcp', '--dport', String(a.port), '-j', 'ACCEPT'];
}

export interface IptablesEdit {
  /** Allow rules to put at the top of filter/INPUT, in final order. */
  insertAtTop: SshAllowance[];
  /** Existing rules to delete: misplaced allow rules and (with remove_blocking) blocking rules. */
  remove: IptablesRule[];
  messages: string[];
  warnings: string[];
}

const INPUT = 'INPUT';
const BUILTIN_FILTER_CHAINS = ['INPUT', 'FORWARD', 'OUTPUT'];

/**
 * What has to change in `ruleset` so that SSH from every allowance is
 * accepted before anything can drop or reject it, and (with removeBlocking)
 * no rule reachable from filter/INPUT blocks exactly those sources on that
 * port. fail2ban's chains are neither followed nor touched.
 */
export function planIptablesEdit(
  ruleset: IptablesRuleset,
  allowances: SshAllowance[],
  removeBlocking: boolean,
  label: string,
): IptablesEdit {
  const edit: IptablesEdit = { insertAtTop: [], remove: [], messages: [], warnings: [] };
  const filter = ruleset.tables.get('filter');
  const inputChain = filter?.chains.get(INPUT);
  const input: ChainRules<IptablesRule> = inputChain ? chainRules(inputChain) : { name: INPUT, rules: [] };
  const lookup = filterLookup(filter);
  const mine = allowances.filter((a) => a.source.family === ruleset.family);
  for (const a of mine) {
    const placement = placeAllow(input, a, lookup);
    const what = `SSH from ${formatCidr(a.source)} to port ${a.port}`;
    if (!placement.needsInsert) continue;
    if (placement.existing) {
      edit.remove.push(placement.existing);
      edit.messages.push(
        `${label}: ${what} is accepted only after ${describeRule(placement.blockersBefore[0]!)} (an ACCEPT after a DROP is dead) → moved to the top of INPUT`,
      );
    } else if (placement.blockersBefore.length > 0) {
      edit.messages.push(
        `${label}: ${what} is blocked by ${describeRule(placement.blockersBefore[0]!)} → ACCEPT inserted at the top of INPUT`,
      );
    } else {
      edit.messages.push(`${label}: no rule accepts ${what} → ACCEPT inserted at the top of INPUT`);
    }
    edit.insertAtTop.push(a);
  }
  if (removeBlocking && mine.length > 0) {
    for (const chain of reachableChains(input, lookup)) {
      for (const { rule, match } of chain.rules) {
        if (isRemovableBlock(match, mine) && !edit.remove.includes(rule)) {
          edit.remove.push(rule);
          edit.messages.push(`${label}: ${describeRule(rule)} blocks an allowed source → removed`);
        }
      }
    }
  }
  return edit;
}

export function describeRule(rule: IptablesRule): string {
  return `'${rule.text}' (${rule.table} table)`;
}

/**
 * The commands that carry out `edit` with `binary` (iptables, iptables-nft,
 * ip6tables-legacy...): misplaced allow rules are deleted first, the allow
 * rules inserted at position 1 (last first, so they end up in playbook
 * order), then blocking rules deleted by their full specification.
 */
export function iptablesCommands(edit: IptablesEdit, binary: string): string[][] {
  const commands: string[][] = [];
  const misplaced = edit.remove.filter((r) => r.match.verdict === 'accept');
  const blocking = edit.remove.filter((r) => r.match.verdict !== 'accept');
  for (const rule of misplaced) commands.push([binary, '-t', rule.table, '-D', rule.chain, ...rule.args]);
  for (const a of [...edit.insertAtTop].reverse())
    commands.push([binary, '-I', INPUT, '1', ...allowRuleArgs(a)]);
  for (const rule of blocking) commands.push([binary, '-t', rule.table, '-D', rule.chain, ...rule.args]);
  return commands;
}

/**
 * Applies `edit` to the text the ruleset was parsed from, touching only the
 * lines concerned: removed rules disappear, allow rules go right before the
 * first rule of filter/INPUT (or after its chain declarations). A text without
 * a filter table gets one.
 */
export function applyIptablesEdit(ruleset: IptablesRuleset, edit: IptablesEdit): string {
  if (edit.insertAtTop.length === 0 && edit.remove.length === 0) return ruleset.lines.join('\n');
  const removed = new Set(edit.remove.map((r) => r.line));
  const added = edit.insertAtTop.map((a) => `-A ${INPUT} ${joinSaveWords(allowRuleArgs(a))}`);
  const filter = ruleset.tables.get('filter');
  const lines = [...ruleset.lines];
  if (!filter || filter.commitLine === -1) {
    // As iptables creates the table: all three built-in chains, accepting.
    const section = [
      '*filter',
      ...BUILTIN_FILTER_CHAINS.map((c) => `:${c} ACCEPT [0:0]`),
      ...added,
      'COMMIT',
    ];
    const keep = lines.filter((_, i) => !removed.has(i));
    // The text ends with a newline (a last empty element) or gets one.
    if (keep[keep.length - 1] === '') keep.pop();
    return [...keep, ...section, ''].join('\n');
  }
  const input = filter.chains.get(INPUT);
  const firstRule = input?.rules[0]?.line;
  let at: number;
  if (firstRule !== undefined) at = firstRule;
  else {
    const declarations = [...filter.chains.values()]
      .map((c) => c.line)
      .filter((l) => l > filter.line && l < filter.commitLine);
    at = declarations.length > 0 ? Math.max(...declarations) + 1 : filter.line + 1;
    if (!input) added.unshift(`:${INPUT} ACCEPT [0:0]`);
  }
  const out: string[] = [];
  lines.forEach((line, i) => {
    if (i === at) out.push(...added);
    if (!removed.has(i)) out.push(line);
  });
  if (at >= lines.length) out.push(...added);
  return out.join('\n');
}

/**
 * Save output made stable for display and for a new rules file: no
 * "# Generated by" comments (they carry a date), packet counters zeroed.
 */
export function normalizeSaveText(text: string): string {
  return text
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .map((l) => l.replace(/^(:\S+ \S+) \[\d+:\d+\]$/, '$1 [0:0]'))
    .join('\n');
}

/** A save text without fail2ban's chains and the rules that jump to them (fail2ban creates them at start). */
export function withoutFail2ban(text: string): string {
  return text
    .split('\n')
    .filter((line) => {
      if (/^:f2b-/i.test(line)) return false;
      const words = line.startsWith('-A ') ? splitSaveWords(line) : [];
      if (words.length > 0 && isFail2banName(words[1] ?? '')) return false;
      const jump = words.findIndex((w) => w === '-j' || w === '-g');
      return !(jump !== -1 && isFail2banName(words[jump + 1] ?? ''));
    })
    .join('\n');
}

/** One table of a save text (e.g. filter), for showing a chain's before/after. */
export function tableText(text: string, table: string): string {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.trim() === `*${table}`);
  if (start === -1) return '';
  const end = lines.findIndex((l, i) => i > start && l.trim() === 'COMMIT');
  return `${lines.slice(start, end === -1 ? undefined : end + 1).join('\n')}\n`;
}
