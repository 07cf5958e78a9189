/**
 * The values fail2ban works with, parsed strictly: addresses and networks
 * (for `ignoreip` and `unban`), durations (`bantime = 1h`), and the current
 * bans as the firewall shows them (`f2b-<jail>` chains, ipsets, nftables
 * sets) or as `fail2ban-client banned` prints them. No I/O.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { formatAddress } from './firewall_cidr.js';

export interface Address {
  family: 4 | 6;
  /** The address as a number, for containment tests. */
  value: bigint;
  /** Canonical text: dotted quad, or RFC 5952 IPv6. */
  text: string;
}

export interface Network extends Address {
  prefix: number;
}

const IPV4_BITS = 32;
const IPV6_BITS = 128;

function ipv4Value(text: string): bigint {
  return text.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function ipv6Value(text: string): bigint {
  // An embedded IPv4 tail (::ffff:1.2.3.4) is two 16-bit groups.
  const body = text.replace(/(\d+\.\d+\.\d+\.\d+)$/, (v4) => {
    const n = ipv4Value(v4);
    return `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  });
  const [left = '', right] = body.split('::');
  const groups = (s: string): bigint[] => (s === '' ? [] : s.split(':').map((g) => BigInt(parseInt(g, 16))));
  const l = groups(left);
  const r = right === undefined ? [] : groups(right);
  const zeros = Array<bigint>(8 - l.length - r.length).fill(0n);
  return [...l, ...zeros, ...r].reduce((acc, g) => (acc << 16n) | g, 0n);
}

/** A single IPv4 or IPv6 address (no zone, no prefix), or undefined. */
export function parseAddress(text: string): Address | undefined {
  if (isIPv4(text)) {
    const value = ipv4Value(text);
    return { family: 4, value, text: formatAddress(4, value) };
  }
  if (isIPv6(text) && !text.includes('%')) {
    const value = ipv6Value(text);
    return { family: 6, value, text: formatAddress(6, value) };
  }
  return undefined;
}

/** A dotted IPv4 netmask (255.255.0.0) as a prefix length, if contiguous. */
function maskPrefix(mask: string): number | undefined {
  if (!isIPv4(mask)) return undefined;
  const bits = ipv4Value(mask).toString(2).padStart(IPV4_BITS, '0');
  return /^1*0*$/.test(bits) ? (bits.indexOf('0') === -1 ? IPV4_BITS : bits.indexOf('0')) : undefined;
}

/**
 * `ADDR`, `ADDR/LEN` or (IPv4) `ADDR/MASK`, as fail2ban's IPAddr accepts them.
 * A bare address is a network of one. Host bits are kept, as fail2ban keeps
 * them (`127.0.0.1/8` is what its stock jail.conf shows).
 */
export function parseNetwork(text: string): Network | undefined {
  const [addressText = '', prefixText, ...more] = text.split('/');
  if (more.length > 0) return undefined;
  const address = parseAddress(addressText);
  if (!address) return undefined;
  const max = address.family === 4 ? IPV4_BITS : IPV6_BITS;
  if (prefixText === undefined) return { ...address, prefix: max };
  let prefix: number | undefined;
  if (/^\d{1,3}$/.test(prefixText)) prefix = Number(prefixText);
  else if (address.family === 4) prefix = maskPrefix(prefixText);
  if (prefix === undefined || prefix > max) return undefined;
  return { ...address, prefix };
}

export function networkText(network: Network): string {
  const max = network.family === 4 ? IPV4_BITS : IPV6_BITS;
  return network.prefix === max ? network.text : `${network.text}/${network.prefix}`;
}

export function networkContains(network: Network, address: Address): boolean {
  if (network.family !== address.family) return false;
  const bits = BigInt((network.family === 4 ? IPV4_BITS : IPV6_BITS) - network.prefix);
  return network.value >> bits === address.value >> bits;
}

/** RFC 1123 host name, as fail2ban resolves them in ignoreip. */
export function isHostName(text: string): boolean {
  return (
    text.length <= 253 &&
    /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?$/.test(text) &&
    !/^[\d.]+$/.test(text)
  );
}

/**
 * The form two ignoreip entries are compared in: canonical address or
 * network, host names lower-cased, anything else (an interpolation such as
 * `%(known/ignoreip)s`) as written.
 */
export function ignoreEntryKey(entry: string): string {
  const network = parseNetwork(entry);
  if (network) return networkText(network);
  return isHostName(entry) ? entry.toLowerCase().replace(/\.$/, '') : entry;
}

// ---------------------------------------------------------------------------
// Durations

const UNIT_SECONDS: ReadonlyArray<[RegExp, number]> = [
  [/^(s|sec|secs|seconds?)$/, 1],
  [/^(m|mi|min|mins|minutes?)$/, 60],
  [/^(h|hours?)$/, 3600],
  [/^(d|days?)$/, 86400],
  [/^(w|wk|weeks?)$/, 604800],
  [/^(mo|mon|months?)$/, 2629800],
  [/^(y|yr|years?)$/, 31557600],
];

/**
 * A fail2ban time (MyTime.str2seconds): `-1` (forever), seconds, or terms like
 * `1h`, `10m`, `1d 12h`, `1.5h`. Returns seconds, or undefined when fail2ban
 * would not accept the text.
 */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim().toLowerCase();
  if (/^-?\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
  if (trimmed === '') return undefined;
  let total = 0;
  const term = /\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*/y;
  let at = 0;
  while (at < trimmed.length) {
    term.lastIndex = at;
    const m = term.exec(trimmed);
    if (!m) return undefined;
    const unit = UNIT_SECONDS.find(([re]) => re.test(m[2]!));
    if (!unit) return undefined;
    total += Number(m[1]) * unit[1];
    at = term.lastIndex;
  }
  return total;
}

// ---------------------------------------------------------------------------
// Current bans

/** Bans by jail name; addresses in canonical text. */
export type BanList = Map<string, Set<string>>;

export interface FirewallBans {
  bans: BanList;
  /** Jails whose ban object (chain, ipset, nftables set) exists in the dump. */
  jailsSeen: Set<string>;
}

function addBan(bans: BanList, jail: string, addressText: string): void {
  const network = parseNetwork(addressText);
  if (!network || network.prefix !== (network.family === 4 ? IPV4_BITS : IPV6_BITS)) return;
  const set = bans.get(jail) ?? new Set<string>();
  set.add(network.text);
  bans.set(jail, set);
}

/**
 * Bans as fail2ban's firewall actions leave them, from the concatenated
 * output of `iptables-save`/`ip6tables-save` (iptables actions: one
 * `-A f2b-JAIL -s ADDR -j REJECT|DROP` rule per ban), `ipset save`
 * (iptables-ipset actions: `add f2b-JAIL ADDR`) and `nft list table inet
 * f2b-table` (nftables actions: sets `addr-set-JAIL`/`addr6-set-JAIL`).
 */
export function parseFirewallBans(dump: string): FirewallBans {
  const bans: BanList = new Map();
  const jailsSeen = new Set<string>();
  let nftSet: string | undefined;
  let inElements = false;
  for (const line of dump.split('\n')) {
    const chain = /^:f2b-(\S+) /.exec(line);
    if (chain) jailsSeen.add(chain[1]!);
    const rule = /^-A f2b-(\S+) -s (\S+) (?:.* )?-j (?!RETURN\b)\S+/.exec(line);
    if (rule) addBan(bans, rule[1]!, rule[2]!);
    const ipsetCreate = /^create f2b-(\S+) /.exec(line);
    if (ipsetCreate) jailsSeen.add(ipsetCreate[1]!);
    const ipsetAdd = /^add f2b-(\S+) (\S+)/.exec(line);
    if (ipsetAdd) addBan(bans, ipsetAdd[1]!, ipsetAdd[2]!);
    const setStart = /^\s*set addr6?-set-(\S+) \{/.exec(line);
    if (setStart) {
      nftSet = setStart[1]!;
      jailsSeen.add(nftSet);
    }
    if (nftSet !== undefined) {
      const elements = /elements = \{(.*)/.exec(line);
      if (elements) inElements = true;
      if (inElements) {
        const body = (elements ? elements[1]! : line).split('}')[0]!;
        for (const item of body.split(',')) {
          const address = item.trim().split(/\s+/)[0];
          if (address) addBan(bans, nftSet, address);
        }
        if (line.includes('}')) inElements = false;
      }
      if (/^\s*\}\s*$/.test(line) && !inElements) nftSet = undefined;
    }
  }
  return { bans, jailsSeen };
}

/**
 * `fail2ban-client banned` (0.11+) prints a Python list of one-key dicts:
 * `[{'sshd': ['10.0.0.2']}, {'recidive': []}]`. Also accepts the fallback
 * format of the probe: `jail NAME` lines each followed by `get NAME banip` output.
 */
export function parseClientBans(output: string): BanList {
  const bans: BanList = new Map();
  const trimmed = output.trim();
  if (trimmed.startsWith('[')) {
    for (const m of trimmed.matchAll(/'([^']+)':\s*\[([^\]]*)\]/g)) {
      bans.set(m[1]!, new Set());
      for (const a of m[2]!.matchAll(/'([^']+)'/g)) addBan(bans, m[1]!, a[1]!);
    }
    return bans;
  }
  let jail: string | undefined;
  for (const line of trimmed.split('\n')) {
    const header = /^jail (\S+)$/.exec(line);
    if (header) {
      jail = header[1]!;
      bans.set(jail, new Set());
    } else if (jail !== undefined) {
      for (const word of line.split(/[\s,]+/).filter(Boolean)) addBan(bans, jail, word);
    }
  }
  return bans;
}

/** One line per ban, `JAIL ADDR`, sorted: the text the plan shows before/after. */
export function renderBans(bans: BanList): string {
  const lines = [...bans].flatMap(([jail, set]) => [...set].map((a) => `${jail} ${a}`));
  return lines
    .sort()
    .map((l) => `${l}\n`)
    .join('');
}
