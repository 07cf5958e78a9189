/**
 * Atomic file replacement on the host, for every file a task changes, in one
 * script: each new content goes to a temp file in the target's directory,
 * gets the old file's owner and mode, is fsynced, and only when every temp
 * file is ready are they renamed over their targets (then the directories are
 * fsynced). Each target must still hold what the plan saw (sha256), so a file
 * edited by someone else between plan and apply is never overwritten. A
 * target that is a symbolic link is refused: the rename would replace the
 * link with a file and leave the file it points to as it was (resources that
 * write through links plan the link's target instead).
 */
import { posix } from 'node:path';
import { fileContent, shellQuote } from '../transport/shell.js';
import type { FileChange } from '../plan/types.js';

/** The write was refused and nothing was written: the target changed since the plan, or is a symbolic link. */
export const EXIT_CHANGED_SINCE_PLAN = 65;

/**
 * The script that writes `changes` (all or none, short of a crash between
 * renames). A fleet pays for every process it starts once per host, so paths
 * are computed here, not with `dirname`, and one `sync` covers every temp
 * file and one every directory.
 */
export function buildWriteScript(changes: FileChange[]): string {
  const lines: string[] = [
    'set -u',
    'umask 077',
    'sshfix_temps=""',
    'cleanup() { for t in $sshfix_temps; do rm -f "$t"; done; }',
  ];
  const temps: string[] = [];
  changes.forEach((change, i) => {
    const target = shellQuote(change.path);
    const temp = `"$t${i}"`;
    temps.push(temp);
    lines.push(`t${i}=${shellQuote(`${posix.dirname(change.path)}/.sshfix.`)}$$${shellQuote(`.${i}.tmp`)}`);
    lines.push(`sshfix_temps="$sshfix_temps $t${i}"`);
    lines.push(
      `if [ -L ${target} ]; then echo ${shellQuote(`${change.path} is a symbolic link (to `)}"$(readlink -- ${target}))"${shellQuote('; not replacing the link with a file: write to its target instead')} >&2; cleanup; exit ${EXIT_CHANGED_SINCE_PLAN}; fi`,
    );
    if (change.beforeSha256 === null) {
      lines.push(
        `if [ -e ${target} ]; then echo ${shellQuote(`${change.path} appeared since the plan was made`)} >&2; cleanup; exit ${EXIT_CHANGED_SINCE_PLAN}; fi`,
      );
      const mode = change.mode ?? '0644';
      const owner = `${change.owner ?? 'root'}:${change.group ?? 'root'}`;
      lines.push(`{ ${fileContent(change.after, `SSHFIX_EOF_${i}`)}} > ${temp} || { cleanup; exit 1; }`);
      lines.push(
        `chmod ${shellQuote(mode)} ${temp} && chown ${shellQuote(owner)} ${temp} || { cleanup; exit 1; }`,
      );
    } else {
      lines.push(
        `h=$(sha256sum < ${target} 2>/dev/null); if [ "\${h%% *}" != ${shellQuote(change.beforeSha256)} ]; then echo ${shellQuote(`${change.path} changed since the plan was made`)} >&2; cleanup; exit ${EXIT_CHANGED_SINCE_PLAN}; fi`,
      );
      // A copy of the old file carries its owner and mode; then the new content replaces the copy's.
      lines.push(`cp -p -- ${target} ${temp} || { cleanup; exit 1; }`);
      lines.push(`{ ${fileContent(change.after, `SSHFIX_EOF_${i}`)}} > ${temp} || { cleanup; exit 1; }`);
    }
  });
  lines.push(`sync ${temps.join(' ')} 2>/dev/null || sync`);
  const dirs = [...new Set(changes.map((c) => posix.dirname(c.path)))];
  changes.forEach((change, i) => {
    const target = shellQuote(change.path);
    lines.push(`mv -f "$t${i}" ${target} || { cleanup; exit 1; }`);
    lines.push(`command -v restorecon >/dev/null 2>&1 && restorecon ${target} 2>/dev/null`);
  });
  lines.push(`sync ${dirs.map(shellQuote).join(' ')} 2>/dev/null || sync`);
  lines.push('exit 0', '');
  return lines.join('\n');
}
