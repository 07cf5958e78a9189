/**
 * What `register:` stores: a task's result as later conditions read it
 * (`result is changed`, `result.msg`), in Ansible's shape. sshfix plans
 * every task before applying any, and applies exactly that plan, so the
 * result registered is the planned one: `changed` means "this run changes
 * it", in check mode and apply alike.
 */
import type { ResourcePlan } from '../plan/types.js';

/** One planned run of a task (one item of a loop). */
export interface PlannedRun {
  plan?: ResourcePlan;
  error?: string;
  /** The loop item, for a loop. */
  item?: unknown;
}

export interface RegisteredResult {
  changed: boolean;
  failed: boolean;
  skipped: boolean;
  msg: string;
  /** Unified diff of the files the task changes; absent when it changes none. */
  diff?: string;
  /** Per item, for a task with `loop`. */
  results?: RegisteredResult[];
  item?: unknown;
  [key: string]: unknown;
}

function runResult(run: PlannedRun, diff: (plan: ResourcePlan) => string): RegisteredResult {
  const result: RegisteredResult = {
    changed: run.plan?.action === 'change',
    failed: run.error !== undefined,
    skipped: run.plan?.action === 'skip',
    msg: run.error ?? run.plan?.messages.join('\n') ?? '',
  };
  const text = run.plan ? diff(run.plan) : '';
  if (text !== '') result.diff = text;
  if ('item' in run) result.item = run.item;
  return result;
}

/**
 * The registered value of a task: one run's result, or for a loop the
 * results per item with changed/failed if any item is, and skipped if all are.
 */
export function registeredResult(
  runs: readonly PlannedRun[],
  looped: boolean,
  diff: (plan: ResourcePlan) => string,
): RegisteredResult {
  const results = runs.map((run) => runResult(run, diff));
  if (!looped) return results[0] ?? { changed: false, failed: false, skipped: true, msg: '' };
  const failed = results.find((r) => r.failed);
  return {
    changed: results.some((r) => r.changed),
    failed: failed !== undefined,
    skipped: results.length === 0 || results.every((r) => r.skipped),
    msg: failed?.msg ?? 'All items completed',
    results,
  };
}
