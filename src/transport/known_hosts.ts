/**
 * OpenSSH known_hosts files (sshd(8), "SSH_KNOWN_HOSTS FILE FORMAT"): parsing,
 * host key checks and appending new keys. Everything except the two file
 * helpers at the bottom is pure.
 *
 * ssh2 accepts any host key unless told otherwise (TRAPS.md), so this module is
 * what stands between a run and a man in the middle.
 */

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { mkdir, open, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { errorMessage } from '../errors.js';

/** The port OpenSSH writes as a bare host name; any other port is written `[host]:port`. */
const DEFAULT_SSH_PORT = 22;

export type KnownHostMarker = 'revoked' | 'cert-authority';

/** One glob of a host list: `*` and `?` wildcards; `!` in front excludes. */
export interface HostGlob {
  glob: string;
  negated: boolean;
}

export type HostSelector =
  /** `|1|salt|hash`: HMAC-SHA1 keyed with salt of exactly one host name (HashKnownHosts). */
  | { kind: 'hashed'; salt: Buffer; hash: Buffer }
  /** `a,b,[c]:2222,10.0.0.*,!10.0.0.9` */
  | { kind: 'globs'; globs: HostGlob[] };

export interface KnownHostEntry {
  /** 1-based line number in the file, for messages. */
  line: number;
  marker: KnownHostMarker | null;
  hosts: HostSelector;
  keyType: string;
  keyBase64: string;
  /** The decoded key blob (SSH wire format), compared byte for byte. */
  keyBlob: Buffer;
}

export type HostKeyStatus = 'match' | 'mismatch' | 'unknown' | 'revoked';

const MARKERS: ReadonlyMap<string, KnownHostMarker> = new Map([
  ['@revoked', 'revoked'],
  ['@cert-authority', 'cert-authority'],
]);

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const SHA1_LENGTH = 20;

/**
 * Parses a known_hosts file. Lines OpenSSH would skip (malformed, unknown
 * marker, old RSA1 `host bits exponent modulus` keys, a key whose blob names a
 * different type than the line) are skipped here too: they can never match, so
 * skipping them can only make a check stricter.
 */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  text.split('\n').forEach((rawLine, index) => {
    const entry = parseLine(rawLine, index + 1);
    if (entry) entries.push(entry);
  });
  return entries;
}

function parseLine(rawLine: string, line: number): KnownHostEntry | null {
  const text = rawLine.trim();
  if (text === '' || text.startsWith('#')) return null;
  const fields = text.split(/[ \t]+/);
  let marker: KnownHostMarker | null = null;
  if (fields[0]?.startsWith('@')) {
    const known = MARKERS.get(fields[0]);
    if (!known) return null;
    marker = known;
    fields.shift();
  }
  const [hostField, keyType, keyBase64] = fields;
  if (hostField === undefined || keyType === undefined || keyBase64 === undefined) return null;
  if (!BASE64.test(keyBase64)) return null;
  const keyBlob = Buffer.from(keyBase64, 'base64');
  if (keyTypeOfBlob(keyBlob) !== keyType) return null;
  const hosts = parseHostField(hostField);
  if (!hosts) return null;
  return { line, marker, hosts, keyType, keyBase64, keyBlob };
}

function parseHostField(field: string): HostSelector | null {
  if (field.startsWith('|')) {
    // Only `|1|` (HMAC-SHA1) exists; anything else is a format we cannot check.
    const [empty, version, salt, hash, ...rest] = field.split('|');
    if (empty !== '' || version !== '1' || salt === undefined || hash === undefined || rest.length > 0) {
      return null;
    }
    const saltBytes = Buffer.from(salt, 'base64');
    const hashBytes = Buffer.from(hash, 'base64');
    if (saltBytes.length !== SHA1_LENGTH || hashBytes.length !== SHA1_LENGTH) return null;
    return { kind: 'hashed', salt: saltBytes, hash: hashBytes };
  }
  const globs = field
    .split(',')
    .filter((item) => item !== '' && item !== '!')
    .map((item) =>
      item.startsWith('!')
        ? { glob: item.slice(1).toLowerCase(), negated: true }
        : { glob: item.toLowerCase(), negated: false },
    );
  return globs.length > 0 ? { kind: 'globs', globs } : null;
}

/**
 * The name OpenSSH looks a host up by: the lower-cased host for port 22,
 * `[host]:port` for any other port (a plain `host` entry does not cover port
 * 2222, and `[host]:2222` does not cover port 22).
 */
export function knownHostsName(host: string, port: number): string {
  const lower = host.toLowerCase();
  return port === DEFAULT_SSH_PORT ? lower : `[${lower}]:${port}`;
}

/** Whether an entry's host list selects `name` (a knownHostsName). */
export function hostSelectorMatches(selector: HostSelector, name: string): boolean {
  if (selector.kind === 'hashed') {
    const digest = createHmac('sha1', selector.salt).update(name).digest();
    return timingSafeEqual(digest, selector.hash);
  }
  // As in OpenSSH's match_hostname: a matching negated glob excludes the host
  // whatever else on the line matches; otherwise one positive match is enough.
  let positive = false;
  for (const { glob, negated } of selector.globs) {
    if (globMatches(glob, name)) {
      if (negated) return false;
      positive = true;
    }
  }
  return positive;
}

/** `*` matches any run of characters (including none), `?` exactly one; no other specials. */
export function globMatches(glob: string, text: string): boolean {
  let g = 0;
  let t = 0;
  // Where to resume after the last `*`: the glob index after it, and the text
  // index it currently absorbs up to. Greedy with one backtrack point is
  // enough for `*`/`?` globs and is linear-ish, unlike a naive recursion.
  let starGlob = -1;
  let starText = 0;
  while (t < text.length) {
    const c = glob[g];
    if (c === '*') {
      starGlob = ++g;
      starText = t;
    } else if (c !== undefined && (c === '?' || c === text[t])) {
      g++;
      t++;
    } else if (starGlob !== -1) {
      g = starGlob;
      t = ++starText;
    } else {
      return false;
    }
  }
  while (glob[g] === '*') g++;
  return g === glob.length;
}

/**
 * Checks a host key offered by `host:port` against known_hosts entries.
 *
 * - 'revoked': the key appears on any `@revoked` line. OpenSSH only honours
 *   `@revoked` lines whose host list selects the host; we apply a revocation to
 *   every host, because a revoked key is compromised wherever it shows up.
 * - 'match': a plain (unmarked) line for this host has exactly this key.
 * - 'mismatch': the host has plain lines, but none with this key — of any
 *   type. OpenSSH refuses only when a key of the *same* type differs; when the
 *   host is known by keys of other types it asks (or, with accept-new, adds the
 *   new key). We refuse in both cases: a server that presents an unfamiliar key
 *   type for a known host is as suspicious as one that changed its key, and the
 *   client prefers the known types (knownKeyTypes), so an honest server that
 *   still has its old key presents that one.
 * - 'unknown': no plain line selects the host.
 *
 * `@cert-authority` lines are ignored: they vouch for certificates, not for
 * plain host keys.
 */
export function checkHostKey(
  entries: readonly KnownHostEntry[],
  host: string,
  port: number,
  keyType: string,
  keyBase64: string,
): HostKeyStatus {
  const offered = Buffer.from(keyBase64, 'base64');
  const sameKey = (entry: KnownHostEntry): boolean =>
    entry.keyType === keyType && entry.keyBlob.equals(offered);
  if (entries.some((entry) => entry.marker === 'revoked' && sameKey(entry))) return 'revoked';
  const forHost = knownHostEntriesFor(entries, host, port);
  if (forHost.some(sameKey)) return 'match';
  return forHost.length > 0 ? 'mismatch' : 'unknown';
}

/**
 * Key types already recorded for the host, in file order, so the client can
 * ask for those host key algorithms first (as OpenSSH does) and not trip over
 * a second key type the server also has.
 */
export function knownKeyTypes(entries: readonly KnownHostEntry[], host: string, port: number): string[] {
  return [...new Set(knownHostEntriesFor(entries, host, port).map((entry) => entry.keyType))];
}

/**
 * A parsed known_hosts file indexed for lookups by host: entries naming a
 * host literally are found by a map lookup, so checking N hosts against an
 * N-line file is not N² glob matches. Entries with wildcards or hashed names
 * can match any host, and marked ones (@revoked) apply to any host: those
 * are always checked.
 */
export class KnownHostsIndex {
  private readonly byName = new Map<string, KnownHostEntry[]>();
  private readonly anyHost: KnownHostEntry[] = [];

  constructor(readonly entries: readonly KnownHostEntry[]) {
    for (const entry of entries) {
      // A revoked key is refused whatever host offers it: marked lines are always checked.
      const literal =
        entry.marker === null &&
        entry.hosts.kind === 'globs' &&
        entry.hosts.globs.every((g) => !/[*?]/.test(g.glob))
          ? entry.hosts.globs.filter((g) => !g.negated).map((g) => g.glob.toLowerCase())
          : undefined;
      if (literal === undefined) {
        this.anyHost.push(entry);
        continue;
      }
      for (const name of new Set(literal)) {
        const list = this.byName.get(name) ?? [];
        list.push(entry);
        this.byName.set(name, list);
      }
    }
  }

  /** Every entry that can select `host:port` (a superset; the checks still match each), in file order. */
  candidatesFor(host: string, port: number): KnownHostEntry[] {
    const named = this.byName.get(knownHostsName(host, port)) ?? [];
    if (this.anyHost.length === 0) return named;
    return [...named, ...this.anyHost].sort((a, b) => a.line - b.line);
  }
}

/** The plain (unmarked) entries whose host list selects `host:port`, in file order. */
export function knownHostEntriesFor(
  entries: readonly KnownHostEntry[],
  host: string,
  port: number,
): KnownHostEntry[] {
  const name = knownHostsName(host, port);
  return entries.filter((entry) => entry.marker === null && hostSelectorMatches(entry.hosts, name));
}

/** A known_hosts line (without newline) in OpenSSH's unhashed form. */
export function formatKnownHostsLine(host: string, port: number, keyType: string, keyBase64: string): string {
  if (host === '' || /[\s,#|!*?]/.test(host)) {
    throw new TypeError(
      `cannot record a host key for ${JSON.stringify(host)}: not a plain host name or address`,
    );
  }
  if (!/^[A-Za-z0-9@.+-]+$/.test(keyType) || !BASE64.test(keyBase64)) {
    throw new TypeError(`cannot record a host key for ${host}: malformed key type or key`);
  }
  return `${knownHostsName(host, port)} ${keyType} ${keyBase64}`;
}

/** The key type named inside an SSH wire-format key blob (its first string), or null if malformed. */
export function keyTypeOfBlob(blob: Buffer): string | null {
  if (blob.length < 4) return null;
  const length = blob.readUInt32BE(0);
  if (length === 0 || length > 64 || 4 + length > blob.length) return null;
  return blob.toString('latin1', 4, 4 + length);
}

/** OpenSSH's fingerprint format: `SHA256:` and the unpadded base64 of the SHA-256 of the key blob. */
export function fingerprintSha256(keyBase64: string): string {
  const digest = createHash('sha256').update(Buffer.from(keyBase64, 'base64')).digest('base64');
  return `SHA256:${digest.replace(/=+$/, '')}`;
}

/**
 * Reads and parses a known_hosts file. A missing file means "no host is
 * known" (the usual state before the first accept-new). Any other read error
 * (permissions, a directory, I/O) is thrown: verification must fail closed,
 * never fall back to "unknown" or "accept".
 */
export async function readKnownHostsFile(file: string): Promise<KnownHostEntry[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (isErrnoException(error) && error.code === 'ENOENT') return [];
    throw new Error(`cannot read known_hosts file ${file}: ${errorMessage(error)}`);
  }
  return parseKnownHosts(text);
}

/**
 * Appends one line to a known_hosts file, creating its directory (mode 0700)
 * and the file (mode 0600) when missing, as ssh does for ~/.ssh. A file whose
 * last line lacks a newline gets one first, so the new entry stays on its own
 * line. One write call with O_APPEND, so concurrent appenders do not interleave.
 */
export async function appendKnownHost(file: string, line: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const handle = await open(file, 'a+', 0o600);
  try {
    const { size } = await handle.stat();
    let separator = '';
    if (size > 0) {
      const last = Buffer.alloc(1);
      await handle.read(last, 0, 1, size - 1);
      if (last[0] !== 0x0a) separator = '\n';
    }
    await handle.write(`${separator}${line}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

// Duck-typed rather than `instanceof Error`: errors from node: modules may come
// from another realm (test runners with VM modules), where instanceof fails.
function isErrnoException(error: unknown): error is NodeJS.ErrnoException {
  return typeof error === 'object' && error !== null && 'code' in error;
}
