/**
 * Reading host state in as few round trips as possible: every read requested
 * while planning is batched into one `sh` script whose output is a sequence of
 * records that survive any file content (base64) and parsed back here.
 */
import { createHash } from 'node:crypto';
import { shellQuote } from '../transport/shell.js';
import type { ExecResult } from '../transport/types.js';
import type { FileState } from '../plan/types.js';

export type ReadRequest =
  | { kind: 'file'; path: string }
  | { kind: 'glob'; pattern: string }
  | { kind: 'globFiles'; pattern: string }
  | { kind: 'probe'; script: string };

export type ReadAnswer =
  | { kind: 'file'; file: FileState }
  | { kind: 'glob'; paths: string[] }
  | { kind: 'globFiles'; files: FileState[] }
  | { kind: 'probe'; result: ExecResult }
  | { kind: 'error'; message: string };

const RECORD = '@@sshfix';

/**
 * A glob pattern from a config file is host data: it may contain `$(...)`.
 * Escape every character except the glob metacharacters so the shell expands
 * the pattern and nothing else.
 */
export function globWord(pattern: string): string {
  if (/[\0\n]/.test(pattern)) throw new Error(`invalid glob pattern ${JSON.stringify(pattern)}`);
  return pattern.replace(/[^A-Za-z0-9*?[\]/._-]/g, (c) => `\\${c}`);
}

function fileSection(index: number, path: string): string {
  const p = shellQuote(path);
  return [
    `if [ -f ${p} ]; then`,
    `  if [ -r ${p} ]; then`,
    `    printf '${RECORD} ${index} file %s\\n' "$(stat -c '%a %U %G' -- ${p})"; base64 -w0 < ${p}; echo`,
    `  else printf '${RECORD} ${index} error unreadable\\n\\n'; fi`,
    `elif [ -e ${p} ]; then printf '${RECORD} ${index} error not-a-regular-file\\n\\n'`,
    `else printf '${RECORD} ${index} missing\\n\\n'; fi`,
  ].join('\n');
}

function globSection(index: number, pattern: string): string {
  // One base64 name per field so that names with spaces survive.
  return [
    `printf '${RECORD} ${index} glob\\n'`,
    `for f in ${globWord(pattern)}; do [ -e "$f" ] && printf '%s' "$f" | base64 -w0 && printf ' '; done; echo`,
  ].join('\n');
}

function globFilesSection(index: number, pattern: string): string {
  // Names and contents in one pass, so a glob and the files it matches cost one round trip.
  // Each field: base64(name):mode:owner:group:base64(content).
  return [
    `printf '${RECORD} ${index} globfiles\\n'`,
    `for f in ${globWord(pattern)}; do [ -f "$f" ] && [ -r "$f" ] && { printf '%s' "$f" | base64 -w0; printf ':%s:' "$(stat -c '%a:%U:%G' -- "$f")"; base64 -w0 < "$f"; printf ' '; }; done; echo`,
  ].join('\n');
}

function probeSection(index: number, script: string): string {
  // The probe runs in a subshell with stdin closed: the batch script itself is on stdin.
  return [
    `( ${script}\n) </dev/null >"$sshfix_tmp/o" 2>"$sshfix_tmp/e"; rc=$?`,
    `printf '${RECORD} ${index} probe %s\\n' "$rc"`,
    `base64 -w0 < "$sshfix_tmp/o"; printf ' '; base64 -w0 < "$sshfix_tmp/e"; echo`,
  ].join('\n');
}

export function buildReadScript(requests: ReadRequest[]): string {
  const sections = requests.map((r, i) => {
    switch (r.kind) {
      case 'file':
        return fileSection(i, r.path);
      case 'glob':
        return globSection(i, r.pattern);
      case 'globFiles':
        return globFilesSection(i, r.pattern);
      case 'probe':
        return probeSection(i, r.script);
    }
  });
  return [
    // C locale: globs sort bytewise, as sshd's Include does.
    'LC_ALL=C; export LC_ALL',
    'sshfix_tmp=$(mktemp -d) || exit 70',
    'trap \'rm -rf "$sshfix_tmp"\' EXIT',
    ...sections,
    '',
  ].join('\n');
}

const fromBase64 = (s: string): string => Buffer.from(s, 'base64').toString('utf8');

export function sha256(content: string): string {
  return createHash('sha256').update(content, 'utf8').digest('hex');
}

export function parseReadOutput(requests: ReadRequest[], stdout: string): ReadAnswer[] {
  const answers: ReadAnswer[] = requests.map(() => ({ kind: 'error', message: 'no answer from host' }));
  const lines = stdout.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const header = lines[i];
    if (!header?.startsWith(`${RECORD} `)) continue;
    const [, indexText, kind, ...rest] = header.split(' ');
    const index = Number(indexText);
    const request = requests[index];
    const body = lines[i + 1] ?? '';
    i++;
    if (!request) continue;
    if (kind === 'file' && request.kind === 'file') {
      const [mode, owner, group] = rest;
      const content = fromBase64(body);
      answers[index] = {
        kind: 'file',
        file: {
          path: request.path,
          exists: true,
          content,
          mode: mode?.padStart(4, '0'),
          owner,
          group,
          sha256: sha256(content),
        },
      };
    } else if (kind === 'missing' && request.kind === 'file') {
      answers[index] = { kind: 'file', file: { path: request.path, exists: false, content: '' } };
    } else if (kind === 'glob') {
      const paths = body.split(' ').filter(Boolean).map(fromBase64);
      answers[index] = { kind: 'glob', paths: paths.sort() };
    } else if (kind === 'globfiles') {
      const files = body
        .split(' ')
        .filter(Boolean)
        .map((field): FileState => {
          const [name = '', mode = '', owner, group, data = ''] = field.split(':');
          const content = fromBase64(data);
          const path = fromBase64(name);
          return {
            path,
            exists: true,
            content,
            mode: mode.padStart(4, '0'),
            owner,
            group,
            sha256: sha256(content),
          };
        })
        .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
      answers[index] = { kind: 'globFiles', files };
    } else if (kind === 'probe') {
      const [out = '', err = ''] = body.split(' ');
      answers[index] = {
        kind: 'probe',
        result: { exitCode: Number(rest[0]), stdout: fromBase64(out), stderr: fromBase64(err) },
      };
    } else if (kind === 'error') {
      const what = request.kind === 'file' ? request.path : request.kind;
      answers[index] = { kind: 'error', message: `${what}: ${rest.join(' ')}` };
    }
  }
  return answers;
}
