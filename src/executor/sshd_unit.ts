/**
 * How sshd runs on a host, as far as putting a configuration into effect and
 * undoing a run are concerned: no init system or sysvinit (`service ssh
 * reload`, SIGHUP), systemd with ssh.service (or sshd.service), or systemd
 * with socket activation (ssh.socket, Ubuntu >= 22.10's default).
 *
 * Under socket activation (Accept=no) the listening socket belongs to
 * systemd and sshd receives it when started. A SIGHUP makes sshd re-execute
 * itself without it, and the new sshd dies with "fatal: Cannot bind any
 * address"; so sshd is restarted instead (Debian's and Ubuntu's ssh.service
 * have KillMode=process: sessions stay up, and the socket keeps accepting
 * meanwhile). And Port/ListenAddress in sshd_config are ignored: the socket's
 * ListenStream decides where sshd listens (Launchpad #2069041,
 * willshersystems/ansible-sshd#307).
 */
import { isActiveTest, systemctlShowLines } from '../formats/systemd_units.js';

/** Whichever is active first records how sshd runs: a unit's socket before its service. */
const RECORDED_UNITS = ['ssh.socket', 'ssh.service', 'sshd.socket', 'sshd.service'];

/**
 * Begin-script lines: records how sshd runs (`UNIT service|socket` in
 * `$dir/sshd-unit`) before anything changes, so that the restore, which may
 * run when sshd or its socket has failed, puts the units back as they were.
 * Without systemd, or when no ssh/sshd unit is active (sshd started by hand),
 * nothing is recorded, and the restore sends SIGHUP to the pid in
 * /run/sshd.pid.
 */
export function sshdUnitRecordLines(): string[] {
  return [
    'if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then',
    // Only a unit that runs sshd: a masked or inactive ssh.service beside sshd.service (RHEL's name), or
    // beside an sshd started by hand, is not how sshd runs, and restarting it would not restore sshd.
    // Asked in that order, of one systemctl (systemd_units.ts).
    ...systemctlShowLines(RECORDED_UNITS, ['ActiveState']),
    '  n=; m=',
    ...RECORDED_UNITS.map(
      (unit, i) =>
        `  ${i === 0 ? 'if' : 'elif'} ${isActiveTest(i)}; then n=${unit.split('.')[0]!}; m=${unit.split('.')[1]!}`,
    ),
    '  fi',
    '  [ -z "$m" ] || { echo "$n $m" > "$dir/sshd-unit"; echo "sshd $n.$m" >> "$dir/manifest"; }',
    'fi',
  ];
}

/**
 * Restore-script lines that put the restored configuration into effect — or
 * start sshd, when it died — the way the host ran sshd when the run began.
 * Sets `failed=1` when a step fails.
 */
export function sshdRestoreLines(): string[] {
  return [
    'if [ -f "$dir/sshd-unit" ] && command -v systemctl >/dev/null 2>&1; then',
    '  read -r u m < "$dir/sshd-unit"',
    // A unit that failed on the changed configuration (or hit its start limit) gets a fresh start.
    '  systemctl reset-failed "$u.service" "$u.socket" 2>/dev/null',
    '  if [ "$m" = socket ]; then',
    // systemd refuses to start a socket whose service still runs ("Socket service … already active").
    '    if ! systemctl is-active --quiet "$u.socket"; then',
    '      systemctl stop "$u.service"; systemctl start "$u.socket" || failed=1',
    '    fi',
    // A SIGHUP would make sshd re-execute without the socket: restart; sessions and the socket stay.
    '    if systemctl is-active --quiet "$u.service"; then systemctl restart "$u.service" || failed=1; fi',
    '  else',
    // A unit without ExecReload= (or masked while it runs) would be restarted by reload-or-restart,
    // replacing the sshd it runs: send that sshd the SIGHUP a reload sends instead.
    '    p=$(systemctl show -p MainPID --value "$u.service" 2>/dev/null)',
    '    if [ "$(systemctl show -p CanReload --value "$u.service" 2>/dev/null)" != yes ] && [ "${p:-0}" -gt 0 ] 2>/dev/null; then',
    '      kill -HUP "$p" || failed=1',
    // A unit whose reload fails (a broken ExecReload=, say) still runs sshd: send it the SIGHUP a
    // reload sends (Debian's and Red Hat's ExecReload= end in `kill -HUP $MAINPID`), as without systemd.
    '    else systemctl reload-or-restart "$u.service" || {',
    '      p=$(systemctl show -p MainPID --value "$u.service" 2>/dev/null)',
    '      [ "${p:-0}" -gt 0 ] 2>/dev/null && kill -HUP "$p" || failed=1',
    '    }; fi',
    '  fi',
    'else',
    '  pid=$(cat /run/sshd.pid 2>/dev/null)',
    '  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -HUP "$pid" || failed=1',
    '  elif [ -x /etc/init.d/ssh ]; then service ssh start >/dev/null || failed=1',
    '  elif [ -x /etc/init.d/sshd ]; then service sshd start >/dev/null || failed=1',
    '  elif command -v rc-service >/dev/null 2>&1; then rc-service sshd start || failed=1',
    '  else mkdir -p /run/sshd; /usr/sbin/sshd || failed=1; fi',
    'fi',
  ];
}
