/**
 * Runs a playbook across the selected hosts of an inventory: every host's
 * arguments are rendered and checked before any host is contacted (bad input
 * changes nothing), then hosts run in parallel (at most `forks` at once), each
 * over one connection reused for all of its plays. A failure on one host never
 * stops the others.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import PQueue from 'p-queue';
import type { Inventory } from '../config/inventory.js';
import { DEFAULTS } from '../config/settings.js';
import { selectPlaybookHosts, type PlaybookSelection } from '../config/selection.js';
import type { Playbook, TaskSpec } from '../config/playbook.js';
import {
  argumentProblemDiagnostics,
  playVariables,
  renderTaskArgs,
  tasksWithBecome,
  taskVariableNames,
  unknownVariableDiagnostics,
} from '../config/playbook.js';
import { ConfigError, diagnosticIdentity, type Diagnostic } from '../config/diagnostics.js';
import type { ResourceKind } from '../resources/types.js';
import type { Connection, ConnectionSpec } from '../transport/types.js';
import { HandshakeTimeoutError, UnreachableError } from '../transport/types.js';
import { openConnection } from '../transport/connect.js';
import type { SshConfigFile } from '../transport/ssh_config.js';
import { buildConnectionSpec, defaultKnownHostsFile } from '../transport/spec.js';
import {
  applyHostPlan,
  hostPlanResults,
  planHost,
  runPlayOnHost,
  type BoundPlay,
  type BoundTask,
  type HostPlanOptions,
} from './host_run.js';
import type { HostPlan } from '../plan/types.js';
import { reviewPlay, type PlanPlay } from '../plan/plan_file.js';
import { hostFailure, isFailure, type HostResult, type TaskResult } from './results.js';
import { errorMessage } from '../errors.js';
import { DEFAULT_CONFIRM_TIMEOUT_S, UndecidedTransactionError, type SafetyOptions } from './transaction.js';
import { notRunResult, runInBatches, type Serial } from './rollout.js';
import { INTERRUPTED_MARK, type Interruption } from './interruption.js';

export interface RunOptions {
  check: boolean;
  /** Extra host pattern intersected with every play's `hosts:` (see config/selection.ts). */
  limit?: string;
  forks: number;
  /** Overrides for every host (from CLI flags). */
  connection?: 'ssh' | 'local';
  user?: string;
  privateKeyFile?: string;
  knownHostsFile?: string;
  acceptNewHostKeys: boolean;
  /** `--become`: for plays and hosts that do not say (SpecOptions.becomeByDefault). */
  become?: boolean;
  /** remote_user and private_key_file of sshfix.cfg/ansible.cfg or the environment (SpecOptions.configured). */
  configured?: { user?: string; privateKeyFile?: string };
  /** `-e` variables: beat inventory and play vars, as in Ansible. */
  extraVars?: Record<string, unknown>;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  /** ssh_config (`-F`, else ~/.ssh/config): fills in what neither the inventory nor a flag sets. */
  sshConfig?: SshConfigFile;
  /** Called as each host finishes, for streaming output. */
  onHostDone?: (result: HostResult) => void;
  /** Called as a host starts each step ("connecting", "planning", "validating <task>", ...), for live progress. */
  onProgress?: (host: string, step: string) => void;
  /** Opens connections; tests may substitute. */
  connect?: (spec: ConnectionSpec) => Promise<Connection>;
  /** false (--no-rollback): apply without backup, dead-man timer and confirmation. Default true. */
  rollback?: boolean;
  /** Seconds until a host restores by itself unless a new connection confirmed the change. */
  confirmTimeoutS?: number;
  /** Run directories on the hosts (backup_dir); default BACKUP_ROOT. */
  backupRoot?: string;
  /** Apply even when a lockout guard objects (--force). */
  force?: boolean;
  /** Roll out in batches (--serial). */
  serial?: Serial;
  /** Stop the rollout once a batch has more failed hosts than this percentage. */
  maxFailPercentage?: number;
  /** SIGINT/SIGTERM (apply): hosts not yet changing are left alone, the others settled. */
  interruption?: Interruption;
  /** Told each host's plan of each play (`plan --out` saves them). */
  onHostPlan?: (host: string, plan: HostPlan) => void;
  /**
   * `apply PLAN`: the reviewed plays of each host. A host's play is applied
   * only when planning it again reads the same facts and makes the same
   * changes (reviewPlay); otherwise the host is refused as stale.
   */
  reviewed?: ReadonlyMap<string, readonly PlanPlay[]>;
}

/** Ansible's is 5; sshfix's hosts wait on the network, not the controller's CPU. */
export const DEFAULT_FORKS = DEFAULTS.forks;

/**
 * Attempts at a host's first connection when its handshake times out: nothing
 * has been done on the host yet, and on a busy controller the next attempt
 * (the handshake window having halved meanwhile) usually gets through. Other
 * failures (refused, a bad key) are not retried: they would fail again.
 */
export const FIRST_CONNECT_ATTEMPTS = 3;

/** The host's first connection, retried while its handshake is late; with how many retries it took. */
export async function connectRetryingLate(
  connect: (spec: ConnectionSpec) => Promise<Connection>,
  spec: ConnectionSpec,
  attempts: number = FIRST_CONNECT_ATTEMPTS,
): Promise<{ conn: Connection; retries: number }> {
  for (let attempt = 1; ; attempt++) {
    try {
      return { conn: await connect(spec), retries: attempt - 1 };
    } catch (error) {
      if (!(error instanceof HandshakeTimeoutError) || attempt >= attempts) throw error;
    }
  }
}

interface HostJob {
  host: string;
  spec: ConnectionSpec;
  plays: BoundPlay[];
}

export { defaultKnownHostsFile };

/**
 * Whether a task can only be rendered on its host, during the host's run:
 * its `when` or `loop` may read facts and registered results, and so may
 * its arguments when they name a fact (`ansible_*`) or a variable a task
 * of the play registers.
 */
function rendersOnHost(task: TaskSpec, registered: ReadonlySet<string>): boolean {
  if (task.when.length > 0 || task.loop !== undefined) return true;
  return taskVariableNames(task).some((name) => registered.has(name) || name.startsWith('ansible_'));
}

/**
 * Renders every task for every host its play selects (`selection`, whose
 * warnings are the caller's to show); throws ConfigError with all problems,
 * "no hosts matched" included. A task that reads what only the host's run
 * knows (rendersOnHost) is rendered there, before it is planned; its
 * strings' syntax, filters and tests were checked when the playbook was read.
 */
export function bindPlaybook(
  playbook: Playbook,
  inventory: Inventory,
  resources: ReadonlyMap<string, ResourceKind>,
  options: RunOptions,
  selection: PlaybookSelection = selectPlaybookHosts(playbook.plays, inventory, options.limit),
): HostJob[] {
  if (selection.errors.length > 0) throw new ConfigError(selection.errors);
  const schemas = Object.fromEntries([...resources].map(([name, r]) => [name, r.argsSchema]));
  const jobs = new Map<string, HostJob>();
  const diagnostics: Diagnostic[] = [];
  const reported = new Set<string>();
  // Registered results live on from play to play, as in Ansible.
  const registered = new Set(
    playbook.plays.flatMap((play) =>
      [...play.tasks, ...play.handlers].flatMap((t) => (t.register === undefined ? [] : [t.register])),
    ),
  );
  for (const [index, play] of playbook.plays.entries()) {
    for (const hostName of selection.playHosts[index] ?? []) {
      const host = inventory.hosts.get(hostName)!;
      const vars = {
        ...host.vars,
        ...playVariables(play),
        ...options.extraVars,
        inventory_hostname: hostName,
      };
      const report = (found: readonly Diagnostic[]): void => {
        // The same mistake shows once, not once per host.
        for (const d of found) {
          const identity = diagnosticIdentity(d);
          if (reported.has(identity)) continue;
          reported.add(identity);
          diagnostics.push({ ...d, detail: d.detail ?? `for host ${hostName}` });
        }
      };
      const bind = (t: TaskSpec): BoundTask | undefined => {
        const resource = resources.get(t.resource)!;
        const common = {
          play: play.name,
          name: t.name,
          resource,
          notify: t.notify,
          noLog: t.noLog,
          diff: t.diff,
          ...(t.register !== undefined ? { register: t.register } : {}),
          ...(t.ignoreErrors ? { ignoreErrors: true } : {}),
          ...(t.checkMode ? { checkMode: true } : {}),
        };
        if (rendersOnHost(t, registered)) {
          // What it reads must still exist somewhere: a typo is found before any host is contacted.
          const known = (name: string) =>
            Object.hasOwn(vars, name) || registered.has(name) || name.startsWith('ansible_');
          report(unknownVariableDiagnostics(t, known, [...Object.keys(vars), ...registered]));
          return { ...common, args: undefined, source: t };
        }
        try {
          const args = renderTaskArgs(t, vars, schemas);
          const problems = argumentProblemDiagnostics(t, resource.checkArgs?.(args) ?? []);
          if (problems.length > 0) throw new ConfigError(problems);
          return { ...common, args };
        } catch (error) {
          if (!(error instanceof ConfigError)) throw error;
          report(error.diagnostics);
          return undefined;
        }
      };
      const tasks = play.tasks.map(bind).filter((t): t is BoundTask => t !== undefined);
      const handlers = play.handlers.map(bind).filter((t): t is BoundTask => t !== undefined);
      let job = jobs.get(hostName);
      if (!job) {
        // Connection variables come from every source, as in Ansible: a become
        // password may sit in a vars file or -e @vault.yml. The host's first play sets them.
        job = { host: hostName, spec: connectionSpec(hostName, vars, play.become, options), plays: [] };
        jobs.set(hostName, job);
      } else if (play.become) job.spec.become = true;
      // One connection serves all of a host's tasks: a task's `become: true` makes it root for all of them.
      if (tasksWithBecome(play, true).length > 0) job.spec.become = true;
      job.plays.push({
        name: play.name,
        // An imported play's files are found next to the playbook that holds it.
        playbookDir: path.dirname(path.resolve(play.position.file)),
        vars,
        ...(options.extraVars ? { extraVars: options.extraVars } : {}),
        tasks,
        handlers,
      });
    }
  }
  diagnostics.push(...unbecomingTaskDiagnostics(playbook, selection, jobs));
  if (diagnostics.length > 0) throw new ConfigError(diagnostics);
  // Inventory order, not the order plays first name the hosts in: results and reports follow it.
  return selection.hosts.flatMap((host) => jobs.get(host) ?? []);
}

/**
 * `become: false` on a task of a host whose connection becomes root: the
 * task would run as root all the same, which is not what it says.
 */
function unbecomingTaskDiagnostics(
  playbook: Playbook,
  selection: PlaybookSelection,
  jobs: ReadonlyMap<string, HostJob>,
): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  for (const [index, play] of playbook.plays.entries()) {
    const unbecoming = tasksWithBecome(play, false);
    if (unbecoming.length === 0) continue;
    const rootHosts = (selection.playHosts[index] ?? []).filter((host) => {
      const spec = jobs.get(host)?.spec;
      return spec !== undefined && spec.become && spec.user !== 'root';
    });
    if (rootHosts.length === 0) continue;
    for (const task of unbecoming) {
      diagnostics.push({
        severity: 'error',
        summary:
          `task '${task.name}' says become: false, but ${rootHosts.join(', ')} run as root through sudo ` +
          '(become of a play, of another task, or ansible_become): sshfix runs all the tasks of a host over ' +
          'one connection, as root or not; run this task from a playbook of its own',
        position: task.position,
      });
    }
  }
  return diagnostics;
}

function connectionSpec(
  hostName: string,
  vars: Record<string, unknown>,
  playBecome: boolean | undefined,
  options: RunOptions,
): ConnectionSpec {
  return buildConnectionSpec(hostName, vars, {
    ...(options.connection !== undefined ? { connection: options.connection } : {}),
    ...(options.user !== undefined ? { user: options.user } : {}),
    ...(options.privateKeyFile !== undefined ? { privateKeyFile: options.privateKeyFile } : {}),
    ...(options.knownHostsFile !== undefined ? { knownHostsFile: options.knownHostsFile } : {}),
    ...(playBecome !== undefined ? { become: playBecome } : {}),
    ...(options.become !== undefined ? { becomeByDefault: options.become } : {}),
    ...(options.configured ? { configured: options.configured } : {}),
    ...(options.sshConfig ? { sshConfig: options.sshConfig } : {}),
    acceptNewHostKeys: options.acceptNewHostKeys,
    connectTimeoutMs: options.connectTimeoutMs,
    commandTimeoutMs: options.commandTimeoutMs,
  });
}

async function runHost(job: HostJob, options: RunOptions & { runToken: string }): Promise<HostResult> {
  const result: HostResult = { host: job.host, address: job.spec.address, unreachable: false, tasks: [] };
  let conn: Connection | undefined;
  try {
    options.onProgress?.(job.host, 'connecting');
    const { conn: opened, retries } = await connectRetryingLate(options.connect ?? openConnection, job.spec);
    if (retries > 0) result.connectRetries = retries;
    conn = opened;
    const registered: Record<string, unknown> = {};
    for (const [index, play] of job.plays.entries()) {
      if (index > 0 && options.interruption?.stopRequested) {
        result.tasks.push(interruptedBeforePlays(job.plays.slice(index), options.interruption));
        break;
      }
      const hostOptions: HostPlanOptions = {
        registered,
        onStep: (step) => options.onProgress?.(job.host, step),
        ...(options.check ? {} : { safety: safetyOptions(job, options) }),
        onTransaction: (report) => {
          result.transaction = report;
        },
        ...(options.interruption ? { interruption: options.interruption } : {}),
      };
      if (options.reviewed) {
        const outcome = await applyReviewedPlay(
          opened,
          play,
          options.reviewed.get(job.host)?.[index],
          hostOptions,
        );
        result.tasks.push(...outcome.tasks);
        if (outcome.stale) {
          result.stale = outcome.stale;
          break;
        }
      } else {
        const tasks = await runPlayOnHost(opened, play, {
          ...hostOptions,
          check: options.check,
          onPlan: (plan) => options.onHostPlan?.(job.host, plan),
        });
        result.tasks.push(...tasks);
      }
      if (result.tasks.some(isFailure)) break;
    }
  } catch (error) {
    if (error instanceof UndecidedTransactionError) {
      result.tasks.push(
        ...hostFailure(job.host, job.spec.address, '(undecided transaction)', error.message).tasks,
      );
      return result;
    }
    if (!(error instanceof UnreachableError)) throw error;
    result.unreachable = true;
    result.error = error.message;
  } finally {
    await conn?.close().catch(() => undefined);
  }
  return result;
}

/** The name of the entry saying a host was already as its reviewed plan makes it. */
export const ALREADY_APPLIED_TASK = '(reviewed plan)';

/**
 * One play of `apply PLAN` on one host: plan it again (reads only) and apply
 * that fresh plan only when reviewPlay finds it is the reviewed one; an
 * already-applied play reports its tasks unchanged; a stale one changes
 * nothing and says what changed.
 */
async function applyReviewedPlay(
  conn: Connection,
  play: BoundPlay,
  reviewed: PlanPlay | undefined,
  options: HostPlanOptions,
): Promise<{ tasks: TaskResult[]; stale?: string[] }> {
  if (reviewed === undefined || reviewed.name !== play.name) {
    return { tasks: [], stale: [`the plan holds no reviewed plan of play "${play.name}" for this host`] };
  }
  const fresh = await planHost(conn, play, options);
  const resources = new Map([...play.tasks, ...play.handlers].map((t) => [t.resource.name, t.resource]));
  const decision = reviewPlay(reviewed, fresh);
  if (decision.kind === 'stale') return { tasks: [], stale: decision.reasons };
  if (decision.kind === 'apply')
    return { tasks: await applyHostPlan(fresh, conn, { ...options, resources }) };
  const note: TaskResult = {
    play: play.name,
    task: ALREADY_APPLIED_TASK,
    resource: '',
    status: 'ok',
    handler: false,
    messages: ['already applied: the host is as the reviewed plan makes it'],
    warnings: [],
    diff: '',
    commands: [],
  };
  return { tasks: [note, ...hostPlanResults(fresh, resources)] };
}

/** The plays an interruption kept from starting, as one skipped entry. */
function interruptedBeforePlays(plays: readonly BoundPlay[], interruption: Interruption): TaskResult {
  return {
    play: plays[0]!.name,
    task: '(interrupted)',
    resource: '',
    status: 'skipped',
    handler: false,
    messages: [],
    warnings: [],
    diff: '',
    commands: [],
    error: `not run: ${INTERRUPTED_MARK} (${interruption.signal}) before ${plays.map((p) => `play "${p.name}"`).join(', ')}`,
  };
}

function safetyOptions(job: HostJob, options: RunOptions & { runToken: string }): SafetyOptions {
  return {
    runToken: options.runToken,
    spec: job.spec,
    connect: options.connect ?? openConnection,
    rollback: options.rollback ?? true,
    confirmTimeoutS: options.confirmTimeoutS ?? DEFAULT_CONFIRM_TIMEOUT_S,
    force: options.force ?? false,
    ...(options.backupRoot !== undefined ? { backupRoot: options.backupRoot } : {}),
  };
}

/**
 * Runs the jobs, in batches with --serial (a batch failing more than
 * --max-fail-percentage stops the rollout); results come back in inventory order.
 */
export async function runJobs(jobs: HostJob[], options: RunOptions): Promise<HostResult[]> {
  const withAddress = jobs.map((job) => ({ ...job, address: job.spec.address }));
  // Marks this run's transactions on every host, so that the run never waits for itself.
  const run = { ...options, runToken: randomBytes(8).toString('hex') };
  return runInBatches(
    withAddress,
    {
      ...(options.serial ? { serial: options.serial } : {}),
      ...(options.maxFailPercentage !== undefined ? { maxFailPercentage: options.maxFailPercentage } : {}),
    },
    (batch) => runBatch(batch, run),
    (result) => options.onHostDone?.(result),
  );
}

async function runBatch(jobs: HostJob[], options: RunOptions & { runToken: string }): Promise<HostResult[]> {
  const queue = new PQueue({ concurrency: Math.max(1, options.forks) });
  return Promise.all(
    jobs.map((job) =>
      queue.add(async () => {
        const interruption = options.interruption;
        const result = interruption?.stopRequested
          ? notRunResult(
              job.host,
              job.spec.address,
              `${INTERRUPTED_MARK} (${interruption.signal}) before this host started`,
            )
          : await runHost(job, options).catch((error: unknown) =>
              hostFailure(job.host, job.spec.address, '(internal)', errorMessage(error)),
            );
        options.onHostDone?.(result);
        return result;
      }),
    ),
  ) as Promise<HostResult[]>;
}
