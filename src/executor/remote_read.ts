/**
 * Reading host state in as few round trips, and as few processes, as
 * possible: every read requested while planning is batched into one `sh`
 * script. The script forks almost nothing per request, because on a fleet
 * every process it starts is paid once per host: files are listed with shell
 * built-ins, then one `stat`, one `gzip` and one `base64` carry all of them;
 * probes write straight to the output between markers that carry a random
 * nonce, so no host data can forge one.
 */
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { sharedShowPrologue } from '../formats/systemd_units.js';
import { batchPrologue, batchRecords, newMarker, parseRcBody, stepSection } from './host_batch.js';
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

export interface ReadScript {
  text: string;
  /** Starts every record line; unguessable, so file or probe output cannot contain it. */
  marker: string;
}

/**
 * A glob pattern from a config file is host data: it may contain `$(...)`.
 * Escape every character except the glob metacharacters so the shell expands
 * the pattern and nothing else.
 */
export function globWord(pattern: string): string {
  if (/[\0\n]/.test(pattern)) throw new Error(`invalid glob pattern ${JSON.stringify(pattern)}`);
  return pattern.replace(/[^A-Za-z0-9*?[\]/._-]/g, (c) => `\\${c}`);
}

/** Files whose contents are wanted are appended to "$@"; their stat lines and bytes come at the end, in that order. */
function fileSection(index: number, path: string): string {
  const p = shellQuote(path);
  return [
    `if [ -f ${p} ]; then`,
    `  if [ -r ${p} ]; then set -- "$@" ${p}; echo "$m ${index} file"; else echo "$m ${index} error unreadable"; fi`,
    `elif [ -e ${p} ]; then echo "$m ${index} error not-a-regular-file"`,
    `else echo "$m ${index} missing"; fi`,
  ].join('\n');
}

function globSection(index: number, pattern: string, withContents: boolean): string {
  // Names NUL-terminated: any byte but NUL can be in a file name.
  const test = withContents
    ? '[ -f "$f" ] && [ -r "$f" ] && { set -- "$@" "$f"; printf \'%s\\0\' "$f"; }'
    : '[ -e "$f" ] && printf \'%s\\0\' "$f"';
  return [
    `echo "$m ${index} ${withContents ? 'globfiles' : 'glob'}"`,
    `for f in ${globWord(pattern)}; do ${test}; done; echo`,
  ].join('\n');
}

export function buildReadScript(requests: ReadRequest[], marker = newMarker()): ReadScript {
  const sections = requests.map((r, i) => {
    switch (r.kind) {
      case 'file':
        return fileSection(i, r.path);
      case 'glob':
        return globSection(i, r.pattern, false);
      case 'globFiles':
        return globSection(i, r.pattern, true);
      case 'probe':
        return stepSection(i, r.script);
    }
  });
  const text = [
    // C locale: globs sort bytewise, as sshd's Include does.
    'LC_ALL=C; export LC_ALL',
    ...batchPrologue(marker),
    ...sharedShowPrologue(requests.flatMap((r) => (r.kind === 'probe' ? [r.script] : []))),
    'set --',
    ...sections,
    // One stat line per file (size first: it splits the bytes), then all their bytes as one base64 text.
    'if [ $# -gt 0 ]; then',
    '  echo "$m stat"; stat -L -c \'%s %a %U %G\' -- "$@"',
    // Which of them are symbolic links, and to what: a process only for each link.
    '  echo "$m links"; i=0; for f; do [ -L "$f" ] && r=$(readlink -f -- "$f") && printf \'%s\\0%s\\0\' $i "$r"; i=$((i+1)); done; echo',
    // Compressed where gzip exists (config text shrinks about fourfold): fewer bytes to encrypt,
    // send, decrypt and decode on the controller for every host.
    // gzip reads the files itself: one gzip member per file, and concatenated members decompress
    // to the concatenated contents, exactly what cat would have sent.
    '  if command -v gzip >/dev/null 2>&1; then echo "$m data gzip"; gzip -1 -c -- "$@" | base64 -w0',
    '  else echo "$m data"; cat -- "$@" | base64 -w0; fi; echo',
    'fi',
    'echo "$m end"',
    '',
  ].join('\n');
  return { text, marker };
}

export function sha256(content: string): string {
  return createHash('sha256').update(content, 'utf8').digest('hex');
}

interface FileSlot {
  /** Which answer the file belongs to. */
  index: number;
  path: string;
}

/** The file contents at the end of the output: one stat line per file, then their bytes together. */
function splitFileData(
  slots: FileSlot[],
  statText: string,
  linksText: string,
  dataText: string,
  gzipped: boolean,
): Map<number, FileState[]> | string {
  const links = new Map<number, string>();
  const linkWords = linksText.split('\0');
  for (let i = 0; i + 1 < linkWords.length; i += 2) links.set(Number(linkWords[i]), linkWords[i + 1]!);
  const stats = statText.split('\n').filter((l) => l !== '');
  if (stats.length !== slots.length) return 'a file vanished while it was read';
  const encoded = Buffer.from(dataText.trim(), 'base64');
  let bytes: Buffer;
  try {
    bytes = gzipped ? gunzipSync(encoded) : encoded;
  } catch {
    return 'the file contents arrived damaged';
  }
  const byAnswer = new Map<number, FileState[]>();
  let offset = 0;
  for (let i = 0; i < slots.length; i++) {
    const [size = '', mode = '', owner, group] = stats[i]!.split(' ');
    const length = Number(size);
    if (!Number.isInteger(length) || offset + length > bytes.length)
      return 'a file changed while it was read';
    const content = bytes.subarray(offset, offset + length).toString('utf8');
    offset += length;
    const slot = slots[i]!;
    const list = byAnswer.get(slot.index) ?? [];
    const symlinkTarget = links.get(i);
    list.push({
      path: slot.path,
      exists: true,
      content,
      mode: mode.padStart(4, '0'),
      owner,
      group,
      sha256: sha256(content),
      ...(symlinkTarget !== undefined ? { symlinkTarget } : {}),
    });
    byAnswer.set(slot.index, list);
  }
  if (offset !== bytes.length) return 'a file changed while it was read';
  return byAnswer;
}

/** Bytewise order of paths, as sshd's Include and the shell's globs (C locale) sort them. */
export const byPath = (a: { path: string }, b: { path: string }): number =>
  a.path < b.path ? -1 : a.path > b.path ? 1 : 0;

export function parseReadOutput(requests: ReadRequest[], stdout: string, marker: string): ReadAnswer[] {
  const answers: ReadAnswer[] = requests.map(() => ({ kind: 'error', message: 'no answer from host' }));
  const slots: FileSlot[] = [];
  const globFiles = new Set<number>();
  let statText = '';
  let linksText = '';
  let dataText = '';
  let gzipped = false;
  for (const [first, kind, body, rest] of batchRecords(stdout, marker)) {
    if (first === 'stat') statText = body;
    else if (first === 'links') linksText = body;
    else if (first === 'data') {
      dataText = body;
      gzipped = kind === 'gzip';
    }
    if (!/^\d+$/.test(first)) continue;
    const index = Number(first);
    const request = requests[index];
    if (!request) continue;
    if (kind === 'file' && request.kind === 'file') slots.push({ index, path: request.path });
    else if (kind === 'missing' && request.kind === 'file')
      answers[index] = { kind: 'file', file: { path: request.path, exists: false, content: '' } };
    else if (kind === 'glob' || kind === 'globfiles') {
      const names = body.split('\0').slice(0, -1);
      if (kind === 'glob') answers[index] = { kind: 'glob', paths: names.sort() };
      else {
        globFiles.add(index);
        answers[index] = { kind: 'globFiles', files: [] };
        for (const path of names) slots.push({ index, path });
      }
    } else if (kind === 'step') {
      answers[index] = { kind: 'probe', result: { exitCode: -1, stdout: body, stderr: '' } };
    } else if (kind === 'rc') {
      // The probe's stdout ended where printf put "\n" before this record.
      const answer = answers[index];
      const rc = parseRcBody(body);
      if (answer?.kind === 'probe' && rc) answer.result = { stdout: answer.result.stdout, ...rc };
    } else if (kind === 'error') {
      const what = request.kind === 'file' ? request.path : request.kind;
      answers[index] = { kind: 'error', message: `${what}: ${rest.join(' ')}` };
    }
  }
  answers.forEach((answer, index) => {
    if (answer.kind === 'probe' && answer.result.exitCode === -1)
      answers[index] = { kind: 'error', message: 'probe: did not finish' };
  });
  if (slots.length > 0) {
    const files = splitFileData(slots, statText, linksText, dataText, gzipped);
    for (const slot of slots) {
      const request = requests[slot.index]!;
      if (typeof files === 'string') {
        answers[slot.index] = {
          kind: 'error',
          message: `${request.kind === 'file' ? request.path : request.kind}: ${files}`,
        };
      } else if (request.kind === 'file') {
        answers[slot.index] = { kind: 'file', file: files.get(slot.index)![0]! };
      }
    }
    if (typeof files !== 'string')
      for (const index of globFiles)
        answers[index] = { kind: 'globFiles', files: (files.get(index) ?? []).sort(byPath) };
  }
  return answers;
}
