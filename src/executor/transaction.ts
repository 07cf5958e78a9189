/**
 * Per-host transactions: confirm or revert (Junos `commit confirmed`,
 * `netplan try`, `iptables-apply`).
 *
 * Before the first change goes live, one script on the host backs up every
 * file the run will touch into a run directory (/var/backups/sshfix/<run-id>,
 * mode 0700, with a manifest), snapshots the firewall when the run changes
 * it, writes `restore.sh`, and arms a detached dead-man timer that runs
 * `restore.sh` when the deadline passes: a transient systemd timer where
 * systemd runs, else a `setsid` process in its own session. Either survives
 * the controller dying or its SSH session dropping.
 *
 * After the run, the controller proves that a *new* SSH connection still
 * works, then disarms the timer; or restores at once through the session it
 * still has. The timer and the controller never both act: whoever creates
 * `<run-dir>/decided` first (mkdir is atomic) decides.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { base64Heredoc, shellQuote } from '../transport/shell.js';
import { formatKnownHostsLine } from '../transport/known_hosts.js';
import {
  CommandTimeoutError,
  HandshakeTimeoutError,
  HostKeyError,
  UnreachableError,
} from '../transport/types.js';
import type { Connection, ConnectionSpec, ExecResult } from '../transport/types.js';
import type { ResourcePlan } from '../plan/types.js';
import type { GuardVerdict, ListenerMove, LockoutGuard, ResourceKind } from '../resources/types.js';
import { errorMessage } from '../errors.js';
import { sshdRestoreLines, sshdUnitRecordLines } from './sshd_unit.js';

export const BACKUP_ROOT = '/var/backups/sshfix';
/** Run directories kept per host; older ones are pruned when a new run starts. */
export const KEEP_RUNS = 10;
export const DEFAULT_CONFIRM_TIMEOUT_S = 60;
/** Run directory names: UTC time (sorts in run order), then a random suffix. */
const RUN_ID_PATTERN = '^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6,}$';
/** An undecided run (no outcome) younger than this may still have a live timer: never pruned. */
const UNDECIDED_RUN_KEEP_MINUTES = 24 * 60;

export interface TransactionSpec {
  runId: string;
  /** Every file the run may change or remove, in any order; duplicates are ignored. */
  files: readonly string[];
  /** Snapshot (and on rollback restore) iptables/nftables/ufw/firewalld state. */
  firewall: boolean;
  /** Reload (or start) sshd after restoring. */
  reloadSshd: boolean;
  /** `fail2ban-client reload` after restoring, when fail2ban runs. */
  reloadFail2ban: boolean;
  /** Seconds from arming until the timer restores on its own. */
  confirmTimeoutS: number;
  /** Where run directories live; BACKUP_ROOT on real hosts. */
  backupRoot?: string;
  /**
   * The sshfix run this transaction belongs to (one token for all its hosts):
   * a run never waits for its own transactions, e.g. on one machine reached
   * under two inventory names.
   */
  owner?: string;
}

export type RollbackTimer = { kind: 'systemd'; unit: string } | { kind: 'process'; pgid: number };

export interface Transaction {
  spec: TransactionSpec;
  runDir: string;
  timer: RollbackTimer;
  /** Controller clock when the begin script was sent: no later than the host armed its timer. */
  armedAtMs: number;
  /**
   * Seconds from arming until the host restores, no fewer: the timeout, or
   * more once the change batch restarted the window at the reload (rearm).
   */
  restoresAfterS: number;
  /** The host's uptime (seconds) when the timer was armed, where the host has /proc/uptime. */
  hostArmedAtS?: number;
}

/** A fresh run id: `20250101T120000Z-1a2b3c`. */
export function newRunId(now: Date = new Date(), random: string = randomBytes(3).toString('hex')): string {
  const stamp = now
    .toISOString()
    .replace(/\.\d+Z$/, 'Z')
    .replace(/[-:]/g, '');
  return `${stamp}-${random}`;
}

/** `20250101T120000Z-…` → `2025-01-01T12:00:00Z`. */
function runIdTime(runId: string): string {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z/.exec(runId);
  return m ? `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z` : runId;
}

export function isRunId(text: string): boolean {
  return new RegExp(RUN_ID_PATTERN).test(text);
}

export function runDirOf(spec: Pick<TransactionSpec, 'runId' | 'backupRoot'>): string {
  if (!isRunId(spec.runId)) throw new Error(`invalid run id ${JSON.stringify(spec.runId)}`);
  return `${(spec.backupRoot ?? BACKUP_ROOT).replace(/\/+$/, '')}/${spec.runId}`;
}

/** The systemd unit of a run's timer (the run id only has characters unit names allow). */
export function timerUnitName(runId: string): string {
  return `sshfix-rollback-${runId}`;
}

function uniqueFiles(files: readonly string[]): string[] {
  return [...new Set(files)];
}

// ---------------------------------------------------------------------------
// restore.sh

function restoreFirewallSection(): string[] {
  return [
    'fw="$dir/firewall"',
    'if [ -d "$fw" ]; then',
    // One nft transaction: the flush takes effect only if the whole saved ruleset loads.
    '  if [ -f "$fw/nft.ruleset" ] && command -v nft >/dev/null 2>&1; then',
    '    { echo "flush ruleset"; cat "$fw/nft.ruleset"; } | nft -f - 2>/dev/null || echo "nft: the saved ruleset did not load as a whole; iptables tables are restored below" >&2',
    '  fi',
    '  for v in iptables ip6tables iptables-legacy ip6tables-legacy; do',
    '    [ -f "$fw/$v.save" ] && command -v "$v-restore" >/dev/null 2>&1 || continue',
    // Tables that exist now but did not at snapshot time are emptied: restore would not touch them.
    '    for t in $("$v-save" 2>/dev/null | sed -n "s/^\\*//p"); do',
    '      grep -qx "\\*$t" "$fw/$v.save" && continue',
    '      "$v" -t "$t" -F; "$v" -t "$t" -X',
    '      for c in $("$v" -t "$t" -S 2>/dev/null | sed -n "s/^-P \\([^ ]*\\) .*/\\1/p"); do "$v" -t "$t" -P "$c" ACCEPT; done',
    '    done',
    '    "$v-restore" < "$fw/$v.save" || { echo "$v-restore failed" >&2; failed=1; }',
    '  done',
    '  if [ -d "$fw/ufw" ]; then',
    '    for f in "$fw/ufw"/*; do [ -f "$f" ] && restore_path "$f" "/etc/ufw/${f##*/}"; done',
    '    command -v ufw >/dev/null 2>&1 && ufw status 2>/dev/null | grep -q "Status: active" && { ufw reload >/dev/null || failed=1; }',
    '  fi',
    '  if [ -d "$fw/firewalld" ]; then',
    '    rm -rf /etc/firewalld.sshfix-restore && cp -a "$fw/firewalld" /etc/firewalld.sshfix-restore &&',
    '      rm -rf /etc/firewalld && mv /etc/firewalld.sshfix-restore /etc/firewalld || failed=1',
    '    command -v firewall-cmd >/dev/null 2>&1 && firewall-cmd --state >/dev/null 2>&1 && { firewall-cmd --reload >/dev/null || failed=1; }',
    '  fi',
    'fi',
  ];
}

/**
 * Shell that waits while the run's `deadline` file (the host's uptime, in
 * whole seconds, at which to restore) lies ahead: the change batch moves it
 * to the reload plus the timeout (buildRearmScript). A file that is missing
 * or unreadable ends the wait: the timer then restores, as it did before
 * the window could move.
 */
function untilDueLoop(dirExpression: string): string {
  const file = `"${dirExpression}/deadline"`;
  return (
    `while [ -f ${file} ] && read -r due < ${file} && read -r up _ < /proc/uptime && ` +
    `[ "\${up%.*}" -lt "$due" ] 2>/dev/null; do sleep $((due - \${up%.*})); done`
  );
}

/**
 * The host-side rollback. Argument `--again` restores even when the run was
 * already decided (the controller uses it when the timer fired while the run
 * was still writing). Prints `sshfix-restore-ran` when it did restore.
 */
export function buildRestoreScript(spec: TransactionSpec): string {
  const dir = runDirOf(spec);
  const files = uniqueFiles(spec.files);
  return [
    '#!/bin/sh',
    `# sshfix: restores what run ${spec.runId} changed; run by its dead-man timer or by sshfix.`,
    'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH',
    `dir=${shellQuote(dir)}`,
    // Run by the systemd timer: the window may have been restarted since it was armed.
    `if [ "\${1:-}" = --when-due ]; then ${untilDueLoop('$dir')}; fi`,
    'if ! mkdir "$dir/decided" 2>/dev/null; then [ "${1:-}" = --again ] || exit 0; fi',
    'echo restoring > "$dir/outcome"',
    // Run by hand (or by sshfix) rather than by the timer: the timer has nothing left to do.
    'if [ -f "$dir/timer.pid" ] && read -r tp < "$dir/timer.pid" && [ "$tp" != "$$" ] &&',
    '  tr "\\0" " " < "/proc/$tp/cmdline" 2>/dev/null | grep -qF -- "sshfix-rollback $dir "; then kill -TERM "-$tp" 2>/dev/null; fi',
    `grep -q "^timer systemd " "$dir/manifest" 2>/dev/null && systemctl stop ${shellQuote(`${timerUnitName(spec.runId)}.timer`)} >/dev/null 2>&1`,
    'failed=0',
    // Copy to a temp file beside the target, then rename: a target is always entirely old or entirely new.
    'restore_path() {',
    '  if [ ! -L "$1" ] && [ -f "$2" ] && [ ! -L "$2" ] && cmp -s -- "$1" "$2" &&',
    '    [ "$(stat -c "%a %u %g" -- "$1")" = "$(stat -c "%a %u %g" -- "$2")" ]; then return 0; fi',
    '  tmp="$(dirname -- "$2")/.sshfix-restore.$$.tmp"',
    '  if cp -P -p -- "$1" "$tmp" && { [ -L "$tmp" ] || sync "$tmp" 2>/dev/null || sync; } && mv -f -- "$tmp" "$2"; then',
    '    command -v restorecon >/dev/null 2>&1 && restorecon -- "$2" 2>/dev/null',
    '    sync "$(dirname -- "$2")" 2>/dev/null || sync',
    '  else rm -f -- "$tmp"; echo "cannot restore $2" >&2; failed=1; fi',
    '}',
    'restore_file() {',
    '  if [ -e "$dir/files/$1" ] || [ -L "$dir/files/$1" ]; then restore_path "$dir/files/$1" "$2"',
    '  elif [ -e "$dir/files/$1.absent" ] && { [ -e "$2" ] || [ -L "$2" ]; }; then',
    '    rm -f -- "$2" || { echo "cannot remove $2" >&2; failed=1; }',
    '  fi',
    '}',
    ...files.map((file, i) => `restore_file ${i} ${shellQuote(file)}`),
    ...(spec.firewall ? restoreFirewallSection() : []),
    ...(spec.reloadSshd ? sshdRestoreLines() : []),
    ...(spec.reloadFail2ban
      ? [
          'if command -v fail2ban-client >/dev/null 2>&1 && fail2ban-client ping >/dev/null 2>&1; then',
          '  fail2ban-client reload >/dev/null 2>&1 || failed=1',
          'fi',
        ]
      : []),
    'if [ "$failed" = 0 ]; then echo restored > "$dir/outcome"; else echo restore-incomplete > "$dir/outcome"; fi',
    'echo sshfix-restore-ran',
    'exit "$failed"',
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------
// Runs that have not decided yet
//
// A run that died (SIGKILL, a lost controller) leaves its timer armed, and
// the timer restores that run's backup when it fires — also over whatever a
// later run changed meanwhile. So every apply looks for such runs on the host
// first and refuses to touch it until they are decided. The host is the only
// place that knows: the runs may come from other processes or controllers.

/** The begin script's exit code when another run is undecided (EX_TEMPFAIL: try again later). */
export const EXIT_UNDECIDED = 75;
const UNDECIDED_MARK = 'sshfix-undecided';
const HOST_NOW_MARK = 'sshfix-host-now';

/**
 * Shell lines that set `undecided` to " RUN-ID…" and print one
 * `sshfix-undecided RUN-ID ARMED-AT DEADLINE-S` line per run under `$root`,
 * other than those of the run `$owner`, whose timer is armed and has not
 * fired: no `decided` yet, and its timer
 * still there (the process, checked by its command line so that a recycled
 * pid does not count; or the systemd timer unit). A run whose timer is gone
 * (the host rebooted) will never restore: it does not block anyone. ARMED-AT
 * is when the timer started, by the host's clock (seconds).
 */
function undecidedRunsLines(): string[] {
  return [
    'undecided=',
    'for d in "$root"/[0-9]*T*Z-*; do',
    '  [ -d "$d" ] && [ ! -d "$d/decided" ] || continue',
    '  [ -n "$owner" ] && grep -qxF -- "owner $owner" "$d/manifest" 2>/dev/null && continue',
    '  id=${d##*/}; armed=',
    '  if [ -f "$d/timer.pid" ]; then',
    '    read -r p < "$d/timer.pid" && tr "\\0" " " < "/proc/$p/cmdline" 2>/dev/null | grep -qF -- "sshfix-rollback $d " && armed=$d/timer.pid',
    '  elif grep -q "^timer systemd " "$d/manifest" 2>/dev/null; then',
    // Once the timer elapsed, its service may still be waiting for a deadline the run moved.
    '    { systemctl is-active --quiet "sshfix-rollback-$id.timer" || systemctl is-active --quiet "sshfix-rollback-$id.service"; } 2>/dev/null && armed=$d/manifest',
    '  fi',
    '  [ -n "$armed" ] || continue',
    '  undecided="$undecided $id"',
    `  echo "${UNDECIDED_MARK} $id $(stat -c %Y "$armed") $(sed -n 's/^deadline \\([0-9]*\\)s$/\\1/p' "$d/manifest")"`,
    'done',
  ];
}

/** The read-only probe: undecided runs under `backupRoot` (not `owner`'s), and the host's clock when there are any. */
export function undecidedRunsScript(backupRoot: string = BACKUP_ROOT, owner = ''): string {
  return [
    `root=${shellQuote(backupRoot.replace(/\/+$/, ''))}`,
    `owner=${shellQuote(owner)}`,
    ...undecidedRunsLines(),
    `[ -z "$undecided" ] || echo "${HOST_NOW_MARK} $(date +%s)"`,
    '',
  ].join('\n');
}

export interface UndecidedRun {
  runId: string;
  /** When its timer started, host clock, seconds since the epoch. */
  armedAtS: number;
  /** Its --confirm-timeout. */
  deadlineS: number;
}

export function parseUndecidedRuns(stdout: string): { runs: UndecidedRun[]; hostNowS?: number } {
  const runs: UndecidedRun[] = [];
  let hostNowS: number | undefined;
  for (const line of stdout.split('\n')) {
    const words = line.trim().split(/\s+/);
    if (words[0] === UNDECIDED_MARK && words[1] !== undefined && isRunId(words[1])) {
      runs.push({ runId: words[1], armedAtS: Number(words[2]), deadlineS: Number(words[3]) });
    } else if (words[0] === HOST_NOW_MARK) hostNowS = Number(words[1]);
  }
  return { runs, ...(hostNowS !== undefined && Number.isFinite(hostNowS) ? { hostNowS } : {}) };
}

/** Why the host is refused, with when it will be decided and how to decide it now. */
export function undecidedRunsMessage(
  runs: readonly UndecidedRun[],
  hostNowS: number | undefined,
  backupRoot: string = BACKUP_ROOT,
): string {
  const describe = (run: UndecidedRun): string => {
    const dir = runDirOf({ runId: run.runId, backupRoot });
    const firesAtS = run.armedAtS + run.deadlineS;
    const when = Number.isFinite(firesAtS)
      ? ` at ${new Date(firesAtS * 1000).toISOString().replace(/\.000Z$/, 'Z')}` +
        (hostNowS !== undefined ? ` (in ${Math.max(0, firesAtS - hostNowS)} s, by the host's clock)` : '')
      : '';
    return (
      `run ${run.runId} (started ${runIdTime(run.runId)}) has neither confirmed nor restored its change here, ` +
      `and its rollback timer restores that run's backup${when} unless that run confirms it first ` +
      `(to restore it now: sh ${dir}/restore.sh on the host)`
    );
  };
  return (
    `refused: another sshfix run has not decided its change on this host yet: ${runs.map(describe).join('; ')}. ` +
    'Nothing was changed; run again once it is decided'
  );
}

/** The host has a transaction of another run that is still undecided: it is left alone. */
export class UndecidedTransactionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UndecidedTransactionError';
  }
}

// ---------------------------------------------------------------------------
// Begin: back up, snapshot, prune, arm

function backupSection(files: string[]): string[] {
  return [
    'backup() {',
    '  if [ -e "$2" ] || [ -L "$2" ]; then',
    '    cp -P -p -- "$2" "$dir/files/$1" || { echo "cannot back up $2" >&2; exit 1; }',
    '    printf "file %s present %s\\n" "$1" "$2" >> "$dir/manifest"',
    '  else',
    '    : > "$dir/files/$1.absent" && printf "file %s absent %s\\n" "$1" "$2" >> "$dir/manifest"',
    '  fi',
    '}',
    ...files.map((file, i) => `backup ${i} ${shellQuote(file)}`),
  ];
}

function firewallSnapshotSection(): string[] {
  return [
    'mkdir "$dir/firewall" || exit 1',
    'for v in iptables ip6tables iptables-legacy ip6tables-legacy; do',
    '  command -v "$v-save" >/dev/null 2>&1 || continue',
    // A legacy variant with no table loaded is not in use (the kernel lists none): nothing to save or restore.
    '  case $v in iptables-legacy) names=/proc/net/ip_tables_names ;; ip6tables-legacy) names=/proc/net/ip6_tables_names ;; *) names= ;; esac',
    '  if [ -n "$names" ]; then { read -r _ < "$names"; } 2>/dev/null || continue; fi',
    '  "$v-save" > "$dir/firewall/$v.save" 2>/dev/null || { rm -f "$dir/firewall/$v.save"; continue; }',
    'done',
    'if command -v nft >/dev/null 2>&1; then nft list ruleset > "$dir/firewall/nft.ruleset" 2>/dev/null || rm -f "$dir/firewall/nft.ruleset"; fi',
    'if [ -d /etc/ufw ]; then',
    '  mkdir "$dir/firewall/ufw" && set -- && for f in /etc/ufw/*.rules /etc/ufw/ufw.conf; do [ -f "$f" ] && set -- "$@" "$f"; done',
    '  [ $# -eq 0 ] || cp -p -- "$@" "$dir/firewall/ufw/"',
    'fi',
    'if [ -d /etc/firewalld ]; then cp -a /etc/firewalld "$dir/firewall/firewalld" || exit 1; fi',
    'echo "firewall snapshot" >> "$dir/manifest"',
  ];
}

function pruneSection(root: string): string[] {
  return [
    // Counted with a glob first: the pipeline below runs only once there is something to prune.
    `set -- ${shellQuote(root)}/[0-9]*T*Z-*`,
    `[ $# -gt ${KEEP_RUNS} ] && ls -1 ${shellQuote(root)} 2>/dev/null | grep -E '${RUN_ID_PATTERN}' | sort -r | awk 'NR > ${KEEP_RUNS}' | while read -r old; do`,
    `  path=${shellQuote(root)}/$old`,
    // A run without an outcome may still have an armed timer: keep it unless it is clearly stale.
    `  if [ -f "$path/outcome" ] || [ -n "$(find "$path" -maxdepth 0 -mmin +${UNDECIDED_RUN_KEEP_MINUTES} 2>/dev/null)" ]; then rm -rf -- "$path"; fi`,
    'done',
  ];
}

function armSection(spec: TransactionSpec): string[] {
  const seconds = timeoutSeconds(spec);
  const unit = shellQuote(timerUnitName(spec.runId));
  return [
    // The deadline in the host's uptime (no clock step moves it), rounded up: never before the timeout.
    'armed=; { read -r armed _ < /proc/uptime; } 2>/dev/null',
    `[ -n "$armed" ] && { echo $((\${armed%.*} + 1 + ${seconds})) > "$dir/deadline" && echo "sshfix-armed-uptime $armed"; }`,
    'if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1 &&',
    // AccuracySec defaults to 1 min (systemd.timer(5)): the restore could fire a minute past the deadline.
    `  systemd-run --quiet --collect --unit=${unit} --on-active=${seconds}s --timer-property=AccuracySec=1s /bin/sh "$dir/restore.sh" --when-due >/dev/null 2>"$dir/arm.err"; then`,
    `  echo "timer systemd ${timerUnitName(spec.runId)}" >> "$dir/manifest"`,
    `  echo "sshfix-timer systemd ${timerUnitName(spec.runId)}"`,
    'elif command -v setsid >/dev/null 2>&1; then',
    // Its own session and process group: no SIGHUP when our session ends; one kill stops sleep and shell.
    // fd 9 (the lock) stays with this script: the timer must not hold it for its whole life.
    `  setsid sh -c 'echo $$ > "$1/timer.pid"; sleep "$2"; ${untilDueLoop('$1')}; exec sh "$1/restore.sh"' sshfix-rollback "$dir" ${seconds} </dev/null >/dev/null 2>&1 9>&- &`,
    '  i=0; while [ ! -s "$dir/timer.pid" ]; do i=$((i+1)); [ $i -gt 200 ] && { echo "the rollback timer did not start" >&2; exit 1; }; sleep 0.05; done',
    '  read -r tp < "$dir/timer.pid"',
    '  echo "timer process $tp" >> "$dir/manifest"',
    '  echo "sshfix-timer process $tp"',
    'else',
    '  echo "neither systemd-run nor setsid is available to arm the rollback timer (use --no-rollback to apply without it)" >&2',
    '  exit 1',
    'fi',
  ];
}

function timeoutSeconds(spec: Pick<TransactionSpec, 'confirmTimeoutS'>): number {
  return Math.max(1, Math.round(spec.confirmTimeoutS));
}

/**
 * A step of the change batch, right after the reload: restarts the window
 * so that the host restores the timeout after now (its uptime, rounded up)
 * rather than after arming. Prints `sshfix-rearmed DUE`, or
 * `sshfix-rearm-too-late` when the run was already decided (the timer fired
 * while the batch ran); prints nothing where the host has no uptime deadline
 * (the timer keeps its first one).
 */
export function buildRearmScript(
  tx: Pick<TransactionSpec, 'runId' | 'backupRoot' | 'confirmTimeoutS'>,
): string {
  return moveDeadlineScript(tx, timeoutSeconds(tx));
}

/**
 * Gives a confirmation whose new connection already reached the host's sshd
 * more time: the host restores `seconds` after now rather than sooner, but
 * never after its uptime `latestDue`, and never sooner than it would have.
 * Answers as the rearm step does (`sshfix-rearmed DUE`).
 */
export function buildExtendScript(
  tx: Pick<TransactionSpec, 'runId' | 'backupRoot'>,
  seconds: number,
  latestDue: number,
): string {
  return moveDeadlineScript(tx, seconds, Math.floor(latestDue));
}

function moveDeadlineScript(
  tx: Pick<TransactionSpec, 'runId' | 'backupRoot'>,
  seconds: number,
  latestDue?: number,
): string {
  return [
    `dir=${shellQuote(runDirOf(tx))}`,
    'now=; { read -r now _ < /proc/uptime; } 2>/dev/null',
    '[ -n "$now" ] && [ -f "$dir/deadline" ] || exit 0',
    '[ -d "$dir/decided" ] && { echo sshfix-rearm-too-late; exit 0; }',
    `due=$((\${now%.*} + 1 + ${Math.max(1, Math.round(seconds))}))`,
    ...(latestDue === undefined
      ? []
      : [
          `[ "$due" -gt ${latestDue} ] && due=${latestDue}`,
          'read -r was < "$dir/deadline" && [ "$was" -ge "$due" ] 2>/dev/null && due=$was',
        ]),
    'echo "$due" > "$dir/deadline.new" && mv -f "$dir/deadline.new" "$dir/deadline" || exit 1',
    // The timer may have read the old deadline and fired meanwhile: then this run is decided.
    '[ -d "$dir/decided" ] && { echo sshfix-rearm-too-late; exit 0; }',
    'echo "sshfix-rearmed $(cat "$dir/deadline")"',
    '',
  ].join('\n');
}

/**
 * The transaction once the rearm step answered: the host restores at its
 * uptime DUE, i.e. DUE minus its uptime at arming after the begin script
 * was sent. Unchanged when the step did not run or said nothing usable.
 */
export function rearmedTransaction(tx: Transaction, rearm: ExecResult | undefined): Transaction {
  const due = rearm?.exitCode === 0 ? /^sshfix-rearmed (\d+)$/m.exec(rearm.stdout)?.[1] : undefined;
  if (due === undefined || tx.hostArmedAtS === undefined) return tx;
  const restoresAfterS = Number(due) - tx.hostArmedAtS;
  return restoresAfterS > tx.restoresAfterS ? { ...tx, restoresAfterS } : tx;
}

/**
 * The last moment (controller clock, ms) a confirmation may still count on:
 * the host's restore, measured from the earliest it can have armed, less a
 * margin for the disarm to reach it.
 */
export function confirmDeadlineMs(tx: Pick<Transaction, 'armedAtMs' | 'restoresAfterS'>): number {
  return tx.armedAtMs + tx.restoresAfterS * 1000 - CONFIRM_MARGIN_MS;
}

/** One script: run directory + manifest, backups, firewall snapshot, restore.sh, pruning, the armed timer. */
export function buildBeginScript(spec: TransactionSpec): string {
  const dir = runDirOf(spec);
  const root = (spec.backupRoot ?? BACKUP_ROOT).replace(/\/+$/, '');
  const files = uniqueFiles(spec.files);
  return [
    'set -u',
    'umask 077',
    'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH',
    `dir=${shellQuote(dir)}`,
    `root=${shellQuote(root)}`,
    `owner=${shellQuote(spec.owner ?? '')}`,
    'mkdir -p "$root" && chmod 0700 "$root" || { echo "cannot create the backup directory $root" >&2; exit 1; }',
    // Two runs arming at once would both find no other run: the check and the arming happen under one lock.
    'if command -v flock >/dev/null 2>&1; then',
    '  exec 9>"$root/.lock" && flock -w 60 9 || { echo "another sshfix run kept $root/.lock locked" >&2; exit 1; }',
    'fi',
    ...undecidedRunsLines(),
    `if [ -n "$undecided" ]; then echo "another sshfix run has not decided its change on this host yet:$undecided" >&2; exit ${EXIT_UNDECIDED}; fi`,
    'mkdir -m 0700 "$dir" "$dir/files" || { echo "cannot create the backup directory $dir" >&2; exit 1; }',
    // The host name from the kernel and the time from the run id: no process for either.
    'h=; { read -r h < /proc/sys/kernel/hostname; } 2>/dev/null',
    `printf 'run %s\\ncreated %s\\nhost %s\\ndeadline %ss\\n' ${shellQuote(spec.runId)} ${shellQuote(runIdTime(spec.runId))} "\${h:-unknown}" ${Math.round(spec.confirmTimeoutS)} > "$dir/manifest"`,
    ...(spec.owner ? ['echo "owner $owner" >> "$dir/manifest"'] : []),
    ...backupSection(files),
    ...(spec.reloadSshd ? sshdUnitRecordLines() : []),
    ...(spec.firewall ? firewallSnapshotSection() : []),
    `{ ${base64Heredoc(buildRestoreScript(spec), 'SSHFIX_RESTORE_EOF')}} > "$dir/restore.sh" && chmod 0700 "$dir/restore.sh" || exit 1`,
    'sync "$dir" "$dir/files" "$dir/restore.sh" 2>/dev/null || sync',
    ...pruneSection(root),
    ...armSection(spec),
    '',
  ].join('\n');
}

export function parseBeginOutput(stdout: string): RollbackTimer {
  const line = stdout.split('\n').find((l) => l.startsWith('sshfix-timer '));
  const [, kind, handle] = (line ?? '').trim().split(' ');
  if (kind === 'systemd' && handle) return { kind: 'systemd', unit: handle };
  const pgid = Number(handle);
  if (kind === 'process' && Number.isInteger(pgid) && pgid > 1) return { kind: 'process', pgid };
  throw new Error(
    `the rollback timer did not report how to cancel it (output: ${JSON.stringify(stdout.trim())})`,
  );
}

// ---------------------------------------------------------------------------
// Disarm and roll back

/** Stops a timer that has not fired; the pid is re-checked on the host so a recycled pid is never killed. */
function stopTimerLines(timer: RollbackTimer, waitingService = false): string[] {
  if (timer.kind === 'systemd') {
    // Its service, when it already waits for a moved deadline: stopped only once this run decided.
    const units = [`${timer.unit}.timer`, ...(waitingService ? [`${timer.unit}.service`] : [])];
    return [`systemctl stop ${units.map(shellQuote).join(' ')} >/dev/null 2>&1 || true`];
  }
  return [
    'pgid=$(cat "$dir/timer.pid" 2>/dev/null)',
    'if [ -n "$pgid" ] && tr "\\0" " " < "/proc/$pgid/cmdline" 2>/dev/null | grep -q "sshfix-rollback"; then',
    // `kill -TERM -PGID`: dash's kill accepts neither `--` nor `-s SIG -PGID`.
    '  kill -TERM "-$pgid" 2>/dev/null || true',
    'fi',
  ];
}

/**
 * Confirms the run: takes the decision (unless the timer took it first) and
 * stops the timer. Prints `sshfix-confirmed`, or `sshfix-too-late` when the
 * timer already fired (and is restoring or has restored).
 */
export function buildDisarmScript(tx: Pick<Transaction, 'runDir' | 'timer'>): string {
  return [
    `dir=${shellQuote(tx.runDir)}`,
    'if mkdir "$dir/decided" 2>/dev/null; then',
    ...stopTimerLines(tx.timer, true).map((l) => `  ${l}`),
    '  echo confirmed > "$dir/outcome"',
    '  echo sshfix-confirmed',
    // A retried confirmation whose first attempt got through (its answer was lost) is still ours.
    'elif [ "$(cat "$dir/outcome" 2>/dev/null)" = confirmed ]; then',
    '  echo sshfix-confirmed',
    'else',
    '  echo sshfix-too-late',
    'fi',
    '',
  ].join('\n');
}

/** How long the controller waits for a restore the timer already started. */
const WAIT_FOR_TIMER_RESTORE_S = 60;

/**
 * Restores now through the session the controller still has. With `again`,
 * restores even if the timer already did (the run kept writing after it
 * fired). Waits for a restore the timer is running, then stops the timer.
 */
export function buildRollbackScript(tx: Pick<Transaction, 'runDir' | 'timer'>, again: boolean): string {
  return [
    `dir=${shellQuote(tx.runDir)}`,
    `out=$(sh "$dir/restore.sh"${again ? ' --again' : ''}); rc=$?`,
    'case $out in',
    '  *sshfix-restore-ran*)',
    ...stopTimerLines(tx.timer).map((l) => `    ${l}`),
    '    ;;',
    '  *)',
    // The timer took the decision: wait until its restore has finished.
    `    i=0; while [ "$(cat "$dir/outcome" 2>/dev/null)" = restoring ] || [ ! -f "$dir/outcome" ]; do i=$((i+1)); [ $i -gt ${WAIT_FOR_TIMER_RESTORE_S * 10} ] && break; sleep 0.1; done`,
    '    rc=0 ;;',
    'esac',
    'echo "sshfix-outcome $(cat "$dir/outcome" 2>/dev/null)"',
    'exit $rc',
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------
// Talking to the host

export async function beginTransaction(conn: Connection, spec: TransactionSpec): Promise<Transaction> {
  const sentAtMs = Date.now();
  return readBeginResult(spec, await conn.runScript(buildBeginScript(spec)), sentAtMs);
}

/**
 * The transaction the begin script started; throws when it could not (nothing
 * was changed then). `sentAtMs`: when the script was sent, no later than the
 * host armed its timer, so the controller never counts on more time than the
 * host gives.
 */
export function readBeginResult(spec: TransactionSpec, result: ExecResult, sentAtMs: number): Transaction {
  if (result.exitCode === EXIT_UNDECIDED) {
    const { runs } = parseUndecidedRuns(result.stdout);
    // Another run armed its timer after this run's first look: the lock made the begin script see it.
    if (runs.length > 0)
      throw new UndecidedTransactionError(undecidedRunsMessage(runs, undefined, spec.backupRoot));
  }
  if (result.exitCode !== 0) {
    throw new Error(
      `cannot prepare the rollback (backup and dead-man timer): ${result.stderr.trim() || `exit ${result.exitCode}`}`,
    );
  }
  const hostArmedAtS = Number(/^sshfix-armed-uptime (\d+(?:\.\d+)?)$/m.exec(result.stdout)?.[1] ?? NaN);
  return {
    spec,
    runDir: runDirOf(spec),
    timer: parseBeginOutput(result.stdout),
    armedAtMs: sentAtMs,
    restoresAfterS: spec.confirmTimeoutS,
    ...(Number.isFinite(hostArmedAtS) ? { hostArmedAtS } : {}),
  };
}

/** What the disarm script answered: 'confirmed', 'too-late' when the timer fired first, or undefined. */
export function disarmDecision(result: ExecResult): 'confirmed' | 'too-late' | undefined {
  if (result.stdout.includes('sshfix-confirmed')) return 'confirmed';
  if (result.stdout.includes('sshfix-too-late')) return 'too-late';
  return undefined;
}

/** 'confirmed', or 'too-late' when the timer fired first. */
export async function disarmTransaction(
  conn: Connection,
  tx: Transaction,
): Promise<'confirmed' | 'too-late'> {
  const result = await conn.runScript(buildDisarmScript(tx));
  const decision = disarmDecision(result);
  if (decision) return decision;
  throw new Error(`cannot cancel the rollback timer: ${result.stderr.trim() || `exit ${result.exitCode}`}`);
}

/** Restores now; throws when the restore was incomplete (the message says what failed). */
export async function rollbackTransaction(conn: Connection, tx: Transaction, again = false): Promise<void> {
  const result = await conn.runScript(buildRollbackScript(tx, again));
  const outcome = /sshfix-outcome (\S*)/.exec(result.stdout)?.[1];
  if (result.exitCode !== 0 || outcome !== 'restored') {
    throw new Error(
      `restoring from ${tx.runDir} was incomplete: ${result.stderr.trim() || `outcome ${outcome ?? 'unknown'}`}`,
    );
  }
}

/** When the host will restore on its own, for messages. */
export function restoreDeadline(tx: Transaction): string {
  return new Date(tx.armedAtMs + tx.restoresAfterS * 1000).toISOString();
}

// ---------------------------------------------------------------------------
// What a run touches

/**
 * Files a plan touches: its file changes, the paths it declares, and state
 * diffs labelled with an absolute path (a file removal shows as one).
 */
export function touchedFiles(plan: ResourcePlan): string[] {
  const fromDiffs = (plan.stateDiffs ?? []).map((d) => d.label).filter((label) => label.startsWith('/'));
  return [...plan.fileChanges.map((c) => c.path), ...(plan.touchedPaths ?? []), ...fromDiffs];
}

/**
 * The transaction for a run's changing plans (run id and timeout from the
 * caller): their files, and what they declare they touch beyond them.
 */
export function transactionSpecFor(
  changing: readonly ResourcePlan[],
  options: { runId: string; confirmTimeoutS: number; backupRoot?: string; owner?: string },
): TransactionSpec {
  const files = uniqueFiles(changing.flatMap(touchedFiles));
  const firewall = changing.some((plan) => plan.effects?.firewall === true);
  return {
    runId: options.runId,
    files,
    firewall,
    reloadSshd: changing.some((plan) => plan.effects?.sshd === true),
    // Restoring the firewall drops the chains fail2ban keeps its bans in: its reload puts them back.
    reloadFail2ban: firewall || changing.some((plan) => plan.effects?.fail2ban === true),
    confirmTimeoutS: options.confirmTimeoutS,
    ...(options.backupRoot !== undefined ? { backupRoot: options.backupRoot } : {}),
    ...(options.owner !== undefined ? { owner: options.owner } : {}),
  };
}

// ---------------------------------------------------------------------------
// Guards, confirmation target and confirmation, as steps of the host's batches

export interface SafetyOptions {
  /** How the run reached this host: the confirmation opens a new connection from it. */
  spec: ConnectionSpec;
  connect: (spec: ConnectionSpec) => Promise<Connection>;
  /** False with --no-rollback: no backup, no timer, no confirmation. */
  rollback: boolean;
  confirmTimeoutS: number;
  /** Apply even when a lockout guard objects (the confirmation still rolls back). */
  force: boolean;
  backupRoot?: string;
  /** This run's token: its own transactions never block it (TransactionSpec.owner). */
  runToken?: string;
}

/** A task that will change the host: the kind that planned it, and its plan. */
export interface ChangingTask {
  kind: ResourceKind;
  plan: ResourcePlan;
}

/** A lockout guard, and the changing task (index) it judges. */
export interface PlannedGuard {
  index: number;
  guard: LockoutGuard;
}

/** A guard's verdict on the task it judged. */
export interface GuardResult {
  index: number;
  verdict: GuardVerdict;
}

/**
 * The lockout guards of a host's changes: per resource kind that has one,
 * for its last changing task (whose plan already sees the earlier ones).
 * None on the console: a local run cannot lock itself out of SSH.
 */
export function lockoutGuards(
  changing: readonly ChangingTask[],
  loginUser: string,
  authMethod: Connection['authMethod'],
): PlannedGuard[] {
  if (authMethod === 'local') return [];
  const lastOfKind = new Map<ResourceKind, number>();
  changing.forEach((t, i) => {
    if (t.kind.lockoutGuard !== undefined) lastOfKind.set(t.kind, i);
  });
  const login = { user: loginUser, ...(authMethod !== undefined ? { authMethod } : {}) };
  return [...lastOfKind.values()]
    .sort((x, y) => x - y)
    .flatMap((index) => {
      const guard = changing[index]!.kind.lockoutGuard?.(changing[index]!.plan, login);
      return guard === undefined ? [] : [{ index, guard }];
    });
}

const CONFIRM_MARGIN_MS = 2000;
const CONFIRM_RETRY_DELAY_MS = 1000;
const CONFIRM_ATTEMPTS = 3;
/**
 * sshd re-executes itself on SIGHUP and refuses connections until it listens
 * again (a few milliseconds, longer on a busy host). A refusal costs nothing
 * to retry, so it is retried soon: waiting a whole second each time added a
 * second to every host that happened to connect in that window.
 */
export const REFUSED_RETRY_DELAYS_MS: readonly number[] = [50, 100, 200, 400, 800, 1000, 1000, 1000];

/**
 * After a late handshake: at once, but not in a tight loop. A late attempt
 * (the controller or the host busy) is retried for as long as the host's
 * timer leaves time: giving up early rolls back a change that works.
 */
const LATE_RETRY_DELAY_MS = 100;

/** Why a confirmation attempt failed, as far as retrying goes. */
export type ConfirmFailure = 'refused' | 'late' | 'other';

/** What to wait before the next confirmation attempt, or null to give up (the caller also stops at its deadline). */
export function confirmRetryDelay(
  failures: { refused: number; other: number },
  last: ConfirmFailure,
): number | null {
  if (last === 'late') return LATE_RETRY_DELAY_MS;
  if (last === 'refused') return REFUSED_RETRY_DELAYS_MS[failures.refused - 1] ?? null;
  return failures.other < CONFIRM_ATTEMPTS ? CONFIRM_RETRY_DELAY_MS : null;
}

export interface ConfirmTarget {
  port: number;
  knownHostsFile?: string;
}

/**
 * Where the confirmation connects: where this run connected, or — when a
 * guarded change moved the listener — its new port. A new port has no
 * known_hosts entry yet, so the host keys served there (read over the
 * authenticated old session) go into a temporary known_hosts.
 */
export async function confirmTargetFor(
  move: ListenerMove | undefined,
  safety: SafetyOptions,
): Promise<ConfirmTarget> {
  if (move === undefined) return { port: safety.spec.port };
  const lines = move.hostKeys.map(([type, key]) =>
    formatKnownHostsLine(safety.spec.address, move.port, type, key),
  );
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sshfix-confirm-'));
  const knownHostsFile = path.join(dir, 'known_hosts');
  await fs.writeFile(knownHostsFile, lines.map((l) => `${l}\n`).join(''), { mode: 0o600 });
  return { port: move.port, knownHostsFile };
}

/** Waits `ms`; false when `abort` fired first. */
export function sleepUnlessAborted(ms: number, abort: AbortSignal | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (slept: boolean) => {
      clearTimeout(timer);
      abort?.removeEventListener('abort', onAbort);
      resolve(slept);
    };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(true), ms);
    abort?.addEventListener('abort', onAbort, { once: true });
  });
}

/** `work`'s value, or undefined as soon as `abort` fires (`work` goes on; its caller deals with it). */
function unlessAborted<T>(work: Promise<T>, abort: AbortSignal | undefined): Promise<T | undefined> {
  if (!abort) return work;
  if (abort.aborted) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const onAbort = () => resolve(undefined);
    abort.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        abort.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        abort.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** A retry only helps when the server was not there yet (sshd re-executing after SIGHUP). */
function worthRetrying(error: unknown): boolean {
  return !(error instanceof HostKeyError) && !/authentication/i.test(errorMessage(error));
}

const CONFIRM_MARK = 'sshfix-confirm';

/** A confirmation's result, and how many new connections it took (retries are attempts - 1). */
export type ConfirmOutcome =
  | { ok: true; decision: 'confirmed' | 'too-late'; attempts: number }
  | { ok: false; reason: string; interrupted?: true; attempts: number };

/**
 * The host uptime (seconds) past which no confirmation moves its rollback
 * deadline: the deadline the change batch set, plus one more timeout. Undefined
 * where the host has no uptime deadline (its timer cannot be moved).
 */
export function latestExtendedDue(tx: Transaction): number | undefined {
  if (tx.hostArmedAtS === undefined) return undefined;
  return Math.round(tx.hostArmedAtS + tx.restoresAfterS) + timeoutSeconds(tx.spec);
}

/** When (controller clock, ms) the host restores unless the run confirms first. */
function restoresAtMs(tx: Pick<Transaction, 'armedAtMs' | 'restoresAfterS'>): number {
  return tx.armedAtMs + tx.restoresAfterS * 1000;
}

/**
 * Proves that a NEW connection (fresh TCP, handshake, authentication) works
 * and, through it, disarms the timer — in one script, since running it at
 * all is the proof. Returns the failure reason, or 'confirmed' / 'too-late'.
 *
 * On a busy controller the confirmation can be slow rather than refused: the
 * host's sshd answered, but the controller had no CPU to finish its side of
 * the login before the host's timer. So once an attempt's new connection
 * has finished the key exchange with the host's sshd (the firewall, TCP
 * wrappers and MaxStartups let it through, and sshd runs with the new
 * config), the host's deadline is moved on through the open session when
 * it draws near (half a window, at least twice the margin, before it): to a
 * window after now, never past latestExtendedDue. Without that evidence
 * nothing moves, so a host whose new connections fail restores on time; one
 * whose new connections get that far but never log in restores at most one
 * timeout later. `onMoved` hears of each move (messages, interruption).
 */
export async function confirmWithNewConnection(
  conn: Connection,
  tx: Transaction,
  safety: SafetyOptions,
  target: ConfirmTarget,
  abort?: AbortSignal,
  onMoved?: (moved: Transaction) => void,
): Promise<ConfirmOutcome> {
  /** The host's window as moved so far. */
  let window = tx;
  const latestDue = latestExtendedDue(tx);
  /** No attempt's handshake goes on past this (controller clock, ms). */
  const latestCutMs =
    latestDue === undefined
      ? confirmDeadlineMs(tx)
      : restoresAtMs({ armedAtMs: tx.armedAtMs, restoresAfterS: latestDue - tx.hostArmedAtS! });
  const windowMs = timeoutSeconds(tx.spec) * 1000;
  const tookS = Math.round((Date.now() - tx.armedAtMs) / 1000);
  let lastError =
    `no time was left to confirm before the host's rollback deadline: ${tookS} s had passed since the timer ` +
    `was armed, of ${Math.round(tx.restoresAfterS)} s (--confirm-timeout ${tx.spec.confirmTimeoutS} s from the reload)`;
  const failures = { refused: 0, other: 0 };
  let attempts = 0;
  let delayMs: number | null = 0;
  const interrupted = () => ({
    ok: false as const,
    reason: 'the run was interrupted',
    interrupted: true as const,
    attempts,
  });
  // Attempts start, and their handshakes are cut, by the deadline as it stands (extensions move
  // it). Where the deadline can move, that is when the host restores rather than a margin before:
  // a key exchange that comes in time moves it, and otherwise the disarm decides the race.
  const cutAtMs = (): number => (latestDue === undefined ? confirmDeadlineMs(window) : restoresAtMs(window));
  while (delayMs !== null && Date.now() < cutAtMs()) {
    if (abort?.aborted) return interrupted();
    if (delayMs > 0 && !(await sleepUnlessAborted(delayMs, abort))) return interrupted();
    const startedAt = Date.now();
    if (cutAtMs() - startedAt <= 0) break;
    attempts++;
    const cut = new AbortController();
    const onInterrupt = (): void => cut.abort();
    abort?.addEventListener('abort', onInterrupt, { once: true });
    let pastDeadline = false;
    let deadlineTimer: NodeJS.Timeout | undefined;
    let extending: Promise<void> | undefined;
    let connected = false;
    const watchDeadline = (): void => {
      clearTimeout(deadlineTimer);
      if (connected) return;
      deadlineTimer = setTimeout(
        () => {
          // An extension under way decides: its answer watches again.
          if (extending !== undefined) return;
          pastDeadline = true;
          cut.abort();
        },
        Math.max(0, cutAtMs() - Date.now()),
      );
    };
    /** The new connection finished the key exchange: the host's sshd answers it. */
    let reachedSshd = false;
    let extendTimer: NodeJS.Timeout | undefined;
    const extend = (): void => {
      if (connected || extending !== undefined || latestDue === undefined) return;
      extending = conn
        .runScript(buildExtendScript(tx.spec, timeoutSeconds(tx.spec), latestDue), {
          timeoutMs: Math.max(1000, restoresAtMs(window) - Date.now()),
        })
        .then(
          (moved) => {
            const before = window;
            window = rearmedTransaction(window, moved);
            if (window === before) return;
            onMoved?.(window);
            // The attempt may need another push later, up to latestDue.
            scheduleExtension();
          },
          () => undefined, // the open session is slow or gone: the deadline stays where it was
        )
        .finally(() => {
          extending = undefined;
          watchDeadline();
        });
    };
    // Pushed only once the window runs short: a confirmation that finishes in time costs nothing more.
    const scheduleExtension = (): void => {
      clearTimeout(extendTimer);
      if (connected || latestDue === undefined) return;
      const pushAtMs = restoresAtMs(window) - Math.max(windowMs / 2, 2 * CONFIRM_MARGIN_MS);
      extendTimer = setTimeout(extend, Math.max(0, pushAtMs - Date.now()));
    };
    const onKeyExchange = (): void => {
      reachedSshd = true;
      scheduleExtension();
    };
    watchDeadline();
    let probe: Connection | undefined;
    try {
      // Only the wait for the connection is cut short: a disarm already sent is let finish, so
      // that an interrupted confirmation never leaves the controller unsure what the host decided.
      // Urgent: its handshake goes before other hosts' first ones.
      const remaining = latestCutMs - startedAt;
      const connecting = safety.connect({
        ...safety.spec,
        port: target.port,
        ...(target.knownHostsFile !== undefined
          ? { knownHostsFile: target.knownHostsFile, acceptNewHostKeys: false }
          : {}),
        abort: cut.signal,
        urgent: { notAfterMs: latestCutMs },
        onKeyExchange,
        connectTimeoutMs: Math.min(safety.spec.connectTimeoutMs, Math.max(remaining, 1)),
        commandTimeoutMs: Math.min(safety.spec.commandTimeoutMs, Math.max(remaining, 1000)),
      });
      probe = await unlessAborted(connecting, abort);
      if (probe === undefined) {
        void connecting.then((late) => late.close()).catch(() => undefined);
        return interrupted();
      }
      connected = true;
      clearTimeout(deadlineTimer);
      clearTimeout(extendTimer);
      const answer = await probe.runScript(`echo ${CONFIRM_MARK}\n${buildDisarmScript(tx)}`);
      if (!answer.stdout.includes(CONFIRM_MARK)) {
        throw new Error(
          `the probe command failed on the new connection (exit ${answer.exitCode}): ${answer.stderr.trim()}`,
        );
      }
      const decision = disarmDecision(answer);
      // The new connection ran the script but the disarm did not answer: disarm through the old one.
      return { ok: true, decision: decision ?? (await disarmTransaction(conn, tx)), attempts };
    } catch (error) {
      if (abort?.aborted) return interrupted();
      const late = pastDeadline || error instanceof HandshakeTimeoutError;
      const tookMs = Date.now() - startedAt;
      lastError =
        late && reachedSshd
          ? `cannot reach ${conn.hostName}: its sshd finished the key exchange, but the login did not ` +
            `finish within ${tookMs} ms`
          : pastDeadline
            ? `cannot reach ${conn.hostName}: no SSH handshake within ${tookMs} ms, before the host's rollback deadline`
            : errorMessage(error);
      if (!late && !worthRetrying(error)) break;
      const kind: ConfirmFailure = late
        ? 'late'
        : error instanceof UnreachableError && error.code === 'ECONNREFUSED'
          ? 'refused'
          : 'other';
      if (kind !== 'late') failures[kind]++;
      delayMs = confirmRetryDelay(failures, kind);
    } finally {
      connected = true;
      clearTimeout(deadlineTimer);
      clearTimeout(extendTimer);
      abort?.removeEventListener('abort', onInterrupt);
      await extending;
      await probe?.close().catch(() => undefined);
    }
  }
  return { ok: false, reason: lastError, attempts };
}

/** The host cannot be told anything any more: its timer will restore. */
export function leftToTheTimer(
  conn: Connection,
  tx: Transaction,
  what: string,
  error: unknown,
): UnreachableError {
  return new UnreachableError(
    conn.hostName,
    `${what}: ${errorMessage(error)}; the host restores its previous state by itself by ${restoreDeadline(tx)} ` +
      `(dead-man timer, backup in ${tx.runDir})`,
  );
}

/**
 * The session was lost while the change batch ran: whether the timer was
 * armed cannot be known, so the message says what the host does if it was.
 */
export function lostWhileApplying(
  conn: Connection,
  spec: TransactionSpec,
  sentAtMs: number,
  error: unknown,
): UnreachableError {
  const deadline = new Date(sentAtMs + spec.confirmTimeoutS * 1000).toISOString();
  return new UnreachableError(
    conn.hostName,
    `lost the connection while applying: ${errorMessage(error)}; if the change had started, ` +
      `the host restores its previous state by itself by ${deadline} (dead-man timer, backup in ${runDirOf(spec)})`,
  );
}

export const lostConnection = (error: unknown): boolean =>
  error instanceof UnreachableError || error instanceof CommandTimeoutError;

/**
 * Restores now through the open session; returns the reason to report (with
 * what failed, if it did) and whether the restore was complete.
 */
export async function restoreNow(
  conn: Connection,
  tx: Transaction,
  reason: string,
  again: boolean,
): Promise<{ reason: string; complete: boolean }> {
  try {
    await rollbackTransaction(conn, tx, again);
    return { reason, complete: true };
  } catch (error) {
    if (lostConnection(error))
      throw leftToTheTimer(conn, tx, `${reason}, and restoring through the open session failed`, error);
    return { reason: `${reason} (${errorMessage(error)})`, complete: false };
  }
}
