/**
 * The HostView that planning reads through. Reads issued in the same tick are
 * sent to the host as one script; answers are cached for the run; files that
 * earlier tasks plan to write are seen with their planned contents, so the
 * plan of task N accounts for tasks 1..N-1 exactly as apply will.
 */
import type { Connection, ExecResult } from '../transport/types.js';
import type { Fact, FileChange, FileState } from '../plan/types.js';
import type { HostView, ProbeFact, SshdRelease } from '../resources/types.js';
import { HOST_FACTS_PROBE, parseSshdRelease } from './host_facts.js';
import {
  buildReadScript,
  byPath,
  parseReadOutput,
  sha256,
  type ReadAnswer,
  type ReadRequest,
} from './remote_read.js';

interface Pending {
  request: ReadRequest;
  resolve: (answer: ReadAnswer) => void;
  reject: (error: unknown) => void;
}

export class HostReadError extends Error {}

/** Cached, batched reads from one host: every request made in the same tick goes out as one script. */
export class BatchedHostReader {
  private readonly cache = new Map<string, Promise<ReadAnswer>>();
  /** Every request made, with how a probe's answer is recorded as a fact: the plan's facts. */
  private readonly requests = new Map<string, { request: ReadRequest; fact?: ProbeFact }>();
  private pending: Pending[] = [];
  /** Round trips made, for tests and benchmarks. */
  roundTrips = 0;

  constructor(readonly conn: Connection) {}

  /** `fact` false: a read the plan does not rest on (e.g. other runs' state), no fact of it. */
  read(request: ReadRequest, fact: ProbeFact | false | undefined = undefined): Promise<ReadAnswer> {
    const key = JSON.stringify(request);
    const seen = this.requests.get(key);
    if (fact === false) {
      // recorded by no one
    } else if (!seen) this.requests.set(key, { request, ...(fact !== undefined ? { fact } : {}) });
    else if (seen.fact === undefined && fact !== undefined) seen.fact = fact;
    let answer = this.cache.get(key);
    if (!answer) {
      answer = new Promise<ReadAnswer>((resolve, reject) => {
        if (this.pending.length === 0) setImmediate(() => void this.flush());
        this.pending.push({ request, resolve, reject });
      });
      this.cache.set(key, answer);
    }
    return answer;
  }

  /**
   * The facts every read so far rests on, in key order: what a later reading
   * must find unchanged for the plan made from them to still hold. A read
   * that failed counts too, as "unreadable".
   */
  async facts(): Promise<Fact[]> {
    const facts = new Map<string, Fact>();
    for (const [key, { request, fact }] of this.requests) {
      const answer = await this.cache
        .get(key)!
        .catch((error: unknown): ReadAnswer => ({ kind: 'error', message: String(error) }));
      for (const f of factsOfRead(request, answer, fact)) facts.set(f.key, f);
    }
    return [...facts.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    const requests = batch.map((p) => p.request);
    try {
      this.roundTrips++;
      const script = buildReadScript(requests);
      const result = await this.conn.runScript(script.text);
      if (result.exitCode !== 0 && !result.stdout) {
        throw new HostReadError(`${this.conn.hostName}: reading host state failed: ${result.stderr.trim()}`);
      }
      const answers = parseReadOutput(requests, result.stdout, script.marker);
      batch.forEach((p, i) => p.resolve(answers[i]!));
    } catch (error) {
      for (const p of batch) p.reject(error);
    }
  }
}

export class RemoteHostView implements HostView {
  private readonly planned = new Map<string, FileState>();
  private readonly reader: BatchedHostReader;

  constructor(conn: Connection, reader?: BatchedHostReader) {
    this.reader = reader ?? new BatchedHostReader(conn);
  }

  get hostName(): string {
    return this.reader.conn.hostName;
  }

  get roundTrips(): number {
    return this.reader.roundTrips;
  }

  /** A view of the same host sharing this one's cache and batching, without its planned writes. */
  fresh(): RemoteHostView {
    return new RemoteHostView(this.reader.conn, this.reader);
  }

  hasPlannedWrites(): boolean {
    return this.planned.size > 0;
  }

  /** Makes later reads see a planned write. */
  recordPlannedWrites(changes: FileChange[]): void {
    for (const change of changes) {
      this.planned.set(change.path, {
        path: change.path,
        exists: true,
        content: change.after,
        mode: change.mode,
        owner: change.owner,
        group: change.group,
        sha256: sha256(change.after),
      });
    }
  }

  async readFiles(paths: string[]): Promise<Map<string, FileState>> {
    const answers = await Promise.all(
      paths.map(async (path) => {
        const planned = this.planned.get(path);
        if (planned) return planned;
        const answer = await this.reader.read({ kind: 'file', path });
        if (answer.kind !== 'file')
          throw new HostReadError(`${this.hostName}: cannot read ${path}: ${describe(answer)}`);
        return this.throughLink(answer.file);
      }),
    );
    return new Map(answers.map((file) => [file.path, file]));
  }

  /** A symbolic link whose target has a planned write reads as that write. */
  private throughLink(file: FileState): FileState {
    const planned = file.symlinkTarget === undefined ? undefined : this.planned.get(file.symlinkTarget);
    return planned === undefined ? file : { ...planned, path: file.path, symlinkTarget: file.symlinkTarget };
  }

  async glob(pattern: string): Promise<string[]> {
    const answer = await this.reader.read({ kind: 'glob', pattern });
    if (answer.kind !== 'glob')
      throw new HostReadError(`${this.hostName}: cannot expand ${pattern}: ${describe(answer)}`);
    const planned = [...this.planned.keys()].filter((p) => globToRegExp(pattern).test(p));
    return [...new Set([...answer.paths, ...planned])].sort();
  }

  async globFiles(pattern: string): Promise<FileState[]> {
    const answer = await this.reader.read({ kind: 'globFiles', pattern });
    if (answer.kind !== 'globFiles')
      throw new HostReadError(`${this.hostName}: cannot read ${pattern}: ${describe(answer)}`);
    const regex = globToRegExp(pattern);
    const planned = [...this.planned.values()].filter((f) => regex.test(f.path));
    const found = new Map(answer.files.map((f) => [f.path, this.throughLink(f)]));
    for (const f of planned) found.set(f.path, f);
    return [...found.values()].sort(byPath);
  }

  /** The facts this host's reads (by any view sharing this one's reader) rest on. */
  facts(): Promise<Fact[]> {
    return this.reader.facts();
  }

  /** A probe batched and cached like the others, whose answer is no fact of the plan. */
  async probeApart(script: string): Promise<ExecResult> {
    const answer = await this.reader.read({ kind: 'probe', script }, false);
    if (answer.kind !== 'probe')
      throw new HostReadError(`${this.hostName}: probe failed: ${describe(answer)}`);
    return answer.result;
  }

  /** From the host facts' probe, cached by its text: the facts and every sshd_config task share one sshd -V. */
  async sshdRelease(): Promise<SshdRelease | undefined> {
    return parseSshdRelease((await this.probeApart(HOST_FACTS_PROBE)).stdout);
  }

  async probe(script: string, fact?: ProbeFact): Promise<ExecResult> {
    const answer = await this.reader.read({ kind: 'probe', script }, fact);
    if (answer.kind !== 'probe')
      throw new HostReadError(`${this.hostName}: probe failed: ${describe(answer)}`);
    return answer.result;
  }
}

/** A file as a fact's value: its digest and attributes, or "absent". */
function fileValue(file: FileState): string {
  if (!file.exists) return 'absent';
  const link = file.symlinkTarget !== undefined ? ` -> ${file.symlinkTarget}` : '';
  return `sha256:${file.sha256 ?? sha256(file.content)} ${file.mode ?? '?'} ${file.owner ?? '?'}:${file.group ?? '?'}${link}`;
}

/** The first line of a script that says what it does: the probe's name when its resource gives none. */
function scriptSummary(script: string): string {
  const line = script
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l !== '' && !l.startsWith('#') && !/^PATH=/.test(l));
  return line === undefined ? 'probe' : line.length > 60 ? `${line.slice(0, 59)}…` : line;
}

/** The facts one read yields: a file, a glob's matches (and each matched file), a probe's answer. */
export function factsOfRead(request: ReadRequest, answer: ReadAnswer, fact?: ProbeFact): Fact[] {
  const failed = answer.kind === 'error' ? 'unreadable' : undefined;
  switch (request.kind) {
    case 'file':
      return [
        {
          key: `file:${request.path}`,
          value: answer.kind === 'file' ? fileValue(answer.file) : (failed ?? 'unreadable'),
          description: request.path,
        },
      ];
    case 'glob':
      return [
        {
          key: `glob:${request.pattern}`,
          value: answer.kind === 'glob' ? answer.paths.join(' ') : (failed ?? 'unreadable'),
          description: `files matching ${request.pattern}`,
        },
      ];
    case 'globFiles': {
      const files = answer.kind === 'globFiles' ? answer.files : [];
      return [
        {
          key: `files:${request.pattern}`,
          value: answer.kind === 'globFiles' ? files.map((f) => f.path).join(' ') : (failed ?? 'unreadable'),
          description: `files matching ${request.pattern}`,
        },
        ...files.map((f) => ({ key: `file:${f.path}`, value: fileValue(f), description: f.path })),
      ];
    }
    case 'probe': {
      const result = answer.kind === 'probe' ? answer.result : undefined;
      const essence = result === undefined ? '' : (fact?.essence?.(result.stdout) ?? result.stdout);
      return [
        {
          key: `probe:${sha256(request.script).slice(0, 16)}`,
          value: result === undefined ? 'unreadable' : `exit ${result.exitCode} sha256:${sha256(essence)}`,
          description: fact?.description ?? `output of ${scriptSummary(request.script)}`,
        },
      ];
    }
  }
}

function describe(answer: ReadAnswer): string {
  return answer.kind === 'error' ? answer.message : `unexpected ${answer.kind} answer`;
}

/** Shell glob → RegExp, for matching planned (not yet written) files against Include patterns. */
export function globToRegExp(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end === -1) source += '\\[';
      else {
        const body = pattern
          .slice(i + 1, end)
          .replace(/^!/, '^')
          .replace(/\\/g, '\\\\');
        source += `[${body}]`;
        i = end;
      }
    } else source += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}
