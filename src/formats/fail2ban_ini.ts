/**
 * fail2ban's configuration dialect, read exactly as fail2ban reads it (Python's
 * configparser with `inline_comment_prefixes=";"`, see fail2ban/client/
 * configparserinc.py), kept losslessly: every line is stored verbatim with its
 * own line ending, so rendering an unedited document gives back the same bytes.
 * Ansible reads ansible.cfg with the same ConfigParser settings, so sshfix's
 * own configuration file (config/settings.ts) is parsed here too.
 *
 * Dialect, as configparser implements it (Python 3.11, Lib/configparser.py `_read`):
 * - `[name]` starts a section; `[DEFAULT]` holds defaults for every section.
 * - `key = value` or `key: value`; the key is the text before the first `=`
 *   or `:`, lower-cased (optionxform); surrounding whitespace is dropped.
 * - A line whose first non-blank character is `#` or `;` is a comment; `;`
 *   after whitespace starts an inline comment (`#` inline is literal text).
 * - A line indented deeper than the line that started the current option
 *   continues its value (multi-line values); comment lines inside do not end
 *   it, blank lines become empty lines of the value.
 * - `%(name)s` interpolation and `[INCLUDES] before/after` are kept as text.
 *
 * Also: fail2ban's read order for jail files (`jailReadOrder`), the effective
 * value of a key for a jail across those files, and editors that set a key in
 * place (keeping the layout of a multi-line `ignoreip` list). No I/O.
 */

export type LineKind = 'blank' | 'comment' | 'section' | 'option' | 'continuation' | 'invalid';

export interface IniLine {
  /** The line without its line ending. */
  text: string;
  /** '\n', '\r\n', '\r', or '' for a last line without one. */
  eol: string;
  kind: LineKind;
  /** For option and continuation lines: where the value's text sits in `text` (end exclusive). */
  valueStart?: number;
  valueEnd?: number;
}

export interface IniOption {
  section: string;
  /** Lower-cased, as fail2ban sees it. */
  key: string;
  /** As configparser returns it: value lines joined by '\n', trailing whitespace removed. */
  value: string;
  /** Index (0-based) of the `key = value` line. */
  line: number;
  /** Index of the last line that holds part of the value. */
  lastLine: number;
}

export interface IniSection {
  name: string;
  /** Index of the `[name]` line. */
  line: number;
  options: IniOption[];
}

export interface IniProblem {
  /** 1-based. */
  line: number;
  message: string;
}

export interface IniDocument {
  lines: IniLine[];
  /** In file order; a name repeated in one file (an error for fail2ban) appears twice. */
  sections: IniSection[];
  /** What configparser would reject (fail2ban then refuses the whole file). */
  problems: IniProblem[];
}

export const DEFAULT_SECTION = 'DEFAULT';
export const INCLUDES_SECTION = 'INCLUDES';

const COMMENT_PREFIXES = ['#', ';'];
const INLINE_COMMENT_PREFIX = ';';

function splitLines(text: string): Array<{ text: string; eol: string }> {
  const lines: Array<{ text: string; eol: string }> = [];
  const re = /\r\n|\n|\r/g;
  let start = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    lines.push({ text: text.slice(start, m.index), eol: m[0] });
    start = m.index + m[0].length;
  }
  if (start < text.length) lines.push({ text: text.slice(start), eol: '' });
  return lines;
}

const isSpace = (c: string | undefined): boolean => c !== undefined && /\s/.test(c);

/** Where an inline `;` comment starts (configparser: at column 0 or after whitespace), or the line's length. */
function inlineCommentStart(text: string): number {
  for (
    let i = text.indexOf(INLINE_COMMENT_PREFIX);
    i !== -1;
    i = text.indexOf(INLINE_COMMENT_PREFIX, i + 1)
  ) {
    if (i === 0 || isSpace(text[i - 1])) return i;
  }
  return text.length;
}

function trimEnd(text: string, start: number, end: number): number {
  let e = end;
  while (e > start && isSpace(text[e - 1])) e--;
  return e;
}

function firstNonSpace(text: string): number {
  const m = /\S/.exec(text);
  return m ? m.index : text.length;
}

/** configparser's SECTCRE `\[(?P<header>.+)\]` matched at the start of the stripped line. */
function sectionHeader(content: string): string | undefined {
  if (!content.startsWith('[')) return undefined;
  const close = content.lastIndexOf(']');
  return close >= 2 ? content.slice(1, close) : undefined;
}

/** Parses fail2ban configuration text. Never throws: what fail2ban would reject is listed in `problems`. */
export function parseIni(text: string): IniDocument {
  const lines: IniLine[] = [];
  const sections: IniSection[] = [];
  const problems: IniProblem[] = [];
  let section: IniSection | undefined;
  let option: IniOption | undefined;
  /** The option's value lines, blank ones included, for configparser's join. */
  let valueParts: string[] = [];
  let indentLevel = 0;

  const finishOption = (): void => {
    if (option) option.value = valueParts.join('\n').trimEnd();
  };

  for (const [index, raw] of splitLines(text).entries()) {
    const line: IniLine = { ...raw, kind: 'blank' };
    lines.push(line);
    const isFullComment = COMMENT_PREFIXES.some((p) => raw.text.trim().startsWith(p));
    const commentStart = isFullComment ? 0 : inlineCommentStart(raw.text);
    const hasComment = commentStart < raw.text.length;
    const start = firstNonSpace(raw.text);
    const end = trimEnd(raw.text, start, commentStart);
    if (end <= start) {
      line.kind = hasComment ? 'comment' : 'blank';
      if (!hasComment && option) valueParts.push('');
      continue;
    }
    const content = raw.text.slice(start, end);
    if (section && option && start > indentLevel) {
      Object.assign(line, { kind: 'continuation', valueStart: start, valueEnd: end });
      valueParts.push(content);
      option.lastLine = index;
      continue;
    }
    indentLevel = start;
    const header = sectionHeader(content);
    if (header !== undefined) {
      finishOption();
      option = undefined;
      line.kind = 'section';
      section = { name: header, line: index, options: [] };
      if (sections.some((s) => s.name === header))
        problems.push({ line: index + 1, message: `section [${header}] appears twice in this file` });
      sections.push(section);
      continue;
    }
    if (!section) {
      line.kind = 'invalid';
      problems.push({ line: index + 1, message: 'text before the first [section] header' });
      continue;
    }
    const delimiter = /[=:]/.exec(content);
    const key = delimiter ? content.slice(0, delimiter.index).trimEnd().toLowerCase() : '';
    if (!delimiter || key === '') {
      line.kind = 'invalid';
      problems.push({ line: index + 1, message: `not a "key = value" line: ${JSON.stringify(content)}` });
      continue;
    }
    finishOption();
    const valueStart =
      start + delimiter.index + 1 + (/^\s*/.exec(content.slice(delimiter.index + 1))?.[0].length ?? 0);
    Object.assign(line, { kind: 'option', valueStart, valueEnd: Math.max(valueStart, end) });
    if (section.options.some((o) => o.key === key))
      problems.push({ line: index + 1, message: `${key} is set twice in [${section.name}]` });
    option = { section: section.name, key, value: '', line: index, lastLine: index };
    valueParts = [raw.text.slice(valueStart, Math.max(valueStart, end))];
    section.options.push(option);
  }
  finishOption();
  return { lines, sections, problems };
}

export function renderIni(doc: IniDocument): string {
  return doc.lines.map((l) => l.text + l.eol).join('');
}

/**
 * Each document's last assignment per section and key, built on first lookup.
 * Planning looks up every jail's keys, and jail.conf has dozens of jails: a
 * scan per lookup made that quadratic, per host. A document's sections and
 * options never change after parsing (editors only rewrite the lines of a
 * parse of their own), so the index stays right.
 */
const optionIndexes = new WeakMap<IniDocument, Map<string, IniOption>>();

function optionIndex(doc: IniDocument): Map<string, IniOption> {
  let index = optionIndexes.get(doc);
  if (!index) {
    index = new Map();
    for (const section of doc.sections)
      for (const option of section.options) index.set(`${section.name}\0${option.key}`, option);
    optionIndexes.set(doc, index);
  }
  return index;
}

/** The last assignment of `key` in `section` within one file (later ones win in fail2ban's merge). */
export function findOption(doc: IniDocument, section: string, key: string): IniOption | undefined {
  return optionIndex(doc).get(`${section}\0${key.toLowerCase()}`);
}

// ---------------------------------------------------------------------------
// Read order and effective values

/**
 * The files fail2ban reads for `jail`, in its order (jail.conf(5) "jail.d/ and
 * fail2ban.d/"; fail2ban/client/configreader.py ConfigReaderUnshared.read):
 * jail.conf, jail.d/*.conf sorted, jail.local, jail.d/*.local sorted. Later
 * files override earlier ones key by key. `dropIns` are the paths found in
 * `${baseDir}/jail.d/`.
 */
export function jailReadOrder(baseDir: string, dropIns: readonly string[]): string[] {
  const dir = `${baseDir}/jail.d/`;
  const inDir = dropIns.filter((p) => p.startsWith(dir) && !p.slice(dir.length).includes('/'));
  const sorted = (suffix: string): string[] => inDir.filter((p) => p.endsWith(suffix)).sort();
  return [`${baseDir}/jail.conf`, ...sorted('.conf'), `${baseDir}/jail.local`, ...sorted('.local')];
}

export interface JailConfigFile {
  path: string;
  doc: IniDocument;
}

export interface EffectiveValue {
  value: string;
  path: string;
  /** 1-based line of the winning assignment. */
  line: number;
  /** The section it came from: the jail's own, or DEFAULT. */
  section: string;
}

function lastAssignment(
  files: readonly JailConfigFile[],
  section: string,
  key: string,
): EffectiveValue | undefined {
  let found: EffectiveValue | undefined;
  for (const file of files) {
    const option = findOption(file.doc, section, key);
    if (option) found = { value: option.value, path: file.path, line: option.line + 1, section };
  }
  return found;
}

/**
 * The value fail2ban uses for `key` in jail `jail`, reading `files` in order:
 * the jail's own last assignment in any file beats [DEFAULT] in every file
 * (configparser looks a key up in the section before the defaults).
 */
export function effectiveValue(
  files: readonly JailConfigFile[],
  jail: string,
  key: string,
): EffectiveValue | undefined {
  return lastAssignment(files, jail, key) ?? lastAssignment(files, DEFAULT_SECTION, key);
}

/** Where `section` sets `key` itself (not through DEFAULT), in read order. */
export function ownAssignments(
  files: readonly JailConfigFile[],
  section: string,
  key: string,
): EffectiveValue[] {
  return files.flatMap((file) => {
    const option = findOption(file.doc, section, key);
    return option ? [{ value: option.value, path: file.path, line: option.line + 1, section }] : [];
  });
}

/** Sections that are jails: every section except DEFAULT, INCLUDES and fail2ban's internal `KNOWN/…` and `name?cond` ones. */
export function jailSections(files: readonly JailConfigFile[]): string[] {
  const names = files.flatMap((f) => f.doc.sections.map((s) => s.name));
  return [...new Set(names)].filter(
    (n) => n !== DEFAULT_SECTION && n !== INCLUDES_SECTION && !n.includes('/') && !n.includes('?'),
  );
}

const TRUE_WORDS = new Set(['true', 'yes', '1', 'on']);

/** fail2ban's boolean words (helpers.py _as_bool semantics for `enabled`). */
export function isTrueWord(value: string): boolean {
  return TRUE_WORDS.has(value.trim().toLowerCase());
}

/**
 * Expands `%(name)s` references with the jail's effective values (configparser's
 * BasicInterpolation, up to its depth of 10). Returns undefined when a
 * reference cannot be resolved here (`%(known/x)s`, `%(section/x)s`, unknown
 * names, `<tag>` substitutions are left as they are).
 */
export function interpolate(
  files: readonly JailConfigFile[],
  jail: string,
  value: string,
  depth = 0,
): string | undefined {
  if (depth > 10) return undefined;
  let failed = false;
  const expanded = value.replace(/%\(([^)]*)\)s/g, (_match, name: string) => {
    if (name.includes('/')) {
      failed = true;
      return '';
    }
    const found = effectiveValue(files, jail, name);
    const resolved = found ? interpolate(files, jail, found.value, depth + 1) : undefined;
    if (resolved === undefined) failed = true;
    return resolved ?? '';
  });
  return failed ? undefined : expanded.replace(/%%/g, '%');
}

// ---------------------------------------------------------------------------
// ignoreip lists

/** fail2ban's helpers.splitwords: entries separated by spaces, commas or newlines. */
export function splitIgnoreIp(value: string): string[] {
  return value
    .split(/[ ,\n]+/)
    .map((v) => v.trim())
    .filter(Boolean);
}

interface ListStyle {
  /** Between two entries on one line: ' ', ',' or ', '. */
  separator: string;
  multiLine: boolean;
  /** Leading whitespace of continuation lines. */
  indent: string;
  /** Whether the key line itself holds entries (`ignoreip = a` vs `ignoreip =` then lines). */
  entriesOnKeyLine: boolean;
  /** Whether each continuation line holds one entry. */
  onePerLine: boolean;
}

function valueLineIndexes(doc: IniDocument, option: IniOption): number[] {
  const indexes: number[] = [];
  for (let i = option.line; i <= option.lastLine; i++) {
    const kind = doc.lines[i]?.kind;
    if (kind === 'option' || kind === 'continuation') indexes.push(i);
  }
  return indexes;
}

function lineValue(line: IniLine): string {
  return line.text.slice(line.valueStart ?? 0, line.valueEnd ?? 0);
}

function listStyle(doc: IniDocument, option: IniOption): ListStyle {
  const keyLine = doc.lines[option.line]!;
  const indexes = valueLineIndexes(doc, option);
  const continuation = indexes.slice(1).map((i) => doc.lines[i]!);
  const separator = /,\s/.test(option.value) ? ', ' : option.value.includes(',') ? ',' : ' ';
  const keyIndent = /^\s*/.exec(keyLine.text)?.[0] ?? '';
  const first = continuation[0];
  return {
    separator,
    multiLine: continuation.length > 0,
    indent: first ? first.text.slice(0, first.valueStart) : `${keyIndent}    `,
    entriesOnKeyLine: splitIgnoreIp(lineValue(keyLine)).length > 0,
    onePerLine: continuation.every((l) => splitIgnoreIp(lineValue(l)).length <= 1),
  };
}

/** The value lines (first one goes after `key = `) that render `entries` in `style`. */
function renderList(entries: readonly string[], style: ListStyle): string[] {
  if (!style.multiLine || entries.length === 0) return [entries.join(style.separator)];
  const comma = style.separator.includes(',');
  const head = style.entriesOnKeyLine ? [entries[0]!] : [];
  const rest = style.entriesOnKeyLine ? entries.slice(1) : entries;
  const groups = style.onePerLine ? rest.map((e) => [e]) : rest.length > 0 ? [rest] : [];
  const lines = [head.join(''), ...groups.map((g) => g.join(style.separator))];
  return lines.map((l, i) => (comma && l !== '' && i < lines.length - 1 ? `${l},` : l));
}

// ---------------------------------------------------------------------------
// Editors (text in, text out; everything not edited stays byte-identical)

function dominantEol(doc: IniDocument): string {
  const crlf = doc.lines.filter((l) => l.eol === '\r\n').length;
  const lf = doc.lines.filter((l) => l.eol === '\n').length;
  return crlf > lf ? '\r\n' : '\n';
}

/**
 * `key = ` in the style of `sample` (the section's last option line) or else
 * of the file's first option line: `=` or `:`, spaces or not.
 */
function keyPrefix(
  doc: IniDocument,
  key: string,
  sample = doc.lines.find((l) => l.kind === 'option'),
): string {
  const m = sample ? /^\s*[^=:]*?(\s*)([=:])(\s*)/.exec(sample.text) : null;
  if (!m) return `${key} = `;
  const before = m[1] ? ' ' : '';
  return `${key}${before}${m[2]}${m[3] ? ' ' : before}`;
}

function plainLine(text: string, eol: string): IniLine {
  return { text, eol, kind: 'blank' };
}

/** Lines of a new `key = value` assignment indented by `keyIndent` (continuation lines 4 deeper). */
function assignmentLines(
  doc: IniDocument,
  key: string,
  valueLines: readonly string[],
  keyIndent: string,
  eol: string,
  styleLine?: IniLine,
): IniLine[] {
  const [first = '', ...rest] = valueLines;
  const prefix = keyPrefix(doc, key, styleLine);
  return [
    plainLine(keyIndent + (first === '' ? prefix.trimEnd() : prefix + first), eol),
    ...rest.map((l) => plainLine(`${keyIndent}    ${l}`, eol)),
  ];
}

/** Replaces lines `from..to` with `replacement`, keeping the block's final line ending (none at end of file). */
function spliceBlock(doc: IniDocument, from: number, to: number, replacement: IniLine[], eol: string): void {
  const finalEol = doc.lines[to]?.eol ?? eol;
  replacement.forEach((l, i) => {
    l.eol = i === replacement.length - 1 ? finalEol : l.eol || eol;
  });
  doc.lines.splice(from, to - from + 1, ...replacement);
}

const indentOf = (text: string): string => /^\s*/.exec(text)?.[0] ?? '';

/**
 * The first line after `index` that configparser does not skip. A key added
 * right after a section header is indented like it, or configparser would
 * take that line (even an indented `[section]`) as a continuation of the key.
 */
function nextContentLine(doc: IniDocument, index: number): number {
  let i = index + 1;
  while (i < doc.lines.length && (doc.lines[i]!.kind === 'blank' || doc.lines[i]!.kind === 'comment')) i++;
  return i;
}

function replaceOption(doc: IniDocument, option: IniOption, valueLines: readonly string[]): void {
  const eol = dominantEol(doc);
  const style = listStyle(doc, option);
  const keyLine = doc.lines[option.line]!;
  const [first = '', ...rest] = valueLines;
  const start = keyLine.valueStart ?? keyLine.text.length;
  const end = keyLine.valueEnd ?? start;
  const tail = keyLine.text.slice(end);
  let head = keyLine.text.slice(0, start);
  if (first === '' && tail === '') head = head.trimEnd();
  else if (first !== '' && start === end && !/\s$/.test(head)) head += ' ';
  const newKeyLine = plainLine(head + first + tail, keyLine.eol);
  // Comments and blank lines inside the old value stay, after the new value.
  const kept = doc.lines.slice(option.line + 1, option.lastLine + 1).filter((l) => l.kind !== 'continuation');
  const added = rest.map((l) => plainLine(style.indent + l, eol));
  spliceBlock(doc, option.line, option.lastLine, [newKeyLine, ...added, ...kept], eol);
}

/**
 * Sets `key` in `section` to `valueLines` (the first after `key = `, the
 * others as continuation lines). An existing assignment is replaced in place:
 * its key text and inline comment stay, its old continuation lines go
 * (comments between them stay). A missing key is added after the section's
 * last option; a missing section is appended at the end of the file.
 */
export function setOption(text: string, section: string, key: string, valueLines: readonly string[]): string {
  const doc = parseIni(text);
  const eol = dominantEol(doc);
  const existing = findOption(doc, section, key);
  if (existing) {
    replaceOption(doc, existing, valueLines);
    return renderIni(doc);
  }
  const sectionAt = [...doc.sections].reverse().find((s) => s.name === section);
  if (sectionAt) {
    const last = sectionAt.options[sectionAt.options.length - 1];
    const after = last ? last.lastLine : sectionAt.line;
    const keyIndent = indentOf(doc.lines[last ? last.line : nextContentLine(doc, after)]?.text ?? '');
    const styleLine = last ? doc.lines[last.line] : undefined;
    const lines = assignmentLines(doc, key, valueLines, keyIndent, eol, styleLine);
    spliceBlock(
      doc,
      after,
      after,
      [{ ...doc.lines[after]!, eol: doc.lines[after]!.eol || eol }, ...lines],
      eol,
    );
    return renderIni(doc);
  }
  const lastIndex = doc.lines.length - 1;
  const lines: IniLine[] = [];
  if (lastIndex >= 0) {
    doc.lines[lastIndex]!.eol ||= eol;
    if (doc.lines[lastIndex]!.kind !== 'blank') lines.push(plainLine('', eol));
  }
  lines.push(plainLine(`[${section}]`, eol), ...assignmentLines(doc, key, valueLines, '', eol));
  doc.lines.push(...lines);
  return renderIni(doc);
}

/**
 * Sets the ignoreip list of `section` to `entries`, keeping the existing
 * layout: when the new list only adds entries at the end they are appended
 * (on the same line, or as new continuation lines for a one-per-line list)
 * and nothing else on the lines changes; otherwise the list is re-rendered
 * with the same separator, line structure and indentation.
 */
export function setIgnoreIp(text: string, section: string, entries: readonly string[]): string {
  const doc = parseIni(text);
  const existing = findOption(doc, section, 'ignoreip');
  if (!existing) return setOption(text, section, 'ignoreip', [entries.join(' ')]);
  const style = listStyle(doc, existing);
  const current = splitIgnoreIp(existing.value);
  const appendsOnly =
    current.length > 0 && entries.length > current.length && current.every((e, i) => entries[i] === e);
  if (!appendsOnly) {
    replaceOption(doc, existing, renderList(entries, style));
    return renderIni(doc);
  }
  const extras = entries.slice(current.length);
  const indexes = valueLineIndexes(doc, existing);
  const lastIndex = indexes[indexes.length - 1]!;
  const last = doc.lines[lastIndex]!;
  const end = last.valueEnd ?? last.text.length;
  const comma = style.separator.includes(',');
  const endsWithComma = lineValue(last).endsWith(',');
  if (!style.multiLine || !style.onePerLine) {
    const lead = endsWithComma ? style.separator.slice(1) : style.separator;
    last.text = last.text.slice(0, end) + lead + extras.join(style.separator) + last.text.slice(end);
    return renderIni(doc);
  }
  const eol = dominantEol(doc);
  if (comma && !endsWithComma) last.text = `${last.text.slice(0, end)},${last.text.slice(end)}`;
  const added = extras.map((e, i) =>
    plainLine(style.indent + e + (comma && i < extras.length - 1 ? ',' : ''), eol),
  );
  spliceBlock(doc, lastIndex, lastIndex, [{ ...last, eol: last.eol || eol }, ...added], eol);
  return renderIni(doc);
}
