/**
 * Has the running sshd loaded what is on disk? A run that wrote sshd_config
 * and was cut off before its reload (an interrupted --no-rollback run, a
 * drop-in written by hand) leaves a file that already says what the playbook
 * wants while sshd still runs the old configuration: comparing files alone,
 * the next run would find nothing to do and never reload.
 *
 * sshd reads its configuration when it starts, and again when it re-executes
 * itself on SIGHUP (sshd.c, sighup_restart: same pid, so the process's start
 * time in /proc does not move); each time it then writes its pid file
 * (PidFile, /run/sshd.pid) anew. The pid file's mtime is therefore when the
 * running listener last read its configuration, whatever the init system
 * (sysvinit's `service ssh reload`, systemd's `kill -HUP $MAINPID`, OpenRC).
 * A file of the configuration tree whose ctime is later was changed after
 * that. ctime, not mtime: `cp -p`, `tar` and `touch -d` set any mtime they
 * like, but not the ctime.
 *
 * The probe script and the parsing of its output; no I/O here.
 */
import { shellQuote } from '../transport/shell.js';

/** Where sshd's compiled-in PidFile puts it (/var/run is /run on current distributions). */
export const SSHD_PID_FILES = ['/run/sshd.pid', '/var/run/sshd.pid'] as const;
/** sshd's configuration file when it was started without -f. */
export const DEFAULT_SERVER_CONFIG = '/etc/ssh/sshd_config';

/** A file time as `stat %y`/`%z` print it in UTC, kept to the nanosecond. */
export interface FileTime {
  /** ISO 8601, to the second, for messages. */
  iso: string;
  /** Nanoseconds since the epoch, for comparing. */
  ns: bigint;
}

export interface SshdLoadFacts {
  /** The process in sshd's pid file, when it exists. */
  listener?: {
    pid: number;
    pidFile: string;
    /** Its command line, NULs as spaces (sshd's proctitle after it set one). */
    cmdline: string;
    /** The pid file's mtime: when this sshd last read its configuration. */
    readAt?: FileTime;
  };
  /** ctime of each path asked for that exists. */
  changed: Map<string, FileTime>;
}

const STAT_MARK = 'sshfix-stat';

/**
 * The probe: the listener named by sshd's pid file, and the times of the pid
 * file and of `paths` and whatever `globs` match (where they exist). `globs`
 * are the caller's constants (letters, digits, `/._*-`), never host data.
 * Costs one `tr` and one `stat`; nothing when no sshd runs.
 */
export function sshdLoadProbeScript(paths: readonly string[], globs: readonly string[] = []): string {
  for (const glob of globs)
    if (!/^[A-Za-z0-9/._*-]+$/.test(glob)) throw new Error(`not a plain glob: ${JSON.stringify(glob)}`);
  const candidates = [...paths.map(shellQuote), ...globs].join(' ');
  return [
    'set --',
    `for f in ${SSHD_PID_FILES.join(' ')}; do`,
    '  [ -f "$f" ] || continue',
    '  pid=; read -r pid < "$f" 2>/dev/null',
    '  case $pid in "" | *[!0-9]*) continue ;; esac',
    '  [ -r "/proc/$pid/cmdline" ] || continue',
    '  printf "listener %s %s\\n" "$pid" "$f"',
    '  printf "cmdline "; tr "\\0" " " < "/proc/$pid/cmdline"; echo',
    '  set -- "$f"; break',
    'done',
    '[ $# -gt 0 ] || exit 0',
    ...(candidates === '' ? [] : [`for f in ${candidates}; do [ -e "$f" ] && set -- "$@" "$f"; done`]),
    `TZ=UTC0 stat -L -c '${STAT_MARK} %y|%z|%n' -- "$@"`,
  ].join('\n');
}

/** `2026-12-03 07:31:59.608207804 +0000` → its time; undefined when it is not in that form. */
export function parseFileTime(text: string): FileTime | undefined {
  const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))? ([+-])(\d{2})(\d{2})$/.exec(
    text.trim(),
  );
  if (!m) return undefined;
  const seconds = Date.parse(`${m[1]}T${m[2]}Z`) / 1000;
  if (!Number.isFinite(seconds)) return undefined;
  const offsetS = (m[4] === '-' ? -1 : 1) * (Number(m[5]) * 3600 + Number(m[6]) * 60);
  const utcSeconds = seconds - offsetS;
  return {
    iso: new Date(utcSeconds * 1000).toISOString().replace(/\.000Z$/, 'Z'),
    ns: BigInt(utcSeconds) * 1_000_000_000n + BigInt((m[3] ?? '').padEnd(9, '0')),
  };
}

export function parseSshdLoadProbe(stdout: string): SshdLoadFacts {
  const facts: SshdLoadFacts = { changed: new Map() };
  const times = new Map<string, { modified?: FileTime; changed?: FileTime }>();
  for (const line of stdout.split('\n')) {
    const listener = /^listener (\d+) (\S+)$/.exec(line);
    if (listener) {
      facts.listener = { pid: Number(listener[1]), pidFile: listener[2]!, cmdline: '' };
    } else if (line.startsWith('cmdline ') && facts.listener) {
      facts.listener.cmdline = line.slice('cmdline '.length).trim();
    } else if (line.startsWith(`${STAT_MARK} `)) {
      const [modified = '', changed = '', ...name] = line.slice(STAT_MARK.length + 1).split('|');
      const path = name.join('|');
      const entry = { modified: parseFileTime(modified), changed: parseFileTime(changed) };
      times.set(path, {
        ...(entry.modified ? { modified: entry.modified } : {}),
        ...(entry.changed ? { changed: entry.changed } : {}),
      });
    }
  }
  for (const [path, t] of times) {
    if (facts.listener && path === facts.listener.pidFile) {
      if (t.modified) facts.listener.readAt = t.modified;
    } else if (t.changed) facts.changed.set(path, t.changed);
  }
  return facts;
}

/**
 * Whether a command line is sshd's listener. The pid in a stale pid file
 * (sshd killed, as socket activation does) may have been reused by another
 * process, also by an sshd serving one connection: `sshd: USER [priv]`,
 * `sshd: USER@notty` (OpenSSH < 9.8, same binary) or `sshd-session`
 * (>= 9.8). The listener titles itself `sshd: /usr/sbin/sshd -D [listener]
 * 0 of 10-100 startups` (OpenSSH >= 8.2); before that it kept the command
 * line it was started with.
 */
export function isSshdListener(cmdline: string): boolean {
  const first = cmdline.trim().split(/\s+/)[0] ?? '';
  if (cmdline.includes('[listener]')) return first === 'sshd:';
  return first !== 'sshd:' && /(^|\/)sshd$/.test(first);
}

/** The configuration file the listener was started with: `-f FILE` on its command line, else the default. */
export function listenerConfigFile(cmdline: string): string {
  const words = cmdline.split(/\s+/);
  for (const [i, word] of words.entries()) {
    if (word === '-f' && words[i + 1]) return words[i + 1]!;
    if (/^-f./.test(word)) return word.slice(2);
  }
  return DEFAULT_SERVER_CONFIG;
}

export interface PendingReload {
  pid: number;
  readAt: FileTime;
  /** Files (and Include directories) changed after sshd read its configuration, oldest change first. */
  newer: Array<{ path: string; changedAt: FileTime }>;
}

/**
 * Which of `paths` (the tree sshd reads from `mainPath`, and the directories
 * its Includes glob) changed after the running sshd read its configuration.
 * Undefined when that cannot be said, or nothing did: no sshd runs (its next
 * start reads the disk), the pid file is stale (no listener has its pid), or sshd runs
 * another configuration file than `mainPath`.
 */
export function pendingReload(
  facts: SshdLoadFacts,
  mainPath: string,
  paths: readonly string[],
): PendingReload | undefined {
  const listener = facts.listener;
  if (!listener?.readAt || !isSshdListener(listener.cmdline)) return undefined;
  if (listenerConfigFile(listener.cmdline) !== mainPath) return undefined;
  const readAt = listener.readAt;
  const newer = [...new Set(paths)]
    .map((path) => ({ path, changedAt: facts.changed.get(path) }))
    .filter(
      (f): f is { path: string; changedAt: FileTime } =>
        f.changedAt !== undefined && f.changedAt.ns > readAt.ns,
    )
    .sort((a, b) => (a.changedAt.ns < b.changedAt.ns ? -1 : a.changedAt.ns > b.changedAt.ns ? 1 : 0));
  return newer.length === 0 ? undefined : { pid: listener.pid, readAt, newer };
}

export function pendingReloadMessage(pending: PendingReload): string {
  const changes = pending.newer.map((f) => `${f.path} changed at ${f.changedAt.iso}`).join(', ');
  return (
    `sshd (pid ${pending.pid}) has not loaded what is on disk: ${changes}, after sshd last read its ` +
    `configuration at ${pending.readAt.iso}: a reload is pending`
  );
}
