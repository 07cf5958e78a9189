/**
 * Ansible's INI inventory format:
 *
 * ```ini
 * bastion.example.net            # before any section: group 'ungrouped'
 * [web]
 * web[01:04].example.net http_port=443 ansible_user="deploy"
 * [web:vars]
 * admin_network = 10.20.0.0/16
 * [prod:children]
 * web
 * ```
 *
 * Lines starting with `#` or `;` are comments; on host and children lines a
 * `#` that starts a word also begins a comment, and on vars lines so does a `#`
 * after whitespace (Ansible keeps it in the value; that trap is not kept).
 * Host lines are split like a POSIX shell (shlex): `'...'`, `"..."` and
 * backslash escapes.
 *
 * Values are typed like Ansible's use of Python's literal_eval, kept simple:
 * - a value that was quoted, wholly or in part, is a string;
 * - otherwise decimal integers without leading zeros (`22`, `-1`) and plain
 *   floats (`1.5`, `2e3`) become numbers; `007` and integers too big to be
 *   exact stay strings; beware that `1.10` becomes the number 1.1 (quote it);
 * - `True`, `False` and `None` (Python spelling only) become true, false, null;
 * - anything else (`yes`, `true`, `10.20.0.0/16`, `[1, 2]`) stays a string.
 *
 * As in Ansible, `[g:vars]` and a `[g:children]` entry naming `g` are errors
 * unless some `[g]` or `[g:children]` section defines `g` (it catches typos).
 */

import type { SourcePosition } from './diagnostics.js';
import { splitHostPort } from './host_pattern.js';
import type { InventoryBuilder } from './inventory.js';
import { didYouMean } from './suggest.js';

type SectionKind = 'hosts' | 'vars' | 'children';

const SECTION_KINDS: readonly SectionKind[] = ['hosts', 'vars', 'children'];

interface Section {
  group: string;
  kind: SectionKind;
}

interface GroupReference {
  group: string;
  position: SourcePosition;
  /** Rendered in the error: the section or line that needs the group defined. */
  usedBy: string;
}

/** One line being read: reports problems at a column of the original line. */
interface LineContext {
  builder: InventoryBuilder;
  /** Text of the line without surrounding whitespace. */
  content: string;
  position(offsetInContent: number): SourcePosition;
}

/** Feeds an INI inventory into `builder`; problems are reported to it, not thrown. */
export function parseIniInventory(builder: InventoryBuilder, text: string): void {
  let section: Section | undefined = { group: 'ungrouped', kind: 'hosts' };
  const definedGroups = new Set(builder.groupNames());
  const references: GroupReference[] = [];

  text.split('\n').forEach((rawLine, index) => {
    const content = rawLine.trim();
    if (content === '' || content.startsWith('#') || content.startsWith(';')) return;
    const indent = rawLine.length - rawLine.trimStart().length;
    const line: LineContext = {
      builder,
      content,
      position: (offset) => builder.at(index + 1, indent + offset + 1),
    };
    if (content.startsWith('[')) {
      section = readSectionHeader(line);
      if (section === undefined) return;
      if (section.kind === 'vars') {
        references.push({
          group: section.group,
          position: line.position(1),
          usedBy: `[${section.group}:vars]`,
        });
      } else definedGroups.add(section.group);
      return;
    }
    if (section === undefined) return; // lines under a broken header were already reported with it
    if (section.kind === 'hosts') readHostLine(line, section.group);
    else if (section.kind === 'vars') readVarsLine(line, section.group);
    else {
      const child = readChildLine(line, section.group);
      if (child) references.push({ ...child, usedBy: `[${section.group}:children]` });
    }
  });

  for (const reference of references) {
    if (definedGroups.has(reference.group)) continue;
    builder.error(
      `${reference.usedBy} refers to group '${reference.group}', which no [${reference.group}] or ` +
        `[${reference.group}:children] section defines${didYouMean(reference.group, definedGroups)}`,
      reference.position,
    );
  }
}

function readSectionHeader(line: LineContext): Section | undefined {
  const { builder, content } = line;
  const close = content.indexOf(']');
  if (close === -1) {
    builder.error(`section header '${content}' is missing its ']'`, line.position(0));
    return undefined;
  }
  const trailing = content.slice(close + 1).trim();
  if (trailing !== '' && !trailing.startsWith('#') && !trailing.startsWith(';')) {
    builder.error(
      `unexpected text '${trailing}' after section header`,
      line.position(content.indexOf(trailing, close + 1)),
    );
    return undefined;
  }
  const inner = content.slice(1, close);
  const colon = inner.indexOf(':');
  const group = colon === -1 ? inner : inner.slice(0, colon);
  const kindText = colon === -1 ? 'hosts' : inner.slice(colon + 1);
  const kind = SECTION_KINDS.find((candidate) => candidate === kindText);
  if (kind === undefined) {
    builder.error(
      `unknown section type '${kindText}' in '[${inner}]'${didYouMean(kindText, SECTION_KINDS)}`,
      line.position(colon + 2),
      `sections are [group], [group:vars] and [group:children]`,
    );
    return undefined;
  }
  if (!builder.declareGroup(group, line.position(1))) return undefined;
  return { group, kind };
}

function readHostLine(line: LineContext, group: string): void {
  const tokens = tokenizeShellWords(line);
  const [hostToken, ...assignments] = tokens ?? [];
  if (!hostToken) return;
  const vars: Record<string, unknown> = {};
  for (const token of assignments) {
    const assignment = splitAssignment(token);
    if (!assignment) {
      line.builder.error(
        `expected key=value after the host name, found '${tokenText(token)}'`,
        line.position(token.offset),
      );
      return;
    }
    vars[assignment.key] = assignment.value;
  }
  const { name, port } = splitHostPort(tokenText(hostToken));
  const position = line.position(hostToken.offset);
  line.builder.addHosts(group, name, port === undefined ? vars : { ansible_port: port, ...vars }, position);
}

function readVarsLine(line: LineContext, group: string): void {
  const { builder, content } = line;
  const equals = content.indexOf('=');
  const key = equals === -1 ? '' : content.slice(0, equals).trim();
  if (equals === -1 || key === '' || /\s/.test(key)) {
    builder.error(`expected key=value in [${group}:vars], found '${content}'`, line.position(0));
    return;
  }
  const valueText = content.slice(equals + 1);
  const valueOffset = equals + 1 + (valueText.length - valueText.trimStart().length);
  const trimmedValue = valueText.trim();
  if (trimmedValue.startsWith('"') || trimmedValue.startsWith("'")) {
    const valueLine: LineContext = {
      builder,
      content: trimmedValue,
      position: (offset) => line.position(valueOffset + offset),
    };
    const tokens = tokenizeShellWords(valueLine);
    if (!tokens) return;
    const [value, extra] = tokens;
    if (extra) {
      builder.error(`unexpected text after the quoted value of '${key}'`, valueLine.position(extra.offset));
      return;
    }
    builder.mergeGroupVars(group, { [key]: value ? tokenText(value) : '' });
    return;
  }
  builder.mergeGroupVars(group, { [key]: parseIniScalar(trimmedValue.replace(/\s#.*$/, '').trim()) });
}

function readChildLine(
  line: LineContext,
  parent: string,
): { group: string; position: SourcePosition } | undefined {
  const { builder, content } = line;
  const [child, ...rest] = content
    .replace(/(^|\s)#.*$/, '')
    .trim()
    .split(/\s+/);
  if (child === undefined || rest.length > 0) {
    builder.error(
      `expected one group name per line in [${parent}:children], found '${content}'`,
      line.position(content.indexOf(rest[0] ?? content)),
    );
    return undefined;
  }
  const position = line.position(0);
  if (!builder.declareGroup(child, position)) return undefined;
  builder.addChild(parent, child, position);
  return { group: child, position };
}

// ---------------------------------------------------------------------------
// Words and values
// ---------------------------------------------------------------------------

interface WordPart {
  text: string;
  quoted: boolean;
}

interface ShellWord {
  /** Offset of the word's first character in the line's content. */
  offset: number;
  parts: WordPart[];
}

function tokenText(word: ShellWord): string {
  return word.parts.map((part) => part.text).join('');
}

/**
 * Splits like Python's shlex in POSIX mode with comments: whitespace separates
 * words, `#` at the start of a word ends the line, `'...'` is literal, `"..."`
 * honours `\"` and `\\`, and a backslash outside quotes escapes the next
 * character. Returns undefined after reporting an unterminated quote.
 */
function tokenizeShellWords(line: LineContext): ShellWord[] | undefined {
  const { content } = line;
  const words: ShellWord[] = [];
  let current: ShellWord | undefined;
  const append = (text: string, quoted: boolean, at: number): void => {
    current ??= { offset: at, parts: [] };
    const last = current.parts.at(-1);
    if (last && last.quoted === quoted) last.text += text;
    else current.parts.push({ text, quoted });
  };
  for (let i = 0; i < content.length; i++) {
    const char = content[i] ?? '';
    if (/\s/.test(char)) {
      if (current) words.push(current);
      current = undefined;
    } else if (char === '#' && !current) {
      break;
    } else if (char === "'" || char === '"') {
      const close = findClosingQuote(content, i);
      if (close === -1) {
        line.builder.error(`unterminated ${char === "'" ? 'single' : 'double'} quote`, line.position(i));
        return undefined;
      }
      const inside = content.slice(i + 1, close);
      append(char === '"' ? inside.replace(/\\(["\\$`])/g, '$1') : inside, true, i);
      i = close;
    } else if (char === '\\' && i + 1 < content.length) {
      append(content[i + 1] ?? '', true, i);
      i++;
    } else {
      append(char, false, i);
    }
  }
  if (current) words.push(current);
  return words;
}

function findClosingQuote(content: string, open: number): number {
  const quote = content[open];
  for (let i = open + 1; i < content.length; i++) {
    if (quote === '"' && content[i] === '\\') i++;
    else if (content[i] === quote) return i;
  }
  return -1;
}

/** `key=value` where the `=` is unquoted; the value is typed unless any of it was quoted. */
function splitAssignment(word: ShellWord): { key: string; value: unknown } | undefined {
  const equalsPart = word.parts.findIndex((part) => !part.quoted && part.text.includes('='));
  const part = word.parts[equalsPart];
  if (!part) return undefined;
  const equals = part.text.indexOf('=');
  const key =
    word.parts
      .slice(0, equalsPart)
      .map((p) => p.text)
      .join('') + part.text.slice(0, equals);
  if (key === '') return undefined;
  const valueParts = [
    { text: part.text.slice(equals + 1), quoted: false },
    ...word.parts.slice(equalsPart + 1),
  ];
  const text = valueParts.map((p) => p.text).join('');
  return { key, value: valueParts.some((p) => p.quoted) ? text : parseIniScalar(text) };
}

const INTEGER = /^[-+]?(0|[1-9]\d*)$/;
const FLOAT = /^[-+]?(\d+\.\d*|\.\d+|\d+(\.\d*)?[eE][-+]?\d+|\.\d+[eE][-+]?\d+)$/;
const PYTHON_CONSTANTS: Record<string, boolean | null> = { True: true, False: false, None: null };

/** The typing of an unquoted INI value (see the module comment). */
export function parseIniScalar(text: string): unknown {
  if (INTEGER.test(text)) {
    const number = Number(text);
    return Number.isSafeInteger(number) ? number : text;
  }
  if (FLOAT.test(text)) return Number(text);
  if (Object.hasOwn(PYTHON_CONSTANTS, text)) return PYTHON_CONSTANTS[text];
  return text;
}
