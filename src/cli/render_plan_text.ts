/**
 * `sshfix show plan.json` as text: the same host blocks and recap as
 * `sshfix plan` prints (render_text.ts), under a header saying what the plan
 * was made from.
 */
import { censorTaskResult, hostFailure, type HostResult, type TaskResult } from '../executor/results.js';
import type { PlanDocument, PlanHost, PlanTask } from '../plan/plan_file.js';
import { planHostHandlers, planHostTasks } from '../plan/plan_file.js';
import { renderHost, renderRecap, type TextStyle } from './render_text.js';

const STATUS_OF_ACTION: Record<PlanTask['action'], TaskResult['status']> = {
  change: 'changed',
  none: 'ok',
  skip: 'skipped',
};

/** The unified diffs of a task's files and states, as one text. */
export function planTaskDiff(task: PlanTask): string {
  return [...task.files.map((f) => f.text?.diff ?? ''), ...task.states.map((s) => s.diff)].join('');
}

function taskResult(task: PlanTask, handler: boolean): TaskResult {
  const status = task.error !== undefined ? 'failed' : STATUS_OF_ACTION[task.action];
  const result: TaskResult = {
    play: '',
    task: task.name,
    resource: task.resource,
    status,
    handler,
    messages: task.messages,
    warnings: task.warnings,
    diff: planTaskDiff(task),
    commands: task.commands.map((c) => c.description),
    // A task its plan skips says why in its messages (as `sshfix plan` shows it).
    ...(status === 'skipped' && task.messages.length > 0 ? { error: task.messages.join('; ') } : {}),
    ...(task.error !== undefined ? { error: task.error } : {}),
    ...(task.noLog ? { noLog: true } : {}),
  };
  return censorTaskResult(result);
}

/** A plan's host as the result `sshfix plan` would have printed for it. */
export function planHostResult(host: PlanHost): HostResult {
  const tasks = [
    ...planHostTasks(host).map((t) => taskResult(t, false)),
    ...planHostHandlers(host).map((t) => taskResult(t, true)),
  ];
  const base = { host: host.name, address: host.address, unreachable: host.status === 'unreachable' };
  if (host.status === 'unreachable')
    return { ...base, tasks, ...(host.error !== undefined ? { error: host.error } : {}) };
  // A task whose planning failed already says why; the host's error repeats it.
  if (host.error !== undefined && !tasks.some((t) => t.status === 'failed')) {
    // As a run reports a host that failed as a whole: one pseudo-task with the reason.
    const [whole] = hostFailure(host.name, host.address, '(plan)', host.error).tasks;
    const status: TaskResult['status'] = host.status === 'skipped' ? 'skipped' : 'failed';
    return { ...base, tasks: [...tasks, ...(whole ? [{ ...whole, status }] : [])] };
  }
  return { ...base, tasks };
}

export function renderPlanHeader(doc: PlanDocument, file: string): string {
  const input = (label: string, digest: { path?: string; sha256: string }) =>
    `${label} ${digest.path !== undefined ? `${digest.path} ` : ''}${digest.sha256}`;
  return [
    `Plan ${file}: made ${doc.createdAt} by sshfix ${doc.sshfixVersion}, ${doc.digest}`,
    `  ${input('playbook', doc.inputs.playbook)}`,
    `  ${input('inventory', doc.inputs.inventory)}`,
    `  ${input('variables', doc.inputs.variables)}`,
    '',
  ].join('\n');
}

export function renderPlanText(doc: PlanDocument, file: string, color: boolean): string {
  const style: TextStyle = { color, diff: true, check: true };
  const results = doc.hosts.map(planHostResult);
  // As `sshfix plan` prints them: host blocks back to back, then a blank line and the recap.
  return `${renderPlanHeader(doc, file)}\n${results.map((r) => renderHost(r, style)).join('')}\n${renderRecap(results, style)}`;
}
