import type { ExecResult } from '../transport/types.js';
import type { FileState, ResourcePlan } from '../plan/types.js';

/**
 * What a resource sees of a host while planning: reads only. Reads are cached
 * for the run, and files written by earlier tasks of the same plan are seen
 * with their planned contents, so a plan is exact for the whole task list.
 */
export interface HostView {
  readonly hostName: string;
  readFiles(paths: string[]): Promise<Map<string, FileState>>;
  /** Expands a shell glob on the host; sorted lexically, as sshd's Include does. */
  glob(pattern: string): Promise<string[]>;
  /** The regular files a glob matches, with their contents, in one read; sorted lexically. */
  globFiles(pattern: string): Promise<FileState[]>;
  /**
   * Runs a read-only probe (e.g. `sshd -T`, `ldd`), cached by script text.
   * Its answer is a fact the plan rests on (HostPlan.facts); `fact` names it
   * and, for output that moves by itself (packet counters, timestamps),
   * keeps only the part a decision reads.
   */
  probe(script: string, fact?: ProbeFact): Promise<ExecResult>;
  /**
   * sshd's absolute path and what `sshd -V` prints, read by the host's facts
   * probe (one sshd -V per host, whoever asks); undefined when there is no sshd.
   */
  sshdRelease(): Promise<SshdRelease | undefined>;
}

/** Where sshd is and which release it says it is. */
export interface SshdRelease {
  /** Absolute path: the remote PATH of a non-login shell often lacks /usr/sbin. */
  sshd: string;
  /** What `sshd -V` printed (releases without -V print their version above the usage text). */
  versionOutput: string;
}

/** How a probe's answer is recorded as a fact of the plan. */
export interface ProbeFact {
  /** What the answer is, for people: "firewall ruleset", "fail2ban state". */
  description: string;
  /** The part of stdout a decision rests on; all of it when absent. */
  essence?(stdout: string): string;
}

export interface PlanContext {
  /** Host and play variables (already merged). */
  vars: Record<string, unknown>;
  /** Directory of the playbook: relative template paths are looked up from here (then its templates/). */
  playbookDir: string;
}

/**
 * A check run on the host while applying: a script, and what its result
 * means. Resources only describe checks; the executor sends them, batched
 * with the host's other steps into as few round trips as it can.
 */
export interface HostCheck {
  /** Runs with stdin closed; every value in it is already quoted. */
  script: string;
  /** Why the check failed (the tool's own message), or undefined when it passed. */
  failure(result: ExecResult): string | undefined;
}

/** Who the run is connected as, for a lockout guard. */
export interface GuardLogin {
  user: string;
  authMethod?: 'publickey' | 'password' | 'keyboard-interactive';
}

/** Where a confirmation must connect after a change moved the listener. */
export interface ListenerMove {
  port: number;
  /** Host keys (type, base64) the server presents there, read over the old session. */
  hostKeys: [type: string, key: string][];
}

/** A guard's judgement of the facts its script gathered. */
export interface GuardVerdict {
  /** The change cannot take effect on this host; --force does not override it. */
  refusal?: string;
  /** How the change would lock the run out (a judgement: --force applies it anyway). */
  findings: string[];
  /**
   * The host's own verdict on the staged change for this very connection,
   * weighed after the validations (whose message is clearer when both fail);
   * --force does not override it.
   */
  rejection?: string;
  /** The host accepted the staged change (see LockoutGuard.validatesPlan). */
  validated?: boolean;
  /**
   * When the change moves where the server listens: a step run after the
   * handlers, and what it says about where the confirmation must connect
   * (undefined: where it connected before).
   */
  listener?: { script: string; read(result: ExecResult, currentPort: number): ListenerMove | undefined };
}

/**
 * A lockout guard: one script gathering facts (with staged copies only,
 * nothing goes live), and its judgement of them. Run before any change.
 */
export interface LockoutGuard {
  script: string;
  judge(result: ExecResult): GuardVerdict;
  /**
   * The guard's script also validates everything its task's validate() checks
   * would (the same staged tree, by a stricter test): a verdict with
   * `validated` stands for them, and they run only when it is missing.
   */
  validatesPlan?: boolean;
}

/** One kind of thing sshfix can converge (sshd_config, service, tcp_wrappers...). */
export interface ResourceKind<Args = unknown, Data = unknown> {
  /** The task key, e.g. "sshd_config". */
  readonly name: string;
  /** JSON Schema of the task's arguments (after variable rendering). */
  readonly argsSchema: Record<string, unknown>;
  /**
   * Checks rendered arguments beyond what the schema can say (e.g. that every
   * sshd_config keyword exists). Runs before any host is contacted; each
   * problem names the JSON pointer of the offending argument.
   */
  checkArgs?(args: Args): ArgumentProblem[];
  /** Computes what would change. Pure apart from reads through `host`. */
  plan(args: Args, host: HostView, ctx: PlanContext): Promise<ResourcePlan<Data>>;
  /**
   * Checks of the staged result, run before anything of the run goes live
   * (e.g. `sshd -t` on the whole staged tree). A failure fails the task.
   */
  validate?(plan: ResourcePlan<Data>): HostCheck[];
  /** Checks of the effect, run after the handlers (e.g. `sshd -T` shows every value). */
  verify?(plan: ResourcePlan<Data>): HostCheck[];
  /**
   * Would this change lock the run out of the host? Asked for the last
   * changing task of this kind on a host (its plan already sees every
   * earlier one), except on the console, where a run cannot lock itself
   * out of SSH. Undefined: nothing to guard.
   */
  lockoutGuard?(plan: ResourcePlan<Data>, login: GuardLogin): LockoutGuard | undefined;
}

/** A problem with one argument, located by its JSON pointer (e.g. "/settings/MaxStartup"). */
export interface ArgumentProblem {
  pointer: string;
  message: string;
}
