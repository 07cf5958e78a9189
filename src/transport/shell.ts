/**
 * Quoting for POSIX sh. Every value that comes from a playbook, an inventory or
 * a remote fact and ends up in a script goes through shellQuote: scripts are
 * parsed by the remote `sh`, and `printf %q` style quoting is bash-only.
 */
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';

/**
 * Quotes a value as one POSIX sh word: the whole value in single quotes, each
 * embedded `'` written as `'\''` (close, escaped quote, reopen). Inside single
 * quotes sh interprets nothing, so `$`, backticks, `\` and newlines are literal.
 * Always quotes, even "safe" values, so generated scripts look the same for
 * every input and nothing depends on a list of safe characters.
 *
 * Throws on NUL: a C string (argv, a file name, a variable) cannot hold one,
 * and sh would silently truncate or drop it.
 */
export function shellQuote(value: string): string {
  const nul = value.indexOf('\0');
  if (nul !== -1) {
    throw new TypeError(`cannot quote a value containing a NUL character (at offset ${nul}) for sh`);
  }
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

export { assertNoControlChars } from '../formats/control_chars.js';

/** Words sh reads as themselves anywhere: no quoting, expansion, globbing or splitting applies. */
const PLAIN_WORD = /^[A-Za-z0-9_./:,=@%+-]+$/;

/**
 * One command, as it runs and as the operator reads it: `script` quotes every
 * word (shellQuote); `description` quotes only the words that need it, so
 * `rm -f -- /etc/x` reads as typed, and `/tmp/a'b $(touch x)` as the one
 * quoted word it is. sh reads both as the same words: what is shown is
 * exactly what runs, and can be pasted. The first word is quoted when it
 * holds `=`, which sh could take for a variable assignment.
 */
export function shellCommand(words: readonly string[]): { description: string; script: string } {
  const shown = words.map((word, index) =>
    PLAIN_WORD.test(word) && !(index === 0 && word.includes('=')) ? word : shellQuote(word),
  );
  return { description: shown.join(' '), script: words.map(shellQuote).join(' ') };
}

/**
 * `base64 -d` of a here-document holding `content`: file contents reach the
 * host byte for byte whatever they hold, and stay unreadable in `--verbose`
 * output (which elides these bodies). `marker` must not be a base64 line.
 */
export function base64Heredoc(content: string, marker: string): string {
  const encoded = Buffer.from(content, 'utf8')
    .toString('base64')
    .replace(/.{1,76}/g, '$&\n');
  return `base64 -d <<'${marker}'\n${encoded}${marker}\n`;
}

/** What follows the content of a printf that fileContent wrote: how --verbose finds it. */
export const FILE_CONTENT_MARK = '# sshfix-file-content';

/**
 * Contents up to this size go through the shell's printf, a built-in of
 * dash, bash and busybox sh: no process. Past it, a shell whose printf were
 * a program would hit the kernel's limit on one argument (128 KiB).
 */
const PRINTF_CONTENT_MAX_BYTES = 64 * 1024;

/**
 * Shell text that writes `content`, byte for byte, on stdout; to be wrapped
 * as `{ TEXT} > FILE`. A fleet pays every process once per host, so text
 * goes through the shell's built-in printf (~1.5 ms of the host's CPU less
 * per file than `base64 -d`); large contents, and contents holding a NUL
 * (which no shell word can), through base64Heredoc.
 */
export function fileContent(content: string, marker: string): string {
  if (content.includes('\0') || Buffer.byteLength(content, 'utf8') > PRINTF_CONTENT_MAX_BYTES)
    return base64Heredoc(content, marker);
  return `printf '%s' ${shellQuote(content)} ${FILE_CONTENT_MARK}\n`;
}

/** Writes `content` to `path`, creating its directory when missing (staged copies of a tree). */
export function stagedFileWrite(path: string, content: string, marker: string): string {
  const dir = shellQuote(posix.dirname(path));
  return `{ [ -d ${dir} ] || mkdir -p ${dir}; } && { ${fileContent(content, marker)}} > ${shellQuote(path)}\n`;
}

/**
 * How to start the shell that reads a script from stdin, and what to write to
 * stdin before the script. `stdinPrefix` may carry the sudo password: a
 * secret, to be written to the process and never logged or put in argv; or,
 * without one, the line that reports the shell's pid.
 */
export interface ScriptShell {
  command: string;
  stdinPrefix: string;
}

/**
 * Marks the end of the sudo password on stdin. `sudo -S` reads the password
 * only when it needs one: with a NOPASSWD rule or cached credentials it does
 * not, and a plain `sudo -S -- sh -s` would then run the password as the
 * script's first command (and print it back in "command not found"). So the
 * root shell first discards lines up to this marker — the password if sudo
 * left it, nothing else otherwise — and only then execs `sh -s` on the rest.
 * `read` consumes stdin one byte at a time on pipes, so nothing past the marker
 * is lost.
 */
const PASSWORD_END_MARKER = 'sshfix-sudo-password-end';

const DISCARD_UNTIL_MARKER = `while IFS= read -r line && [ "$line" != ${PASSWORD_END_MARKER} ]; do :; done`;

/**
 * What a shell that reports its pid writes first on stderr, followed by the
 * pid: the transport stops a script past its time limit by that pid, since
 * sshd refuses signal requests for root logins (it drops privilege separation
 * after a root login, and signalling needs it).
 */
export const SCRIPT_PID_MARKER = 'sshfix-script-pid';
const REPORT_PID = `echo ${SCRIPT_PID_MARKER} $$ >&2`;

/**
 * The command that runs a script from stdin: `sh -s` as the login user;
 * with become, through `sudo -n` (fail instead of prompting) or, given a sudo
 * password, `sudo -S -p ''` with the password on stdin. A login that is
 * already root needs no sudo (and minimal hosts may not have it). With
 * `reportPid`, the shell first writes SCRIPT_PID_MARKER and its pid to stderr.
 */
export function scriptShell(options: {
  become: boolean;
  becomePassword?: string;
  loginIsRoot: boolean;
  reportPid?: boolean;
}): ScriptShell {
  const prelude = options.reportPid ? [REPORT_PID] : [];
  const shellFor = (steps: string[]): string =>
    steps.length === 0 ? 'sh -s' : `sh -c ${shellQuote([...steps, 'exec sh -s'].join('; '))}`;
  // Without a password to discard, the script's own shell reports its pid as the first line it
  // reads: one shell per script instead of `sh -c '...; exec sh -s'` (a process per script and host).
  const reportFirst = prelude.map((line) => `${line}\n`).join('');
  if (!options.become || options.loginIsRoot) return { command: 'sh -s', stdinPrefix: reportFirst };
  if (options.becomePassword === undefined) return { command: 'sudo -n -- sh -s', stdinPrefix: reportFirst };
  if (/[\r\n\0]/.test(options.becomePassword)) {
    throw new TypeError('the sudo password contains a line break or NUL, which sudo -S cannot read');
  }
  return {
    command: `sudo -S -p '' -- ${shellFor([DISCARD_UNTIL_MARKER, ...prelude])}`,
    stdinPrefix: `${options.becomePassword}\n${PASSWORD_END_MARKER}\n`,
  };
}

const SCRIPT_PID_LINE = new RegExp(`^${SCRIPT_PID_MARKER} (\\d+)\\n`, 'm');

/**
 * Takes the pid line a reporting shell wrote on stderr out of it. It is the
 * shell's first output, though sshd itself may write before it (a debug
 * LogLevel sends sshd's messages to the session). `pid` is null when the
 * shell never started (sudo refused, say).
 */
export function splitScriptPid(stderr: string): { pid: number | null; stderr: string } {
  const match = SCRIPT_PID_LINE.exec(stderr);
  if (!match) return { pid: null, stderr };
  return {
    pid: Number(match[1]),
    stderr: stderr.slice(0, match.index) + stderr.slice(match.index + match[0].length),
  };
}

/** A fresh nonce for the record lines of one script's output: host data cannot forge it. */
export function newMarker(): string {
  return `@@sshfix-${randomBytes(9).toString('hex')}`;
}

/** Splits output into records: `[index, kind, body, further header words]`, in order. */
export function batchRecords(stdout: string, marker: string): Array<[string, string, string, string[]]> {
  return stdout
    .split(new RegExp(`(?:^|\\n)${marker} `))
    .slice(1)
    .map((part) => {
      const newline = part.indexOf('\n');
      const header = newline === -1 ? part : part.slice(0, newline);
      const [first = '', kind = '', ...rest] = header.split(' ');
      return [first, kind, newline === -1 ? '' : part.slice(newline + 1), rest];
    });
}
