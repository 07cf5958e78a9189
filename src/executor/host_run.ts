/**
 * Runs the plays of one host over one connection: plan every task (reads
 * only), then — unless in check mode — execute exactly that plan: validate,
 * write, run commands, then the notified handlers once, then verify.
 */
import { createTwoFilesPatch } from 'diff';
import type { Connection } from '../transport/types.js';
import { UnreachableError } from '../transport/types.js';
import type { CommandStep, ResourcePlan, TaskStatus } from '../plan/types.js';
import type { PlanContext, ResourceKind } from '../resources/types.js';
import { RemoteHostView } from './host_view.js';
import { buildWriteScript, EXIT_CHANGED_SINCE_PLAN } from './file_writer.js';
import type { TaskResult } from './results.js';
import { applyWithSafety, type ApplyOutcome, type SafetyOptions } from './transaction.js';
import { errorMessage } from '../errors.js';

/** A task ready to plan on this host: arguments already rendered with its variables. */
export interface BoundTask {
  play: string;
  name: string;
  resource: ResourceKind;
  args: unknown;
  notify: string[];
}

export interface BoundPlay {
  name: string;
  playbookDir: string;
  vars: Record<string, unknown>;
  tasks: BoundTask[];
  /** Handlers by name, in definition order. */
  handlers: BoundTask[];
}

export interface HostRunOptions {
  check: boolean;
  /** Told each step as it starts, for progress output. */
  onStep?: (step: string) => void;
  /**
   * Apply only: lockout guards, backup, dead-man timer and confirmation by a
   * new connection (transaction.ts). Without it, changes are applied bare.
   */
  safety?: SafetyOptions;
}

interface PlannedTask {
  task: BoundTask;
  handler: boolean;
  plan?: ResourcePlan;
  error?: string;
}

export function renderDiff(plan: ResourcePlan): string {
  const patch = (label: string, before: string, after: string, beforeHeader: string) =>
    createTwoFilesPatch(label, label, before, after, beforeHeader, 'planned')
      // Drop the "Index:"/"====" preamble: the ---/+++ lines already name the file.
      .replace(/^Index: .*\n=+\n/, '');
  const files = plan.fileChanges.map((c) =>
    patch(c.path, c.before ?? '', c.after, c.before === null ? '(absent)' : 'current'),
  );
  const states = (plan.stateDiffs ?? [])
    .filter((d) => d.before !== d.after)
    .map((d) => patch(d.label, d.before, d.after, 'current'));
  return [...files, ...states].join('');
}

function toResult(p: PlannedTask, status: TaskStatus, error?: string): TaskResult {
  return {
    play: p.task.play,
    task: p.task.name,
    resource: p.task.resource.name,
    status,
    handler: p.handler,
    messages: p.plan?.messages ?? [],
    warnings: p.plan?.warnings ?? [],
    diff: p.plan ? renderDiff(p.plan) : '',
    commands: p.plan?.commands.map((c) => c.description) ?? [],
    ...(error !== undefined ? { error } : {}),
  };
}

function plannedStatus(plan: ResourcePlan): TaskStatus {
  return plan.action === 'change' ? 'changed' : plan.action === 'skip' ? 'skipped' : 'ok';
}

async function planTasks(
  tasks: BoundTask[],
  view: RemoteHostView,
  ctx: PlanContext,
  handler: boolean,
  warmPlans: ReadonlyMap<BoundTask, ResourcePlan> = new Map(),
) {
  const planned: PlannedTask[] = [];
  for (const task of tasks) {
    try {
      // Until some task plans a write, the warm-up saw exactly what this view sees: its plan is this plan.
      const warm = view.hasPlannedWrites() ? undefined : warmPlans.get(task);
      const plan = warm ?? (await task.resource.plan(task.args, view, ctx));
      view.recordPlannedWrites(plan.fileChanges);
      planned.push({ task, handler, plan });
    } catch (error) {
      if (error instanceof UnreachableError) throw error;
      planned.push({ task, handler, error: errorMessage(error) });
      break; // As in Ansible, a host stops at its first failed task.
    }
  }
  return planned;
}

/**
 * Plans every task at once, against a view without planned writes: their
 * reads go out together, batched into a few
 * round trips, and fill the cache that the real, sequential planning then
 * reads from. Files written by earlier tasks are still seen as planned; a
 * task planned before any earlier task plans a write reuses its warm-up plan.
 */
async function warmUp(
  tasks: BoundTask[],
  view: RemoteHostView,
  ctx: PlanContext,
): Promise<Map<BoundTask, ResourcePlan>> {
  const scratch = view.fresh();
  const settled = await Promise.allSettled(tasks.map((t) => t.resource.plan(t.args, scratch, ctx)));
  const plans = new Map<BoundTask, ResourcePlan>();
  settled.forEach((r, i) => {
    if (r.status === 'fulfilled') plans.set(tasks[i]!, r.value);
  });
  return plans;
}

function notifiedHandlers(play: BoundPlay, planned: PlannedTask[]): BoundTask[] {
  const names = new Set(planned.filter((p) => p.plan?.action === 'change').flatMap((p) => p.task.notify));
  return play.handlers.filter((h) => names.has(h.name));
}

async function execute(
  p: PlannedTask,
  conn: Connection,
  onStep: (step: string) => void,
  onLive: () => void = () => undefined,
): Promise<void> {
  const plan = p.plan!;
  onStep(`validating ${p.task.name}`);
  await p.task.resource.validate?.(plan, { conn });
  if (plan.fileChanges.length > 0) {
    onStep(`writing ${p.task.name}`);
    onLive();
    const written = await conn.runScript(buildWriteScript(plan.fileChanges));
    if (written.exitCode === EXIT_CHANGED_SINCE_PLAN) throw new Error(`refused: ${written.stderr.trim()}`);
    if (written.exitCode !== 0) throw new Error(`writing files failed: ${written.stderr.trim()}`);
  }
  for (const command of plan.commands) {
    onStep(`running ${command.description}`);
    onLive();
    const result = await conn.runScript(command.script);
    if (result.exitCode !== 0) {
      const output = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-5).join('\n');
      throw new Error(`${command.description} exited ${result.exitCode}: ${output}`);
    }
  }
}

/** Plans and (unless check) applies one play on one host. Throws UnreachableError when the host goes away. */
export async function runPlayOnHost(
  conn: Connection,
  play: BoundPlay,
  options: HostRunOptions,
): Promise<TaskResult[]> {
  const view = new RemoteHostView(conn);
  const ctx: PlanContext = { vars: play.vars, playbookDir: play.playbookDir };
  const onStep = options.onStep ?? (() => undefined);
  onStep(`planning ${play.name}`);
  const warmPlans = await warmUp(play.tasks, view, ctx);
  const planned = await planTasks(play.tasks, view, ctx, false, warmPlans);
  const failedInPlanning = planned.some((p) => p.error !== undefined);
  const handlers = failedInPlanning ? [] : await planTasks(notifiedHandlers(play, planned), view, ctx, true);

  if (options.check || failedInPlanning) {
    return [...planned, ...handlers].map((p) =>
      p.error !== undefined ? toResult(p, 'failed', p.error) : toResult(p, plannedStatus(p.plan!)),
    );
  }

  const all = [...planned, ...handlers];
  const changing = all.filter((p) => p.plan?.action === 'change');
  if (!options.safety || changing.length === 0) return (await applyPlanned(all, conn, onStep, [])).results;
  return applyInTransaction(all, changing, conn, onStep, options.safety);
}

interface PlannedOutcome extends ApplyOutcome {
  results: TaskResult[];
  resultOf: Map<PlannedTask, TaskResult>;
}

/**
 * Executes the plan: each task (validate, write, commands), then
 * `afterHandlers` (e.g. restarting ssh.socket), then verify hooks. Stops at
 * the first failed task.
 */
async function applyPlanned(
  all: PlannedTask[],
  conn: Connection,
  onStep: (step: string) => void,
  afterHandlers: CommandStep[],
): Promise<PlannedOutcome> {
  const results: TaskResult[] = [];
  const resultOf = new Map<PlannedTask, TaskResult>();
  const outcome: PlannedOutcome = { results, resultOf, changeStarted: false };
  const record = (p: PlannedTask, result: TaskResult): void => {
    results.push(result);
    resultOf.set(p, result);
  };
  const toVerify: PlannedTask[] = [];
  for (const p of all) {
    if (p.error !== undefined) {
      record(p, toResult(p, 'failed', p.error));
      return { ...outcome, failure: p.task.name };
    }
    const plan = p.plan!;
    if (plan.action !== 'change') {
      record(p, toResult(p, plannedStatus(plan)));
      continue;
    }
    try {
      await execute(p, conn, onStep, () => (outcome.changeStarted = true));
      record(p, toResult(p, 'changed'));
      if (p.task.resource.verify) toVerify.push(p);
    } catch (error) {
      if (error instanceof UnreachableError) throw error;
      record(p, toResult(p, 'failed', errorMessage(error)));
      return { ...outcome, failure: p.task.name };
    }
  }
  for (const step of afterHandlers) {
    onStep(`running ${step.description}`);
    outcome.changeStarted = true;
    const result = await conn.runScript(step.script);
    if (result.exitCode !== 0) {
      const failed = results.findLast((r) => r.status === 'changed');
      const error = `${step.description} exited ${result.exitCode}: ${(result.stderr || result.stdout).trim()}`;
      if (failed) Object.assign(failed, { status: 'failed', error });
      return { ...outcome, failure: step.description };
    }
  }
  for (const p of toVerify) {
    onStep(`verifying ${p.task.name}`);
    try {
      await p.task.resource.verify!(p.plan!, { conn });
    } catch (error) {
      if (error instanceof UnreachableError) throw error;
      const result = resultOf.get(p);
      if (result)
        Object.assign(result, { status: 'failed', error: `verification failed: ${errorMessage(error)}` });
      outcome.failure ??= p.task.name;
    }
  }
  return outcome;
}

/** Apply inside a transaction (transaction.ts), then turn its decisions into task results. */
async function applyInTransaction(
  all: PlannedTask[],
  changing: PlannedTask[],
  conn: Connection,
  onStep: (step: string) => void,
  safety: SafetyOptions,
): Promise<TaskResult[]> {
  const kinds = changing.map((p) => ({ resource: p.task.resource.name, plan: p.plan! }));
  const safe = await applyWithSafety(
    conn,
    kinds,
    safety,
    (extra) => applyPlanned(all, conn, onStep, extra),
    onStep,
  );
  if (safe.kind !== 'applied') {
    // Nothing ran: the culprit fails, the other changes are reported as not applied.
    const culprit = changing[safe.culprit];
    return all.map((p) => {
      if (p === culprit) return toResult(p, 'failed', safe.message);
      if (p.plan!.action === 'change')
        return toResult(
          p,
          'skipped',
          `not applied: ${culprit ? `${culprit.task.name} ` : ''}${safe.message}`,
        );
      return toResult(p, plannedStatus(p.plan!));
    });
  }
  const { results, resultOf } = safe.outcome;
  if (safe.extraSteps) {
    const result = resultOf.get(changing[safe.extraSteps.index]!);
    result?.commands.push(...safe.extraSteps.steps.map((s) => s.description));
  }
  const forcedResult = safe.forced ? resultOf.get(changing[safe.forced.index]!) : undefined;
  if (forcedResult && safe.forced)
    forcedResult.warnings = [...forcedResult.warnings, ...safe.forced.messages];
  if (safe.rolledBack !== undefined) {
    for (const result of results) {
      if (result.status === 'changed')
        Object.assign(result, { status: 'failed', error: `rolled back: ${safe.rolledBack}` });
      else if (result.status === 'failed') result.error = `${result.error ?? 'failed'}; rolled back`;
    }
  }
  return results;
}
