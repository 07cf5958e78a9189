/**
 * Strict IPv4/IPv6 address and CIDR parsing, canonical rendering, and the set
 * relations the firewall planner needs (does a rule's source contain, or
 * overlap, an address the playbook allows?). No I/O.
 */

export type IpFamily = 4 | 6;

export interface Cidr {
  family: IpFamily;
  /** Network address as an unsigned integer (host bits zero). */
  network: bigint;
  prefix: number;
}

const BITS: Record<IpFamily, number> = { 4: 32, 6: 128 };

function parseIpv4(text: string): bigint | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let value = 0n;
  for (const part of parts) {
    // Leading zeros are rejected: inet_aton reads "010" as octal 8.
    if (!/^(0|[1-9]\d{0,2})$/.test(part)) return null;
    const octet = Number(part);
    if (octet > 255) return null;
    value = (value << 8n) | BigInt(octet);
  }
  return value;
}

function parseHextets(groups: string[]): bigint[] | null {
  const out: bigint[] = [];
  for (const group of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return null;
    out.push(BigInt(`0x${group}`));
  }
  return out;
}

function parseIpv6(text: string): bigint | null {
  let body = text;
  // An embedded IPv4 address (::ffff:10.0.0.1) stands for the last two hextets.
  const lastColon = body.lastIndexOf(':');
  if (body.slice(lastColon + 1).includes('.')) {
    const v4 = parseIpv4(body.slice(lastColon + 1));
    if (v4 === null) return null;
    body = `${body.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = body.split('::');
  if (halves.length > 2) return null;
  const split = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const head = parseHextets(split(halves[0]!));
  const rest = halves.length === 2 ? parseHextets(split(halves[1]!)) : [];
  if (head === null || rest === null) return null;
  const explicit = head.length + rest.length;
  let groups: bigint[];
  if (halves.length === 2) {
    if (explicit > 7) return null;
    groups = [...head, ...Array<bigint>(8 - explicit).fill(0n), ...rest];
  } else {
    groups = head;
    if (groups.length !== 8) return null;
  }
  return groups.reduce((acc, g) => (acc << 16n) | g, 0n);
}

function mask(family: IpFamily, prefix: number): bigint {
  const bits = BITS[family];
  return ((1n << BigInt(bits)) - 1n) ^ ((1n << BigInt(bits - prefix)) - 1n);
}

export interface CidrParse {
  cidr?: Cidr;
  error?: string;
}

/**
 * Parses "10.20.0.0/16", "10.20.0.5", "2001:db8::/32" or "2001:db8::1".
 * With `allowHostBits` (for rules read from a host), "10.20.0.5/16" is
 * normalised to its network; otherwise it is an error, since a playbook that
 * says it probably meant something else.
 */
export function parseCidr(text: string, options: { allowHostBits?: boolean } = {}): CidrParse {
  const slash = text.indexOf('/');
  const addressText = slash === -1 ? text : text.slice(0, slash);
  const prefixText = slash === -1 ? null : text.slice(slash + 1);
  const family: IpFamily | null = addressText.includes(':') ? 6 : addressText.includes('.') ? 4 : null;
  const value = family === 4 ? parseIpv4(addressText) : family === 6 ? parseIpv6(addressText) : null;
  if (family === null || value === null) return { error: `'${text}' is not an IPv4 or IPv6 address or CIDR` };
  const bits = BITS[family];
  let prefix = bits;
  if (prefixText !== null) {
    if (!/^(0|[1-9]\d{0,2})$/.test(prefixText) || Number(prefixText) > bits)
      return { error: `'${text}': prefix length must be 0 to ${bits}` };
    prefix = Number(prefixText);
  }
  const network = value & mask(family, prefix);
  if (network !== value && !options.allowHostBits) {
    const suggestion = formatCidr({ family, network, prefix });
    return { error: `'${text}' has host bits set (did you mean ${suggestion}?)` };
  }
  return { cidr: { family, network, prefix } };
}

/** Parses a CIDR read from a host's rules (host bits tolerated); null when it is not one. */
export function parseHostCidr(text: string): Cidr | null {
  return parseCidr(text, { allowHostBits: true }).cidr ?? null;
}

function formatIpv4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join('.');
}

/** RFC 5952: lower case, longest run (>= 2) of zero groups compressed to "::". */
function formatIpv6(value: bigint): string {
  const groups = Array.from({ length: 8 }, (_, i) => Number((value >> BigInt(112 - 16 * i)) & 0xffffn));
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart === -1) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

export function formatAddress(family: IpFamily, value: bigint): string {
  return family === 4 ? formatIpv4(value) : formatIpv6(value);
}

/** Always with the prefix length: "10.20.0.0/16", "10.0.0.5/32". */
export function formatCidr(cidr: Cidr): string {
  return `${formatAddress(cidr.family, cidr.network)}/${cidr.prefix}`;
}

/** Without the prefix length for a single address ("10.0.0.5"), as nft and ufw print it. */
export function formatCidrShort(cidr: Cidr): string {
  return cidr.prefix === BITS[cidr.family] ? formatAddress(cidr.family, cidr.network) : formatCidr(cidr);
}

export function cidrEquals(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.prefix === b.prefix && a.network === b.network;
}

/** True when every address of `inner` is in `outer`. */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || outer.prefix > inner.prefix) return false;
  return (inner.network & mask(outer.family, outer.prefix)) === outer.network;
}

/** True when the two share at least one address. */
export function cidrOverlaps(a: Cidr, b: Cidr): boolean {
  return cidrContains(a, b) || cidrContains(b, a);
}
