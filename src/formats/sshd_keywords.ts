/**
 * What sshd knows about each sshd_config keyword: canonical spelling, how
 * repeated occurrences combine, whether it may appear inside a Match block and
 * what kind of value it takes. Sources: sshd_config(5) of OpenSSH 9.x (keyword
 * list and the "Match" subset) and servconf.c (how each keyword is stored).
 */
import { formatVersion, openssh, versionAtLeast, type OpenSshVersion } from './openssh_version.js';
import { parseCidr } from './firewall_cidr.js';

/**
 * How several global occurrences of one keyword combine (servconf.c):
 * - `single`: the first value read wins (`if (*activep && *intptr == -1)`).
 * - `accumulate`: every line adds to a list (`opt_array_append` on each line):
 *   Port, ListenAddress, HostKey, AllowUsers...
 * - `list`: the first line wins, and its arguments form a list (`uvalue == 0`
 *   guard): SetEnv, PermitOpen, AuthorizedKeysFile, LogVerbose...
 */
export type Multiplicity = 'single' | 'accumulate' | 'list';

/** How values compare: `flag` yes/no, `enum` a case-insensitive word, `time` seconds with s/m/h/d/w units. */
export type ValueType =
  | 'flag'
  | 'enum'
  | 'time'
  | 'int'
  | 'octal'
  | 'maxstartups'
  | 'string'
  | 'algorithms'
  /** PerSourcePenalties: `yes`, `no`, or `name:value` items (`authfail:5 noauth:1`). */
  | 'penalties'
  /** PerSourceNetBlockSize: `ipv4bits` or `ipv4bits:ipv6bits`. */
  | 'netblock'
  /** PerSourcePenaltyExemptList: comma-separated addresses, CIDRs and wildcard patterns. */
  | 'addresses';

/**
 * How one value from a playbook becomes arguments on the line:
 * - `one`: the value is a single argument (a path, a user name, a number):
 *   quoted when it holds spaces.
 * - `words`: the value is sshd_config text, arguments separated by spaces
 *   (`Subsystem sftp internal-sftp`, `RekeyLimit 1G 1h`), written as given.
 * - `rest`: sshd takes the rest of the line verbatim (servconf.c `str + len`:
 *   ForceCommand, AuthorizedKeysCommand...), written as given.
 * Items of a list are always one argument each, except for keywords whose
 * every line is one item (Subsystem, ListenAddress): those take the keyword's shape.
 */
export type ArgumentShape = 'one' | 'words' | 'rest';

export interface KeywordInfo {
  /** Spelling used by sshd_config(5). */
  readonly name: string;
  readonly multiplicity: Multiplicity;
  readonly valueType: ValueType;
  /** Allowed inside a Match block (sshd_config(5), "Match"). */
  readonly allowedInMatch: boolean;
  /**
   * For `accumulate` keywords: whether one line is one value (`line`: Port,
   * Subsystem, HostKey) or each argument is one value (`token`: AllowUsers).
   */
  readonly itemPerLine?: 'line' | 'token';
  /**
   * OpenSSH 9.2's servconf.c stores these without the "first value wins"
   * guard (`MaxStartups` unconditionally, the others under `if (*activep)`),
   * so there the *last* occurrence wins; current upstream made them
   * first-match-wins. Duplicates must be removed for a version-proof result.
   */
  readonly lastWinsOnOlderSshd?: boolean;
  /**
   * The OpenSSH release that introduced the keyword, where fleets still run
   * older ones: to an older sshd it is "Bad configuration option", and
   * sshd -t fails. Undefined for keywords every supported release knows and
   * for distribution patches (DebianBanner, GSSAPIKeyExchange).
   */
  readonly since?: OpenSshVersion;
  /** The word `none` is a value too (servconf.c: "no limit"). */
  readonly acceptsNone?: boolean;
  /** Accepted but ignored by OpenSSH 9.x ("Deprecated option"). */
  readonly deprecated?: boolean;
  /** Another spelling sshd maps to the same option (e.g. ChallengeResponseAuthentication). */
  readonly aliasOf?: string;
  /** For `enum` keywords: spellings sshd treats as the same value (first is canonical for sshd -T). */
  readonly synonyms?: readonly (readonly string[])[];
  /** For `enum` keywords: every value sshd accepts (case-insensitive), from servconf.c's tables. */
  readonly values?: readonly string[];
  readonly shape: ArgumentShape;
}

type Spec = Omit<KeywordInfo, 'name'>;

const flag = (allowedInMatch: boolean): Spec => ({
  multiplicity: 'single',
  valueType: 'flag',
  allowedInMatch,
  shape: 'one',
});
/** A single-valued keyword: one argument unless `extra` says otherwise. */
const single = (valueType: ValueType, allowedInMatch: boolean, extra: Partial<Spec> = {}): Spec => ({
  multiplicity: 'single',
  valueType,
  allowedInMatch,
  shape: 'one',
  ...extra,
});
const enumeration = (allowedInMatch: boolean, values: readonly string[], extra: Partial<Spec> = {}): Spec =>
  single('enum', allowedInMatch, { values, ...extra });
const accumulate = (
  itemPerLine: 'line' | 'token',
  allowedInMatch: boolean,
  shape: ArgumentShape = 'words',
): Spec => ({
  multiplicity: 'accumulate',
  valueType: 'string',
  allowedInMatch,
  itemPerLine,
  shape,
});
const list = (
  allowedInMatch: boolean,
  valueType: ValueType = 'string',
  values?: readonly string[],
): Spec => ({
  multiplicity: 'list',
  valueType,
  allowedInMatch,
  shape: 'words',
  ...(values !== undefined ? { values } : {}),
});
const deprecated = (): Spec => ({
  multiplicity: 'single',
  valueType: 'string',
  allowedInMatch: true,
  deprecated: true,
  shape: 'words',
});
/** The rest of the line, verbatim (servconf.c `xstrdup(str + len)`). */
const restOfLine = (allowedInMatch: boolean): Spec => single('string', allowedInMatch, { shape: 'rest' });
/** Several arguments written as given (`RekeyLimit 1G 1h`). */
const words = (allowedInMatch: boolean, extra: Partial<Spec> = {}): Spec =>
  single('string', allowedInMatch, { shape: 'words', ...extra });

const FORWARDING_SYNONYMS = [['yes', 'all'], ['no'], ['local'], ['remote']] as const;
const FORWARDING = ['yes', 'all', 'no', 'local', 'remote'];
/** misc.c ipqos[]; numbers 0-255 are accepted too. */
const IPQOS_NAMES = [
  'none',
  ...['af11', 'af12', 'af13', 'af21', 'af22', 'af23', 'af31', 'af32', 'af33', 'af41', 'af42', 'af43'],
  ...['cs0', 'cs1', 'cs2', 'cs3', 'cs4', 'cs5', 'cs6', 'cs7'],
  ...['ef', 'le', 'lowdelay', 'throughput', 'reliability'],
];
/** log.c log_levels[] and log_facilities[]. */
const LOG_LEVELS = ['quiet', 'fatal', 'error', 'info', 'verbose', 'debug', 'debug1', 'debug2', 'debug3'];
const SYSLOG_FACILITIES = [
  'daemon',
  'user',
  'auth',
  'authpriv',
  ...[0, 1, 2, 3, 4, 5, 6, 7].map((n) => `local${n}`),
];

const KEYWORD_SPECS: Record<string, Spec> = {
  AcceptEnv: accumulate('token', true),
  AddressFamily: enumeration(false, ['any', 'inet', 'inet6']),
  AllowAgentForwarding: flag(true),
  AllowGroups: accumulate('token', true),
  AllowStreamLocalForwarding: enumeration(true, FORWARDING, { synonyms: FORWARDING_SYNONYMS }),
  AllowTcpForwarding: enumeration(true, FORWARDING, { synonyms: FORWARDING_SYNONYMS }),
  AllowUsers: accumulate('token', true),
  AuthenticationMethods: list(true),
  AuthorizedKeysCommand: restOfLine(true),
  AuthorizedKeysCommandUser: single('string', true),
  AuthorizedKeysFile: list(true),
  AuthorizedPrincipalsCommand: restOfLine(true),
  AuthorizedPrincipalsCommandUser: single('string', true),
  AuthorizedPrincipalsFile: single('string', true),
  Banner: single('string', true),
  CASignatureAlgorithms: single('algorithms', true),
  ChallengeResponseAuthentication: { ...flag(true), aliasOf: 'KbdInteractiveAuthentication' },
  ChannelTimeout: { ...list(true), since: openssh('9.2') },
  ChrootDirectory: single('string', true),
  Ciphers: single('algorithms', false),
  ClientAliveCountMax: single('int', true),
  ClientAliveInterval: single('time', true),
  Compression: enumeration(false, ['yes', 'delayed', 'no'], { synonyms: [['yes', 'delayed'], ['no']] }),
  DebianBanner: flag(false),
  DenyGroups: accumulate('token', true),
  DenyUsers: accumulate('token', true),
  DisableForwarding: flag(true),
  ExposeAuthInfo: flag(true),
  // digest.c digests[]: ssh_digest_alg_by_name() takes any of them.
  FingerprintHash: enumeration(false, ['md5', 'sha1', 'sha256', 'sha384', 'sha512'], {
    lastWinsOnOlderSshd: true,
  }),
  ForceCommand: restOfLine(true),
  GatewayPorts: enumeration(true, ['clientspecified', 'yes', 'no']),
  GSSAPIAuthentication: flag(true),
  GSSAPICleanupCredentials: flag(false),
  GSSAPIKeyExchange: flag(false),
  GSSAPIKexAlgorithms: single('algorithms', false),
  GSSAPIStoreCredentialsOnRekey: flag(false),
  GSSAPIStrictAcceptorCheck: flag(false),
  HostbasedAcceptedAlgorithms: single('algorithms', true),
  HostbasedAcceptedKeyTypes: { ...single('algorithms', true), aliasOf: 'HostbasedAcceptedAlgorithms' },
  HostbasedAuthentication: flag(true),
  HostbasedUsesNameFromPacketOnly: flag(true),
  HostCertificate: accumulate('line', false, 'one'),
  HostKey: accumulate('line', false, 'one'),
  HostKeyAgent: single('string', false),
  HostKeyAlgorithms: single('algorithms', false),
  IgnoreRhosts: enumeration(true, ['yes', 'no', 'shosts-only']),
  IgnoreUserKnownHosts: flag(false),
  Include: accumulate('token', true),
  // One class for both, or interactive and bulk: `IPQoS af21 cs1`.
  IPQoS: enumeration(true, IPQOS_NAMES, { lastWinsOnOlderSshd: true, shape: 'words' }),
  KbdInteractiveAuthentication: flag(true),
  KerberosAuthentication: flag(true),
  KerberosGetAFSToken: flag(false),
  KerberosOrLocalPasswd: flag(false),
  KerberosTicketCleanup: flag(false),
  KexAlgorithms: single('algorithms', false),
  ListenAddress: accumulate('line', false),
  LoginGraceTime: single('time', false),
  LogLevel: enumeration(true, LOG_LEVELS),
  LogVerbose: { ...list(true), since: openssh('8.5') },
  MACs: single('algorithms', false),
  Match: accumulate('line', true),
  MaxAuthTries: single('int', true),
  MaxSessions: single('int', true),
  MaxStartups: single('maxstartups', false, { lastWinsOnOlderSshd: true }),
  ModuliFile: single('string', false, { since: openssh('8.6') }),
  PasswordAuthentication: flag(true),
  PermitEmptyPasswords: flag(true),
  PermitListen: list(true),
  PermitOpen: list(true),
  PermitRootLogin: enumeration(
    true,
    ['prohibit-password', 'without-password', 'forced-commands-only', 'yes', 'no'],
    {
      synonyms: [['prohibit-password', 'without-password'], ['yes'], ['no'], ['forced-commands-only']],
    },
  ),
  PermitTTY: flag(true),
  PermitTunnel: enumeration(true, ['yes', 'point-to-point', 'ethernet', 'no']),
  PermitUserEnvironment: single('string', false),
  PermitUserRC: flag(true),
  // PerSourceMaxStartups and PerSourceNetBlockSize: OpenSSH 8.5; the penalties: 9.8 (servconf.c history).
  PerSourceMaxStartups: single('int', false, {
    lastWinsOnOlderSshd: true,
    acceptsNone: true,
    since: openssh('8.5'),
  }),
  PerSourceNetBlockSize: single('netblock', false, { lastWinsOnOlderSshd: true, since: openssh('8.5') }),
  // Each name:value item is first-wins on its own; the planner treats the first line as the value.
  PerSourcePenalties: { ...list(false, 'penalties'), since: openssh('9.8') },
  PerSourcePenaltyExemptList: single('addresses', false, { since: openssh('9.8') }),
  PidFile: single('string', false),
  Port: accumulate('line', false),
  PrintLastLog: flag(false),
  PrintMotd: flag(false),
  PubkeyAcceptedAlgorithms: single('algorithms', true),
  PubkeyAcceptedKeyTypes: { ...single('algorithms', true), aliasOf: 'PubkeyAcceptedAlgorithms' },
  PubkeyAuthentication: flag(true),
  PubkeyAuthOptions: {
    ...list(true, 'enum', ['none', 'touch-required', 'verify-required']),
    since: openssh('8.2'),
  },
  RefuseConnection: { ...flag(true), since: openssh('9.9') },
  RekeyLimit: words(true),
  RequiredRSASize: single('int', false, { since: openssh('9.1') }),
  // Several files since OpenSSH 10.1.
  RevokedKeys: words(true),
  SecurityKeyProvider: single('string', false, { since: openssh('8.2') }),
  SetEnv: list(true),
  SshdAuthPath: single('string', false, { since: openssh('10.0') }),
  SshdSessionPath: single('string', false, { since: openssh('9.8') }),
  StreamLocalBindMask: single('octal', true, { lastWinsOnOlderSshd: true }),
  StreamLocalBindUnlink: flag(true),
  StrictModes: flag(false),
  Subsystem: accumulate('line', false),
  SyslogFacility: enumeration(false, SYSLOG_FACILITIES),
  TCPKeepAlive: flag(false),
  TrustedUserCAKeys: single('string', true),
  UnusedConnectionTimeout: single('time', true, { acceptsNone: true, since: openssh('9.2') }),
  UseDNS: flag(false),
  UsePAM: flag(false),
  VersionAddendum: restOfLine(false),
  X11DisplayOffset: single('int', true),
  X11Forwarding: flag(true),
  X11UseLocalhost: flag(true),
  XAuthLocation: single('string', false),
  // Still parsed by OpenSSH 9.x, with "Deprecated option" in the log.
  AFSTokenPassing: deprecated(),
  DSAAuthentication: deprecated(),
  KeyRegenerationInterval: deprecated(),
  Protocol: deprecated(),
  RhostsRSAAuthentication: deprecated(),
  RSAAuthentication: deprecated(),
  ServerKeyBits: deprecated(),
  UseLogin: deprecated(),
  UsePrivilegeSeparation: deprecated(),
};

const KEYWORDS_BY_KEY: ReadonlyMap<string, KeywordInfo> = new Map(
  Object.entries(KEYWORD_SPECS).map(([name, spec]) => [name.toLowerCase(), { name, ...spec }]),
);

/** Every keyword sshfix knows, in canonical spelling. */
export const SSHD_KEYWORDS: readonly string[] = Object.keys(KEYWORD_SPECS);

/** Keyword knowledge for `name` (any case), following aliases; undefined when sshd does not know it. */
export function keywordInfo(name: string): KeywordInfo | undefined {
  const info = KEYWORDS_BY_KEY.get(name.toLowerCase());
  if (info?.aliasOf !== undefined) return KEYWORDS_BY_KEY.get(info.aliasOf.toLowerCase());
  return info;
}

/**
 * The canonical spelling of a keyword (sshd matches keywords
 * case-insensitively), following aliases such as
 * ChallengeResponseAuthentication → KbdInteractiveAuthentication.
 */
export function canonicalKeyword(name: string): string | undefined {
  return keywordInfo(name)?.name;
}

/** The known keyword nearest to `name` by edit distance, for "did you mean ...?"; undefined when nothing is close. */
export function suggestKeyword(name: string): string | undefined {
  const wanted = name.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const keyword of SSHD_KEYWORDS) {
    const distance = editDistance(wanted, keyword.toLowerCase());
    if (distance < bestDistance) {
      best = keyword;
      bestDistance = distance;
    }
  }
  const tolerance = Math.max(2, Math.floor(wanted.length / 3));
  return bestDistance <= tolerance ? best : undefined;
}

/** Levenshtein distance. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

const TIME_UNIT_SECONDS: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/**
 * sshd's convtime(): `90`, `5m`, `1h30m`, `1W` (units are case-insensitive) →
 * seconds; undefined when not a time value.
 */
export function parseTimeValue(text: string): number | undefined {
  if (!/^(\d+[smhdwSMHDW]?)+$/.test(text)) return undefined;
  let total = 0;
  for (const part of text.matchAll(/(\d+)([smhdwSMHDW]?)/g)) {
    total += Number(part[1]) * (TIME_UNIT_SECONDS[(part[2] ?? '').toLowerCase()] ?? 1);
  }
  return total;
}

/** One argument in the form sshd compares it with, given the keyword's value type. */
export function normalizeArgument(info: KeywordInfo | undefined, arg: string): string {
  if (info === undefined) return arg;
  switch (info.valueType) {
    case 'flag':
      return arg.toLowerCase();
    case 'enum': {
      const lower = arg.toLowerCase();
      const group = info.synonyms?.find((names) => names.includes(lower));
      return group?.[0] ?? lower;
    }
    case 'time': {
      if (arg.toLowerCase() === 'none') return '0';
      const seconds = parseTimeValue(arg);
      return seconds === undefined ? arg : String(seconds);
    }
    case 'int':
      return /^\d+$/.test(arg) ? String(Number(arg)) : arg;
    case 'penalties':
      return normalizePenalty(arg);
    case 'netblock': {
      // `24` leaves IPv6 at its default: sshd -T prints `24:128`.
      const [v4, v6 = '128'] = arg.split(':');
      return /^\d+(:\d+)?$/.test(arg) ? `${Number(v4)}:${Number(v6)}` : arg;
    }
    case 'octal':
      return /^[0-7]+$/.test(arg) ? parseInt(arg, 8).toString(8) : arg;
    case 'maxstartups':
      return normalizeMaxStartups(arg);
    default:
      return arg;
  }
}

/** `10` means begin=full=10 with the default 30% rate (servconf.c), so `10` == `10:30:10`. */
function normalizeMaxStartups(arg: string): string {
  const parts = arg.split(':');
  if (parts.length === 1 && /^\d+$/.test(arg)) return `${Number(arg)}:30:${Number(arg)}`;
  if (parts.length === 3 && parts.every((p) => /^\d+$/.test(p))) return parts.map(Number).join(':');
  return arg;
}

/**
 * Whether two argument lists mean the same to sshd for `keyword`: enum and
 * yes/no values compare case-insensitively, times by seconds (`5m` == `300`),
 * `prohibit-password` == `without-password`, `MaxStartups 10` == `10:30:10`.
 */
export function valuesEqual(keyword: string, a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const info = keywordInfo(keyword);
  return a.every((arg, i) => normalizeArgument(info, arg) === normalizeArgument(info, b[i] ?? ''));
}

const INT_MAX = 2 ** 31 - 1;

/**
 * Why sshd would refuse `args` as the value of a line of `info`'s keyword
 * (servconf.c, per value type), or undefined when it would not. Strings are
 * not checked: sshd reads them at connection time.
 */
export function valueProblem(info: KeywordInfo, args: readonly string[]): string | undefined {
  if (info.valueType === 'string') return undefined;
  if (info.valueType === 'penalties') return penaltiesProblem(args);
  if (info.name === 'IPQoS') {
    if (args.length < 1 || args.length > 2) return 'takes one or two traffic classes';
    const bad = args.find((a) => !isIpqos(a));
    return bad === undefined
      ? undefined
      : `${quoted(bad)} is not a traffic class (${IPQOS_NAMES.join(', ')}, or 0-255)`;
  }
  if (info.multiplicity === 'list') {
    const bad = args.find((a) => !(info.values ?? []).includes(a.toLowerCase()));
    return bad === undefined ? undefined : `${quoted(bad)} is not one of ${(info.values ?? []).join(', ')}`;
  }
  if (args.length !== 1) return `takes one value, got ${args.length}`;
  const arg = args[0] ?? '';
  if (info.acceptsNone === true && arg === 'none') return undefined;
  switch (info.valueType) {
    case 'flag':
      return /^(yes|no)$/i.test(arg) ? undefined : `${quoted(arg)} is not yes or no`;
    case 'enum':
      return (info.values ?? []).includes(arg.toLowerCase())
        ? undefined
        : `${quoted(arg)} is not one of ${(info.values ?? []).join(', ')}`;
    case 'int':
      return /^\d+$/.test(arg) && Number(arg) <= INT_MAX ? undefined : `${quoted(arg)} is not a whole number`;
    case 'octal':
      return /^[0-7]+$/.test(arg) && parseInt(arg, 8) <= 0o777
        ? undefined
        : `${quoted(arg)} is not an octal mode (0-0777)`;
    case 'time':
      return parseTimeValue(arg) === undefined
        ? `${quoted(arg)} is not a time (seconds, or a number with s, m, h, d or w: 90, 5m, 1h30m)`
        : undefined;
    case 'maxstartups':
      return maxStartupsProblem(arg);
    case 'netblock':
      return netBlockProblem(arg);
    case 'addresses':
      return addressListProblem(arg);
    case 'algorithms':
      // A comma-separated list, optionally starting with +, - or ^ (sshd_config(5), Ciphers).
      return /^[+\-^]?[^,\s]+(,[^,\s]+)*$/.test(arg)
        ? undefined
        : `${quoted(arg)} is not a comma-separated list of algorithms`;
  }
}

const quoted = (text: string): string => JSON.stringify(text);

/** misc.c parse_ipqos(): a class name, or a number (strtol base 0) from 0 to 255. */
function isIpqos(arg: string): boolean {
  if (IPQOS_NAMES.includes(arg.toLowerCase())) return true;
  if (!/^(0x[0-9a-f]+|0[0-7]*|[1-9]\d*)$/i.test(arg)) return false;
  const value = arg.toLowerCase().startsWith('0x')
    ? parseInt(arg, 16)
    : arg.startsWith('0')
      ? parseInt(arg, 8)
      : Number(arg);
  return value <= 255;
}

/**
 * servconf.c sMaxStartups: `start` alone, or `start:rate:full` with
 * start <= full and 1 <= rate <= 100; start and full above 0.
 */
function maxStartupsProblem(arg: string): string | undefined {
  const spec = `${quoted(arg)} is not start or start:rate:full`;
  const parts = arg.split(':');
  if (!parts.every((p) => /^\d+$/.test(p)) || (parts.length !== 1 && parts.length !== 3)) return spec;
  const [start = 0, rate = 30, full = start] = parts.length === 3 ? parts.map(Number) : [Number(parts[0])];
  if (start <= 0 || full <= 0) return `${quoted(arg)}: start and full must be above 0`;
  if (start > full) return `${quoted(arg)}: start (${start}) is above full (${full})`;
  if (rate < 1 || rate > 100) return `${quoted(arg)}: rate (${rate}) is not a percentage from 1 to 100`;
  return undefined;
}

/**
 * PerSourcePenalties items (servconf.c sPerSourcePenalties): a time for each
 * kind of offence and for the bounds, a count of tracked sources, and what
 * to do when the table overflows. Names and modes are case-sensitive
 * (strprefix, strcmp); the release that added each item is its `since`.
 */
const PENALTY_ITEMS: Record<string, { kind: 'time' | 'count' | 'overflow'; since: OpenSshVersion }> = {
  crash: { kind: 'time', since: openssh('9.8') },
  authfail: { kind: 'time', since: openssh('9.8') },
  noauth: { kind: 'time', since: openssh('9.8') },
  'grace-exceeded': { kind: 'time', since: openssh('9.8') },
  max: { kind: 'time', since: openssh('9.8') },
  min: { kind: 'time', since: openssh('9.8') },
  'max-sources4': { kind: 'count', since: openssh('9.8') },
  'max-sources6': { kind: 'count', since: openssh('9.8') },
  overflow: { kind: 'overflow', since: openssh('9.8') },
  overflow6: { kind: 'overflow', since: openssh('9.8') },
  refuseconnection: { kind: 'time', since: openssh('9.9') },
  invaliduser: { kind: 'time', since: openssh('10.3') },
};

function splitPenalty(arg: string): { name: string; value: string } | undefined {
  const colon = arg.indexOf(':');
  return colon === -1 ? undefined : { name: arg.slice(0, colon), value: arg.slice(colon + 1) };
}

/**
 * Why sshd would refuse a PerSourcePenalties line. `yes` and `no` stand
 * alone ("argument must appear alone"); sshd_config(5)'s `off` is not a
 * word sshd takes. Times are whole seconds with units, as every release
 * from 9.8 reads them (fractions need 10.3).
 */
function penaltiesProblem(args: readonly string[]): string | undefined {
  if (args.length === 0) return 'takes yes, no, or name:value items (authfail:5 noauth:1)';
  const alone = args.find((a) => /^(yes|no|off)$/i.test(a));
  if (alone !== undefined) {
    if (/^off$/i.test(alone)) return `${quoted(alone)} is not a value sshd takes: use no`;
    if (args.length > 1) return `${quoted(alone)} must appear alone`;
    return undefined;
  }
  for (const arg of args) {
    const item = splitPenalty(arg);
    const spec = item && PENALTY_ITEMS[item.name];
    if (item === undefined || spec === undefined)
      return `${quoted(arg)} is not a penalty item (${Object.keys(PENALTY_ITEMS)
        .map((n) => `${n}:`)
        .join(', ')})`;
    if (spec.kind === 'time' && parseTimeValue(item.value) === undefined)
      return `${quoted(arg)}: ${quoted(item.value)} is not a time (seconds, or a number with s, m, h, d or w)`;
    if (spec.kind === 'count' && !(/^\d+$/.test(item.value) && Number(item.value) <= INT_MAX))
      return `${quoted(arg)}: ${quoted(item.value)} is not a whole number`;
    if (spec.kind === 'overflow' && item.value !== 'deny-all' && item.value !== 'permissive')
      return `${quoted(arg)}: ${quoted(item.value)} is not deny-all or permissive`;
  }
  return undefined;
}

/** `authfail:1m` → `authfail:60`, `YES` → `yes`: the form sshd -T prints before 10.3. */
function normalizePenalty(arg: string): string {
  if (/^(yes|no)$/i.test(arg)) return arg.toLowerCase();
  const item = splitPenalty(arg);
  if (item === undefined || PENALTY_ITEMS[item.name]?.kind !== 'time') return arg;
  // sshd -T of 10.3 and later prints fractions: `crash:90.000000`.
  const seconds = /^\d+(\.\d+)?$/.test(item.value) ? Number(item.value) : parseTimeValue(item.value);
  return seconds === undefined ? arg : `${item.name}:${seconds}`;
}

/**
 * Whether sshd -T's `persourcepenalties` line shows what a playbook asked
 * for: sshd -T prints every item, the playbook names only the ones it sets.
 * `yes` holds when penalties are on at all.
 */
export function penaltiesMatch(desired: readonly string[], printed: readonly string[]): boolean {
  const want = desired.map(normalizePenalty);
  const have = printed.map(normalizePenalty);
  if (want.length === 1 && want[0] === 'yes') return have.length > 0 && have[0] !== 'no';
  if (want.length === 1 && want[0] === 'no') return have.length === 1 && have[0] === 'no';
  return want.every((item) => have.includes(item));
}

/** servconf.c sPerSourceNetBlockSize: `%d:%d`, IPv4 bits 0-32, IPv6 bits 0-128. */
function netBlockProblem(arg: string): string | undefined {
  const found = /^(\d+)(?::(\d+))?$/.exec(arg);
  if (found === null) return `${quoted(arg)} is not ipv4bits or ipv4bits:ipv6bits (24, 24:56)`;
  if (Number(found[1]) > 32) return `${quoted(arg)}: IPv4 bits (${found[1]}) is above 32`;
  if (found[2] !== undefined && Number(found[2]) > 128)
    return `${quoted(arg)}: IPv6 bits (${found[2]}) is above 128`;
  return undefined;
}

/**
 * addrmatch.c addr_match_list(NULL, list), as servconf.c checks
 * PerSourcePenaltyExemptList: comma-separated entries, each optionally
 * negated with `!`; an address or CIDR must have a valid mask length and no
 * host bits. sshd takes any other text as a wildcard pattern that can only
 * match an address, so an entry that is neither an address nor a pattern
 * (`admin.example.org`, `10.0.0.300`) exempts nothing: refused here.
 */
function addressListProblem(arg: string): string | undefined {
  if (arg === 'none') return undefined;
  for (const raw of arg.split(',')) {
    const entry = raw.startsWith('!') ? raw.slice(1) : raw;
    if (entry === '') return `${quoted(arg)} has an empty entry`;
    if (/[*?]/.test(entry)) continue;
    const parsed = parseCidr(entry);
    if (parsed.error !== undefined) return `${quoted(arg)}: ${parsed.error}`;
  }
  return undefined;
}

/** What in a setting needs a newer sshd than some: the keyword, or one of its values. */
export interface ReleaseNeed {
  /** "PerSourcePenaltyExemptList", or "PerSourcePenalties refuseconnection:". */
  readonly what: string;
  readonly since: OpenSshVersion;
}

/**
 * The newest OpenSSH release a line of `info`'s keyword with `args` needs,
 * or undefined when any release will do: the keyword's own `since`, or a
 * newer one for one of its values (PerSourcePenalties `refuseconnection:`).
 */
export function releaseNeeded(info: KeywordInfo, args: readonly string[]): ReleaseNeed | undefined {
  if (info.since === undefined) return undefined;
  let need: ReleaseNeed = { what: info.name, since: info.since };
  if (info.valueType === 'penalties') {
    for (const arg of args) {
      const name = splitPenalty(arg)?.name;
      const since = name === undefined ? undefined : PENALTY_ITEMS[name]?.since;
      if (since !== undefined && !versionAtLeast(need.since, since))
        need = { what: `${info.name} ${name}:`, since };
    }
  }
  return need;
}

/** "PerSourcePenaltyExemptList (OpenSSH ≥ 9.8)". */
export function describeNeed(need: ReleaseNeed): string {
  return `${need.what} (OpenSSH ≥ ${formatVersion(need.since)})`;
}

/**
 * A PerSourcePenaltyExemptList value with each IPv4 entry also in its
 * IPv4-mapped IPv6 form (10.0.0.0/24 → ::ffff:10.0.0.0/120), after it.
 * sshd matches the list against the connection's peer address as the socket
 * gives it (srclimit.c). A listener on [::], as ssh.socket's
 * `ListenStream=22` is, gets IPv4 clients as ::ffff:a.b.c.d, which no IPv4
 * entry matches, while the log lines show the plain address (canohost.c
 * normalises mapped addresses for them). With both forms the entry means what
 * its author meant on every listener. Entries already mapped are kept once.
 */
export function withIpv4MappedEntries(list: string): string {
  if (list === 'none') return list;
  const entries = list.split(',');
  const present = new Set(entries);
  const out: string[] = [];
  for (const entry of entries) {
    out.push(entry);
    const negated = entry.startsWith('!');
    const body = negated ? entry.slice(1) : entry;
    const mapped = ipv4MappedForm(body);
    const written = mapped === undefined ? undefined : `${negated ? '!' : ''}${mapped}`;
    if (written !== undefined && !present.has(written)) {
      out.push(written);
      present.add(written);
    }
  }
  return out.join(',');
}

/** `10.0.0.0/24` → `::ffff:10.0.0.0/120`, `10.0.*` → `::ffff:10.0.*`; undefined for anything not IPv4. */
function ipv4MappedForm(entry: string): string | undefined {
  if (/[*?]/.test(entry)) return /^[0-9.*?]+$/.test(entry) ? `::ffff:${entry}` : undefined;
  const cidr = parseCidr(entry, { allowHostBits: true }).cidr;
  if (cidr === undefined || cidr.family !== 4) return undefined;
  const [address = ''] = entry.split('/');
  return `::ffff:${address}/${96 + cidr.prefix}`;
}
