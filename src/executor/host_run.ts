/**
 * Runs the plays of one host over one connection: plan every task (reads
 * only), then — unless in check mode — execute exactly that plan: validate,
 * write, run commands, then the notified handlers once, then verify.
 */
import { createTwoFilesPatch } from 'diff';
import type { Connection } from '../transport/types.js';
import { UnreachableError } from '../transport/types.js';
import type { ResourcePlan, TaskStatus } from '../plan/types.js';
import type { PlanContext, ResourceKind } from '../resources/types.js';
import { RemoteHostView } from './host_view.js';
import { buildWriteScript, EXIT_CHANGED_SINCE_PLAN } from './file_writer.js';
import type { TaskResult } from './results.js';
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

async function planTasks(tasks: BoundTask[], view: RemoteHostView, ctx: PlanContext, handler: boolean) {
  const planned: PlannedTask[] = [];
  for (const task of tasks) {
    try {
      const plan = await task.resource.plan(task.args, view, ctx);
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

function notifiedHandlers(play: BoundPlay, planned: PlannedTask[]): BoundTask[] {
  const names = new Set(planned.filter((p) => p.plan?.action === 'change').flatMap((p) => p.task.notify));
  return play.handlers.filter((h) => names.has(h.name));
}

async function execute(p: PlannedTask, conn: Connection): Promise<void> {
  const plan = p.plan!;
  await p.task.resource.validate?.(plan, { conn });
  if (plan.fileChanges.length > 0) {
    const written = await conn.runScript(buildWriteScript(plan.fileChanges));
    if (written.exitCode === EXIT_CHANGED_SINCE_PLAN) throw new Error(`refused: ${written.stderr.trim()}`);
    if (written.exitCode !== 0) throw new Error(`writing files failed: ${written.stderr.trim()}`);
  }
  for (const command of plan.commands) {
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
  const planned = await planTasks(play.tasks, view, ctx, false);
  const failedInPlanning = planned.some((p) => p.error !== undefined);
  const handlers = failedInPlanning ? [] : await planTasks(notifiedHandlers(play, planned), view, ctx, true);

  if (options.check || failedInPlanning) {
    return [...planned, ...handlers].map((p) =>
      p.error !== undefined ? toResult(p, 'failed', p.error) : toResult(p, plannedStatus(p.plan!)),
    );
  }

  const results: TaskResult[] = [];
  const toVerify: PlannedTask[] = [];
  for (const p of [...planned, ...handlers]) {
    if (p.error !== undefined) {
      results.push(toResult(p, 'failed', p.error));
      return results;
    }
    const plan = p.plan!;
    if (plan.action !== 'change') {
      results.push(toResult(p, plannedStatus(plan)));
      continue;
    }
    try {
      await execute(p, conn);
      results.push(toResult(p, 'changed'));
      if (p.task.resource.verify) toVerify.push(p);
    } catch (error) {
      if (error instanceof UnreachableError) throw error;
      results.push(toResult(p, 'failed', errorMessage(error)));
      return results;
    }
  }
  for (const p of toVerify) {
    try {
      await p.task.resource.verify!(p.plan!, { conn });
    } catch (error) {
      if (error instanceof UnreachableError) throw error;
      const result = results.find((r) => r.task === p.task.name && !r.handler && r.status === 'changed');
      if (result)
        Object.assign(result, { status: 'failed', error: `verification failed: ${errorMessage(error)}` });
    }
  }
  return results;
}
