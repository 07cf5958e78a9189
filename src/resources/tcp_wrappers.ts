/**
 * `tcp_wrappers: {allow, not_denied, daemon, allow_file, deny_file}` — make
 * sure /etc/hosts.allow and /etc/hosts.deny (hosts_access(5)) admit the given
 * clients, with narrow edits: one rule at the top of hosts.allow for `allow`,
 * and for `not_denied` the refusing rules narrowed (exact client removed, or
 * `EXCEPT client` added). Every decision is explained with the evaluator's
 * verdict before and after. libwrap reads the files on each connection: no
 * reload is needed.
 */
import { shellQuote } from '../transport/shell.js';
import type { FileChange, FileState, ResourcePlan } from '../plan/types.js';
import {
  describeVerdict,
  ensureAllowed,
  ensureNotDenied,
  evaluateAccess,
  parseClientSpec,
  parseHostsAccess,
  renderHostsAccess,
  type ClientSpec,
  type HostsAccessFile,
  type Verdict,
} from '../formats/hosts_access.js';
import { assertNoControlChars } from '../formats/control_chars.js';
import type { ArgumentProblem, HostCheck, HostView, ResourceKind } from './types.js';
import type { ExecResult } from '../transport/types.js';
import { SSHD_SESSION_LOCATIONS } from '../formats/openssh_version.js';

export interface TcpWrappersArgs {
  /** Clients that hosts.allow itself must admit, per daemon. */
  allow?: { daemon?: string; clients: string[] }[];
  /** Clients no refusing rule may match (for `daemon`). */
  not_denied?: string[];
  /** Default daemon name; `sshd` unless given. */
  daemon?: string;
  allow_file?: string;
  deny_file?: string;
}

/** One (daemon, client) pair the result must grant; carried in the plan for verify(). */
interface Check {
  daemon: string;
  client: string;
}

interface TcpWrappersPlanData {
  allowFile: string;
  denyFile: string;
  checks: Check[];
}

const DEFAULT_ALLOW_FILE = '/etc/hosts.allow';
const DEFAULT_DENY_FILE = '/etc/hosts.deny';
/** What libwrap calls sshd (its argv[0] basename) and what hosts_access rules name. */
const DEFAULT_DAEMON = 'sshd';
/** A daemon name as a hosts_access rule can name it: no separators, wildcards or pattern keywords. */
const DAEMON_NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;

/**
 * A command that succeeds when the sshd at `sshd` (a shell word) consults
 * libwrap: the library's name in the binary's dynamic section, as ldd would
 * show it, without running the dynamic loader (several processes, ~7 ms a
 * host). OpenSSH >= 9.8 moved the per-connection work, libwrap's check
 * included, into sshd-session. One grep reads them all (-s: the locations
 * that do not exist on this host are no error) and stops at the first match.
 */
export function libwrapLinkedTest(sshd: string): string {
  return `grep -q -s -a -F libwrap.so ${sshd} ${SSHD_SESSION_LOCATIONS.join(' ')}`;
}

/**
 * Whether sshd consults libwrap (libwrapLinkedTest), sshd found by its
 * absolute path (a non-login PATH often lacks /usr/sbin). Prints
 * "linked PATH", "not-linked PATH" or "no-sshd".
 */
const LIBWRAP_PROBE = [
  'sshd=""',
  'for p in /usr/sbin/sshd /usr/local/sbin/sshd /sbin/sshd /usr/bin/sshd; do',
  '  [ -x "$p" ] && { sshd=$p; break; }',
  'done',
  '[ -n "$sshd" ] || { p=$(command -v sshd 2>/dev/null) && [ -x "$p" ] && sshd=$p; }',
  '[ -n "$sshd" ] || { echo no-sshd; exit 0; }',
  `if ${libwrapLinkedTest('"$sshd"')}; then echo "linked $sshd"; else echo "not-linked $sshd"; fi`,
].join('\n');

function clientSpec(text: string): ClientSpec {
  const range = parseClientSpec(text);
  // checkArgs has already rejected anything else.
  if ('error' in range) throw new Error(range.error);
  return { text, range };
}

function toChange(state: FileState, after: HostsAccessFile): FileChange | undefined {
  const text = renderHostsAccess(after);
  // A missing file reads as empty, as libwrap treats it: only create it to put something in it.
  if (state.exists ? text === state.content : text === '') return undefined;
  return {
    path: state.path,
    before: state.exists ? state.content : null,
    beforeSha256: state.exists ? (state.sha256 ?? null) : null,
    after: text,
    mode: '0644',
    owner: 'root',
    group: 'root',
  };
}

function libwrapWarning(probe: string): string | undefined {
  const [status] = probe.trim().split(' ');
  const files = '/etc/hosts.{allow,deny}';
  if (status === 'not-linked') {
    return `sshd is not linked with libwrap: ${files} have no effect on sshd on this host`;
  }
  if (status === 'no-sshd') return `sshd was not found: cannot tell whether ${files} affect it`;
  return undefined;
}

/** "10.20.0.5 (sshd) is refused by /etc/hosts.deny:17 (sshd: 10.20.0.5) → granted" */
function verdictMessage(check: Check, before: Verdict, after: Verdict): string {
  const subject = `${check.client} (${check.daemon})`;
  if (
    before.access === after.access &&
    before.by?.line === after.by?.line &&
    before.by?.file === after.by?.file
  ) {
    return `${subject} is ${describeVerdict(before)}`;
  }
  return `${subject} is ${describeVerdict(before)} → ${describeVerdict(after)}`;
}

function checksOf(args: TcpWrappersArgs): Check[] {
  const daemon = args.daemon ?? DEFAULT_DAEMON;
  const checks: Check[] = [
    ...(args.allow ?? []).flatMap((a) => a.clients.map((client) => ({ daemon: a.daemon ?? daemon, client }))),
    ...(args.not_denied ?? []).map((client) => ({ daemon, client })),
  ];
  const seen = new Set<string>();
  return checks.filter((c) => {
    const key = `${c.daemon}\0${c.client}`;
    return seen.has(key) ? false : (seen.add(key), true);
  });
}

async function planTcpWrappers(
  args: TcpWrappersArgs,
  host: HostView,
): Promise<ResourcePlan<TcpWrappersPlanData>> {
  const allowPath = args.allow_file ?? DEFAULT_ALLOW_FILE;
  const denyPath = args.deny_file ?? DEFAULT_DENY_FILE;
  const daemon = args.daemon ?? DEFAULT_DAEMON;
  // Issued in the same tick: one round trip for both files and the probe.
  const [states, probe] = await Promise.all([
    host.readFiles([allowPath, denyPath]),
    host.probe(LIBWRAP_PROBE),
  ]);
  const allowState = states.get(allowPath)!;
  const denyState = states.get(denyPath)!;
  const original = {
    allow: parseHostsAccess(allowState.content, allowPath),
    deny: parseHostsAccess(denyState.content, denyPath),
  };

  const edits: string[] = [];
  const warnings: string[] = [];
  let allow = original.allow;
  let deny = original.deny;
  for (const entry of args.allow ?? []) {
    const result = ensureAllowed(allow, entry.daemon ?? daemon, entry.clients.map(clientSpec));
    allow = result.file;
    edits.push(...result.edits);
    warnings.push(...result.warnings);
  }
  if (args.not_denied && args.not_denied.length > 0) {
    const clients = args.not_denied.map(clientSpec);
    for (const [role, file] of [
      ['allow', allow],
      ['deny', deny],
    ] as const) {
      const result = ensureNotDenied(file, daemon, clients, { role });
      if (role === 'allow') allow = result.file;
      else deny = result.file;
      edits.push(...result.edits);
      warnings.push(...result.warnings);
    }
  }
  for (const line of allow.lines.filter((l) => l.kind === 'broken')) {
    warnings.push(
      `${allowPath}:${line.line}: libwrap cannot read this line (${line.problem}) and stops reading ${allowPath} there`,
    );
  }

  const checks = checksOf(args);
  const messages = checks.map((check) => {
    const range = clientSpec(check.client).range;
    const before = evaluateAccess(original, check.daemon, range);
    const after = evaluateAccess({ allow, deny }, check.daemon, range);
    if (after.access !== 'granted') {
      warnings.push(
        `${check.client} (${check.daemon}) would still not be granted: ${describeVerdict(after)}`,
      );
    }
    return verdictMessage(check, before, after);
  });
  const libwrap = libwrapWarning(probe.stdout);
  if (libwrap) warnings.push(libwrap);

  const fileChanges = [toChange(allowState, allow), toChange(denyState, deny)].filter(
    (c): c is FileChange => c !== undefined,
  );
  const data: TcpWrappersPlanData = { allowFile: allowPath, denyFile: denyPath, checks };
  return {
    action: fileChanges.length > 0 ? 'change' : 'none',
    messages: [...edits, ...messages],
    warnings,
    fileChanges,
    commands: [],
    data,
  };
}

/** Reads both files back (base64, so any content survives) and re-evaluates every client. */
function verifyGranted(plan: ResourcePlan<TcpWrappersPlanData>): HostCheck[] {
  const data = plan.data;
  if (data === undefined) return [];
  const paths = [data.allowFile, data.denyFile];
  const script = paths
    .map((p) => `if [ -f ${shellQuote(p)} ]; then base64 -w0 < ${shellQuote(p)}; echo; else echo -; fi`)
    .join('\n');
  const failure = (result: ExecResult): string | undefined => {
    if (result.exitCode !== 0) return `cannot read ${paths.join(' and ')}: ${result.stderr.trim()}`;
    const [allowText = '-', denyText = '-'] = result.stdout.split('\n');
    const decode = (t: string): string => (t === '-' ? '' : Buffer.from(t, 'base64').toString('utf8'));
    const files = {
      allow: parseHostsAccess(decode(allowText), data.allowFile),
      deny: parseHostsAccess(decode(denyText), data.denyFile),
    };
    const failures = data.checks
      .map((check) => ({
        check,
        verdict: evaluateAccess(files, check.daemon, clientSpec(check.client).range),
      }))
      .filter(({ verdict }) => verdict.access !== 'granted')
      .map(({ check, verdict }) => `${check.client} (${check.daemon}) is ${describeVerdict(verdict)}`);
    return failures.length > 0 ? failures.join('; ') : undefined;
  };
  return [{ script, failure }];
}

function checkTcpWrappersArgs(args: TcpWrappersArgs): ArgumentProblem[] {
  const problems: ArgumentProblem[] = [];
  const checkText = (pointer: string, value: string, what: string): boolean => {
    try {
      assertNoControlChars(value, what);
      return true;
    } catch {
      problems.push({ pointer, message: `${what} contains a newline or control character` });
      return false;
    }
  };
  const checkDaemon = (pointer: string, name: string | undefined): void => {
    if (name === undefined || !checkText(pointer, name, 'daemon name')) return;
    if (!DAEMON_NAME.test(name) || /^(ALL|EXCEPT|KNOWN|UNKNOWN|LOCAL|PARANOID)$/i.test(name)) {
      problems.push({
        pointer,
        message: `daemon name '${name}' is not a plain process name (letters, digits, '.', '_', '+', '-'; not a pattern keyword)`,
      });
    }
  };
  const checkClient = (pointer: string, text: string): void => {
    if (!checkText(pointer, text, 'client')) return;
    const range = parseClientSpec(text);
    if ('error' in range) problems.push({ pointer, message: range.error });
  };
  checkDaemon('/daemon', args.daemon);
  (args.allow ?? []).forEach((entry, i) => {
    checkDaemon(`/allow/${i}/daemon`, entry.daemon);
    entry.clients.forEach((c, j) => checkClient(`/allow/${i}/clients/${j}`, c));
  });
  (args.not_denied ?? []).forEach((c, i) => checkClient(`/not_denied/${i}`, c));
  for (const key of ['allow_file', 'deny_file'] as const) {
    const value = args[key];
    if (value !== undefined) checkText(`/${key}`, value, key);
  }
  if ((args.allow_file ?? DEFAULT_ALLOW_FILE) === (args.deny_file ?? DEFAULT_DENY_FILE)) {
    problems.push({ pointer: '/deny_file', message: 'allow_file and deny_file must be different files' });
  }
  return problems;
}

const CLIENT_LIST = { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } };

export const tcpWrappersResource: ResourceKind<TcpWrappersArgs, TcpWrappersPlanData> = {
  name: 'tcp_wrappers',
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    anyOf: [{ required: ['allow'] }, { required: ['not_denied'] }],
    properties: {
      allow: {
        type: 'array',
        minItems: 1,
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['clients'],
          properties: { daemon: { type: 'string', minLength: 1 }, clients: CLIENT_LIST },
        },
      },
      not_denied: CLIENT_LIST,
      daemon: { type: 'string', minLength: 1 },
      allow_file: { type: 'string', pattern: '^/' },
      deny_file: { type: 'string', pattern: '^/' },
    },
  },
  checkArgs: checkTcpWrappersArgs,
  plan: planTcpWrappers,
  verify: verifyGranted,
};
