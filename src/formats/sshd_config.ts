import { assertNoControlChars } from './control_chars.js';
/**
 * Lossless parser and renderer for one sshd_config file.
 *
 * Every line keeps its raw text and line ending, so
 * `renderSshdConfig(parseSshdConfig(t)) === t` for any string. Directive lines
 * are split the way sshd splits them (servconf.c process_server_config_line,
 * misc.c strdelim/argv_split): leading whitespace, a keyword ended by
 * whitespace or `=`, at most one `=` between keyword and value, then
 * arguments separated by whitespace, double- or single-quoted, with `#`
 * starting a comment only at the start of an argument.
 */

export interface LineBase {
  /** 1-based line number. */
  line: number;
  /** The line's text without its line ending. */
  raw: string;
  /** `\n`, `\r\n`, or `` for a last line without a newline. */
  eol: string;
}

export interface BlankLine extends LineBase {
  kind: 'blank';
}

export interface CommentLine extends LineBase {
  kind: 'comment';
}

/**
 * `raw === indent + keyword + separator + valueText + trailing`. Rewriting
 * `valueText` alone keeps indentation, keyword spelling, separator (` `, tab,
 * `=`, ` = `) and any trailing comment.
 */
export interface DirectiveLine extends LineBase {
  kind: 'directive';
  /** As written. */
  keyword: string;
  /** Lowercase keyword. */
  key: string;
  /** Unquoted arguments, comment excluded. */
  args: string[];
  indent: string;
  separator: string;
  /** Raw text of the arguments, from the first to the end of the last. */
  valueText: string;
  /** Whitespace and trailing comment after the last argument. */
  trailing: string;
  /** Set when sshd would reject the line's quoting ("invalid quotes"). */
  error?: string;
}

export type SshdLine = BlankLine | CommentLine | DirectiveLine;

export interface SshdConfigFile {
  lines: SshdLine[];
}

/** Characters sshd treats as whitespace between words (servconf.c WHITESPACE, minus the newline). */
const WHITESPACE = new Set([' ', '\t', '\r']);

export function parseSshdConfig(text: string): SshdConfigFile {
  return { lines: splitLines(text).map(([raw, eol], index) => parseLine(raw, eol, index + 1)) };
}

export function renderSshdConfig(file: SshdConfigFile): string {
  return file.lines.map((l) => l.raw + l.eol).join('');
}

/** Splits into [text, ending] pairs; a final line without newline gets ending ``. */
export function splitLines(text: string): [string, string][] {
  const result: [string, string][] = [];
  let start = 0;
  while (start < text.length) {
    const newline = text.indexOf('\n', start);
    if (newline === -1) {
      result.push([text.slice(start), '']);
      break;
    }
    const crlf = newline > start && text[newline - 1] === '\r';
    result.push([text.slice(start, crlf ? newline - 1 : newline), crlf ? '\r\n' : '\n']);
    start = newline + 1;
  }
  return result;
}

export function parseLine(raw: string, eol: string, line: number): SshdLine {
  let pos = 0;
  while (pos < raw.length && (WHITESPACE.has(raw[pos] ?? '') || raw[pos] === '\f')) pos++;
  const indent = raw.slice(0, pos);
  if (pos === raw.length) return { kind: 'blank', line, raw, eol };
  if (raw[pos] === '#') return { kind: 'comment', line, raw, eol };

  const keywordStart = pos;
  while (pos < raw.length && !WHITESPACE.has(raw[pos] ?? '') && raw[pos] !== '=') pos++;
  const keyword = raw.slice(keywordStart, pos);

  const separatorStart = pos;
  while (pos < raw.length && WHITESPACE.has(raw[pos] ?? '')) pos++;
  if (raw[pos] === '=') {
    pos++;
    while (pos < raw.length && WHITESPACE.has(raw[pos] ?? '')) pos++;
  }
  const rest = raw.slice(pos);
  const tokens = tokenizeArguments(rest);
  const valueEnd = tokens.tokens.length > 0 ? (tokens.tokens[tokens.tokens.length - 1]?.end ?? 0) : 0;
  // With no argument the whole gap after the keyword is layout, not separator.
  const separator = valueEnd === 0 ? '' : raw.slice(separatorStart, pos);
  const trailing = valueEnd === 0 ? raw.slice(separatorStart) : rest.slice(valueEnd);
  const directive: DirectiveLine = {
    kind: 'directive',
    line,
    raw,
    eol,
    keyword,
    key: keyword.toLowerCase(),
    args: tokens.tokens.map((t) => t.value),
    indent,
    separator,
    valueText: rest.slice(0, valueEnd),
    trailing,
  };
  if (tokens.error !== undefined) directive.error = tokens.error;
  return directive;
}

interface Token {
  value: string;
  start: number;
  end: number;
}

/**
 * misc.c argv_split(..., terminate_on_comment=1): whitespace separates
 * arguments; `"` and `'` quote; backslash escapes a quote, a backslash, or
 * (outside quotes) a space; `#` at the start of an argument ends the line.
 */
export function tokenizeArguments(text: string): { tokens: Token[]; error?: string } {
  const tokens: Token[] = [];
  let pos = 0;
  while (pos < text.length) {
    while (pos < text.length && WHITESPACE.has(text[pos] ?? '')) pos++;
    if (pos >= text.length || text[pos] === '#') break;
    const start = pos;
    let value = '';
    let quote: string | undefined;
    for (; pos < text.length; pos++) {
      const c = text[pos] ?? '';
      if (quote === undefined && WHITESPACE.has(c)) break;
      if (c === '\\') {
        const next = text[pos + 1];
        if (next === '"' || next === "'" || next === '\\' || (quote === undefined && next === ' ')) {
          value += next;
          pos++;
          continue;
        }
        value += c;
      } else if (quote === undefined && (c === '"' || c === "'")) {
        quote = c;
      } else if (c === quote) {
        quote = undefined;
      } else {
        value += c;
      }
    }
    tokens.push({ value, start, end: pos });
    if (quote !== undefined) return { tokens, error: 'invalid quotes' };
  }
  return { tokens };
}

/**
 * One argument as sshd_config text that every OpenSSH reads back unchanged:
 * as is when it can be, else in double quotes, the one quoting
 * sshd_config(5) documents ("Arguments may optionally be enclosed in double
 * quotes (") in order to represent arguments containing spaces"). A single
 * quote is fine inside them. Nothing can escape a double quote portably:
 * before OpenSSH 8.7 (misc.c strdelim) a backslash is an ordinary
 * character, since then (argv_split) it escapes a following quote,
 * backslash or space. Such a value throws.
 */
export function quoteArgument(arg: string): string {
  assertNoControlCharacters(arg);
  if (arg.includes('"')) {
    throw new Error(
      `${JSON.stringify(arg)} contains a double quote ("), which sshd_config cannot hold in an argument`,
    );
  }
  if (/\\(["'\\ \t]|$)/.test(arg)) {
    throw new Error(
      `${JSON.stringify(arg)} has a backslash before a quote, a backslash, a space or the end, ` +
        'which OpenSSH before and after 8.7 read differently',
    );
  }
  // Before 8.7 an unquoted `=` also ends an argument.
  if (arg !== '' && !/[\s'=]/.test(arg) && !arg.startsWith('#')) return arg;
  return `"${arg}"`;
}

/** Throws on a newline or other control character in a directive value. */
export function assertNoControlCharacters(value: string): void {
  assertNoControlChars(value, 'sshd_config value');
}

/** The directive's raw text with `valueText` replaced, keeping indentation, keyword, separator and trailing comment. */
export function rewriteDirectiveValue(directive: DirectiveLine, valueText: string): string {
  const separator = directive.separator === '' ? ' ' : directive.separator;
  // A line with no argument keeps its trailing layout after the new value.
  return directive.indent + directive.keyword + separator + valueText + directive.trailing;
}

/** The line ending most lines of `file` use; `\n` for an empty file. */
export function dominantLineEnding(file: SshdConfigFile): string {
  let crlf = 0;
  let lf = 0;
  for (const l of file.lines) {
    if (l.eol === '\r\n') crlf++;
    else if (l.eol === '\n') lf++;
  }
  return crlf > lf ? '\r\n' : '\n';
}
