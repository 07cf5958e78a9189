// @ts-check
/**
 * The commands of the bench's two measured lower bounds (bench/README.md,
 * "What is measured"), run by bench/floor.mjs over one connection per host:
 *
 * - `floor + read`: what a no-op that reads everything the shipped playbook
 *   (playbooks/fix-connection-reset.yml) converges cannot skip: the files and
 *   the firewall's ruleset, sent to the controller, with nothing planned.
 * - `floor + guarded change`: what a confirm-or-revert change cannot skip,
 *   without changing the fleet's state: the read, a backup, a detached
 *   dead-man timer, every managed file written back with its own bytes
 *   (temp file + rename, one sync), one firewall rule added and deleted,
 *   `sshd -t` and the reload; then (floor.mjs --confirm) a new connection;
 *   then, over the first connection, the timer cancelled and the backup
 *   removed (floor.mjs --after-confirm).
 *
 * Pure: builds shell text, runs nothing.
 */

/**
 * What the playbook's tasks read on a host to plan: sshd's configuration with
 * its drop-ins (sshd_config(5) Include in Debian's stock file), the TCP
 * wrappers' tables, and fail2ban's jail files in the order fail2ban reads them
 * (jail.conf, jail.d/*.conf, jail.local, jail.d/*.local; src/resources/fail2ban.ts).
 * Globs are expanded by the host's shell; paths that do not exist are left out.
 */
export const READ_PATHS = [
  '/etc/ssh/sshd_config',
  '/etc/ssh/sshd_config.d/*.conf',
  '/etc/hosts.allow',
  '/etc/hosts.deny',
  '/etc/fail2ban/jail.conf',
  '/etc/fail2ban/jail.d/*.conf',
  '/etc/fail2ban/jail.local',
  '/etc/fail2ban/jail.d/*.local',
];

/**
 * What its first run writes on both lab kinds (its JSON report's diffs):
 * sshd_config and the cloud-init drop-in, hosts.allow, hosts.deny, and
 * fail2ban's jail.local (absent on the broken fleet: a file the run would
 * create is not written here, as creating it would change the fleet's state).
 */
export const MANAGED_PATHS = [
  '/etc/ssh/sshd_config',
  '/etc/ssh/sshd_config.d/*.conf',
  '/etc/hosts.allow',
  '/etc/hosts.deny',
  '/etc/fail2ban/jail.local',
];

/** Scratch directory of the guarded change on each host (/run is the host's own in the lab). */
export const GUARD_DIR = '/run/sshfix-bench-guard';

/**
 * A rule that is added and deleted at once: TEST-NET-1 (RFC 5737) never
 * sends anything, and the ruleset ends as it began.
 */
const FIREWALL_PROBE_RULE = 'INPUT -s 192.0.2.1/32 -j ACCEPT';

/**
 * The firewall's ruleset, in one process. The lab's firewall is iptables on
 * both kinds (bench/lib/fleet.mjs breakScript; iptables-nft on Debian 12 and
 * 13), which sshfix reads with `nft -a list ruleset` and `iptables-nft-save`
 * (src/formats/firewall_probe.ts): `iptables-save` alone is the cheapest
 * equivalent.
 */
export const RULESET_COMMAND = 'iptables-save';

const SBIN_PATH = 'PATH="$PATH:/usr/sbin:/sbin"';

/**
 * Shell lines that set the positional parameters to the paths that exist
 * (tests and globs are the shell's own: no process).
 * @param {readonly string[]} paths
 */
function existingPaths(paths) {
  return [
    'set --',
    // `if`, not `&&`: under `set -e` the loop's status must not be a failed test.
    `for p in ${paths.join(' ')}; do if [ -e "$p" ]; then set -- "$@" "$p"; fi; done`,
  ];
}

/**
 * @param {{ readPaths?: readonly string[], rulesetCommand?: string }} [options]
 * @returns {string} the no-op bound's one command: `cat` of the files and the ruleset, two processes
 */
export function readCommand(options = {}) {
  const paths = options.readPaths ?? READ_PATHS;
  return [
    SBIN_PATH,
    ...existingPaths(paths),
    `cat "$@" && ${options.rulesetCommand ?? RULESET_COMMAND}`,
  ].join('\n');
}

/**
 * The guarded change's command on the first connection. `reload` is the
 * confirmed-reload run's command for the lab kind (`sshd -t` and the reload).
 * The dead-man timer's restore copies the backup back (the same bytes) only
 * while the scratch directory exists: once the change is confirmed and the
 * directory removed, even a timer that escaped its kill changes nothing.
 * @param {{ reload: string, guardDir?: string, readPaths?: readonly string[], managedPaths?: readonly string[],
 *   rulesetCommand?: string, firewallRule?: string | null, timerSeconds?: number }} options
 */
export function guardedChangeCommand(options) {
  const dir = options.guardDir ?? GUARD_DIR;
  const readPaths = options.readPaths ?? READ_PATHS;
  const managedPaths = options.managedPaths ?? MANAGED_PATHS;
  const rule = options.firewallRule === undefined ? FIREWALL_PROBE_RULE : options.firewallRule;
  const timerSeconds = options.timerSeconds ?? 60;
  return [
    SBIN_PATH,
    'set -e',
    `d='${dir}'`,
    'mkdir -p "$d/backup"',
    // The firewall snapshot is the backup's and the read's at once: one iptables-save.
    `${options.rulesetCommand ?? RULESET_COMMAND} > "$d/ruleset"`,
    ...existingPaths(readPaths),
    'cat "$@" "$d/ruleset"',
    ...existingPaths(managedPaths),
    // One cp for the backup of every managed file, their paths kept under the scratch directory.
    // From /: coreutils 9.1's `cp -p --parents` looks the source's directories up relative to
    // the working directory when it copies their attributes, even for absolute paths.
    'cd /',
    'cp -p --parents "$@" "$d/backup/"',
    // Detached (its own session, no descriptor of this channel), its pid is its process group's.
    `setsid sh -c 'sleep ${timerSeconds}; [ -d "$1/backup" ] && cp -pR "$1/backup/." /' sh "$d" </dev/null >/dev/null 2>&1 &`,
    'echo $! > "$d/timer.pid"',
    // Each file written atomically with its own bytes, owner and mode: a temp file beside it, a rename.
    'for f in "$@"; do cp -p "$f" "$f.sshfix-bench.tmp"; mv -f "$f.sshfix-bench.tmp" "$f"; done',
    'sync',
    ...(rule === null ? [] : [`iptables -I ${rule}`, `iptables -D ${rule}`]),
    options.reload,
  ].join('\n');
}

/**
 * Run over the first connection once the new one got in: the timer cancelled
 * (its whole process group, the `sleep` too) and the scratch directory removed.
 * @param {{ guardDir?: string }} [options]
 */
export function disarmCommand(options = {}) {
  const dir = options.guardDir ?? GUARD_DIR;
  return [`d='${dir}'`, 'read -r pid < "$d/timer.pid"', 'kill -- "-$pid"', 'rm -rf "$d"'].join('\n');
}
