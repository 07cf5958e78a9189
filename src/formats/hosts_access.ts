/**
 * /etc/hosts.allow and /etc/hosts.deny (hosts_access(5), hosts_options(5)) as
 * Debian's libwrap 7.6.q reads them: a lossless parser and renderer, an
 * evaluator that answers "is this client granted for this daemon?" with the
 * rule that decides, and two narrow editors. No I/O.
 *
 * Facts checked against Debian 12's libwrap.so.0 (7.6.q-32) through
 * hosts_ctl(3), see test/unit/formats/hosts_access_libwrap.test.ts:
 * - a backslash right before a newline joins the next line, also on comment
 *   lines (a commented line ending in `\` swallows the next rule);
 * - `#` starts a comment only in the first column of the joined line; later
 *   `#` and words are patterns (host names);
 * - a last line without a newline is still read;
 * - fields split at `:` outside `[...]`; list items split at blanks and commas;
 *   ALL, EXCEPT, LOCAL... are case-insensitive;
 * - `n.n.n.n/len` works (cidr_mask_addr), and so do `*`/`?` wildcards;
 *   `n.n.n.n/m.m.m.m` and `/len` match only when the net has no host bits;
 *   `/255.255.255.255` and `/0` never match (the mask parsers reject them);
 * - an options field that libwrap cannot process (empty, unknown option,
 *   ALLOW/DENY not last) refuses the connection, in either file.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { formatAddress } from './firewall_cidr.js';

// ---------------------------------------------------------------------------
// Addresses

/** A contiguous range of addresses of one family: one address, or a network. */
export interface AddressRange {
  family: 4 | 6;
  first: bigint;
  last: bigint;
}

const IPV4_OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
/** Canonical dotted quad, as sshd hands the client address to libwrap (no leading zeros). */
const IPV4_CANONICAL = new RegExp(`^${IPV4_OCTET}(?:\\.${IPV4_OCTET}){3}$`);

function ipv4Value(text: string): bigint | undefined {
  if (!IPV4_CANONICAL.test(text)) return undefined;
  return text.split('.').reduce((acc, octet) => (acc << 8n) | BigInt(octet), 0n);
}

const ipv4Text = (value: bigint): string => formatAddress(4, value);

function ipv6Value(text: string): bigint | undefined {
  if (!isIPv6(text) || text.includes('%')) return undefined;
  let body = text;
  // An embedded dotted quad (::ffff:1.2.3.4) becomes two hex groups.
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(body);
  if (tail) {
    const v4 = ipv4Value(tail[1]!);
    if (v4 === undefined) return undefined;
    body = `${body.slice(0, tail.index)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head = '', rest] = body.split('::') as [string, string | undefined];
  const groups = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const headGroups = groups(head);
  const tailGroups = rest === undefined ? [] : groups(rest);
  const missing = 8 - headGroups.length - tailGroups.length;
  const all = [...headGroups, ...Array<string>(rest === undefined ? 0 : missing).fill('0'), ...tailGroups];
  if (all.length !== 8) return undefined;
  return all.reduce((acc, g) => (acc << 16n) | BigInt(`0x${g}`), 0n);
}

const ipv6Text = (value: bigint): string => formatAddress(6, value);

const bits = (family: 4 | 6): bigint => (family === 4 ? 32n : 128n);
const allOnes = (family: 4 | 6): bigint => (1n << bits(family)) - 1n;

function prefixMask(family: 4 | 6, length: number): bigint {
  const hostBits = bits(family) - BigInt(length);
  return allOnes(family) ^ ((1n << hostBits) - 1n);
}

/** Prefix length of a contiguous mask, or undefined. */
function maskPrefixLength(family: 4 | 6, mask: bigint): number | undefined {
  for (let length = 0; length <= Number(bits(family)); length++) {
    if (prefixMask(family, length) === mask) return length;
  }
  return undefined;
}

function rangeOf(family: 4 | 6, net: bigint, length: number): AddressRange {
  const mask = prefixMask(family, length);
  return { family, first: net & mask, last: (net & mask) | (allOnes(family) ^ mask) };
}

const isSingle = (r: AddressRange): boolean => r.first === r.last;

/** The client as text: an address, or network/length. */
export function rangeText(r: AddressRange): string {
  const text = r.family === 4 ? ipv4Text : ipv6Text;
  if (isSingle(r)) return text(r.first);
  const size = r.last - r.first + 1n;
  const length = Number(bits(r.family)) - (size.toString(2).length - 1);
  return `${text(r.first)}/${length}`;
}

/**
 * A client given in a playbook: an IPv4 or IPv6 address, a network in CIDR
 * notation (no host bits set), `n.n.n.n/m.m.m.m`, an `n.n.n.` prefix, or
 * `[v6]` / `[v6]/len`. Returns the range, or a message saying what is wrong.
 */
export function parseClientSpec(text: string): AddressRange | { error: string } {
  const bare = /^\[([^\]]*)\](\/.*)?$/.exec(text);
  const body = bare ? `${bare[1]}${bare[2] ?? ''}` : text;
  if (/^(?:\d{1,3}\.){1,3}$/.test(body)) {
    const octets = body.slice(0, -1).split('.');
    const net = ipv4Value([...octets, ...Array<string>(4 - octets.length).fill('0')].join('.'));
    if (net === undefined) return { error: `${text} is not a valid address prefix` };
    return rangeOf(4, net, octets.length * 8);
  }
  const [address = '', suffix, ...extra] = body.split('/');
  if (extra.length > 0) return { error: `${text} has more than one '/'` };
  const family = isIPv4(address) ? 4 : ipv6Value(address) !== undefined ? 6 : undefined;
  const value = family === 4 ? ipv4Value(address) : family === 6 ? ipv6Value(address) : undefined;
  if (family === undefined || value === undefined) {
    return { error: `${text} is not an IPv4/IPv6 address, a network (CIDR) or an n.n.n. prefix` };
  }
  if (family === 4 && bare) return { error: `${text}: brackets are for IPv6 addresses only` };
  if (suffix === undefined) return { family, first: value, last: value };
  let length: number | undefined;
  if (/^\d{1,3}$/.test(suffix)) length = Number(suffix);
  else if (family === 4 && ipv4Value(suffix) !== undefined) {
    length = maskPrefixLength(4, ipv4Value(suffix)!);
    if (length === undefined) return { error: `${text}: the netmask ${suffix} is not contiguous` };
  }
  if (length === undefined || length > Number(bits(family))) {
    return { error: `${text}: '/${suffix}' is not a prefix length (0-${bits(family)})` };
  }
  const range = rangeOf(family, value, length);
  if (range.first !== value) {
    return {
      error: `${text} has host bits set (libwrap would never match it); did you mean ${rangeText(range)}?`,
    };
  }
  return range;
}

/** The client as a hosts_access pattern that matches exactly that range on every libwrap. */
export function renderClientPattern(r: AddressRange): string {
  if (r.family === 6) {
    if (isSingle(r)) return `[${ipv6Text(r.first)}]`;
    return `[${ipv6Text(r.first)}]/${rangeText(r).split('/')[1]}`;
  }
  // n.n.n.n/m.m.m.m is the form every libwrap understands (n.n.n.n/len is a
  // later addition); a single address is written bare because Debian's
  // libwrap rejects the mask 255.255.255.255.
  if (isSingle(r)) return ipv4Text(r.first);
  return `${ipv4Text(r.first)}/${ipv4Text(allOnes(4) ^ (r.last - r.first))}`;
}

// ---------------------------------------------------------------------------
// Parsing (lossless)

export interface Token {
  text: string;
  /** Offsets into the joined (logical) text of the line. */
  start: number;
  end: number;
}

export interface HostsAccessRule {
  daemons: Token[];
  clients: Token[];
  /** Everything after the second `:`, when present (an empty options field is an error for libwrap). */
  options?: string;
  /** Offset just past the client field (where the options `:` or the end of the line is). */
  clientFieldEnd: number;
}

export interface HostsAccessLine {
  /** 1-based number of the first physical line. */
  line: number;
  /** Exact bytes, with continuation backslashes and the final newline. */
  raw: string;
  /** The line as libwrap reads it: continuations joined, no final newline. */
  text: string;
  /**
   * `malformed`: libwrap warns and skips the line. `broken`: libwrap cannot
   * read the line at all (no final newline, or longer than its 2048-byte
   * buffer) and gives up on the file with an error: in hosts.allow that ends
   * the search there, in hosts.deny it refuses every client that reaches it.
   */
  kind: 'blank' | 'comment' | 'rule' | 'malformed' | 'broken';
  rule?: HostsAccessRule;
  /** Why libwrap skips (malformed) or cannot read (broken) the line. */
  problem?: string;
  /** For each offset of `text`, the offset in `raw`. */
  rawOffsets: number[];
}

export interface HostsAccessFile {
  path: string;
  lines: HostsAccessLine[];
}

const LIST_SEPARATORS = new Set([' ', '\t', '\r', '\n', ',']);
const BLANKS = /^[ \t\r\n]*$/;

/** libwrap's split_at(): the first `delimiter` outside `[...]`, or -1. */
function splitIndex(text: string, delimiter: string, from = 0): number {
  let depth = 0;
  for (let i = from; i < text.length; i++) {
    const c = text[i]!;
    if (c === '[') depth++;
    else if (c === ']') depth--;
    else if (depth === 0 && c === delimiter) return i;
  }
  return -1;
}

function tokenize(text: string, from: number, to: number): Token[] {
  const tokens: Token[] = [];
  let i = from;
  while (i < to) {
    while (i < to && LIST_SEPARATORS.has(text[i]!)) i++;
    const start = i;
    while (i < to && !LIST_SEPARATORS.has(text[i]!)) i++;
    if (i > start) tokens.push({ text: text.slice(start, i), start, end: i });
  }
  return tokens;
}

/** hosts_access.c reads lines into a BUFLEN (2048) buffer with fgets(): text plus newline plus NUL must fit. */
const MAX_LINE_BYTES = 2047;

function classify(line: Omit<HostsAccessLine, 'kind'>, unreadable: string | undefined): HostsAccessLine {
  const { text } = line;
  if (unreadable !== undefined && text !== '') return { ...line, kind: 'broken', problem: unreadable };
  if (BLANKS.test(text)) return { ...line, kind: 'blank' };
  if (text.startsWith('#')) return { ...line, kind: 'comment' };
  const first = splitIndex(text, ':');
  if (first < 0) {
    return { ...line, kind: 'malformed', problem: `missing ":" separator: libwrap skips this line` };
  }
  const second = splitIndex(text, ':', first + 1);
  const clientFieldEnd = second < 0 ? text.length : second;
  const rule: HostsAccessRule = {
    daemons: tokenize(text, 0, first),
    clients: tokenize(text, first + 1, clientFieldEnd),
    clientFieldEnd,
    ...(second < 0 ? {} : { options: text.slice(second + 1) }),
  };
  return { ...line, kind: 'rule', rule };
}

/** Splits a file into logical lines exactly as libwrap's xgets() joins them; never loses a byte. */
export function parseHostsAccess(content: string, path: string): HostsAccessFile {
  const lines: HostsAccessLine[] = [];
  let offset = 0;
  let physical = 1;
  while (offset < content.length) {
    const startLine = physical;
    let raw = '';
    let text = '';
    let unreadable: string | undefined;
    const rawOffsets: number[] = [];
    for (;;) {
      const newline = content.indexOf('\n', offset);
      const end = newline < 0 ? content.length : newline + 1;
      const piece = content.slice(offset, end);
      const continued = newline >= 0 && piece.endsWith('\\\n');
      const kept = newline < 0 ? piece : piece.slice(0, continued ? -2 : -1);
      if (Buffer.byteLength(text) + Buffer.byteLength(piece) > MAX_LINE_BYTES) {
        unreadable ??= `longer than libwrap's ${MAX_LINE_BYTES - 1}-byte line limit`;
      }
      for (let i = 0; i < kept.length; i++) rawOffsets.push(raw.length + i);
      text += kept;
      raw += piece;
      offset = end;
      if (newline >= 0) physical++;
      if (newline < 0 || (continued && offset >= content.length)) {
        unreadable ??= continued
          ? 'the file ends inside this continued line (no final newline)'
          : 'no newline at the end of the file';
      }
      if (!continued || offset >= content.length) break;
    }
    lines.push(classify({ line: startLine, raw, text, rawOffsets }, unreadable));
  }
  return { path, lines };
}

export function renderHostsAccess(file: HostsAccessFile): string {
  return file.lines.map((l) => l.raw).join('');
}

// ---------------------------------------------------------------------------
// Evaluation

type Truth = 'yes' | 'no' | 'unknown';

interface Match {
  value: Truth;
  /** Why the value is unknown (or, for a partial range match, which part). */
  reason?: string;
}

const YES: Match = { value: 'yes' };
const NO: Match = { value: 'no' };
const unknown = (reason: string): Match => ({ value: 'unknown', reason });

function or(matches: Match[]): Match {
  if (matches.some((m) => m.value === 'yes')) return YES;
  return matches.find((m) => m.value === 'unknown') ?? NO;
}

function and(a: Match, b: Match): Match {
  if (a.value === 'no' || b.value === 'no') return NO;
  if (a.value === 'unknown') return a;
  return b;
}

function not(a: Match): Match {
  return a.value === 'yes' ? NO : a.value === 'no' ? YES : a;
}

const same = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();

/** libwrap's NOT_INADDR(): only tokens with other characters than digits, dots and slashes are compared with host names. */
const mayNameHost = (token: string): boolean => /[^0-9./]/.test(token);

function wildcardMatch(pattern: string, text: string): boolean {
  const source = pattern
    .split('')
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`, 'is').test(text);
}

/** libwrap's string_match() on a known string (a daemon name or the client's address text). */
function stringMatches(token: string, text: string): boolean {
  if (token.startsWith('.')) return text.toLowerCase().endsWith(token.toLowerCase());
  if (same(token, 'ALL')) return true;
  if (same(token, 'KNOWN')) return text !== 'unknown';
  if (token.endsWith('.')) return text.toLowerCase().startsWith(token.toLowerCase());
  if (same(token, text)) return true;
  if (token.includes('*') || token.includes('?')) return wildcardMatch(token, text);
  return false;
}

/** yes when `covered` holds all of the client, no when none of it, unknown when a part. */
function coverage(client: AddressRange, covered: AddressRange, pattern: string): Match {
  if (client.family !== covered.family) return NO;
  if (covered.first <= client.first && client.last <= covered.last) return YES;
  if (covered.last < client.first || client.last < covered.first) return NO;
  return unknown(`${pattern} matches only part of ${rangeText(client)}`);
}

/** How a range relates to the set of addresses a with (a & mask) === net. */
function maskedMatch(client: AddressRange, net: bigint, mask: bigint, pattern: string): Match {
  if ((net & mask) !== net) return NO; // a net with host bits never equals (addr & mask)
  const length = maskPrefixLength(client.family, mask);
  if (length === undefined) {
    if (isSingle(client)) return (client.first & mask) === net ? YES : NO;
    return unknown(`${pattern} is a non-contiguous netmask; sshfix evaluates it for single addresses only`);
  }
  return coverage(client, rangeOf(client.family, net, length), pattern);
}

function exactAddressMatch(client: AddressRange, family: 4 | 6, value: bigint, pattern: string): Match {
  return coverage(client, { family, first: value, last: value }, pattern);
}

/** libwrap's masked_match() for `net/mask` patterns. */
function netMaskMatch(token: string, client: AddressRange): Match {
  const slash = token.indexOf('/');
  const netText = token.slice(0, slash);
  const maskText = token.slice(slash + 1);
  const bracketed = /^\[(.*)\]$/.exec(netText);
  if (bracketed) {
    const net = ipv6Value(bracketed[1]!);
    if (net === undefined || !/^\d{1,3}$/.test(maskText) || Number(maskText) > 128) return NO;
    if (client.family !== 6) return NO;
    // For IPv6 libwrap masks the pattern's net too, so host bits in it do not matter.
    const mask = prefixMask(6, Number(maskText));
    return maskedMatch(client, net & mask, mask, token);
  }
  const net = ipv4Value(netText);
  if (net === undefined) {
    return /^[\d.]+$/.test(netText)
      ? unknown(`${token}: sshfix does not evaluate this unusual net/mask spelling`)
      : NO;
  }
  let mask: bigint | undefined;
  if (/^\d{1,2}$/.test(maskText) && Number(maskText) >= 1 && Number(maskText) <= 32) {
    mask = prefixMask(4, Number(maskText));
  } else if (ipv4Value(maskText) !== undefined) {
    mask = ipv4Value(maskText)!;
    // Debian's dot_quad_addr() returns INADDR_NONE for it: the pattern never matches.
    if (mask === allOnes(4)) return NO;
  } else if (maskText === '0') {
    return NO; // cidr_mask_addr() rejects /0 on Debian
  } else {
    return unknown(`${token}: sshfix does not evaluate this unusual net/mask spelling`);
  }
  if (client.family !== 4) return NO;
  return maskedMatch(client, net, mask, token);
}

/** libwrap's host_match() for the client's host (the part after `user@`). */
function hostPatternMatch(token: string, client: AddressRange): Match {
  if (token.startsWith('@')) return unknown(`${token} is a NIS netgroup: depends on NIS`);
  if (token.startsWith('/')) {
    return unknown(`${token} is a file of patterns: sshfix does not read pattern files (unsupported)`);
  }
  if (same(token, 'KNOWN') || same(token, 'UNKNOWN') || same(token, 'PARANOID')) {
    return unknown(`${token.toUpperCase()} depends on DNS (reverse lookup of the client)`);
  }
  if (same(token, 'LOCAL')) return unknown('LOCAL depends on DNS (the client host name)');
  if (same(token, 'ALL')) return YES;
  if (splitIndex(token, '/') >= 0) return netMaskMatch(token, client);
  if (token.endsWith('.') && !token.startsWith('.') && /^[\d.]+$/.test(token)) {
    // An `n.n.n.` prefix of the address text; a malformed one never matches.
    const prefix = parseClientSpec(token);
    return 'error' in prefix ? NO : coverage(client, prefix, token);
  }
  const bracketed = /^\[(.*)\]$/.exec(token);
  if (bracketed) {
    const value = ipv6Value(bracketed[1]!);
    if (value === undefined) return NO;
    return exactAddressMatch(client, 6, value, token);
  }
  if (/^[\d.]+$/.test(token) && !token.startsWith('.')) {
    // Compared as a string with the canonical address text: 010.0.0.1 never matches.
    const value = ipv4Value(token);
    if (value === undefined) return NO;
    return exactAddressMatch(client, 4, value, token);
  }
  const dnsReason = `${token} is a host name pattern: depends on DNS`;
  if (isSingle(client)) {
    const address = client.family === 4 ? ipv4Text(client.first) : ipv6Text(client.first);
    if (stringMatches(token, address)) return YES;
    // A host name is never made of digits, dots and wildcards only.
    if (/^[\d.*?]+$/.test(token)) return NO;
    return mayNameHost(token) ? unknown(dnsReason) : NO;
  }
  if (token === '*') return YES;
  return unknown(
    /^[\d.*?]+$/.test(token) ? `${token}: sshfix evaluates wildcards for single addresses only` : dnsReason,
  );
}

/** libwrap's client_match(): `user@host` needs an ident lookup unless the user part is ALL. */
function clientPatternMatch(token: string, client: AddressRange): Match {
  const at = splitIndex(token, '@', 1);
  if (at < 0) return hostPatternMatch(token, client);
  const user = token.slice(0, at);
  const host = hostPatternMatch(token.slice(at + 1), client);
  if (same(user, 'ALL')) return host;
  return and(host, unknown(`${token} needs an ident (RFC 931) lookup of the client's user`));
}

/** libwrap's server_match() for the daemon list: `daemon@host` depends on the address the client connected to. */
function daemonPatternMatch(token: string, daemon: string): Match {
  const at = splitIndex(token, '@', 1);
  if (at < 0) return stringMatches(token, daemon) ? YES : NO;
  if (!stringMatches(token.slice(0, at), daemon)) return NO;
  const host = token.slice(at + 1);
  if (same(host, 'ALL') || host === '*') return YES;
  return unknown(`${token} depends on which local address the client connects to`);
}

/** libwrap's list_match(): items up to the first EXCEPT, minus whatever the rest matches. */
function listMatch(tokens: Token[], matchOne: (token: string) => Match): Match {
  const exceptAt = tokens.findIndex((t) => same(t.text, 'EXCEPT'));
  const items = exceptAt < 0 ? tokens : tokens.slice(0, exceptAt);
  const matched = or(items.map((t) => matchOne(t.text)));
  if (exceptAt < 0 || matched.value === 'no') return matched;
  return and(matched, not(listMatch(tokens.slice(exceptAt + 1), matchOne)));
}

export type Access = 'granted' | 'refused' | 'unknown';

export interface RuleRef {
  file: string;
  line: number;
  /** The rule as libwrap reads it (continuations joined). */
  text: string;
}

export interface Verdict {
  access: Access;
  by?: RuleRef;
  reason: string;
}

interface RuleEffect {
  access: Access;
  reason: string;
}

const NEEDS_VALUE = new Set([
  'user',
  'group',
  'umask',
  'linger',
  'spawn',
  'twist',
  'setenv',
  'severity',
  'banners',
]);
const TAKES_NO_VALUE = new Set(['keepalive', 'allow', 'deny']);
const OPTIONAL_VALUE = new Set(['rfc931', 'nice']);
const MUST_BE_LAST = new Set(['allow', 'deny', 'twist']);

/** Splits an options field at `:` not escaped by a backslash (hosts_options(5)). */
function splitOptions(options: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < options.length; i++) {
    const c = options[i]!;
    if (c === '\\' && options[i + 1] === ':') {
      current += ':';
      i++;
    } else if (c === ':') {
      parts.push(current);
      current = '';
    } else current += c;
  }
  parts.push(current);
  return parts;
}

/** What a matching rule does to the connection, from its file and its options (hosts_options(5)). */
export function ruleEffect(rule: HostsAccessRule, role: 'allow' | 'deny'): RuleEffect {
  const base: RuleEffect =
    role === 'allow'
      ? { access: 'granted', reason: 'first match in hosts.allow' }
      : { access: 'refused', reason: 'first match in hosts.deny' };
  if (rule.options === undefined) return base;
  const parts = splitOptions(rule.options);
  let effect = base;
  for (const [index, part] of parts.entries()) {
    const option = part.trim();
    const keyEnd = option.search(/[ \t\r\n=]/);
    const key = (keyEnd < 0 ? option : option.slice(0, keyEnd)).toLowerCase();
    const value = keyEnd < 0 ? '' : option.slice(keyEnd).replace(/^[ \t\r\n=]+/, '');
    const error = (what: string): RuleEffect => ({
      access: 'refused',
      reason: `libwrap cannot process the options (${what}) and refuses every client the rule matches`,
    });
    if (key === '') return error('empty option');
    if (!NEEDS_VALUE.has(key) && !TAKES_NO_VALUE.has(key) && !OPTIONAL_VALUE.has(key)) {
      return error(`unknown option "${key}"`);
    }
    if (NEEDS_VALUE.has(key) && value === '') return error(`"${key}" needs a value`);
    if (TAKES_NO_VALUE.has(key) && value !== '') return error(`"${key}" takes no value`);
    if (MUST_BE_LAST.has(key) && index !== parts.length - 1) return error(`"${key}" must be the last option`);
    if (key === 'allow') effect = { access: 'granted', reason: 'its ALLOW option grants' };
    if (key === 'deny') effect = { access: 'refused', reason: 'its DENY option refuses' };
    if (key === 'twist')
      effect = { access: 'refused', reason: 'its twist option replaces the daemon with a command' };
    if (key === 'user' || key === 'group') {
      effect = {
        access: 'unknown',
        reason: `its ${key} option changes the identity of the daemon's process`,
      };
    }
  }
  return effect;
}

export interface RuleSource {
  file: HostsAccessFile;
  role: 'allow' | 'deny';
}

function ruleMatch(rule: HostsAccessRule, daemon: string, client: AddressRange): Match {
  return and(
    listMatch(rule.daemons, (t) => daemonPatternMatch(t, daemon)),
    listMatch(rule.clients, (t) => clientPatternMatch(t, client)),
  );
}

const refOf = (file: HostsAccessFile, line: HostsAccessLine): RuleRef => ({
  file: file.path,
  line: line.line,
  text: line.text,
});

/**
 * The verdict of the rules of `sources`, read in order, for (daemon, client);
 * `fallback` when none matches. A rule whose match cannot be evaluated makes
 * the verdict unknown only when it would decide differently from what follows.
 */
export function evaluateRules(
  sources: RuleSource[],
  daemon: string,
  client: AddressRange,
  fallback: Verdict,
): Verdict {
  let verdict = fallback;
  for (const { file, role } of [...sources].reverse()) {
    const afterFile = verdict;
    for (const line of [...file.lines].reverse()) {
      if (line.kind === 'broken') {
        // hosts_access(): table_match() returns ERR; only YES from hosts.allow
        // grants, anything but NO from hosts.deny refuses.
        verdict =
          role === 'allow'
            ? afterFile
            : {
                access: 'refused',
                by: refOf(file, line),
                reason: `libwrap cannot read this line (${line.problem}) and refuses every client`,
              };
        continue;
      }
      if (!line.rule) continue;
      const match = ruleMatch(line.rule, daemon, client);
      if (match.value === 'no') continue;
      const effect = ruleEffect(line.rule, role);
      if (match.value === 'yes') {
        verdict = { access: effect.access, by: refOf(file, line), reason: effect.reason };
      } else if (effect.access !== verdict.access || effect.access === 'unknown') {
        verdict = { access: 'unknown', by: refOf(file, line), reason: match.reason ?? 'cannot be evaluated' };
      }
    }
  }
  return verdict;
}

/** hosts_access(5): first match in hosts.allow grants; else first match in hosts.deny refuses; else granted. */
export function evaluateAccess(
  files: { allow: HostsAccessFile; deny: HostsAccessFile },
  daemon: string,
  client: AddressRange,
): Verdict {
  return evaluateRules(
    [
      { file: files.allow, role: 'allow' },
      { file: files.deny, role: 'deny' },
    ],
    daemon,
    client,
    { access: 'granted', reason: `no rule in ${files.allow.path} or ${files.deny.path} matches` },
  );
}

/** "refused by /etc/hosts.deny:17 (sshd: 10.20.0.5)" */
export function describeVerdict(v: Verdict): string {
  if (!v.by) return `${v.access} (${v.reason})`;
  const where = `${v.by.file}:${v.by.line} (${v.by.text.trim()})`;
  if (v.access === 'unknown') return `undetermined because of ${where}: ${v.reason}`;
  return `${v.access} by ${where}`;
}

// ---------------------------------------------------------------------------
// Editing

export interface EditResult {
  file: HostsAccessFile;
  /** One line per edit, for the plan's messages; empty when nothing changed. */
  edits: string[];
  /** Side effects an operator should know about (e.g. other daemons of a shared rule). */
  warnings: string[];
}

export interface ClientSpec {
  /** As the playbook gave it (for messages). */
  text: string;
  range: AddressRange;
}

function lineEnding(file: HostsAccessFile): string {
  const crlf = file.lines.filter((l) => l.raw.endsWith('\r\n')).length;
  return crlf * 2 > file.lines.length && crlf > 0 ? '\r\n' : '\n';
}

function reparse(file: HostsAccessFile, content: string): HostsAccessFile {
  return parseHostsAccess(content, file.path);
}

/**
 * Makes sure hosts.allow itself grants each client for `daemon`: the clients
 * it does not already grant go into one new rule `daemon: a b c`, inserted
 * before every other rule (after the leading comments), so no earlier rule
 * with a DENY option can shadow it. Idempotent.
 */
export function ensureAllowed(allowFile: HostsAccessFile, daemon: string, clients: ClientSpec[]): EditResult {
  const notYet: Verdict = { access: 'unknown', reason: `no rule in ${allowFile.path} grants it` };
  const missing = clients.filter(
    (c) => evaluateRules([{ file: allowFile, role: 'allow' }], daemon, c.range, notYet).access !== 'granted',
  );
  const patterns = [...new Set(missing.map((c) => renderClientPattern(c.range)))];
  if (patterns.length === 0) return { file: allowFile, edits: [], warnings: [] };
  const eol = lineEnding(allowFile);
  let at = 0;
  while (at < allowFile.lines.length && ['comment', 'blank'].includes(allowFile.lines[at]!.kind)) at++;
  while (at > 0 && allowFile.lines[at - 1]!.kind === 'blank') at--;
  const before = allowFile.lines
    .slice(0, at)
    .map((l) => l.raw)
    .join('');
  const after = allowFile.lines
    .slice(at)
    .map((l) => l.raw)
    .join('');
  // A last line without a newline must get one before the new rule follows it.
  const joint = before !== '' && !before.endsWith('\n') ? eol : '';
  const ruleText = `${daemon}: ${patterns.join(' ')}`;
  const file = reparse(allowFile, `${before}${joint}${ruleText}${eol}${after}`);
  const lineNumber = before === '' ? 1 : (before.match(/\n/g)?.length ?? 0) + (joint ? 1 : 0) + 1;
  return {
    file,
    edits: [`${allowFile.path}:${lineNumber}: inserted "${ruleText}"`],
    warnings: [],
  };
}

interface Splice {
  start: number;
  end: number;
  insert: string;
}

function applySplices(raw: string, splices: Splice[]): string {
  let out = raw;
  for (const s of [...splices].sort((a, b) => b.start - a.start)) {
    out = out.slice(0, s.start) + s.insert + out.slice(s.end);
  }
  return out;
}

const rawStart = (line: HostsAccessLine, logical: number): number =>
  logical < line.rawOffsets.length ? line.rawOffsets[logical]! : line.raw.replace(/\r?\n$/, '').length;
const rawAfter = (line: HostsAccessLine, logicalEnd: number): number => line.rawOffsets[logicalEnd - 1]! + 1;

/** The client items libwrap tries before the first EXCEPT. */
function clientItems(rule: HostsAccessRule): Token[] {
  const exceptAt = rule.clients.findIndex((t) => same(t.text, 'EXCEPT'));
  return exceptAt < 0 ? rule.clients : rule.clients.slice(0, exceptAt);
}

/** Removes client tokens (with the separators that go with them) from one rule's raw text. */
function removeTokens(line: HostsAccessLine, doomed: Token[]): string {
  const clients = line.rule!.clients;
  const splices: Splice[] = doomed.map((token) => {
    const index = clients.indexOf(token);
    const next = clients[index + 1];
    if (next) return { start: rawStart(line, token.start), end: rawStart(line, next.start), insert: '' };
    const previous = clients[index - 1];
    const from = previous ? rawAfter(line, previous.end) : rawStart(line, token.start);
    return { start: from, end: rawAfter(line, token.end), insert: '' };
  });
  return applySplices(line.raw, splices);
}

/** Adds `EXCEPT x y` at the end of the client list, or merges into its only EXCEPT. */
function addExceptions(line: HostsAccessLine, patterns: string[]): string {
  const clients = line.rule!.clients;
  const last = clients[clients.length - 1]!;
  const hasExcept = clients.some((t) => same(t.text, 'EXCEPT'));
  const insert = `${hasExcept ? '' : ' EXCEPT'} ${patterns.join(' ')}`;
  const at = rawAfter(line, last.end);
  return applySplices(line.raw, [{ start: at, end: at, insert }]);
}

/** Every physical line of the rule gets the marker (the first one alone would do for libwrap, not for readers). */
function commentOut(raw: string): string {
  return raw
    .split('\n')
    .map((physical) => (physical === '' ? physical : `# sshfix: ${physical}`))
    .join('\n');
}

/** Exactly this client as a pattern (10.20.0.0/16 and 10.20.0.0/255.255.0.0 are the same pattern). */
function isExactPattern(token: string, client: AddressRange): boolean {
  if (same(token, 'ALL')) return false;
  const range = parseClientSpec(token);
  if ('error' in range) return false;
  // Debian's libwrap never matches n.n.n.n/255.255.255.255: such a token is not "this client".
  if (token.endsWith('/255.255.255.255')) return false;
  return range.family === client.family && range.first === client.first && range.last === client.last;
}

function daemonsServed(rule: HostsAccessRule, daemon: string): string | undefined {
  const names = rule.daemons.map((t) => t.text);
  if (names.length === 1 && same(names[0]!, daemon)) return undefined;
  return names.join(' ');
}

/**
 * Makes sure no rule of `file` that libwrap reaches refuses the clients for
 * `daemon`. In hosts.deny (role 'deny') every rule refuses unless its options
 * say ALLOW; in hosts.allow (role 'allow') only rules whose options say DENY
 * (or that libwrap cannot process) refuse. Each refusing rule is narrowed:
 * the client's exact pattern is removed from it (the rule is commented out
 * with a `# sshfix:` marker when no client is left), and where a broader
 * pattern still matches, `EXCEPT client` is added (merged into an existing
 * EXCEPT). Other rules are never touched. Idempotent.
 */
export function ensureNotDenied(
  file: HostsAccessFile,
  daemon: string,
  clients: ClientSpec[],
  options: { role?: 'allow' | 'deny' } = {},
): EditResult {
  const role = options.role ?? 'deny';
  const edits: string[] = [];
  const warnings: string[] = [];
  if (role === 'deny') ({ file } = repairBrokenLines(file, edits));
  const settled = new Set<ClientSpec>();
  const lines = [...file.lines];
  for (const [index, line] of lines.entries()) {
    if (!line.rule) continue;
    const effect = ruleEffect(line.rule, role);
    const refusing: ClientSpec[] = [];
    for (const client of clients) {
      if (settled.has(client)) continue;
      const match = ruleMatch(line.rule, daemon, client.range);
      if (match.value === 'no') continue;
      if (effect.access === 'granted') {
        if (match.value === 'yes') settled.add(client); // libwrap stops here for this client
        continue;
      }
      refusing.push(client);
    }
    if (refusing.length === 0) continue;
    const where = `${file.path}:${line.line}`;
    const original = line.text.trim();
    const isDoomed = (token: Token): boolean => refusing.some((c) => isExactPattern(token.text, c.range));
    const items = clientItems(line.rule);
    const doomed = items.filter(isDoomed);
    let current = line;
    if (doomed.length > 0) {
      const removed = doomed.map((t) => t.text).join(' ');
      if (doomed.length === items.length) {
        lines[index] = { ...line, raw: commentOut(line.raw), kind: 'comment', rule: undefined };
        edits.push(`${where}: commented out "${original}" (no client left after removing ${removed})`);
        const others = daemonsServed(line.rule, daemon);
        if (others) warnings.push(`${where} served ${others}: they no longer refuse ${removed} either`);
        continue;
      }
      // One token at a time, re-reading the rule in between, so separators are never removed twice.
      for (;;) {
        const next = clientItems(current.rule!).find(isDoomed);
        if (!next) break;
        const [edited] = parseHostsAccess(removeTokens(current, [next]), file.path).lines;
        current = { ...edited!, line: line.line };
      }
      edits.push(`${where}: removed ${removed} from "${original}"`);
    }
    const stillMatching = refusing.filter((c) => ruleMatch(current.rule!, daemon, c.range).value !== 'no');
    if (stillMatching.length > 0) {
      const excepts = current.rule!.clients.filter((t) => same(t.text, 'EXCEPT')).length;
      if (excepts > 1) {
        throw new Error(
          `${where}: "${original}" has nested EXCEPT lists; sshfix cannot narrow it safely for ${stillMatching.map((c) => c.text).join(', ')}: edit it by hand`,
        );
      }
      const patterns = [...new Set(stillMatching.map((c) => renderClientPattern(c.range)))];
      const [edited] = parseHostsAccess(addExceptions(current, patterns), file.path).lines;
      current = { ...edited!, line: line.line };
      edits.push(`${where}: added EXCEPT ${patterns.join(' ')} to "${original}"`);
    }
    const others = daemonsServed(line.rule, daemon);
    if (others) {
      warnings.push(
        `${where} also serves ${others}: the edit admits ${refusing.map((c) => c.text).join(', ')} there too`,
      );
    }
    lines[index] = current;
    const leftover = refusing.filter((c) => ruleMatch(current.rule!, daemon, c.range).value !== 'no');
    if (leftover.length > 0) {
      throw new Error(
        `${where}: could not narrow "${original}" for ${leftover.map((c) => c.text).join(', ')}`,
      );
    }
  }
  if (edits.length === 0) return { file, edits, warnings: [] };
  return { file: reparse(file, lines.map((l) => l.raw).join('')), edits, warnings };
}

/**
 * A hosts.deny line libwrap cannot read refuses every client. A missing final
 * newline is repaired by adding it; an overlong line cannot be narrowed safely.
 */
function repairBrokenLines(file: HostsAccessFile, edits: string[]): { file: HostsAccessFile } {
  const broken = file.lines.find((l) => l.kind === 'broken');
  if (!broken) return { file };
  if (broken !== file.lines[file.lines.length - 1] || !/newline/.test(broken.problem ?? '')) {
    throw new Error(
      `${file.path}:${broken.line}: libwrap cannot read this line (${broken.problem ?? 'unreadable'}) and refuses every client; fix it by hand`,
    );
  }
  edits.push(
    `${file.path}:${broken.line}: added the missing final newline (without it libwrap refuses every client that hosts.allow does not admit)`,
  );
  // A last line ending in a backslash needs two: one ends it, the other the continuation.
  let repaired = reparse(file, `${renderHostsAccess(file)}${lineEnding(file)}`);
  if (repaired.lines.some((l) => l.kind === 'broken')) {
    repaired = reparse(file, `${renderHostsAccess(repaired)}${lineEnding(file)}`);
  }
  return { file: repaired };
}
