import type { TaskStatus } from '../plan/types.js';

/** What happened to one task on one host: Ansible's changed/diff/msg contract. */
export interface TaskResult {
  play: string;
  task: string;
  resource: string;
  status: TaskStatus;
  handler: boolean;
  /** One line per decision ("MaxStartups 10:30:100 from …:3 → 30:30:100"). */
  messages: string[];
  warnings: string[];
  /** Unified diff of every file the task changes (or would change). */
  diff: string;
  /** Commands run (or that would run), as the operator would type them. */
  commands: string[];
  /** Why it failed or was skipped. */
  error?: string;
  /** The task's `no_log: true`: censorTaskResult has hidden everything but the status. */
  noLog?: boolean;
  /** The task's `diff: false`: censorTaskResult has dropped the diff. */
  diffHidden?: boolean;
  /** Failed while planning, with `ignore_errors: true`: the host went on (Ansible's "...ignoring"). */
  ignored?: boolean;
}

/** Whether a task's failure stops its host and fails the run (an ignored one does neither). */
export function isFailure(task: Pick<TaskResult, 'status' | 'ignored'>): boolean {
  return task.status === 'failed' && task.ignored !== true;
}

/** Ansible's own words, so that people who know them recognise what happened. */
export const NO_LOG_MESSAGE =
  "the output has been hidden due to the fact that 'no_log: true' was specified for this result";

/**
 * What may be shown of a task, by its `no_log` and `diff` settings. Applied
 * where results are made (as Ansible censors a result before any callback
 * sees it), so no output — text, JSON, JUnit — can show more.
 */
export function censorTaskResult(task: TaskResult): TaskResult {
  if (task.noLog) {
    return {
      ...task,
      messages: task.error === undefined ? [NO_LOG_MESSAGE] : [],
      warnings: [],
      diff: '',
      commands: [],
      ...(task.error !== undefined ? { error: NO_LOG_MESSAGE } : {}),
    };
  }
  return task.diffHidden ? { ...task, diff: '' } : task;
}

/** How a host's transaction (backup, timer, confirmation) ended. */
export interface TransactionReport {
  /** New connections the confirmation opened (0 when it never got that far); retries are the rest. */
  confirmAttempts: number;
  /** The change was restored (by sshfix, or by the host's timer before the confirmation). */
  rolledBack: boolean;
}

export interface HostResult {
  host: string;
  address: string;
  unreachable: boolean;
  /** Why the host could not be reached. */
  error?: string;
  /**
   * `apply PLAN` refused the host, changing nothing: the facts its reviewed
   * plan rests on no longer hold. One line per reason (what changed).
   */
  stale?: string[];
  tasks: TaskResult[];
  /** Set when the host had a transaction that sshfix saw to its end. */
  transaction?: TransactionReport;
  /** First connections retried because their handshake timed out. */
  connectRetries?: number;
}

/** Connections retried for a host: its first connection's, and its confirmation's beyond the first. */
export function hostRetries(result: HostResult): number {
  return (result.connectRetries ?? 0) + Math.max(0, (result.transaction?.confirmAttempts ?? 0) - 1);
}

export interface HostCounts {
  ok: number;
  changed: number;
  failed: number;
  /** Failures that `ignore_errors` let pass (Ansible's recap counts them apart too). */
  ignored: number;
  skipped: number;
  unreachable: boolean;
}

export function countTasks(result: HostResult): HostCounts {
  const count = (s: TaskStatus) => result.tasks.filter((t) => t.status === s && !t.ignored).length;
  return {
    ok: count('ok'),
    changed: count('changed'),
    failed: count('failed'),
    ignored: result.tasks.filter((t) => t.ignored).length,
    skipped: count('skipped'),
    unreachable: result.unreachable,
  };
}

export interface RunSummary {
  ok: number;
  changed: number;
  failed: number;
  unreachable: number;
  /** Hosts `apply PLAN` refused as stale; only counted (and shown) when there are some. */
  stale?: number;
  hosts: number;
  /** Hosts whose change was rolled back. */
  rolledBack: number;
  /** Connections retried (late first handshakes, confirmations beyond the first), over all hosts. */
  retries: number;
}

export function summarize(results: HostResult[]): RunSummary {
  const summary: RunSummary = {
    ok: 0,
    changed: 0,
    failed: 0,
    unreachable: 0,
    hosts: results.length,
    rolledBack: 0,
    retries: 0,
  };
  for (const r of results) {
    const c = countTasks(r);
    summary.ok += c.ok;
    summary.changed += c.changed;
    summary.failed += c.failed;
    if (c.unreachable) summary.unreachable++;
    if (r.transaction?.rolledBack) summary.rolledBack++;
    summary.retries += hostRetries(r);
  }
  const stale = results.filter((r) => r.stale !== undefined).length;
  return stale > 0 ? { ...summary, stale } : summary;
}

/** A host that failed as a whole (never started, or an internal error), as one failed pseudo-task. */
export function hostFailure(host: string, address: string, task: string, error: string): HostResult {
  return {
    host,
    address,
    unreachable: false,
    tasks: [
      {
        play: '',
        task,
        resource: '',
        status: 'failed',
        handler: false,
        messages: [],
        warnings: [],
        diff: '',
        commands: [],
        error,
      },
    ],
  };
}
