/**
 * The sshd_config *tree* (main file plus everything it Includes), read in
 * sshd's order; which occurrence of a keyword actually wins; a planner that
 * edits that occurrence in place; staging of the whole tree for `sshd -t`;
 * and comparison with `sshd -T` output. No I/O except through the reader
 * passed in.
 */
import type { Diagnostic } from '../config/diagnostics.js';
import { errorMessage } from '../errors.js';
import type { FileState } from '../plan/types.js';
import {
  assertNoControlCharacters,
  dominantLineEnding,
  parseSshdConfig,
  quoteArgument,
  renderSshdConfig,
  rewriteDirectiveValue,
  tokenizeArguments,
  type DirectiveLine,
  type SshdConfigFile,
} from './sshd_config.js';
import {
  canonicalKeyword,
  keywordInfo,
  normalizeArgument,
  penaltiesMatch,
  releaseNeeded,
  suggestKeyword,
  valueProblem,
  valuesEqual,
  type KeywordInfo,
  type ReleaseNeed,
} from './sshd_keywords.js';
import { versionAtLeast } from './openssh_version.js';

/** Directory relative Include paths are resolved against (sshd's SSHDIR on every major distribution). */
export const SSH_DIR = '/etc/ssh';
/** servconf.c SERVCONF_MAX_DEPTH. */
export const MAX_INCLUDE_DEPTH = 16;

export interface SshdTreeReader {
  readFiles(paths: string[]): Promise<Map<string, FileState>>;
  /** Sorted lexically, as sshd's glob(3) returns them. */
  glob(pattern: string): Promise<string[]>;
  /** Names and contents in one read, when the reader can (a remote host: one round trip instead of two). */
  globFiles?(pattern: string): Promise<FileState[]>;
}

export interface FilePosition {
  file: string;
  line: number;
}

/** One directive as sshd reads it, in reading order. */
export interface DirectiveOccurrence extends FilePosition {
  keyword: string;
  key: string;
  args: string[];
  /** True when the line sits inside a Match block (sshd_config(5) limits which keywords may). */
  inMatch: boolean;
  /**
   * True when every Match block the line sits in matches every connection
   * (`Match Address *`): sshd does not apply it when it starts, nor in
   * `sshd -T` without `-C`, but every connection gets it.
   */
  everyConnection: boolean;
  /** The innermost Match line whose block this line belongs to. */
  matchAt?: FilePosition;
}

export interface LoadedFile {
  path: string;
  state: FileState;
  parsed: SshdConfigFile;
}

export interface SshdTree {
  mainPath: string;
  /** Every file read, in first-read order. */
  files: Map<string, LoadedFile>;
  occurrences: DirectiveOccurrence[];
  /** Unknown keywords and similar problems sshd would reject. */
  diagnostics: Diagnostic[];
}

/** A Match line in effect, and whether its criteria match every connection. */
interface MatchCondition {
  at: FilePosition;
  everyConnection: boolean;
}

/**
 * The Match lines a line is subject to, outermost first: it applies only to
 * connections that match all of them. More than one when an Include sits
 * inside a Match block and the included file has Match blocks of its own.
 */
type MatchContext = readonly MatchCondition[];

/** Reads `mainPath` and, recursively, every file it Includes, exactly in the order and context sshd does. */
export async function loadSshdTree(mainPath: string, reader: SshdTreeReader): Promise<SshdTree> {
  const tree: SshdTree = { mainPath, files: new Map(), occurrences: [], diagnostics: [] };
  const states = await reader.readFiles([mainPath]);
  const main = states.get(mainPath);
  if (main === undefined || !main.exists) throw new Error(`${mainPath}: sshd_config not found`);
  await readFileInto(tree, main, reader, [], 0);
  return tree;
}

async function readFileInto(
  tree: SshdTree,
  state: FileState,
  reader: SshdTreeReader,
  inherited: MatchContext,
  depth: number,
): Promise<void> {
  // servconf.c parse_server_config_depth(): fatal("Too many recursive configuration includes").
  if (depth > MAX_INCLUDE_DEPTH) {
    throw new Error(
      `${state.path}: too many recursive configuration includes (more than ${MAX_INCLUDE_DEPTH})`,
    );
  }
  const parsed = tree.files.get(state.path)?.parsed ?? parseSshdConfig(state.content);
  if (!tree.files.has(state.path)) tree.files.set(state.path, { path: state.path, state, parsed });

  // A Match block runs to the next Match line or to the end of the file that
  // holds it: servconf.c (sInclude) saves `oactive = *activep` before parsing
  // an included file and restores `*activep = oactive` afterwards ("Don't let
  // included files clobber the containing file's Match state"). The included
  // file starts in the includer's state, so an Include inside a Match block
  // makes every included line conditional. And when the Include's block does
  // not match, the file is parsed with SSHCFG_NEVERMATCH: none of its Match
  // lines can match, not even `Match all`. So a Match in the included file
  // only narrows the includer's condition, and `Match all` returns to it,
  // never to global context.
  let context: MatchContext = inherited;
  for (const line of parsed.lines) {
    if (line.kind !== 'directive') continue;
    const position = { file: state.path, line: line.line };
    if (line.key === 'match') context = matchContextAfter(line, position, inherited);
    recordOccurrence(tree, line, position, context);
    if (line.error !== undefined) {
      tree.diagnostics.push(diagnostic(position, `${line.keyword}: ${line.error}`));
    }
    if (line.key === 'include') {
      for (const pattern of line.args) {
        for (const included of await readIncludedFiles(pattern, reader, position)) {
          await readFileInto(tree, included, reader, context, depth + 1);
        }
      }
    }
  }
}

/**
 * `Match all` returns to the context the file started in (global at the top
 * level, the enclosing Match inside an included file); any other Match
 * starts a block under that context.
 */
function matchContextAfter(
  line: DirectiveLine,
  position: FilePosition,
  fileContext: MatchContext,
): MatchContext {
  const matchesAll = line.args.length === 1 && line.args[0]?.toLowerCase() === 'all';
  if (matchesAll) return fileContext;
  return [...fileContext, { at: position, everyConnection: matchesEveryConnection(line.args) }];
}

/** Criteria whose `*` pattern matches any value a connection can have (servconf.c match_cfg_line). */
const UNIVERSAL_CRITERIA = new Set(['user', 'host', 'address', 'localaddress']);

/**
 * Whether a Match line's criteria (ANDed) match every connection: each one is
 * User, Host, Address or LocalAddress with `*` in its pattern list and no
 * negation (`Match Address *`, `Match User=*`). Group is left out: a user that
 * does not exist has no groups.
 */
export function matchesEveryConnection(args: readonly string[]): boolean {
  const criteria = matchCriteria(args);
  return (
    criteria.length > 0 &&
    criteria.every(([attribute, list]) => {
      const patterns = list.split(',');
      return (
        UNIVERSAL_CRITERIA.has(attribute.toLowerCase()) &&
        patterns.includes('*') &&
        !patterns.some((p) => p.startsWith('!'))
      );
    })
  );
}

/** A Match line's arguments as (criterion, patterns) pairs: `User alice`, `Address=10.0.0.0/8`. */
function matchCriteria(args: readonly string[]): [string, string][] {
  const criteria: [string, string][] = [];
  for (let i = 0; i < args.length; i++) {
    const word = args[i] ?? '';
    const equals = word.indexOf('=');
    if (equals > 0) criteria.push([word.slice(0, equals), word.slice(equals + 1)]);
    else criteria.push([word, args[++i] ?? '']);
  }
  return criteria;
}

/**
 * The `-C` argument under which `sshd -T` shows what connections that match
 * no Match block get. Without `-C`, sshd -T cannot evaluate `Match LocalPort`
 * ("'Match LocalPort' in configuration but 'lport' not in connection test
 * specification": servconf.c match_cfg_line takes local port 0 as missing).
 * Since OpenSSH 8.1 (bz#2858) any attribute -C leaves out matches nothing, so
 * a local port that no `Match LocalPort` names is the whole answer.
 */
export function unmatchedConnectionSpec(tree: SshdTree): string {
  const named = new Set<number>();
  for (const o of tree.occurrences) {
    if (o.key !== 'match') continue;
    for (const [criterion, value] of matchCriteria(o.args))
      if (criterion.toLowerCase() === 'localport') named.add(Number(value));
  }
  let port = 65535;
  while (named.has(port)) port--;
  return `lport=${port}`;
}

function recordOccurrence(
  tree: SshdTree,
  line: DirectiveLine,
  position: FilePosition,
  context: MatchContext,
): void {
  const inMatch = context.length > 0;
  const matchAt = context[context.length - 1]?.at;
  const occurrence: DirectiveOccurrence = {
    ...position,
    keyword: line.keyword,
    key: line.key,
    args: line.args,
    inMatch,
    everyConnection: inMatch && context.every((c) => c.everyConnection),
  };
  if (matchAt !== undefined) occurrence.matchAt = matchAt;
  tree.occurrences.push(occurrence);
  const info = keywordInfo(line.key);
  if (info === undefined) {
    const suggestion = suggestKeyword(line.keyword);
    const hint = suggestion === undefined ? '' : ` (did you mean ${suggestion}?)`;
    tree.diagnostics.push(diagnostic(position, `unknown sshd_config keyword "${line.keyword}"${hint}`));
  } else if (inMatch && line.key !== 'match' && !info.allowedInMatch) {
    tree.diagnostics.push(
      diagnostic(position, `Directive '${info.name}' is not allowed within a Match block`, matchAt),
    );
  }
}

function diagnostic(position: FilePosition, summary: string, matchAt?: FilePosition): Diagnostic {
  const d: Diagnostic = { severity: 'error', summary, position: { ...position, column: 1 } };
  if (matchAt !== undefined) d.detail = `the Match block starts at ${formatAt(matchAt)}`;
  return d;
}

/** Relative Include paths are relative to /etc/ssh (servconf.c: `xasprintf(&arg, "%s/%s", SSHDIR, arg2)`). */
export function resolveIncludePattern(pattern: string): string {
  return pattern.startsWith('/') || pattern.startsWith('~') ? pattern : `${SSH_DIR}/${pattern}`;
}

async function readIncludedFiles(
  pattern: string,
  reader: SshdTreeReader,
  includedFrom: FilePosition,
): Promise<FileState[]> {
  // A glob that matches nothing is fine (GLOB_NOMATCH is not an error).
  if (reader.globFiles) {
    return [...(await reader.globFiles(resolveIncludePattern(pattern)))].sort((a, b) =>
      compareBytes(a.path, b.path),
    );
  }
  const paths = [...(await reader.glob(resolveIncludePattern(pattern)))].sort(compareBytes);
  if (paths.length === 0) return [];
  const states = await reader.readFiles(paths);
  return paths.map((path) => {
    const state = states.get(path);
    if (state === undefined || !state.exists) {
      throw new Error(`${formatAt(includedFrom)}: included file ${path} cannot be read`);
    }
    return state;
  });
}

function compareBytes(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function formatAt(position: FilePosition): string {
  return `${position.file}:${position.line}`;
}

// ---------------------------------------------------------------------------
// Effective values

export interface EffectiveSetting {
  /** Canonical keyword. */
  keyword: string;
  /** Values sshd uses for connections that match no Match block; empty when unset (sshd default). */
  values: string[];
  /** The occurrence that wins (`single`/`list`), or the first of the contributing ones (`accumulate`). */
  winner?: DirectiveOccurrence;
  /** Global lines that contribute: just the winner, or every line for `accumulate` keywords. */
  contributing: DirectiveOccurrence[];
  /** Later global lines sshd ignores because the first value wins. */
  ignored: DirectiveOccurrence[];
  /** Lines inside Match blocks that apply only to some connections. */
  inMatch: DirectiveOccurrence[];
  /**
   * Lines inside Match blocks that match every connection (`Match Address *`):
   * at connection time they override the global value for everyone.
   */
  everyConnection: DirectiveOccurrence[];
  /**
   * True for keywords OpenSSH 9.2 lets the *last* occurrence win (MaxStartups,
   * IPQoS...) when the global occurrences disagree: the value then depends on
   * the sshd version.
   */
  versionDependent: boolean;
}

/** Occurrences of `keyword` or one of its aliases. */
function occurrencesOf(tree: SshdTree, info: KeywordInfo): DirectiveOccurrence[] {
  return tree.occurrences.filter((o) => canonicalKeyword(o.key) === info.name);
}

function requireKeyword(keyword: string): KeywordInfo {
  const info = keywordInfo(keyword);
  if (info === undefined) {
    const suggestion = suggestKeyword(keyword);
    throw new Error(
      `unknown sshd_config keyword "${keyword}"${suggestion === undefined ? '' : ` (did you mean ${suggestion}?)`}`,
    );
  }
  return info;
}

const samePosition = (a: FilePosition, b: FilePosition): boolean => a.file === b.file && a.line === b.line;

/**
 * One occurrence per line of text. A file that is included several times
 * (servcfginclude: one glob in six Match blocks) yields several occurrences
 * of each of its lines, but each line can be edited, and reported, once.
 */
function distinctLines(occurrences: readonly DirectiveOccurrence[]): DirectiveOccurrence[] {
  return occurrences.filter((o, i) => occurrences.findIndex((other) => samePosition(o, other)) === i);
}

/** What sshd uses for `keyword` outside Match blocks, and where it comes from. */
export function effectiveSetting(tree: SshdTree, keyword: string): EffectiveSetting {
  const info = requireKeyword(keyword);
  const all = occurrencesOf(tree, info);
  const global = all.filter((o) => !o.inMatch);
  const inMatch = distinctLines(all.filter((o) => o.inMatch && !o.everyConnection));
  const everyConnection = distinctLines(all.filter((o) => o.everyConnection));
  const winner = global[0];
  if (info.multiplicity === 'accumulate') {
    // Every line read counts, as often as it is read; each line is edited once.
    const values = global.flatMap((o) => (info.itemPerLine === 'line' ? [o.args.join(' ')] : o.args));
    const result: EffectiveSetting = {
      keyword: info.name,
      values,
      contributing: distinctLines(global),
      ignored: [],
      inMatch,
      everyConnection,
      versionDependent: false,
    };
    if (winner !== undefined) result.winner = winner;
    return result;
  }
  const ignored = distinctLines(global.slice(1)).filter(
    (o) => winner === undefined || !samePosition(o, winner),
  );
  const versionDependent =
    info.lastWinsOnOlderSshd === true &&
    winner !== undefined &&
    ignored.some((o) => !valuesEqual(info.name, o.args, winner.args));
  const result: EffectiveSetting = {
    keyword: info.name,
    values: winner?.args ?? [],
    contributing: winner === undefined ? [] : [winner],
    ignored,
    inMatch,
    everyConnection,
    versionDependent,
  };
  if (winner !== undefined) result.winner = winner;
  return result;
}

// ---------------------------------------------------------------------------
// Planning

export type SettingValue = string | number | boolean | Array<string | number>;

export interface SettingDecision {
  keyword: string;
  /** One entry per line for `accumulate` keywords, else the single value text. */
  desired: string[];
  current?: { values: string[]; file: string; line: number };
  action: 'keep' | 'replace' | 'insert';
  message: string;
  warnings: string[];
}

export interface SshdSettingsPlan {
  /** New content of every file that changes. */
  files: Map<string, string>;
  decisions: SettingDecision[];
}

const DUPLICATE_MARKER = '# sshfix: ignored duplicate (first value wins): ';
const SUPERSEDED_MARKER = '# sshfix: superseded';

/**
 * Plans the edits that make sshd use `settings` for connections outside Match
 * blocks: edits the occurrence that wins, in whichever file holds it;
 * comments out later duplicates; inserts missing keywords into the main file
 * where they win and outside any Match block.
 */
export function planSshdSettings(
  tree: SshdTree,
  settings: Record<string, SettingValue>,
  remove: readonly string[] = [],
): SshdSettingsPlan {
  const editor = new TreeEditor(tree);
  const seen = new Map<string, string>();
  const decisions: SettingDecision[] = [];
  for (const [name, value] of Object.entries(settings)) {
    const { info, lines: desired } = settingLines(name, value);
    const earlier = seen.get(info.name);
    if (earlier !== undefined) throw new Error(duplicateSetting(name, earlier, info));
    seen.set(info.name, name);
    decisions.push(
      info.multiplicity === 'accumulate'
        ? planAccumulating(tree, editor, info, desired)
        : planSingle(tree, editor, info, desired),
    );
  }
  for (const name of remove) decisions.push(planRemoval(tree, editor, name, seen));
  return { files: editor.changedFiles(), decisions };
}

/**
 * The lines one setting writes, after every check that needs no host: the
 * keyword exists and can be set, and its value can be written so that sshd
 * reads it back (quoting) and accepts it (value type). Throws with the reason.
 */
export function settingLines(name: string, value: SettingValue): { info: KeywordInfo; lines: string[] } {
  const info = requireKeyword(name);
  if (info.name === 'Match' || info.name === 'Include') {
    throw new Error(`${info.name} cannot be set as a setting; edit the file's structure instead`);
  }
  if (info.deprecated === true) throw new Error(`${info.name} is deprecated and ignored by OpenSSH`);
  return { info, lines: desiredLines(info, name, value) };
}

/**
 * The OpenSSH release a setting needs, from the lines it writes (its
 * keyword, or a newer one its value needs); undefined when any will do.
 * Throws as settingLines does.
 */
export function settingNeeds(name: string, value: SettingValue): ReleaseNeed | undefined {
  const { info, lines } = settingLines(name, value);
  const needs = lines.map((line) => releaseNeeded(info, argsOf(line)));
  return needs.reduce<ReleaseNeed | undefined>((newest, need) => {
    if (need === undefined || newest === undefined) return need ?? newest;
    return versionAtLeast(newest.since, need.since) ? newest : need;
  }, undefined);
}

/** sshd reads keywords case-insensitively, and aliases as their keyword: one of two spellings would be lost. */
export function duplicateSetting(name: string, earlier: string, info: KeywordInfo): string {
  return `"${name}" and "${earlier}" both set ${info.name} (sshd reads keywords case-insensitively)`;
}

const REMOVED_MARKER = '# sshfix: removed: ';

/**
 * Comments out every occurrence of a keyword, in every file and context —
 * also keywords sshd does not know, which is how a directive that keeps sshd
 * from starting ("Bad configuration option") is taken out.
 */
function planRemoval(
  tree: SshdTree,
  editor: TreeEditor,
  name: string,
  seen: Map<string, string>,
): SettingDecision {
  const key = name.toLowerCase();
  const canonical = keywordInfo(key)?.name ?? name;
  if (seen.has(canonical)) throw new Error(`${canonical} is both set and removed`);
  if (key === 'match' || key === 'include')
    throw new Error(`${canonical} cannot be removed; edit the file's structure instead`);
  const found = tree.occurrences.filter((o) => o.key === key);
  for (const o of found) editor.commentOut(o, REMOVED_MARKER);
  return {
    keyword: canonical,
    desired: [],
    action: found.length > 0 ? 'replace' : 'keep',
    message:
      found.length > 0
        ? `${canonical} removed from ${found.map(formatAt).join(', ')}`
        : `${canonical} is not set anywhere`,
    warnings: [],
  };
}

/**
 * Desired value text, one entry per directive line, in the form sshd reads
 * back as the value given: a single-argument value quoted when it needs it
 * (or refused when no quoting works), each list item one argument, and the
 * value of a typed keyword checked as sshd checks it.
 */
function desiredLines(info: KeywordInfo, name: string, value: SettingValue): string[] {
  const lines = desiredText(info, name, value);
  for (const line of lines) {
    const problem = valueProblem(info, argsOf(line));
    if (problem !== undefined) throw new Error(`${info.name}: ${problem}`);
  }
  return lines;
}

function desiredText(info: KeywordInfo, name: string, value: SettingValue): string[] {
  if (Array.isArray(value)) {
    if (info.multiplicity === 'single') {
      throw new Error(`${info.name} takes a single value, got a list (${name})`);
    }
    if (value.length === 0) throw new Error(`${info.name}: empty list`);
    const items = value.map((v) => scalarText(info, v));
    // `list` keywords take every item as one argument of a single line.
    if (info.multiplicity === 'list') return [items.map((item) => argumentText(info, item)).join(' ')];
    // One line per item: an AllowUsers item is one argument, a Subsystem item the line's text.
    return items.map((item) =>
      info.itemPerLine === 'token' ? argumentText(info, item) : valueText(info, item),
    );
  }
  return [valueText(info, scalarText(info, value))];
}

/** A whole value as line text, by the keyword's shape. */
function valueText(info: KeywordInfo, text: string): string {
  return info.shape === 'one' ? argumentText(info, text) : checkedValueText(text);
}

/** One argument, quoted for sshd_config. */
function argumentText(info: KeywordInfo, text: string): string {
  try {
    return quoteArgument(text);
  } catch (error) {
    throw new Error(`${info.name}: ${errorMessage(error)}`);
  }
}

function scalarText(info: KeywordInfo, value: string | number | boolean): string {
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`${info.name}: ${value} is not a number sshd accepts`);
    return String(value);
  }
  return value;
}

/** A value written verbatim must be one line and parse as sshd would read it back. */
function checkedValueText(text: string): string {
  assertNoControlCharacters(text);
  const { tokens, error } = tokenizeArguments(text);
  if (error !== undefined) throw new Error(`sshd_config value ${JSON.stringify(text)}: ${error}`);
  const reconstructed =
    tokens.length === 0 ? '' : text.slice(tokens[0]?.start, tokens[tokens.length - 1]?.end);
  if (tokens.length === 0 || reconstructed !== text) {
    throw new Error(`sshd_config value ${JSON.stringify(text)} would not be read back as written`);
  }
  return text;
}

function argsOf(text: string): string[] {
  return tokenizeArguments(text).tokens.map((t) => t.value);
}

function planSingle(
  tree: SshdTree,
  editor: TreeEditor,
  info: KeywordInfo,
  desired: string[],
): SettingDecision {
  const desiredText = desired[0] ?? '';
  const desiredArgs = argsOf(desiredText);
  const effective = effectiveSetting(tree, info.name);
  const warnings = matchWarnings(effective.inMatch);
  const decision = planGlobalSingle(editor, info, desiredText, effective, warnings);
  const overriding = effective.everyConnection.filter((o) => !valuesEqual(info.name, o.args, desiredArgs));
  for (const o of overriding) editor.replaceValue(o, desiredText);
  return withOverridesEdited(decision, info, overriding, desiredText);
}

/** The decision for the value sshd uses outside Match blocks. */
function planGlobalSingle(
  editor: TreeEditor,
  info: KeywordInfo,
  desiredText: string,
  effective: EffectiveSetting,
  warnings: string[],
): SettingDecision {
  const desired = [desiredText];
  const desiredArgs = argsOf(desiredText);
  const winner = effective.winner;
  if (winner === undefined) {
    editor.insert(info.name, [desiredText]);
    return {
      keyword: info.name,
      desired,
      action: 'insert',
      message: `${info.name} (unset, default) → ${desiredText}`,
      warnings,
    };
  }
  const current = { values: [winner.args.join(' ')], file: winner.file, line: winner.line };
  const winnerMatches = valuesEqual(info.name, winner.args, desiredArgs);
  const differingDuplicates = effective.ignored.filter((o) => !valuesEqual(info.name, o.args, desiredArgs));
  // On OpenSSH 9.2 a later MaxStartups (IPQoS...) wins: only a tree where every global occurrence agrees is safe.
  const mustRemoveDuplicates = info.lastWinsOnOlderSshd === true && differingDuplicates.length > 0;
  if (winnerMatches && !mustRemoveDuplicates) {
    for (const o of differingDuplicates) {
      warnings.push(
        `ignored duplicate at ${formatAt(o)}: ${o.keyword} ${o.args.join(' ')} (first value wins)`,
      );
    }
    return {
      keyword: info.name,
      desired,
      current,
      action: 'keep',
      message: `${info.name} ${current.values[0]} at ${formatAt(winner)}`,
      warnings,
    };
  }
  if (!winnerMatches) editor.replaceValue(winner, desiredText);
  for (const o of effective.ignored) editor.commentOut(o, DUPLICATE_MARKER);
  if (effective.ignored.length > 0) {
    warnings.push(
      `commented out ${effective.ignored.length} later duplicate(s) at ${effective.ignored.map(formatAt).join(', ')}`,
    );
  }
  return {
    keyword: info.name,
    desired,
    current,
    action: 'replace',
    message: `${info.name} ${current.values[0]} from ${formatAt(winner)} → ${desiredText}`,
    warnings,
  };
}

/**
 * A Match block that matches every connection (`Match Address *`) overrides
 * the global value for everyone, so its lines are edited too: otherwise the
 * new global value would reach no connection.
 */
function withOverridesEdited(
  decision: SettingDecision,
  info: KeywordInfo,
  edited: readonly DirectiveOccurrence[],
  shown: string,
): SettingDecision {
  if (edited.length === 0) return decision;
  const messages = edited.map(
    (o) =>
      `${info.name} ${o.args.join(' ')} at ${formatAt(o)} (inside ${matchBlockAt(o)}, which matches every connection) → ${shown}`,
  );
  return {
    ...decision,
    action: decision.action === 'keep' ? 'replace' : decision.action,
    message: [...(decision.action === 'keep' ? [] : [decision.message]), ...messages].join('; '),
  };
}

function planAccumulating(
  tree: SshdTree,
  editor: TreeEditor,
  info: KeywordInfo,
  desired: string[],
): SettingDecision {
  const effective = effectiveSetting(tree, info.name);
  const warnings = matchWarnings(effective.inMatch);
  const desiredItems = desired.flatMap((text) => (info.itemPerLine === 'line' ? [text] : argsOf(text)));
  const shown = desired.join(', ');
  const decision = planGlobalAccumulating(editor, info, desired, desiredItems, effective, warnings);
  const overriding = effective.everyConnection;
  const overridingItems = overriding.flatMap((o) =>
    info.itemPerLine === 'line' ? [o.args.join(' ')] : o.args,
  );
  const first = overriding[0];
  if (first === undefined || sameItems(info, overridingItems, desiredItems)) return decision;
  editor.replaceWithLines(first, desired);
  const marker = `${SUPERSEDED_MARKER} (${info.name} is now set at ${formatAt(first)}): `;
  for (const o of overriding.slice(1)) editor.commentOut(o, marker);
  return withOverridesEdited(decision, info, overriding, shown);
}

/** The decision for the lines sshd uses outside Match blocks. */
function planGlobalAccumulating(
  editor: TreeEditor,
  info: KeywordInfo,
  desired: string[],
  desiredItems: string[],
  effective: EffectiveSetting,
  warnings: string[],
): SettingDecision {
  const currentItems = effective.values;
  const shown = desired.join(', ');
  const first = effective.winner;
  if (first === undefined) {
    editor.insert(info.name, desired);
    return {
      keyword: info.name,
      desired,
      action: 'insert',
      message: `${info.name} (unset, default) → ${shown}`,
      warnings,
    };
  }
  const current = { values: currentItems, file: first.file, line: first.line };
  if (sameItems(info, currentItems, desiredItems)) {
    return {
      keyword: info.name,
      desired,
      current,
      action: 'keep',
      message: `${info.name} ${currentItems.join(', ')} at ${formatAt(first)}`,
      warnings,
    };
  }
  editor.replaceWithLines(first, desired);
  const marker = `${SUPERSEDED_MARKER} (${info.name} is now set at ${formatAt(first)}): `;
  for (const o of effective.contributing.slice(1)) editor.commentOut(o, marker);
  return {
    keyword: info.name,
    desired,
    current,
    action: 'replace',
    message: `${info.name} ${currentItems.join(', ')} from ${formatAt(first)} → ${shown}`,
    warnings,
  };
}

/** Order-insensitive comparison of two value multisets. */
function sameItems(info: KeywordInfo, a: readonly string[], b: readonly string[]): boolean {
  const normalize = (items: readonly string[]) =>
    items
      .map((item) =>
        argsOf(item)
          .map((arg) => normalizeArgument(info, arg))
          .join(' '),
      )
      .sort();
  return JSON.stringify(normalize(a)) === JSON.stringify(normalize(b));
}

function matchBlockAt(o: DirectiveOccurrence): string {
  return o.matchAt === undefined ? 'a Match block' : `the Match block at ${formatAt(o.matchAt)}`;
}

/**
 * One warning for every line inside conditional Match blocks, each line
 * named once, grouped by file: `a:3` or `a:104,107; b:2,5`.
 */
function matchWarnings(occurrences: readonly DirectiveOccurrence[]): string[] {
  const [only, ...others] = occurrences;
  if (only === undefined) return [];
  if (others.length === 0) {
    return [
      `also set at ${formatAt(only)} inside ${matchBlockAt(only)} (applies only to matching connections)`,
    ];
  }
  const linesByFile = new Map<string, number[]>();
  for (const o of occurrences) linesByFile.set(o.file, [...(linesByFile.get(o.file) ?? []), o.line]);
  const where = [...linesByFile].map(([file, lines]) => `${file}:${lines.join(',')}`).join('; ');
  return [
    `also set on ${occurrences.length} lines inside Match blocks (apply only to matching connections): ${where}`,
  ];
}

/**
 * Collects line edits per file and renders them once, so several settings can
 * touch one file and every untouched line stays byte-identical.
 */
class TreeEditor {
  /** file → line number → replacement lines (text without line ending). */
  private readonly replacements = new Map<string, Map<number, string[]>>();
  /** Main-file insertions: anchor line number (0 = before line 1) → lines inserted after it. */
  private readonly insertions = new Map<number, string[]>();
  private appendAtEnd: string[] = [];

  constructor(private readonly tree: SshdTree) {}

  replaceValue(occurrence: FilePosition, valueText: string): void {
    const directive = this.directiveAt(occurrence);
    this.setReplacement(occurrence, [rewriteDirectiveValue(directive, valueText)]);
  }

  /** The occurrence's line becomes one line per value, the first keeping the original layout. */
  replaceWithLines(occurrence: FilePosition, values: string[]): void {
    const directive = this.directiveAt(occurrence);
    const [firstValue = '', ...others] = values;
    const separator = directive.separator === '' ? ' ' : directive.separator;
    this.setReplacement(occurrence, [
      rewriteDirectiveValue(directive, firstValue),
      ...others.map((v) => directive.indent + directive.keyword + separator + v),
    ]);
  }

  commentOut(occurrence: FilePosition, marker: string): void {
    const directive = this.directiveAt(occurrence);
    this.setReplacement(occurrence, [
      directive.indent + marker + directive.raw.slice(directive.indent.length).trimEnd(),
    ]);
  }

  /**
   * Inserts into the main file where the line wins and is outside any Match
   * block: after a commented-out default (`#MaxSessions 10`) that precedes the
   * first Match line, else just before the first Match line, else at the end.
   */
  insert(keyword: string, values: string[]): void {
    const lines = values.map((v) => `${keyword} ${v}`);
    const main = this.mainFile();
    const firstMatch = main.parsed.lines.find((l) => l.kind === 'directive' && l.key === 'match');
    const limit = firstMatch?.line ?? Infinity;
    const commentedDefault = main.parsed.lines.find(
      (l) => l.kind === 'comment' && l.line < limit && isCommentedDirective(l.raw, keyword),
    );
    if (commentedDefault !== undefined) this.addInsertion(commentedDefault.line, lines);
    else if (firstMatch !== undefined) this.addInsertion(firstMatch.line - 1, lines);
    else this.appendAtEnd.push(...lines);
  }

  changedFiles(): Map<string, string> {
    const result = new Map<string, string>();
    for (const [path, loaded] of this.tree.files) {
      const isMain = path === this.tree.mainPath;
      const replacements = this.replacements.get(path);
      if (replacements === undefined && !(isMain && this.hasInsertions())) continue;
      const content = this.render(loaded, replacements ?? new Map(), isMain);
      if (content !== loaded.state.content) result.set(path, content);
    }
    return result;
  }

  private hasInsertions(): boolean {
    return this.insertions.size > 0 || this.appendAtEnd.length > 0;
  }

  private render(loaded: LoadedFile, replacements: Map<number, string[]>, isMain: boolean): string {
    const eol = dominantLineEnding(loaded.parsed);
    const out: string[] = [];
    const inserted = (anchor: number) => (isMain ? (this.insertions.get(anchor) ?? []) : []);
    for (const text of inserted(0)) out.push(text + eol);
    for (const line of loaded.parsed.lines) {
      const replacement = replacements.get(line.line);
      const texts = replacement ?? [line.raw];
      const after = inserted(line.line);
      // A last line without newline gets one when something follows it.
      const lineEol = line.eol === '' && after.length > 0 ? eol : line.eol;
      texts.forEach((text, i) => out.push(text + (i === texts.length - 1 ? lineEol : eol)));
      for (const text of after) out.push(text + eol);
    }
    if (isMain && this.appendAtEnd.length > 0) {
      const last = out.length - 1;
      const lastLine = out[last];
      if (lastLine !== undefined && !lastLine.endsWith('\n')) out[last] = lastLine + eol;
      for (const text of this.appendAtEnd) out.push(text + eol);
    }
    return out.join('');
  }

  private addInsertion(anchor: number, lines: string[]): void {
    this.insertions.set(anchor, [...(this.insertions.get(anchor) ?? []), ...lines]);
  }

  private setReplacement(occurrence: FilePosition, lines: string[]): void {
    const perFile = this.replacements.get(occurrence.file) ?? new Map<number, string[]>();
    perFile.set(occurrence.line, lines);
    this.replacements.set(occurrence.file, perFile);
  }

  private mainFile(): LoadedFile {
    const main = this.tree.files.get(this.tree.mainPath);
    if (main === undefined) throw new Error(`${this.tree.mainPath}: not loaded`);
    return main;
  }

  private directiveAt(position: FilePosition): DirectiveLine {
    const line = this.tree.files.get(position.file)?.parsed.lines[position.line - 1];
    if (line?.kind !== 'directive') throw new Error(`${formatAt(position)}: no directive on that line`);
    return line;
  }
}

/** `#MaxSessions 10`, `# MaxSessions 10` or `#MaxSessions=10` for keyword MaxSessions (any case). */
function isCommentedDirective(raw: string, keyword: string): boolean {
  const body = raw.trimStart().replace(/^#+[ \t]*/, '');
  const word = /^[^\s=#]+/.exec(body)?.[0];
  return word !== undefined && word.toLowerCase() === keyword.toLowerCase() && !body.startsWith('sshfix:');
}

// ---------------------------------------------------------------------------
// Staging for `sshd -t`

/**
 * The complete post-change tree relocated under `stageRoot`, with only the
 * Include arguments rewritten to point into the staged copy, so
 * `sshd -t -f <mainPath>` validates exactly what the host would read.
 */
export function stageTreeForValidation(
  tree: SshdTree,
  newFiles: ReadonlyMap<string, string>,
  stageRoot: string,
): { mainPath: string; files: Map<string, string> } {
  const root = stageRoot.replace(/\/+$/, '');
  const files = new Map<string, string>();
  const paths = new Set([...tree.files.keys(), ...newFiles.keys()]);
  for (const path of paths) {
    const content = newFiles.get(path) ?? tree.files.get(path)?.state.content ?? '';
    files.set(stagedPath(root, path), relocateIncludes(content, root));
  }
  return { mainPath: stagedPath(root, tree.mainPath), files };
}

function stagedPath(root: string, path: string): string {
  return root + (path.startsWith('/') ? path : `/${path}`);
}

function relocateIncludes(content: string, root: string): string {
  const parsed = parseSshdConfig(content);
  for (const line of parsed.lines) {
    if (line.kind !== 'directive' || line.key !== 'include' || line.args.length === 0) continue;
    const relocated = line.args.map((arg) => {
      const absolute = resolveIncludePattern(arg);
      // The server does not expand `~` (no GLOB_TILDE): leave such a pattern alone.
      return quoteArgument(absolute.startsWith('~') ? absolute : stagedPath(root, absolute));
    });
    line.raw = rewriteDirectiveValue(line, relocated.join(' '));
  }
  return renderSshdConfig(parsed);
}

// ---------------------------------------------------------------------------
// `sshd -T`

/** `sshd -T` output → lowercase key → values (one per output line; repeated keys accumulate). */
export function parseSshdT(stdout: string): Map<string, string[]> {
  const result = new Map<string, string[]>();
  for (const rawLine of stdout.split('\n')) {
    const line = rawLine.replace(/\r$/, '').trim();
    if (line === '') continue;
    const space = line.search(/\s/);
    const key = (space === -1 ? line : line.slice(0, space)).toLowerCase();
    const value = space === -1 ? '' : line.slice(space).trim();
    result.set(key, [...(result.get(key) ?? []), value]);
  }
  return result;
}

/**
 * Whether the effective configuration printed by `sshd -T` shows `desired`
 * for `keyword`, knowing sshd -T's canonical forms: lowercase keys, times in
 * seconds, `maxstartups 10:30:100`, `permitrootlogin without-password`,
 * `listenaddress 0.0.0.0:22`, algorithm lists expanded from `+`/`-`/`^`.
 */
export function effectiveMatches(
  keyword: string,
  desired: SettingValue,
  sshdT: ReadonlyMap<string, readonly string[]>,
): boolean {
  const info = requireKeyword(keyword);
  const printed = sshdT.get(info.name.toLowerCase());
  if (printed === undefined) return false;
  const desiredLinesText = desiredLines(info, keyword, desired);
  if (info.multiplicity === 'accumulate') {
    const desiredItems = desiredLinesText.flatMap((t) => (info.itemPerLine === 'line' ? [t] : argsOf(t)));
    const comparable = (item: string) => sshdTForm(info, argsOf(item));
    const want = desiredItems.map(comparable).sort();
    const have = printed.map((p) => sshdTForm(info, p.split(/\s+/))).sort();
    if (info.name === 'ListenAddress') return want.every((w) => have.some((h) => listenAddressMatches(w, h)));
    return JSON.stringify(want) === JSON.stringify(have);
  }
  // `list` keywords may print one line per item (`setenv A=1`, `setenv B=2`).
  const printedArgs = printed.flatMap((p) => p.split(/\s+/)).filter((a) => a !== '');
  const desiredArgs = argsOf(desiredLinesText[0] ?? '');
  if (info.valueType === 'algorithms') return algorithmsMatch(desiredArgs[0] ?? '', printedArgs[0] ?? '');
  if (info.valueType === 'penalties') return penaltiesMatch(desiredArgs, printedArgs);
  // `IPQoS af21` sets both classes and prints as `ipqos af21 af21`.
  if (info.name === 'IPQoS' && desiredArgs.length === 1) desiredArgs.push(desiredArgs[0] ?? '');
  return sshdTForm(info, desiredArgs) === sshdTForm(info, printedArgs);
}

function sshdTForm(info: KeywordInfo, args: readonly string[]): string {
  return args.map((arg) => normalizeArgument(info, arg)).join(' ');
}

/** `ListenAddress 0.0.0.0` shows as `0.0.0.0:22`, `::` as `[::]:22`. */
function listenAddressMatches(desired: string, printed: string): boolean {
  if (desired === printed) return true;
  const host = printed.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
  return desired.replace(/^\[(.*)\]$/, '$1') === host;
}

/** `+alg` appends, `-alg` removes, `^alg` prepends (sshd_config(5), Ciphers). */
function algorithmsMatch(desired: string, printed: string): boolean {
  const have = printed.split(',');
  const names = desired.slice(1).split(',');
  if (desired.startsWith('+')) return names.every((n) => have.includes(n));
  if (desired.startsWith('-')) return names.every((n) => !have.includes(n));
  if (desired.startsWith('^')) return names.every((n, i) => have[i] === n);
  return desired === printed;
}
