/**
 * Runs the plays of one host over one connection: plan every task (reads
 * only) into a HostPlan, then — unless in check mode — execute exactly that
 * plan: validate, write, run commands, then the notified handlers once,
 * then verify. The plan is plain data: it can be saved and applied later.
 */
import { createTwoFilesPatch } from 'diff';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Connection, ExecResult } from '../transport/types.js';
import { UnreachableError } from '../transport/types.js';
import type { HostPlan, ResourcePlan, TaskPlan, TaskStatus } from '../plan/types.js';
import type { HostCheck, PlanContext, ResourceKind } from '../resources/types.js';
import { RemoteHostView } from './host_view.js';
import { gatherHostFacts, hostFactList, hostFactVariables } from './host_facts.js';
import { ConfigError, formatDiagnostic } from '../config/diagnostics.js';
import { expandTask, type TaskRun, type TaskSpec } from '../config/playbook.js';
import { registeredResult } from './registered.js';
import { RESOURCES } from '../resources/registry.js';
import { buildWriteScript, EXIT_CHANGED_SINCE_PLAN } from './file_writer.js';
import { censorTaskResult, NO_LOG_MESSAGE, type TaskResult, type TransactionReport } from './results.js';
import {
  buildBeginScript,
  buildRearmScript,
  BACKUP_ROOT,
  parseUndecidedRuns,
  runDirOf,
  sleepUnlessAborted,
  UndecidedTransactionError,
  undecidedRunsMessage,
  undecidedRunsScript,
  confirmTargetFor,
  confirmWithNewConnection,
  disarmTransaction,
  lockoutGuards,
  leftToTheTimer,
  lostConnection,
  lostWhileApplying,
  newRunId,
  readBeginResult,
  rearmedTransaction,
  restoreDeadline,
  restoreNow,
  transactionSpecFor,
  type ChangingTask,
  type GuardResult,
  type SafetyOptions,
  type Transaction,
  type TransactionSpec,
} from './transaction.js';
import { runBatch, type BatchStep, type StepOutcome } from './host_batch.js';
import { errorMessage } from '../errors.js';
import { INTERRUPTED_MARK, type Interruption } from './interruption.js';

/**
 * How long a host waits for another run's undecided transaction before it is
 * refused: a run still at work confirms or restores within seconds (two
 * applies started together on one host); a run that died never does.
 */
const UNDECIDED_WAIT_MS = 15_000;
const UNDECIDED_POLL_MS = 1000;

/** A task ready to plan on this host: arguments already rendered with its variables. */
export interface BoundTask {
  play: string;
  name: string;
  resource: ResourceKind;
  args: unknown;
  notify: string[];
  /** `no_log: true`: the result shows only the status (censorTaskResult). */
  noLog?: boolean;
  /** `diff: false`: the result shows no diff. */
  diff?: boolean;
  /** `check_mode: true`: planned and reported, never applied; its changes notify no handler. */
  checkMode?: boolean;
  /**
   * The task as written, when it can only be rendered on the host, after
   * its facts are read and earlier tasks registered their results: it has
   * `when` or `loop`, or reads a fact or a registered result. `args` is
   * then unused: each run renders it with the host's variables.
   */
  source?: TaskSpec;
  /** `register:`: the variable that receives this task's planned result. */
  register?: string;
  /** `ignore_errors: true`: a failure while planning it does not stop the host. */
  ignoreErrors?: boolean;
}

export interface BoundPlay {
  name: string;
  playbookDir: string;
  /** Inventory, play and extra variables of this host, merged. */
  vars: Record<string, unknown>;
  /** `-e` variables, which beat registered results too (Ansible's precedence). */
  extraVars?: Record<string, unknown>;
  tasks: BoundTask[];
  /** Handlers by name, in definition order. */
  handlers: BoundTask[];
}

/** How a host is planned and its plan applied. */
export interface HostPlanOptions {
  /** Told each step as it starts, for progress output. */
  onStep?: (step: string) => void;
  /**
   * Apply only: lockout guards, backup, dead-man timer and confirmation by a
   * new connection (transaction.ts). Without it, changes are applied bare.
   */
  safety?: SafetyOptions;
  /** SIGINT/SIGTERM: start no change after the first, cut settling short after the second. */
  interruption?: Interruption;
  /**
   * The host's registered results, kept from play to play (as Ansible keeps
   * them for the host); a play planned without it starts with none.
   */
  registered?: Record<string, unknown>;
  /** Told how a host's transaction ended: for the report's rollback and retry counts. */
  onTransaction?: (report: TransactionReport) => void;
}

export interface HostRunOptions extends HostPlanOptions {
  check: boolean;
  /** Told the host's plan of the play before anything is applied (`plan --out` saves it). */
  onPlan?: (plan: HostPlan) => void;
}

/** A task of the plan with the resource kind that planned it (whose hooks apply it). */
interface PlannedTask {
  task: Pick<
    BoundTask,
    'play' | 'name' | 'resource' | 'notify' | 'noLog' | 'diff' | 'checkMode' | 'ignoreErrors'
  >;
  handler: boolean;
  plan?: ResourcePlan;
  error?: string;
}

function toTaskPlan(p: PlannedTask): TaskPlan {
  return {
    play: p.task.play,
    task: p.task.name,
    resource: p.task.resource.name,
    handler: p.handler,
    notify: p.task.notify,
    ...(p.plan !== undefined ? { plan: p.plan } : {}),
    ...(p.error !== undefined ? { error: p.error } : {}),
    ...(p.task.noLog ? { noLog: true } : {}),
    ...(p.task.diff === false ? { diff: false } : {}),
    ...(p.task.checkMode ? { checkMode: true } : {}),
    ...(p.task.ignoreErrors ? { ignoreErrors: true } : {}),
  };
}

function fromTaskPlan(entry: TaskPlan, host: string, kinds: ReadonlyMap<string, ResourceKind>): PlannedTask {
  const resource = kinds.get(entry.resource);
  if (resource === undefined)
    throw new Error(
      `${host}: the plan's task "${entry.task}" uses resource ${entry.resource}, which this sshfix does not have`,
    );
  return {
    task: {
      play: entry.play,
      name: entry.task,
      resource,
      notify: entry.notify,
      ...(entry.noLog ? { noLog: true } : {}),
      ...(entry.diff === false ? { diff: false } : {}),
      ...(entry.checkMode ? { checkMode: true } : {}),
      ...(entry.ignoreErrors ? { ignoreErrors: true } : {}),
    },
    handler: entry.handler,
    ...(entry.plan !== undefined ? { plan: entry.plan } : {}),
    ...(entry.error !== undefined ? { error: entry.error } : {}),
  };
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
  // A task its plan skips says why where a task the run skips does: JSON's error, JUnit's <skipped message>.
  const skipReason =
    status === 'skipped' && p.plan?.action === 'skip' && p.plan.messages.length > 0
      ? p.plan.messages.join('; ')
      : undefined;
  error ??= skipReason;
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
    ...(p.task.noLog ? { noLog: true } : {}),
    ...(p.task.diff === false ? { diffHidden: true } : {}),
    // Only a failure found while planning is ignored: one while applying is rolled back.
    ...(status === 'failed' && p.error !== undefined && p.task.ignoreErrors ? { ignored: true } : {}),
  };
}

/** What check_mode adds to the messages of a task that would change something. */
export const CHECK_MODE_MESSAGE = 'check_mode: planned only, never applied';

/** A change that applying makes: planned as a change, and not by a check_mode task. */
function appliesChange(p: PlannedTask): boolean {
  return p.plan?.action === 'change' && !p.task.checkMode;
}

/** A task or a loop item that its `when` skips. */
function skippedPlan(reason: string): ResourcePlan {
  return { action: 'skip', messages: [reason], warnings: [], fileChanges: [], commands: [] };
}

/** A task that applying does not change: as planned, or failed (an ignored planning error). */
function unchangedResult(p: PlannedTask): TaskResult {
  return p.error !== undefined ? toResult(p, 'failed', p.error) : toResult(p, plannedStatus(p.plan!));
}

function plannedStatus(plan: ResourcePlan): TaskStatus {
  return plan.action === 'change' ? 'changed' : plan.action === 'skip' ? 'skipped' : 'ok';
}

/** Where a play's tasks are rendered on this host, and where they register their results. */
interface HostRendering {
  /** The variables a task is rendered with now (registered results change them). */
  variables(): Record<string, unknown>;
  register(name: string, value: unknown): void;
}

/** A task's runs on this host (one, or one per loop item), or why it could not be rendered. */
function taskRuns(task: BoundTask, rendering: HostRendering): TaskRun[] | { error: string } {
  if (!task.source) return [{ skipped: false, args: task.args }];
  try {
    const schemas = { [task.resource.name]: task.resource.argsSchema };
    return expandTask(task.source, rendering.variables(), schemas, task.resource.checkArgs);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return { error: error.diagnostics.map(formatDiagnostic).join('\n') };
  }
}

async function planTasks(
  tasks: BoundTask[],
  view: RemoteHostView,
  ctx: PlanContext,
  handler: boolean,
  rendering: HostRendering,
  warmPlans: ReadonlyMap<BoundTask, ResourcePlan> = new Map(),
) {
  const planned: PlannedTask[] = [];
  for (const task of tasks) {
    const runs = taskRuns(task, rendering);
    const entries: (PlannedTask & { item?: unknown })[] = [];
    if ('error' in runs) entries.push({ task, handler, error: runs.error });
    else {
      for (const run of runs) {
        const named = run.label === undefined ? task : { ...task, name: `${task.name} (item=${run.label})` };
        const item = 'item' in run ? { item: run.item } : {};
        if (run.skipped) {
          entries.push({ task: named, handler, plan: skippedPlan(run.reason), ...item });
          continue;
        }
        try {
          // Until some task plans a write, the warm-up saw exactly what this view sees: its plan is this plan.
          const warm = view.hasPlannedWrites() ? undefined : warmPlans.get(task);
          // A task rendered on the host hands its template files the same variables, loop item included.
          const runCtx = task.source
            ? {
                ...ctx,
                vars: {
                  ...rendering.variables(),
                  ...('item' in run ? { [task.source.loopVar]: run.item } : {}),
                },
              }
            : ctx;
          const plan = warm ?? (await task.resource.plan(run.args, view, runCtx));
          if (task.checkMode) {
            // Never written: later tasks plan against the files as they are.
            const shown =
              plan.action === 'change' ? { ...plan, messages: [...plan.messages, CHECK_MODE_MESSAGE] } : plan;
            entries.push({ task: named, handler, plan: shown, ...item });
            continue;
          }
          view.recordPlannedWrites(plan.fileChanges);
          entries.push({ task: named, handler, plan, ...item });
        } catch (error) {
          if (error instanceof UnreachableError) throw error;
          entries.push({ task: named, handler, error: errorMessage(error), ...item });
          break; // A failed item ends the loop, as a failed task ends the host's tasks.
        }
      }
    }
    planned.push(...entries);
    if (task.register !== undefined)
      rendering.register(
        task.register,
        registeredResult(entries, task.source?.loop !== undefined, renderDiff),
      );
    // As in Ansible, a host stops at its first failed task, unless the task ignores errors.
    if (entries.some((e) => e.error !== undefined) && !task.ignoreErrors) break;
  }
  return planned;
}

/**
 * Plans every task at once, against a view without planned writes: their
 * reads go out together, batched into a few
 * round trips, and fill the cache that the real, sequential planning then
 * reads from. Files written by earlier tasks are still seen as planned; a
 * task planned before any earlier task plans a write reuses its warm-up plan.
 * The handlers that some task may notify are warmed up too, so that planning
 * a notified one (on every host that changes) costs no round trip of its own;
 * a warm-up plan that fails is only a cache that stays cold.
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
  // A check_mode task changes nothing, so there is nothing for a handler to act on.
  const names = new Set(planned.filter(appliesChange).flatMap((p) => p.task.notify));
  return play.handlers.filter((h) => names.has(h.name));
}

/**
 * Plans one play on one host: reads only. With `safety` (an apply), first
 * waits for — or refuses the host over — another run's undecided change,
 * in the same round trip as the planning reads. Throws UnreachableError
 * when the host goes away.
 */
export async function planHost(
  conn: Connection,
  play: BoundPlay,
  options: HostPlanOptions,
): Promise<HostPlan> {
  const view = new RemoteHostView(conn);
  const ctx: PlanContext = { vars: play.vars, playbookDir: play.playbookDir };
  const onStep = options.onStep ?? (() => undefined);
  onStep(`planning ${play.name}`);
  const notifiable = new Set(play.tasks.flatMap((t) => t.notify));
  // Asked in the same round trip as the warm-up's reads: runs that left a timer armed on this host.
  const backupRoot = options.safety?.backupRoot ?? BACKUP_ROOT;
  const undecided = options.safety
    ? view.probeApart(undecidedRunsScript(backupRoot, options.safety.runToken))
    : undefined;
  undecided?.catch(() => undefined); // awaited below, unless planning fails first
  // In the warm-up's round trip; the firewall part shares the firewall resource's cached probe.
  const hostFacts = gatherHostFacts(view);
  hostFacts.catch(() => undefined); // awaited below, unless planning fails first
  // Tasks rendered only now (their `source`) are planned from the cache, or with reads of their own.
  const warmPlans = await warmUp(
    [...play.tasks, ...play.handlers.filter((h) => notifiable.has(h.name))].filter((t) => !t.source),
    view,
    ctx,
  );
  if (undecided) {
    const script = undecidedRunsScript(backupRoot, options.safety?.runToken);
    let found = parseUndecidedRuns((await undecided).stdout);
    // A run that is still working decides within seconds: wait that long; a run that died does not.
    const giveUpAt = Date.now() + UNDECIDED_WAIT_MS;
    while (found.runs.length > 0 && Date.now() < giveUpAt && !options.interruption?.stopRequested) {
      onStep(`waiting for run ${found.runs.map((r) => r.runId).join(', ')} to confirm or restore its change`);
      await sleepUnlessAborted(UNDECIDED_POLL_MS, options.interruption?.stopSignal);
      found = parseUndecidedRuns((await conn.runScript(script)).stdout);
    }
    if (found.runs.length > 0)
      throw new UndecidedTransactionError(undecidedRunsMessage(found.runs, found.hostNowS, backupRoot));
  }
  const facts = await hostFacts;
  const registered = options.registered ?? {};
  const factVariables = hostFactVariables(facts);
  const rendering: HostRendering = {
    // Ansible's precedence: the host's facts, inventory and play variables, registered results, -e.
    // (Ansible ranks facts above inventory variables; here an inventory variable named like a fact
    // wins, so that a fact never silently replaces what the inventory says.)
    variables: () => ({ ...factVariables, ...play.vars, ...registered, ...play.extraVars }),
    register: (name, value) => {
      registered[name] = value;
    },
  };
  const planned = await planTasks(play.tasks, view, ctx, false, rendering, warmPlans);
  const failedInPlanning = planned.some((p) => p.error !== undefined && !p.task.ignoreErrors);
  const handlers = failedInPlanning
    ? []
    : await planTasks(notifiedHandlers(play, planned), view, ctx, true, rendering, warmPlans);
  return {
    host: conn.hostName,
    play: play.name,
    facts: [...hostFactList(facts), ...(await view.facts())],
    tasks: planned.map(toTaskPlan),
    handlers: handlers.map(toTaskPlan),
  };
}

/** A plan's results without applying it: what each task would do (check mode), or why planning failed. */
function plannedResults(all: readonly PlannedTask[]): TaskResult[] {
  return all.map((p) => unchangedResult(p)).map(censorTaskResult);
}

/**
 * Executes exactly `plan` on its host: nothing is planned again. Each task's
 * resource kind is looked up by name in `resources` (the registry unless
 * given). A plan whose planning failed changes nothing: its results say why.
 */
export async function applyHostPlan(
  plan: HostPlan,
  conn: Connection,
  options: HostPlanOptions & { resources?: ReadonlyMap<string, ResourceKind> },
): Promise<TaskResult[]> {
  const kinds = options.resources ?? RESOURCES;
  const all = [...plan.tasks, ...plan.handlers].map((entry) => fromTaskPlan(entry, plan.host, kinds));
  if (all.some((p) => p.error !== undefined && !p.task.ignoreErrors)) return plannedResults(all);
  const onStep = options.onStep ?? (() => undefined);
  // Censored last: applying adds errors (rollback, verification) to results already made.
  return (
    await applyPlan(all, conn, onStep, options.safety, options.interruption, options.onTransaction)
  ).map(censorTaskResult);
}

/** The results of planning `plan` without applying it (check mode). */
export function hostPlanResults(
  plan: HostPlan,
  resources: ReadonlyMap<string, ResourceKind> = RESOURCES,
): TaskResult[] {
  return plannedResults(
    [...plan.tasks, ...plan.handlers].map((entry) => fromTaskPlan(entry, plan.host, resources)),
  );
}

/** Plans and (unless check) applies one play on one host. Throws UnreachableError when the host goes away. */
export async function runPlayOnHost(
  conn: Connection,
  play: BoundPlay,
  options: HostRunOptions,
): Promise<TaskResult[]> {
  const plan = await planHost(conn, play, options);
  options.onPlan?.(plan);
  // The kinds this play was planned with (a test may bring its own).
  const resources = new Map([...play.tasks, ...play.handlers].map((t) => [t.resource.name, t.resource]));
  if (options.check) return hostPlanResults(plan, resources);
  return applyHostPlan(plan, conn, { ...options, resources });
}

// ---------------------------------------------------------------------------
// Apply: the plan, executed in three round trips per host
//
//  1. checks: the lockout guard's facts and every task's validation (reads
//     and staged copies only: nothing goes live);
//  2. changes: the rollback's backup and timer, every task's writes and
//     commands in plan order (stopping at the first failure), the handlers,
//     then every verification and where sshd now listens;
//  3. on a NEW connection: proof that it works, and the timer disarmed.
// A failure after something changed restores the backup through the open
// session; a lost session leaves it to the host's timer.

/** A step of the change batch: what it is, and the task it belongs to. */
type ChangeStep = BatchStep & { description: string } & (
    | { kind: 'begin' }
    | { kind: 'rearm' }
    | { kind: 'confirm-target' }
    | { kind: 'write'; task: PlannedTask }
    | { kind: 'command'; task: PlannedTask }
    | { kind: 'verify'; task: PlannedTask; check: HostCheck }
  );

function changeSteps(p: PlannedTask): ChangeStep[] {
  const plan = p.plan!;
  const write: ChangeStep[] =
    plan.fileChanges.length === 0
      ? []
      : [
          {
            kind: 'write',
            task: p,
            description: `writing ${p.task.name}`,
            script: buildWriteScript(plan.fileChanges),
            stopOnFailure: true,
          },
        ];
  return [
    ...write,
    ...plan.commands.map((command): ChangeStep => ({
      kind: 'command',
      task: p,
      description: command.description,
      script: command.script,
      stopOnFailure: true,
    })),
  ];
}

function changeFailure(step: ChangeStep, result: ExecResult): string {
  if (step.kind === 'write') {
    if (result.exitCode === EXIT_CHANGED_SINCE_PLAN) return `refused: ${result.stderr.trim()}`;
    return `writing files failed: ${result.stderr.trim()}`;
  }
  const output = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-5).join('\n');
  return `${step.description} exited ${result.exitCode}: ${output}`;
}

/**
 * Sends the change batch. The session lost (or closed on purpose by a second
 * signal, abandoning the batch) leaves the host to its timer, or — without
 * rollback — maybe half-changed: the error says which, and so does the
 * interruption's record of the host.
 */
async function sendChanges(
  conn: Connection,
  steps: readonly ChangeStep[],
  transaction: TransactionSpec | undefined,
  interruption: Interruption | undefined,
): Promise<{ outcomes: StepOutcome[]; sentAtMs: number; deadline: string }> {
  const host = conn.hostName;
  const sentAtMs = Date.now();
  const deadline = new Date(sentAtMs + (transaction?.confirmTimeoutS ?? 0) * 1000).toISOString();
  const runDir = transaction ? runDirOf(transaction) : undefined;
  if (runDir) interruption?.record(host, { kind: 'applying', runDir, deadline });
  const abandon = () => void conn.close();
  interruption?.abortSignal.addEventListener('abort', abandon, { once: true });
  try {
    const outcomes = await runBatch(conn, steps);
    if (!transaction) interruption?.record(host, { kind: 'applied-bare' });
    return { outcomes, sentAtMs, deadline };
  } catch (error) {
    if (!lostConnection(error)) throw error;
    const twice = interruption?.abortRequested
      ? `${INTERRUPTED_MARK} (${interruption.signal}, twice)`
      : undefined;
    if (!transaction || !runDir) {
      interruption?.record(host, { kind: 'abandoned-bare' });
      if (twice === undefined) throw error;
      throw new UnreachableError(
        host,
        `${twice} while changes were being applied without rollback (--no-rollback): ` +
          'they may be half-applied; run again to finish',
      );
    }
    interruption?.record(host, { kind: 'left-to-timer', runDir, deadline });
    if (twice === undefined) throw lostWhileApplying(conn, transaction, sentAtMs, error);
    throw new UnreachableError(
      host,
      `${twice} while the changes were being applied: if they had started, the host restores its ` +
        `previous state by itself by ${deadline} (dead-man timer, backup in ${runDir})`,
    );
  } finally {
    interruption?.abortSignal.removeEventListener('abort', abandon);
  }
}

async function applyPlan(
  all: PlannedTask[],
  conn: Connection,
  onStep: (step: string) => void,
  safety: SafetyOptions | undefined,
  interruption: Interruption | undefined,
  onTransaction: ((report: TransactionReport) => void) | undefined,
): Promise<TaskResult[]> {
  const changing = all.filter(appliesChange);
  if (changing.length === 0) return all.map((p) => unchangedResult(p));
  const kinds: ChangingTask[] = changing.map((p) => ({ kind: p.task.resource, plan: p.plan! }));
  const stopped = (): TaskResult[] =>
    all.map((p) =>
      appliesChange(p)
        ? toResult(
            p,
            'skipped',
            `not applied: ${INTERRUPTED_MARK} (${interruption!.signal}) before this host was changed`,
          )
        : unchangedResult(p),
    );
  if (interruption?.stopRequested) return stopped();

  // 1. Checks.
  onStep('validating the changes');
  const guards = safety ? lockoutGuards(kinds, safety.spec.user, conn.authMethod) : [];
  // A task whose guard validates its plan has its own validations only when the guard's verdict
  // could not (a second round trip, on hosts where something is wrong).
  const validatedByGuard = new Set(
    guards.filter((g) => g.guard.validatesPlan).map((g) => changing[g.index]!),
  );
  const validationsOf = (p: PlannedTask) =>
    (p.task.resource.validate?.(p.plan!) ?? []).map((check) => ({ owner: p, check }));
  const firstValidations = changing.filter((p) => !validatedByGuard.has(p)).flatMap(validationsOf);
  const firstChecked = await runBatch(conn, [
    ...guards.map((g) => ({ script: g.guard.script, stopOnFailure: false })),
    ...firstValidations.map((v) => ({ script: v.check.script, stopOnFailure: false })),
  ]);
  const guarded: GuardResult[] = guards.map((g, i) => ({
    index: g.index,
    verdict: g.guard.judge(firstChecked[i] ?? { exitCode: 1, stdout: '', stderr: '' }),
  }));
  const unjudged = guarded
    .filter((g) => validatedByGuard.has(changing[g.index]!) && g.verdict.validated !== true)
    .flatMap((g) => validationsOf(changing[g.index]!));
  const laterChecked = await runBatch(
    conn,
    unjudged.map((v) => ({ script: v.check.script, stopOnFailure: false })),
  );
  // In plan order, as if all had run in the first batch.
  const validationResults = new Map<{ owner: PlannedTask; check: HostCheck }, StepOutcome>([
    ...firstValidations.map((v, i) => [v, firstChecked[guards.length + i]] as const),
    ...unjudged.map((v, i) => [v, laterChecked[i]] as const),
  ]);
  const validations = [...validationResults.keys()].sort(
    (x, y) => changing.indexOf(x.owner) - changing.indexOf(y.owner),
  );
  const refusal = (culprit: PlannedTask, message: string): TaskResult[] =>
    all.map((p) => {
      if (p === culprit) return toResult(p, 'failed', message);
      const why = culprit.task.noLog ? NO_LOG_MESSAGE : message;
      if (appliesChange(p)) return toResult(p, 'skipped', `not applied: ${culprit.task.name} ${why}`);
      return unchangedResult(p);
    });
  for (const { index, verdict } of guarded) {
    // Not a lockout guess but a change that cannot take effect: --force does not override it.
    if (verdict.refusal !== undefined)
      return refusal(changing[index]!, `refused: ${verdict.refusal}. Nothing was changed on this host`);
  }
  const objecting = guarded.find((g) => g.verdict.findings.length > 0);
  if (objecting && !safety!.force) {
    return refusal(
      changing[objecting.index]!,
      `refused: this change would lock sshfix out: ${objecting.verdict.findings.join('; ')}. ` +
        'Nothing was changed on this host (--force applies it anyway; a new connection then confirms it or it is rolled back)',
    );
  }
  for (const v of validations) {
    const result = validationResults.get(v);
    const failure = result ? v.check.failure(result) : 'the validation did not run';
    if (failure !== undefined) return refusal(v.owner, failure);
  }
  for (const { index, verdict } of guarded) {
    // The host's own verdict, not a guess of ours: --force does not override it.
    if (verdict.rejection !== undefined)
      return refusal(changing[index]!, `refused: ${verdict.rejection}. Nothing was changed on this host`);
  }
  const listener = guarded.find((g) => g.verdict.listener !== undefined)?.verdict.listener;

  // 2. Changes.
  const transaction =
    safety?.rollback === true
      ? transactionSpecFor(
          kinds.map((k) => k.plan),
          {
            runId: newRunId(),
            confirmTimeoutS: safety.confirmTimeoutS,
            ...(safety.backupRoot !== undefined ? { backupRoot: safety.backupRoot } : {}),
            ...(safety.runToken !== undefined ? { owner: safety.runToken } : {}),
          },
        )
      : undefined;
  const verifications = changing.flatMap((p) =>
    (p.task.resource.verify?.(p.plan!) ?? []).map((check) => ({ p, check })),
  );
  const steps: ChangeStep[] = [
    ...(transaction
      ? [
          {
            kind: 'begin' as const,
            description: 'backup and rollback timer',
            script: buildBeginScript(transaction),
            stopOnFailure: true,
          },
        ]
      : []),
    ...changing.flatMap(changeSteps),
    ...verifications.map(({ p, check }) => ({
      kind: 'verify' as const,
      task: p,
      check,
      description: `verifying ${p.task.name}`,
      script: check.script,
      stopOnFailure: false,
    })),
    ...(transaction && listener
      ? [
          {
            kind: 'confirm-target' as const,
            description: 'where the server listens now',
            script: listener.script,
            stopOnFailure: false,
          },
        ]
      : []),
    // Last, after the reload and its verification: the confirmation that follows gets the whole
    // window from here, however long the batch took to get this far on a busy host.
    ...(transaction
      ? [
          {
            kind: 'rearm' as const,
            description: 'the rollback window restarted',
            script: buildRearmScript(transaction),
            stopOnFailure: false,
          },
        ]
      : []),
  ];
  // The last moment to stop without changing anything; from here on, the host is settled.
  if (interruption?.stopRequested) return stopped();
  onStep(`applying ${changing.length} change(s)`);
  const host = conn.hostName;
  const sent = await sendChanges(conn, steps, transaction, interruption);
  const { outcomes, sentAtMs } = sent;
  let deadline = sent.deadline;

  let tx: Transaction | undefined;
  if (transaction) {
    try {
      tx = readBeginResult(
        transaction,
        outcomes[0] ?? { exitCode: 1, stdout: '', stderr: 'did not run' },
        sentAtMs,
      );
    } catch (error) {
      interruption?.discard(host, runDirOf(transaction));
      if (error instanceof UndecidedTransactionError) throw error;
      return refusal(changing[0]!, `nothing was changed: ${errorMessage(error)}`);
    }
    const rearmStep = steps.findIndex((st) => st.kind === 'rearm');
    tx = rearmedTransaction(tx, rearmStep === -1 ? undefined : outcomes[rearmStep]);
    deadline = restoreDeadline(tx);
    interruption?.record(host, { kind: 'armed', runDir: tx.runDir, deadline });
  }

  // Per task, in plan order, as if each had run on its own: changed, failed, or (after a failure) not reached.
  const resultOf = new Map<PlannedTask, TaskResult>();
  let failure: string | undefined;
  let changeStarted = false;
  for (const [i, step] of steps.entries()) {
    const result = outcomes[i];
    if (step.kind === 'begin' || step.kind === 'rearm' || step.kind === 'confirm-target') continue;
    if (step.kind === 'verify') {
      const why = result ? step.check.failure(result) : 'the verification did not run';
      const own = resultOf.get(step.task);
      if (why !== undefined && own?.status === 'changed' && failure === undefined) {
        Object.assign(own, { status: 'failed', error: `verification failed: ${why}` });
        failure = step.task.task.name;
      }
      continue;
    }
    if (failure !== undefined) continue;
    if (result === undefined) break;
    changeStarted = true;
    const failed = result.exitCode !== 0 ? changeFailure(step, result) : undefined;
    if (failed !== undefined) {
      resultOf.set(step.task, toResult(step.task, 'failed', failed));
      failure = step.task.task.name;
    } else if (!resultOf.has(step.task)) resultOf.set(step.task, toResult(step.task, 'changed'));
  }
  const results: TaskResult[] = [];
  // check_mode tasks report "changed" for what they would do: a rollback does not make them fail.
  const unapplied = new Set<TaskResult>();
  for (const p of all) {
    if (!appliesChange(p)) {
      const result = unchangedResult(p);
      if (result.status === 'changed') unapplied.add(result);
      results.push(result);
    } else {
      const r = resultOf.get(p);
      if (r) results.push(r);
      else if (failure === undefined) results.push(toResult(p, 'changed'));
    }
  }
  for (const { index, verdict } of guarded) {
    const forced = verdict.findings.length > 0 ? resultOf.get(changing[index]!) : undefined;
    if (forced)
      forced.warnings = [
        ...forced.warnings,
        ...verdict.findings.map((f) => `applied despite the lockout guard (--force): ${f}`),
      ];
  }
  if (!tx) return results;

  // 3. Confirm, or restore.
  let confirmAttempts = 0;
  const rolledBack = async (reason: string, again: boolean): Promise<TaskResult[]> => {
    onTransaction?.({ confirmAttempts, rolledBack: true });
    onStep('rolling back');
    const restored = await restoreNow(conn, tx, reason, again);
    if (restored.complete) interruption?.record(host, { kind: 'restored', runDir: tx.runDir });
    for (const result of results) {
      if (result.status === 'changed' && !unapplied.has(result))
        Object.assign(result, { status: 'failed', error: `rolled back: ${restored.reason}` });
      else if (result.status === 'failed') result.error = `${result.error ?? 'failed'}; rolled back`;
    }
    return results;
  };
  try {
    if (failure !== undefined) {
      if (!changeStarted) {
        await disarmTransaction(conn, tx).catch(() => undefined);
        interruption?.discard(host, tx.runDir);
        return results;
      }
      return await rolledBack(`${failure} failed`, false);
    }
  } catch (error) {
    if (lostConnection(error))
      interruption?.record(host, { kind: 'left-to-timer', runDir: tx.runDir, deadline });
    throw error;
  }
  onStep('confirming with a new connection');
  const targetStep = steps.findIndex((st) => st.kind === 'confirm-target');
  const listened = targetStep === -1 ? undefined : outcomes[targetStep];
  const target = await confirmTargetFor(
    listener && listened ? listener.read(listened, safety!.spec.port) : undefined,
    safety!,
  );
  /** The window as the confirmation moved it (transaction.ts: a new connection that reached sshd). */
  let window: Transaction = tx;
  try {
    const confirmed = await confirmWithNewConnection(
      conn,
      tx,
      safety!,
      target,
      interruption?.abortSignal,
      (moved) => {
        window = moved;
        deadline = restoreDeadline(moved);
        interruption?.record(host, { kind: 'armed', runDir: moved.runDir, deadline });
      },
    );
    confirmAttempts = confirmed.attempts;
    if (confirmed.ok && confirmed.decision === 'confirmed') {
      onTransaction?.({ confirmAttempts, rolledBack: false });
      interruption?.record(host, { kind: 'confirmed', runDir: tx.runDir });
      return results;
    }
    const reason = confirmed.ok
      ? `the rollback timer fired before the change was confirmed (--confirm-timeout ${tx.spec.confirmTimeoutS}s is too short for this host)`
      : confirmed.interrupted
        ? `${INTERRUPTED_MARK} (${interruption?.signal ?? 'signal'}, twice) before the change was confirmed`
        : `a new SSH connection to port ${target.port} failed after the change: ${confirmed.reason}`;
    return await rolledBack(reason, confirmed.ok);
  } catch (error) {
    if (lostConnection(error)) {
      interruption?.record(host, { kind: 'left-to-timer', runDir: tx.runDir, deadline });
      throw leftToTheTimer(conn, window, 'lost the connection before confirming', error);
    }
    throw error;
  } finally {
    if (target.knownHostsFile !== undefined)
      await fs.rm(path.dirname(target.knownHostsFile), { recursive: true, force: true });
  }
}
