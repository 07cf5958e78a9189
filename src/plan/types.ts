/**
 * A plan is a value. `sshfix plan` renders it; `sshfix apply` executes exactly
 * it. Nothing in here does I/O.
 */

/** Contents of one file as the host has it. */
export interface FileState {
  path: string;
  exists: boolean;
  content: string;
  /** Octal mode, e.g. "0644"; undefined when the file does not exist. */
  mode?: string;
  owner?: string;
  group?: string;
  /** sha256 of content, hex; lets apply refuse to overwrite a file that changed after planning. */
  sha256?: string;
  /**
   * When `path` itself is a symbolic link: the file it resolves to
   * (`readlink -f`). A rename onto `path` would replace the link and leave
   * that file as it was, so writes go to it instead.
   */
  symlinkTarget?: string;
}

/** Replace (or create) one file. Apply writes it atomically and keeps owner and mode. */
export interface FileChange {
  path: string;
  /** null when the file does not exist yet. */
  before: string | null;
  beforeSha256: string | null;
  after: string;
  /** Mode/owner/group for a new file; an existing file keeps its own. */
  mode?: string;
  owner?: string;
  group?: string;
}

/** A shell step run as part of applying a task (firewall rule, unban, reload...). */
export interface CommandStep {
  /** What an operator reads in the plan, e.g. "iptables -I INPUT 1 -s 10.0.0.0/8 -p tcp --dport 22 -j ACCEPT". */
  description: string;
  /** POSIX sh; every value in it is already quoted. */
  script: string;
}

/** A before/after text rendering of non-file state, e.g. `iptables -S INPUT` output. */
export interface StateDiff {
  /** What the text shows, e.g. "iptables INPUT (IPv4)". */
  label: string;
  before: string;
  after: string;
}

export type TaskStatus = 'ok' | 'changed' | 'failed' | 'skipped' | 'unreachable';

/**
 * What applying a plan does beyond the files it names, as its resource
 * declares it. The executor backs up, restores and reloads by these alone:
 * it knows no resource by name, so a resource that touches the firewall or
 * sshd says so here, or its rollback leaves that part as it is.
 */
export interface PlanEffects {
  /** Changes firewall state (iptables, nftables, ufw, firewalld): snapshot it, and restore it on rollback. */
  firewall?: boolean;
  /** Changes what sshd runs: after a restore, sshd is reloaded (or restarted) the way the host runs it. */
  sshd?: boolean;
  /** Changes fail2ban's configuration or state: after a restore, fail2ban reloads. */
  fail2ban?: boolean;
}

/** What one resource would do on one host; `Data` is the resource's own, for its hooks. */
export interface ResourcePlan<Data = unknown> {
  /** 'change' when applying would modify the host. */
  action: 'none' | 'change' | 'skip';
  /** One line per decision, e.g. "MaxStartups 10:30:100 from /etc/ssh/sshd_config:3 → 30:30:100". */
  messages: string[];
  /** Warnings that do not stop the task. */
  warnings: string[];
  fileChanges: FileChange[];
  commands: CommandStep[];
  /**
   * Before/after views of state that is not a file (a firewall chain, the
   * list of fail2ban bans), shown as diffs beside the file diffs.
   */
  stateDiffs?: StateDiff[];
  /**
   * Files the plan's commands change or remove beyond `fileChanges` (e.g. an
   * `rm` of a file, a `chmod`): apply backs them up with the rest so a
   * rollback restores them too.
   */
  touchedPaths?: string[];
  /** What applying it does beyond its files; none when absent. */
  effects?: PlanEffects;
  /**
   * Resource-specific data that the resource's own validate/verify hooks need
   * (e.g. the complete staged sshd_config tree). Must be JSON-serialisable:
   * a saved plan carries it.
   */
  data?: Data;
}

/**
 * One fact a host's plan rests on, as planning read it: a file's content, a
 * probe's answer, sshd's release. Planning again reads the same facts; any
 * whose value differs makes the plan stale (changedFacts).
 */
export interface Fact {
  /** Stable identity, e.g. "file:/etc/hosts.allow", "host:sshd-version", "probe:1a2b…". */
  key: string;
  /** What was read, compared as text: "sha256:… 0644 root:root", "absent", "9.2", a digest. */
  value: string;
  /** What it is, for people: "/etc/hosts.allow", "sshd version", "firewall ruleset". */
  description: string;
}

/** A fact whose value differs between two readings (absent on one side: undefined). */
export interface ChangedFact {
  key: string;
  description: string;
  planned: string | undefined;
  current: string | undefined;
}

/** One task (or notified handler) of a host's plan. */
export interface TaskPlan {
  play: string;
  task: string;
  /** The resource kind's task key, e.g. "sshd_config" (its registry name). */
  resource: string;
  /** A handler some changing task notified: it runs after the tasks. */
  handler: boolean;
  /** Handlers this task notifies if it changes something. */
  notify: string[];
  /** What it would do; absent when planning it failed (then `error` says why). */
  plan?: ResourcePlan;
  error?: string;
  /** `no_log: true`: results show only the status. */
  noLog?: boolean;
  /** `diff: false`: results show no diff. */
  diff?: boolean;
  /** `check_mode: true`: planned and shown, never applied. */
  checkMode?: boolean;
  /** `ignore_errors: true`: its planning `error` does not stop the host. */
  ignoreErrors?: boolean;
}

/**
 * What one play would do on one host, and what that rests on: plain data
 * (JSON-serialisable), so that it can be saved, reviewed and applied later
 * exactly as it is. Planning stops at a host's first failed task, as
 * applying does: later tasks are not in it.
 */
export interface HostPlan {
  host: string;
  play: string;
  /** The facts the decisions rest on: the host's, then every read the tasks made, in key order. */
  facts: Fact[];
  tasks: TaskPlan[];
  /** The handlers that would run at the end of the play, in definition order. */
  handlers: TaskPlan[];
}
