/**
 * The HostView that planning reads through. Reads issued in the same tick are
 * sent to the host as one script; answers are cached for the run; files that
 * earlier tasks plan to write are seen with their planned contents, so the
 * plan of task N accounts for tasks 1..N-1 exactly as apply will.
 */
import type { Connection, ExecResult } from '../transport/types.js';
import type { FileChange, FileState } from '../plan/types.js';
import type { HostView } from '../resources/types.js';
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
  private pending: Pending[] = [];
  /** Round trips made, for tests and benchmarks. */
  roundTrips = 0;

  constructor(readonly conn: Connection) {}

  read(request: ReadRequest): Promise<ReadAnswer> {
    const key = JSON.stringify(request);
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

  async probe(script: string): Promise<ExecResult> {
    const answer = await this.reader.read({ kind: 'probe', script });
    if (answer.kind !== 'probe')
      throw new HostReadError(`${this.hostName}: probe failed: ${describe(answer)}`);
    return answer.result;
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
