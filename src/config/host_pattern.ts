/**
 * Host names and host patterns, the way Ansible reads them.
 *
 * Two unrelated bracket syntaxes live here because both are about naming hosts:
 *
 * - **Host ranges** in inventories: `web[01:20]`, `db[a:f]`, `node[1:10:2]` expand
 *   to many host names (Ansible's expand_hostname_range).
 * - **Host patterns** in plays (`hosts:`) and `--limit`: `web:&prod:!web03`,
 *   `~db\d+`, `web*`, `web[0:2]` (a subscript: the first three matched hosts, not a
 *   range). Terms are applied like Ansible: every union first, then every
 *   intersection, then every exclusion, whatever order they were written in.
 */

import type { Diagnostic } from './diagnostics.js';
import { ConfigError } from './diagnostics.js';
import type { Inventory } from './inventory.js';
import { suggest } from './suggest.js';

// ---------------------------------------------------------------------------
// Host ranges
// ---------------------------------------------------------------------------

/** Guards against `h[1:99999999]` exhausting memory. */
export const MAX_RANGE_EXPANSION = 65536;

/** A host range could not be expanded; `offset` is the index in the name of the offending `[`. */
export class HostRangeError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
    this.name = 'HostRangeError';
  }
}

const ASCII_LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** A name cut at its brackets: literal text and the values each `[...]` stands for. */
type NameSegment = string | string[];

/** True when the name contains a `[...]` range to expand. */
export function hasHostRange(name: string): boolean {
  return name.includes('[') || name.includes(']');
}

/**
 * Expands every `[begin:end]` or `[begin:end:step]` in a host name, left to right.
 * A begin with a leading zero (`01`) fixes the width of every number; letters
 * count through a-z then A-Z like Python's string.ascii_letters. A name without
 * brackets is returned as it is. Throws HostRangeError for malformed ranges.
 */
export function expandHostRange(name: string): string[] {
  const segments = splitRangeSegments(name);
  let expanded = [''];
  for (const segment of segments) {
    const choices = typeof segment === 'string' ? [segment] : segment;
    if (expanded.length * choices.length > MAX_RANGE_EXPANSION) {
      throw new HostRangeError(
        `host range in '${name}' expands to more than ${MAX_RANGE_EXPANSION} hosts`,
        name.indexOf('['),
      );
    }
    expanded = expanded.flatMap((prefix) => choices.map((choice) => prefix + choice));
  }
  return expanded;
}

function splitRangeSegments(name: string): NameSegment[] {
  const segments: NameSegment[] = [];
  let cursor = 0;
  while (cursor < name.length) {
    const open = name.indexOf('[', cursor);
    const strayClose = name.indexOf(']', cursor);
    if (strayClose !== -1 && (open === -1 || strayClose < open)) {
      throw new HostRangeError(`unexpected ']' in host name '${name}'`, strayClose);
    }
    if (open === -1) {
      segments.push(name.slice(cursor));
      break;
    }
    const close = name.indexOf(']', open);
    if (close === -1) throw new HostRangeError(`host range in '${name}' is missing its ']'`, open);
    segments.push(name.slice(cursor, open));
    segments.push(expandRangeBody(name.slice(open + 1, close), name, open));
    cursor = close + 1;
  }
  return segments;
}

function expandRangeBody(body: string, name: string, offset: number): string[] {
  const fail = (reason: string): never => {
    throw new HostRangeError(`invalid host range '[${body}]' in '${name}': ${reason}`, offset);
  };
  const bounds = body.split(':');
  if (bounds.length !== 2 && bounds.length !== 3) fail('expected [begin:end] or [begin:end:step]');
  const begin = bounds[0] || '0';
  const end = bounds[1] ?? '';
  const stepText = bounds[2] ?? '1';
  if (end === '') fail('the end value is missing');
  if (!/^[1-9]\d*$/.test(stepText)) fail(`the step '${stepText}' is not a positive integer`);
  const step = Number(stepText);

  const letterBegin = begin.length === 1 ? ASCII_LETTERS.indexOf(begin) : -1;
  const letterEnd = end.length === 1 ? ASCII_LETTERS.indexOf(end) : -1;
  if (letterBegin !== -1 && letterEnd !== -1) {
    if (letterBegin > letterEnd) fail('begin must not come after end');
    return pickEvery(step, letterBegin, letterEnd, (index) => ASCII_LETTERS[index] ?? '');
  }
  if (!/^\d+$/.test(begin) || !/^\d+$/.test(end)) fail('begin and end must both be numbers or both letters');
  const width = begin.startsWith('0') && begin.length > 1 ? begin.length : 0;
  if (width > 0 && end.length !== width) fail('zero-padded begin and end must have the same width');
  const first = Number(begin);
  const last = Number(end);
  if (first > last) fail('begin must not be greater than end');
  if ((last - first) / step >= MAX_RANGE_EXPANSION) {
    fail(`it expands to more than ${MAX_RANGE_EXPANSION} hosts`);
  }
  return pickEvery(step, first, last, (value) => String(value).padStart(width, '0'));
}

function pickEvery(step: number, first: number, last: number, render: (value: number) => string): string[] {
  const picked: string[] = [];
  for (let value = first; value <= last; value += step) picked.push(render(value));
  return picked;
}

/**
 * Ansible's `host:port` shorthand. Only a single ':' outside range brackets
 * followed by digits counts, so IPv6 addresses (several colons) stay whole.
 */
export function splitHostPort(text: string): { name: string; port?: number } {
  const outsideBrackets = text.replace(/\[[^\]]*\]/g, (range) => '_'.repeat(range.length));
  const colon = outsideBrackets.indexOf(':');
  if (colon === -1 || colon !== outsideBrackets.lastIndexOf(':')) return { name: text };
  const port = text.slice(colon + 1);
  if (!/^\d+$/.test(port)) return { name: text };
  return { name: text.slice(0, colon), port: Number(port) };
}

// ---------------------------------------------------------------------------
// Host patterns
// ---------------------------------------------------------------------------

export type PatternOperator = 'union' | 'intersection' | 'exclusion';

/** How a term's expression is compared with host and group names. */
export type PatternMatcher = 'name' | 'glob' | 'regex';

/**
 * Ansible's `[i]` (one host, negative counts from the end) or `[start:end]`
 * (inclusive; `[start:]` runs to the last host), applied to the hosts a term matched.
 */
export type PatternSubscript = { index: number } | { start: number; end: number | undefined };

export interface PatternTerm {
  operator: PatternOperator;
  /** The term as written, with its `&`/`!` prefix. */
  source: string;
  /** Compared with names: no operator, no `~`, no subscript. */
  expression: string;
  matcher: PatternMatcher;
  subscript?: PatternSubscript;
}

export interface PatternSelection {
  /** Inventory order, no duplicates. */
  hosts: string[];
  /** Terms that matched no host and no group, with a suggestion where one is close. */
  warnings: Diagnostic[];
}

/**
 * Splits a pattern into terms. Terms are separated by `,` or `:`; a `:` inside
 * `[...]` belongs to a subscript, and a regex term (`~...`) runs to the next `,`
 * so that it may contain `:`. Empty terms (`web,`) are skipped.
 */
export function parsePattern(pattern: string): PatternTerm[] {
  const terms = splitPatternTerms(pattern).map(parseTerm);
  if (terms.length === 0) throw patternError(`host pattern '${pattern}' is empty`);
  return terms;
}

/** Hosts selected by `pattern`, in inventory order, plus warnings for terms that matched nothing. */
export function evaluatePattern(inventory: Inventory, pattern: string): PatternSelection {
  const terms = parsePattern(pattern);
  const warnings: Diagnostic[] = [];
  const matchTerm = (term: PatternTerm): Set<string> => {
    const { hosts, matchedSomething } = matchPatternTerm(inventory, term);
    if (!matchedSomething) warnings.push(noMatchWarning(inventory, term));
    return hosts;
  };

  const unions = terms.filter((term) => term.operator === 'union');
  let selected = new Set<string>();
  if (unions.length === 0) {
    // Like Ansible, `!web` alone means `all:!web`.
    selected = new Set(inventory.hosts.keys());
  }
  for (const term of unions) for (const host of matchTerm(term)) selected.add(host);
  for (const term of terms.filter((t) => t.operator === 'intersection')) {
    const matched = matchTerm(term);
    selected = new Set([...selected].filter((host) => matched.has(host)));
  }
  for (const term of terms.filter((t) => t.operator === 'exclusion')) {
    for (const host of matchTerm(term)) selected.delete(host);
  }
  return { hosts: [...inventory.hosts.keys()].filter((host) => selected.has(host)), warnings };
}

/** Hosts selected by `pattern`, in inventory order, no duplicates. */
export function matchPattern(inventory: Inventory, pattern: string): string[] {
  return evaluatePattern(inventory, pattern).hosts;
}

function patternError(summary: string): ConfigError {
  return new ConfigError([{ severity: 'error', summary }]);
}

function splitPatternTerms(pattern: string): string[] {
  const terms: string[] = [];
  for (const piece of pattern.split(',')) {
    let current = '';
    let bracketDepth = 0;
    for (const char of piece) {
      const startsRegex = /^[&!]?~/.test(current.trim());
      if (char === ':' && bracketDepth === 0 && !startsRegex) {
        terms.push(current);
        current = '';
        continue;
      }
      if (char === '[') bracketDepth++;
      if (char === ']') bracketDepth = Math.max(0, bracketDepth - 1);
      current += char;
    }
    terms.push(current);
  }
  return terms.map((term) => term.trim()).filter((term) => term !== '');
}

const SUBSCRIPT = /^(.+)\[(?:(-?\d+)|(\d+)[:-](\d*))\]$/;

function parseTerm(source: string): PatternTerm {
  if (/\s/.test(source)) {
    throw patternError(`host pattern term '${source}' contains whitespace; separate terms with ',' or ':'`);
  }
  const operator: PatternOperator = source.startsWith('&')
    ? 'intersection'
    : source.startsWith('!')
      ? 'exclusion'
      : 'union';
  let rest = operator === 'union' ? source : source.slice(1);
  let subscript: PatternSubscript | undefined;
  const subscripted = rest.startsWith('~') ? null : SUBSCRIPT.exec(rest);
  if (subscripted) {
    const [, base = '', index, start, end] = subscripted;
    rest = base;
    subscript =
      index !== undefined
        ? { index: Number(index) }
        : { start: Number(start), end: end === undefined || end === '' ? undefined : Number(end) };
  }
  if (rest === '' || rest === '~') throw patternError(`host pattern term '${source}' names nothing`);
  const term: PatternTerm = rest.startsWith('~')
    ? { operator, source, expression: rest.slice(1), matcher: 'regex' }
    : { operator, source, expression: rest, matcher: /[*?[]/.test(rest) ? 'glob' : 'name' };
  if (subscript) term.subscript = subscript;
  compileMatcher(term); // reject a bad regex now, before any host is touched
  return term;
}

function compileMatcher(term: PatternTerm): (name: string) => boolean {
  switch (term.matcher) {
    case 'name':
      return (name) => name === term.expression;
    case 'glob': {
      const regex = new RegExp(`^${globToRegexSource(term.expression)}$`);
      return (name) => regex.test(name);
    }
    case 'regex': {
      let regex: RegExp;
      try {
        // Python's re.match: anchored at the start only.
        regex = new RegExp(`^(?:${term.expression})`);
      } catch (error) {
        throw patternError(`invalid regular expression in host pattern '${term.source}': ${String(error)}`);
      }
      return (name) => regex.test(name);
    }
  }
}

/** fnmatch: `*`, `?`, `[abc]`, `[!abc]`; an unclosed `[` is literal. */
export function globToRegexSource(glob: string): string {
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const char = glob[i] ?? '';
    if (char === '*') source += '.*';
    else if (char === '?') source += '.';
    else if (char === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close === -1) {
        source += '\\[';
        continue;
      }
      let members = glob.slice(i + 1, close);
      const negated = members.startsWith('!');
      if (negated) members = members.slice(1);
      source += `[${negated ? '^' : ''}${members.replace(/[\\\]^]/g, '\\$&')}]`;
      i = close;
    } else source += char.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return source;
}

/** Hosts of the named groups (and their descendants) and the named hosts, in inventory order. */
function matchPatternTerm(
  inventory: Inventory,
  term: PatternTerm,
): { hosts: Set<string>; matchedSomething: boolean } {
  const matches = compileMatcher(term);
  const matchedGroups = new Set([...inventory.groups.keys()].filter(matches));
  const matched: string[] = [];
  for (const host of inventory.hosts.values()) {
    if (matches(host.name) || host.groups.some((group) => matchedGroups.has(group))) matched.push(host.name);
  }
  const matchedSomething = matchedGroups.size > 0 || matched.length > 0;
  const subscripted = term.subscript ? applySubscript(matched, term.subscript) : matched;
  return { hosts: new Set(subscripted), matchedSomething };
}

function applySubscript(hosts: string[], subscript: PatternSubscript): string[] {
  if ('index' in subscript) {
    const host = hosts.at(subscript.index);
    return host === undefined ? [] : [host];
  }
  const end = subscript.end === undefined ? hosts.length : subscript.end + 1;
  return hosts.slice(subscript.start, end);
}

function noMatchWarning(inventory: Inventory, term: PatternTerm): Diagnostic {
  const names = [...inventory.groups.keys(), ...inventory.hosts.keys()];
  const suggestion = term.matcher === 'name' ? suggest(term.expression, names) : undefined;
  return {
    severity: 'warning',
    summary: `host pattern '${term.source}' matched no host or group${suggestion ? ` (did you mean '${suggestion}'?)` : ''}`,
  };
}
