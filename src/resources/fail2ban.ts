/**
 * `fail2ban: {ignoreip, mode, unban, jails, config_file, required}` — make
 * fail2ban leave the operators' addresses alone and lift their current bans.
 *
 * Settings are written to `config_file` (jail.local unless told otherwise),
 * never to a `*.conf` file, and are planned against the whole configuration
 * as fail2ban reads it (jail.conf, jail.d/*.conf, jail.local, jail.d/*.local),
 * so a jail that overrides `ignoreip` gets the addresses too. Adding an
 * address to `ignoreip` does not lift a ban that already exists
 * (fail2ban#1152): `unban` does that, live, in each jail that holds the ban.
 *
 * Current bans are read from the firewall (the `f2b-<jail>` iptables chains,
 * ipsets or nftables sets that fail2ban's actions fill), in the same round
 * trip as the configuration files: cheap, and it is where a ban actually
 * blocks. Only when `unban` is asked for and some enabled jail uses an action
 * whose bans the firewall does not show is `fail2ban-client banned` run (it
 * starts a Python interpreter).
 */
import { fileContent, shellCommand, shellQuote } from '../transport/shell.js';
import type { CommandStep, FileChange, FileState, ResourcePlan, StateDiff } from '../plan/types.js';
import {
  DEFAULT_SECTION,
  effectiveValue,
  interpolate,
  isTrueWord,
  jailReadOrder,
  jailSections,
  ownAssignments,
  parseIni,
  type IniDocument,
  setIgnoreIp,
  setOption,
  splitIgnoreIp,
  type EffectiveValue,
  type JailConfigFile,
} from '../formats/fail2ban_ini.js';
import {
  ignoreEntryKey,
  isHostName,
  networkContains,
  parseAddress,
  parseClientBans,
  parseDuration,
  parseFirewallBans,
  parseNetwork,
  renderBans,
  type BanList,
} from '../formats/fail2ban_state.js';
import { assertNoControlChars } from '../formats/control_chars.js';
import type { ArgumentProblem, HostCheck, HostView, ResourceKind } from './types.js';
import type { ExecResult } from '../transport/types.js';
import { fail2banRulesText, firewallProbeScript, firewallRulesetEssence } from '../formats/firewall_probe.js';

export type JailSettingValue = string | number | boolean;

export interface Fail2banArgs {
  /** Addresses, networks or host names fail2ban must never ban. */
  ignoreip?: string[];
  /** merge (default): add to the existing entries; exact: the list becomes exactly `ignoreip`. */
  mode?: 'merge' | 'exact';
  /** Addresses (or networks) whose current bans are lifted, in every jail that holds one. */
  unban?: string[];
  /** Settings per jail, written to `[jail]` of config_file. */
  jails?: Record<string, Record<string, JailSettingValue>>;
  /** jail.local or jail.d/NAME.local under fail2ban's configuration directory. */
  config_file?: string;
  /** When fail2ban is not installed: fail the task (true) or skip it (false, default). */
  required?: boolean;
}

export const DEFAULT_CONFIG_FILE = '/etc/fail2ban/jail.local';
const DEFAULT_BASE_DIR = '/etc/fail2ban';

/** What verify() needs, carried in the plan. */
interface Fail2banPlanData {
  client: string;
  baseDir: string;
  running: boolean;
  configFile: string;
  /** The config file's planned content, staged for `fail2ban-client -t` by validate(); null: no check needed. */
  staged: string | null;
  unbans: Array<{ jail: string; address: string }>;
}

// ---------------------------------------------------------------------------
// Arguments

/** The configuration directory that `config_file` belongs to, or undefined when fail2ban would not read it. */
export function configBaseDir(configFile: string): string | undefined {
  const local = /^(\/.*)\/jail\.local$/.exec(configFile);
  if (local) return local[1];
  return /^(\/.*)\/jail\.d\/[^/]+\.local$/.exec(configFile)?.[1];
}

const JAIL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/;
const RESERVED_SECTIONS = new Set(['default', 'includes', 'definition', 'init', 'known']);
const SETTING_KEY = /^[a-z][a-z0-9_.-]*$/i;
const DURATION_KEYS = new Set(['bantime', 'findtime', 'bantime.maxtime', 'bantime.rndtime', 'dbpurgeage']);
const COUNT_KEYS = new Set(['maxretry', 'maxmatches', 'maxlines']);
const BOOLEAN_KEYS = new Set(['enabled', 'bantime.increment', 'bantime.overalljails', 'ignoreself']);

const pointerPart = (s: string): string => s.replace(/~/g, '~0').replace(/\//g, '~1');

function checkAddressList(
  list: string[] | undefined,
  name: string,
  allowHostNames: boolean,
): ArgumentProblem[] {
  return (list ?? []).flatMap((entry, i) => {
    const ok = parseNetwork(entry) !== undefined || (allowHostNames && isHostName(entry));
    if (ok) return [];
    const what = allowHostNames
      ? 'an IPv4/IPv6 address, a CIDR network or a host name'
      : 'an IPv4/IPv6 address or CIDR network';
    return [{ pointer: `/${name}/${i}`, message: `${JSON.stringify(entry)} is not ${what}` }];
  });
}

function checkSetting(jail: string, key: string, value: JailSettingValue): string | undefined {
  const text = renderSetting(value);
  const k = key.toLowerCase();
  if (!SETTING_KEY.test(key)) return `"${key}" is not a fail2ban setting name`;
  if (k === 'ignoreip') return `set ignoreip with the top-level ignoreip argument, not in jails.${jail}`;
  try {
    assertNoControlChars(text, `jails.${jail}.${key}`);
  } catch {
    return `the value of ${key} contains a newline or control character`;
  }
  if (text.trim() === '') return `the value of ${key} is empty`;
  if (DURATION_KEYS.has(k) && parseDuration(text) === undefined)
    return `${key}: ${JSON.stringify(text)} is not a fail2ban time (e.g. 600, 10m, 1h, 1d, -1)`;
  if (COUNT_KEYS.has(k) && !/^\d+$/.test(text))
    return `${key}: ${JSON.stringify(text)} is not a whole number`;
  if (BOOLEAN_KEYS.has(k) && !/^(true|false|yes|no|on|off|1|0)$/i.test(text))
    return `${key}: ${JSON.stringify(text)} is not true or false`;
  return undefined;
}

export function checkFail2banArgs(args: Fail2banArgs): ArgumentProblem[] {
  const problems: ArgumentProblem[] = [
    ...checkAddressList(args.ignoreip, 'ignoreip', true),
    ...checkAddressList(args.unban, 'unban', false),
  ];
  const configFile = args.config_file ?? DEFAULT_CONFIG_FILE;
  if (!configBaseDir(configFile)) {
    problems.push({
      pointer: '/config_file',
      message: `${configFile}: fail2ban reads jail settings only from DIR/jail.local or DIR/jail.d/NAME.local (never edit *.conf files)`,
    });
  }
  for (const [jail, settings] of Object.entries(args.jails ?? {})) {
    const pointer = `/jails/${pointerPart(jail)}`;
    if (!JAIL_NAME.test(jail) || RESERVED_SECTIONS.has(jail.toLowerCase())) {
      problems.push({
        pointer,
        message: `"${jail}" is not a usable jail name (letters, digits, . _ - @; not DEFAULT or INCLUDES)`,
      });
      continue;
    }
    for (const [key, value] of Object.entries(settings)) {
      const message = checkSetting(jail, key, value);
      if (message) problems.push({ pointer: `${pointer}/${pointerPart(key)}`, message });
    }
  }
  return problems;
}

export function renderSetting(value: JailSettingValue): string {
  return typeof value === 'boolean' ? (value ? 'true' : 'false') : String(value);
}

/** Whether a configured value already means what the playbook asks for (10m is 600). */
export function settingMatches(key: string, current: string, desired: string): boolean {
  const k = key.toLowerCase();
  if (DURATION_KEYS.has(k)) {
    const a = parseDuration(current);
    return a !== undefined && a === parseDuration(desired);
  }
  if (BOOLEAN_KEYS.has(k)) return isTrueWord(current) === isTrueWord(desired);
  return current.trim() === desired.trim();
}

// ---------------------------------------------------------------------------
// Reading the host

const STATUS_MARK = '@@fail2ban-status';
const FIREWALL_MARK = '@@fail2ban-firewall';

/**
 * Sets `$running` to `yes` when fail2ban's server runs (its socket, and the
 * pid file of a live process next to it), else `no`: shell built-ins only,
 * no Python started.
 */
export const FAIL2BAN_RUNNING_LINES: readonly string[] = [
  'running=no',
  'for d in /run/fail2ban /var/run/fail2ban; do',
  '  if [ -S "$d/fail2ban.sock" ] && { pid=; read -r pid < "$d/fail2ban.pid" || :; } 2>/dev/null && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then running=yes; break; fi',
  'done',
];

/**
 * One probe, batched with the file reads: where fail2ban-client is, whether
 * the server runs (pid file of a live process next to its socket), and the
 * firewall objects fail2ban's actions keep bans in. No Python is started.
 */
/**
 * Whether fail2ban is installed and running: shell built-ins only. Its bans
 * are read from the firewall probe the firewall resource sends too (one
 * probe per host, cached by its text), plus ipset where it is installed.
 */
function statusProbe(baseDir: string): string {
  return [
    'PATH=$PATH:/usr/sbin:/sbin:/usr/local/sbin',
    'client=""',
    'for p in /usr/bin/fail2ban-client /usr/local/bin/fail2ban-client; do',
    '  if [ -f "$p" ] && [ -x "$p" ]; then client=$p; break; fi',
    'done',
    '[ -n "$client" ] || { p=$(command -v fail2ban-client 2>/dev/null) && [ -f "$p" ] && [ -x "$p" ] && client=$p; }',
    ...FAIL2BAN_RUNNING_LINES,
    `basedir=no; [ -d ${shellQuote(baseDir)} ] && basedir=yes`,
    `echo '${STATUS_MARK}'`,
    'echo "client=$client"',
    'echo "running=$running"',
    'echo "basedir=$basedir"',
    `echo '${FIREWALL_MARK}'`,
    'command -v ipset >/dev/null 2>&1 && ipset save 2>/dev/null | grep -E "^(create|add) f2b-"',
    'exit 0',
  ].join('\n');
}

interface HostStatus {
  client: string;
  running: boolean;
  baseDirExists: boolean;
  /** The f2b-* chains, sets and tables of every firewall backend, as text for parseFirewallBans. */
  firewallDump: string;
}

function parseStatus(stdout: string, firewallProbeStdout: string): HostStatus {
  const [statusPart = '', ipsets = ''] = stdout.split(`${FIREWALL_MARK}\n`);
  const field = (name: string): string =>
    new RegExp(`^${name}=(.*)$`, 'm').exec(statusPart.split(`${STATUS_MARK}\n`)[1] ?? '')?.[1] ?? '';
  return {
    client: field('client'),
    running: field('running') === 'yes',
    baseDirExists: field('basedir') === 'yes',
    firewallDump: `${fail2banRulesText(firewallProbeStdout)}${ipsets}`,
  };
}

/** fail2ban-client as found on the host, with `-c` for a configuration elsewhere. */
function clientWords(client: string, baseDir: string): string[] {
  return baseDir === DEFAULT_BASE_DIR ? [client] : [client, '-c', baseDir];
}

function clientCommand(client: string, baseDir: string): string {
  return clientWords(client, baseDir).map(shellQuote).join(' ');
}

/** The bans as fail2ban itself reports them (Python start-up: used only when the firewall cannot tell). */
function clientBansScript(client: string, baseDir: string): string {
  const c = clientCommand(client, baseDir);
  return [
    `if out=$(${c} banned 2>/dev/null); then printf '%s\\n' "$out"; exit 0; fi`,
    // fail2ban before 0.11 has no `banned`: ask each jail.
    `for j in $(${c} status 2>/dev/null | sed -n 's/.*Jail list:[[:space:]]*//p' | tr ',' ' '); do`,
    '  echo "jail $j"',
    `  ${c} get "$j" banip`,
    'done',
  ].join('\n');
}

// ---------------------------------------------------------------------------
// Which jails' bans the firewall shows

const FIREWALL_ACTIONS =
  /^(iptables(-multiport|-allports|-new|-multiport-log)?|iptables-ipset(-proto4|-proto6|-proto6-allports)?|nftables(-multiport|-allports)?)$/;
/** Actions that report or notify but hold no ban of their own. */
const NOTIFY_ACTIONS =
  /^(sendmail.*|mail.*|xarf-login-attack|abuseipdb|blocklist_de|dshield|mynetwatchman|complain|apprise|ipthreat|badips|smtp\.py)$/;

/** Action names of an interpolated `action` value: `a[opt="x"]` entries separated by whitespace. */
export function actionNames(action: string): string[] {
  let depth = 0;
  let outside = '';
  for (const c of action) {
    if (c === '[') depth++;
    else if (c === ']') depth = Math.max(0, depth - 1);
    else if (depth === 0) outside += c;
  }
  return outside.split(/\s+/).filter(Boolean);
}

export function enabledJails(files: readonly JailConfigFile[]): string[] {
  return jailSections(files).filter((jail) => {
    const enabled = effectiveValue(files, jail, 'enabled');
    return enabled !== undefined && isTrueWord(enabled.value);
  });
}

/** Enabled jails whose bans the firewall dump may not show (unknown or non-firewall actions). */
export function jailsHiddenFromFirewall(files: readonly JailConfigFile[]): string[] {
  return enabledJails(files).filter((jail) => {
    const action = effectiveValue(files, jail, 'action');
    const expanded = action ? interpolate(files, jail, action.value) : undefined;
    if (expanded === undefined) return true;
    const names = actionNames(expanded);
    return names.length === 0 || !names.every((n) => FIREWALL_ACTIONS.test(n) || NOTIFY_ACTIONS.test(n));
  });
}

// ---------------------------------------------------------------------------
// Planning the configuration

interface ConfigEdit {
  text: string;
  messages: string[];
}

function where(found: EffectiveValue | undefined): string {
  return found ? `${found.path}:${found.line}` : 'nowhere (fail2ban default)';
}

/** Entries of `current` then those of `wanted` not already there (compared canonically). */
function mergeEntries(current: readonly string[], wanted: readonly string[]): string[] {
  const seen = new Set(current.map(ignoreEntryKey));
  const merged = [...current];
  for (const entry of wanted) {
    const key = ignoreEntryKey(entry);
    if (!seen.has(key)) {
      seen.add(key);
      merged.push(entry);
    }
  }
  return merged;
}

function sameEntries(a: readonly string[], b: readonly string[]): boolean {
  const ka = new Set(a.map(ignoreEntryKey));
  const kb = new Set(b.map(ignoreEntryKey));
  return ka.size === kb.size && [...ka].every((k) => kb.has(k));
}

function wantedList(
  current: readonly string[],
  desired: readonly string[],
  mode: 'merge' | 'exact',
): string[] {
  return mode === 'merge' ? mergeEntries(current, desired) : mergeEntries([], desired);
}

function describeListChange(before: readonly string[], after: readonly string[]): string {
  const beforeKeys = new Set(before.map(ignoreEntryKey));
  const afterKeys = new Set(after.map(ignoreEntryKey));
  const added = after.filter((e) => !beforeKeys.has(ignoreEntryKey(e)));
  const removed = before.filter((e) => !afterKeys.has(ignoreEntryKey(e)));
  return [added.length ? `add ${added.join(' ')}` : '', removed.length ? `remove ${removed.join(' ')}` : '']
    .filter(Boolean)
    .join(', ');
}

function planIgnoreIp(
  files: readonly JailConfigFile[],
  configFile: string,
  text: string,
  desired: readonly string[],
  mode: 'merge' | 'exact',
): ConfigEdit {
  const messages: string[] = [];
  let edited = text;
  const sections = [
    DEFAULT_SECTION,
    ...jailSections(files).filter((jail) => ownAssignments(files, jail, 'ignoreip').length > 0),
  ];
  for (const section of sections) {
    const own = ownAssignments(files, section, 'ignoreip');
    const current = own[own.length - 1];
    const currentList = current ? splitIgnoreIp(current.value) : [];
    const wanted = wantedList(currentList, desired, mode);
    if (sameEntries(currentList, wanted)) continue;
    edited = setIgnoreIp(edited, section, wanted);
    const change = describeListChange(currentList, wanted);
    messages.push(
      section === DEFAULT_SECTION
        ? `ignoreip in [DEFAULT] (from ${where(current)}) → ${change} in ${configFile}`
        : `[${section}] overrides ignoreip at ${where(current)}, so [DEFAULT] does not apply to it → ${change} in [${section}] of ${configFile}`,
    );
  }
  return { text: edited, messages };
}

function planJailSettings(
  files: readonly JailConfigFile[],
  configFile: string,
  text: string,
  jails: Record<string, Record<string, JailSettingValue>>,
): ConfigEdit {
  const messages: string[] = [];
  let edited = text;
  for (const [jail, settings] of Object.entries(jails)) {
    for (const [rawKey, value] of Object.entries(settings)) {
      const key = rawKey.toLowerCase();
      const desired = renderSetting(value);
      const current = effectiveValue(files, jail, key);
      if (current && settingMatches(key, current.value, desired)) continue;
      edited = setOption(edited, jail, key, [desired]);
      const from = current
        ? `${current.value} from ${where(current)}${current.section === jail ? '' : ' ([DEFAULT])'}`
        : 'unset';
      messages.push(`${key} of [${jail}]: ${from} → ${desired} in ${configFile}`);
    }
  }
  return { text: edited, messages };
}

/** After the edit, every desired value must win; a later file that overrides it is named. */
function assertEffective(
  files: readonly JailConfigFile[],
  args: Fail2banArgs,
  mode: 'merge' | 'exact',
): void {
  const problems: string[] = [];
  const desired = args.ignoreip ?? [];
  if (desired.length > 0) {
    const check = (section: string, found: EffectiveValue | undefined): void => {
      const list = found ? splitIgnoreIp(found.value) : [];
      const ok =
        mode === 'exact' ? sameEntries(list, desired) : sameEntries(mergeEntries(list, desired), list);
      if (!ok)
        problems.push(`ignoreip of [${section}] is set again at ${where(found)}, which fail2ban reads later`);
    };
    check(DEFAULT_SECTION, ownAssignments(files, DEFAULT_SECTION, 'ignoreip').pop());
    for (const jail of jailSections(files)) {
      const own = ownAssignments(files, jail, 'ignoreip');
      if (own.length > 0) check(jail, own[own.length - 1]);
    }
  }
  for (const [jail, settings] of Object.entries(args.jails ?? {})) {
    for (const [key, value] of Object.entries(settings)) {
      const found = effectiveValue(files, jail, key.toLowerCase());
      if (!found || !settingMatches(key, found.value, renderSetting(value)))
        problems.push(
          `${key.toLowerCase()} of [${jail}] is set again at ${where(found)}, which fail2ban reads later`,
        );
    }
  }
  if (problems.length > 0) throw new Error(`the settings would not take effect: ${problems.join('; ')}`);
}

// ---------------------------------------------------------------------------
// Bans

interface BanPlan {
  messages: string[];
  warnings: string[];
  commands: CommandStep[];
  unbans: Array<{ jail: string; address: string }>;
  stateDiff?: StateDiff;
}

function bansMatching(
  bans: BanList,
  entries: readonly string[],
): Array<{ jail: string; address: string; entry: string }> {
  const found: Array<{ jail: string; address: string; entry: string }> = [];
  for (const [jail, set] of [...bans].sort(([a], [b]) => a.localeCompare(b))) {
    for (const address of [...set].sort()) {
      const parsed = parseAddress(address);
      const entry = entries.find((e) => {
        const network = parseNetwork(e);
        return parsed && network && networkContains(network, parsed);
      });
      if (entry !== undefined) found.push({ jail, address, entry });
    }
  }
  return found;
}

function planUnbans(
  bans: BanList,
  source: string,
  unban: readonly string[],
  client: string,
  baseDir: string,
): BanPlan {
  const lifted = bansMatching(bans, unban);
  const messages = lifted.map(
    ({ jail, address }) => `${address} is banned in jail ${jail} (${source}) → unban`,
  );
  for (const entry of unban) {
    if (!lifted.some((l) => l.entry === entry))
      messages.push(`${entry} is not banned in any jail (${source})`);
  }
  const commands = lifted.map(({ jail, address }) =>
    shellCommand([...clientWords(client, baseDir), 'set', jail, 'unbanip', address]),
  );
  const after: BanList = new Map([...bans].map(([jail, set]) => [jail, new Set(set)]));
  for (const { jail, address } of lifted) after.get(jail)?.delete(address);
  const stateDiff =
    lifted.length > 0
      ? { label: `fail2ban bans (${source})`, before: renderBans(bans), after: renderBans(after) }
      : undefined;
  return {
    messages,
    warnings: [],
    commands,
    unbans: lifted.map(({ jail, address }) => ({ jail, address })),
    ...(stateDiff ? { stateDiff } : {}),
  };
}

/** TRAPS (fail2ban#1152): an address added to ignoreip stays banned until someone unbans it. */
function trapWarnings(bans: BanList, ignoreip: readonly string[], unban: readonly string[]): string[] {
  const stillBanned = bansMatching(bans, ignoreip).filter(
    ({ jail, address }) => !bansMatching(new Map([[jail, new Set([address])]]), unban).length,
  );
  return stillBanned.map(
    ({ jail, address }) =>
      `${address} is in ignoreip but stays banned in jail ${jail}: ignoreip does not lift an existing ban (add it to unban)`,
  );
}

// ---------------------------------------------------------------------------
// The plan

function skipOrFail(args: Fail2banArgs, host: HostView, reason: string): ResourcePlan<Fail2banPlanData> {
  if (args.required === true)
    throw new Error(`${reason} on ${host.hostName}, and the task says required: true`);
  return { action: 'skip', messages: [reason], warnings: [], fileChanges: [], commands: [] };
}

/**
 * Every host of a fleet reads the same jail.conf (a thousand lines): parse
 * each distinct text once per run. Documents are only read, never changed.
 */
const parsedTexts = new Map<string, IniDocument>();
const MAX_PARSED_TEXTS = 256;

function parseIniOnce(text: string): IniDocument {
  let doc = parsedTexts.get(text);
  if (!doc) {
    if (parsedTexts.size >= MAX_PARSED_TEXTS) parsedTexts.clear();
    doc = parseIni(text);
    parsedTexts.set(text, doc);
  }
  return doc;
}

async function readJailFiles(
  host: HostView,
  baseDir: string,
  configFile: string,
): Promise<{ status: HostStatus; files: JailConfigFile[]; states: Map<string, FileState> }> {
  // One round trip: the drop-in globs come back with their contents.
  const [probe, firewall, confs, locals, mainStates] = await Promise.all([
    // fail2ban's ipsets count their bans down: only the bans themselves are the state a plan rests on.
    host.probe(statusProbe(baseDir), { description: 'fail2ban state', essence: firewallRulesetEssence }),
    host.probe(firewallProbeScript(), { description: 'firewall ruleset', essence: firewallRulesetEssence }),
    host.globFiles(`${baseDir}/jail.d/*.conf`),
    host.globFiles(`${baseDir}/jail.d/*.local`),
    host.readFiles([`${baseDir}/jail.conf`, `${baseDir}/jail.local`, configFile]),
  ]);
  const states = new Map([...mainStates, ...[...confs, ...locals].map((f) => [f.path, f] as const)]);
  const order = jailReadOrder(baseDir, [
    ...confs.map((f) => f.path),
    ...locals.map((f) => f.path),
    configFile,
  ]);
  const rest = order.filter((p) => !states.has(p));
  if (rest.length > 0) for (const [path, state] of await host.readFiles(rest)) states.set(path, state);
  const files = order
    .map((path) => states.get(path))
    .filter((s): s is FileState => s !== undefined && (s.exists || s.path === configFile))
    .map((s) => ({ path: s.path, doc: parseIniOnce(s.content) }));
  return { status: parseStatus(probe.stdout, firewall.stdout), files, states };
}

async function planFail2ban(args: Fail2banArgs, host: HostView): Promise<ResourcePlan<Fail2banPlanData>> {
  const configFile = args.config_file ?? DEFAULT_CONFIG_FILE;
  const baseDir = configBaseDir(configFile);
  if (!baseDir) throw new Error(`${configFile} is not a file fail2ban reads jail settings from`);
  const mode = args.mode ?? 'merge';
  const { status, files, states } = await readJailFiles(host, baseDir, configFile);
  if (!status.client) return skipOrFail(args, host, 'fail2ban is not installed (no fail2ban-client found)');
  if (!status.baseDirExists)
    return skipOrFail(args, host, `fail2ban's configuration directory ${baseDir} does not exist`);

  const before = states.get(configFile)!;
  const messages: string[] = [];
  const warnings = files.flatMap((f) => f.doc.problems.map((p) => `${f.path}:${p.line}: ${p.message}`));

  let text = before.content;
  // An empty (or absent) ignoreip list leaves ignoreip alone, in either mode.
  if (args.ignoreip && args.ignoreip.length > 0) {
    const ignore = planIgnoreIp(files, configFile, text, args.ignoreip, mode);
    text = ignore.text;
    messages.push(...ignore.messages);
  }
  const settings = planJailSettings(files, configFile, text, args.jails ?? {});
  const jailSettingsChanged = settings.text !== text;
  text = settings.text;
  messages.push(...settings.messages);
  const afterFiles = files.map((f) => (f.path === configFile ? { path: f.path, doc: parseIni(text) } : f));
  assertEffective(afterFiles, args, mode);

  const fileChanges: FileChange[] = [];
  const commands: CommandStep[] = [];
  if (text !== before.content) {
    fileChanges.push({
      path: configFile,
      before: before.exists ? before.content : null,
      beforeSha256: before.exists ? (before.sha256 ?? null) : null,
      after: text,
      mode: '0644',
      owner: 'root',
      group: 'root',
    });
    if (status.running) {
      commands.push(shellCommand([...clientWords(status.client, baseDir), 'reload']));
      messages.push('fail2ban is running → reload it to apply the new configuration');
    } else {
      messages.push('fail2ban is not running: the files are written, it reads them when it starts');
    }
    if (!status.running && !jailSettingsChanged) {
      // fail2ban-client -t is a Python start-up on every host (~0.1 s of CPU each). With fail2ban
      // stopped nothing goes live, and an ignoreip list sshfix wrote and re-parsed cannot break the
      // syntax; jail settings (bantime, actions...) and a running fail2ban are checked by fail2ban itself.
      messages.push(
        'only ignoreip changes and fail2ban is not running: checked by sshfix, not by fail2ban-client -t',
      );
    }
  }

  const unban = args.unban ?? [];
  const firewall = parseFirewallBans(status.firewallDump);
  warnings.push(...trapWarnings(firewall.bans, args.ignoreip ?? [], unban));
  let bans: BanPlan | undefined;
  if (unban.length > 0 && !status.running) {
    messages.push(`fail2ban is not running: no live ban to lift for ${unban.join(' ')}`);
    const stale = bansMatching(firewall.bans, unban);
    warnings.push(
      ...stale.map(
        ({ jail, address }) =>
          `${address} is still blocked by the firewall rules of jail ${jail}, left behind by a stopped fail2ban`,
      ),
    );
  } else if (unban.length > 0) {
    const hidden = jailsHiddenFromFirewall(afterFiles);
    if (hidden.length === 0) {
      bans = planUnbans(firewall.bans, 'firewall f2b-* rules', unban, status.client, baseDir);
    } else {
      const reported = await host.probe(clientBansScript(status.client, baseDir), {
        description: 'fail2ban bans (fail2ban-client banned)',
      });
      if (reported.exitCode !== 0)
        throw new Error(`fail2ban-client could not list the bans: ${reported.stderr.trim()}`);
      bans = planUnbans(
        parseClientBans(reported.stdout),
        'fail2ban-client banned',
        unban,
        status.client,
        baseDir,
      );
      messages.push(
        `the firewall does not show the bans of jail(s) ${hidden.join(', ')} (non-firewall or unresolved actions): asked fail2ban-client`,
      );
    }
    messages.push(...bans.messages);
    commands.push(...bans.commands);
  }

  const data: Fail2banPlanData = {
    client: status.client,
    baseDir,
    running: status.running,
    configFile,
    staged: fileChanges.length > 0 && (status.running || jailSettingsChanged) ? text : null,
    unbans: bans?.unbans ?? [],
  };
  return {
    action: fileChanges.length > 0 || commands.length > 0 ? 'change' : 'none',
    messages,
    warnings,
    fileChanges,
    commands,
    ...(bans?.stateDiff ? { stateDiffs: [bans.stateDiff] } : {}),
    // Its reload and unbans rewrite its firewall chains: a rollback restores the firewall, then reloads it.
    effects: { firewall: true, fail2ban: true },
    data,
  };
}

// ---------------------------------------------------------------------------
// Apply hooks

/** `fail2ban-client -t` on a copy of the configuration directory holding the new file: nothing live is touched. */
function validateStaged(plan: ResourcePlan<Fail2banPlanData>): HostCheck[] {
  const data = plan.data;
  if (data === undefined || data.staged === null) return [];
  const relative = data.configFile.slice(data.baseDir.length + 1);
  const script = [
    'umask 077',
    'stage=$(mktemp -d /tmp/sshfix-fail2ban.XXXXXX) || exit 1',
    'trap \'rm -rf "$stage"\' EXIT',
    `cp -a ${shellQuote(`${data.baseDir}/.`)} "$stage/" || exit 1`,
    `mkdir -p "$(dirname -- "$stage"/${shellQuote(relative)})" || exit 1`,
    `{ ${fileContent(data.staged, 'SSHFIX_FAIL2BAN_STAGE')}} > "$stage"/${shellQuote(relative)} || exit 1`,
    `out=$(${shellQuote(data.client)} -c "$stage" -t 2>&1); rc=$?`,
    // Name the real directory in fail2ban's messages, not the temporary copy.
    `base=${shellQuote(data.baseDir.replace(/[#\\&]/g, '\\$&'))}`,
    '[ "$rc" -eq 0 ] || printf \'%s\\n\' "$out" | sed "s#$stage#$base#g" >&2',
    'exit "$rc"',
  ].join('\n');
  const failure = (result: ExecResult): string | undefined => {
    if (result.exitCode === 0) return undefined;
    const detail = result.stderr.trim().split('\n').slice(-5).join('\n');
    return `fail2ban-client -t rejected the new configuration: ${detail || `exit ${result.exitCode}`}`;
  };
  return [{ script, failure }];
}

/** The effect, not the text: fail2ban itself must no longer hold the lifted bans. */
function verifyBansLifted(plan: ResourcePlan<Fail2banPlanData>): HostCheck[] {
  const data = plan.data;
  if (data === undefined) return [];
  if (!data.running || data.unbans.length === 0) return [];
  const failure = (result: ExecResult): string | undefined => {
    if (result.exitCode !== 0) return `fail2ban-client could not list the bans: ${result.stderr.trim()}`;
    const bans = parseClientBans(result.stdout);
    const left = data.unbans.filter(({ jail, address }) => bans.get(jail)?.has(address));
    if (left.length === 0) return undefined;
    return `still banned after unban: ${left.map((l) => `${l.address} in ${l.jail}`).join(', ')}`;
  };
  return [{ script: clientBansScript(data.client, data.baseDir), failure }];
}

export const fail2banResource: ResourceKind<Fail2banArgs, Fail2banPlanData> = {
  name: 'fail2ban',
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    minProperties: 1,
    properties: {
      ignoreip: { type: 'array', items: { type: 'string', minLength: 1 } },
      mode: { enum: ['merge', 'exact'], default: 'merge' },
      unban: { type: 'array', items: { type: 'string', minLength: 1 } },
      jails: {
        type: 'object',
        additionalProperties: {
          type: 'object',
          additionalProperties: { type: ['string', 'number', 'boolean'] },
        },
      },
      config_file: { type: 'string', pattern: '^/' },
      required: { type: 'boolean', default: false },
    },
  },
  checkArgs: checkFail2banArgs,
  plan: planFail2ban,
  validate: validateStaged,
  verify: verifyBansLifted,
};
