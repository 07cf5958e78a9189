/**
 * What the probes ask systemd about sshd's and firewalld's units, read from
 * ONE `systemctl show -p PROPERTIES UNIT...` where they used to start one
 * `systemctl is-active`, `systemctl cat` or `systemctl show --value` per
 * question: each start is a process on the host and a D-Bus call PID 1
 * answers, on every host of the fleet.
 *
 * systemctl show prints each unit's properties as `Name=value` lines (in the
 * manager's order, not the order asked for; a property the unit's type lacks,
 * Accept= on a service, is left out) and a blank line between units, in the
 * order the units were named. An alias (sshd.service, installed by Debian's
 * `systemctl enable ssh`) shows its unit's properties. A unit that does not
 * exist shows LoadState=not-found and ActiveState=inactive. If systemctl
 * fails, nothing is read: every property is empty, which the tests below read
 * as the failed is-active or cat would have answered.
 *
 * `systemctl is-enabled` stays a command of its own: UnitFileState= is what
 * PID 1 cached when it loaded the unit, and a link made by hand without
 * `systemctl daemon-reload` leaves it stale ("disabled" while is-enabled,
 * which reads the links on disk, says "enabled").
 *
 * The shell here reads the output with built-ins only: no process besides
 * systemctl's one.
 */
import { shellQuote } from '../transport/shell.js';

/** The properties the probes read. */
export type UnitProperty =
  'LoadState' | 'ActiveState' | 'CanReload' | 'Accept' | 'FragmentPath' | 'DropInPaths';

/** A unit's properties as `systemctl show` printed them; a property not printed is absent. */
export type UnitProperties = Partial<Record<UnitProperty, string>>;

/**
 * The ActiveState values for which `systemctl is-active` succeeds
 * (systemctl-is-active.c: active, reloading, and since systemd 256 refreshing).
 */
export const IS_ACTIVE_STATES: readonly string[] = ['active', 'reloading', 'refreshing'];

/**
 * The `systemctl is-enabled` words for which it succeeds (systemctl-is-enabled.c;
 * systemctl(1) "is-enabled" table): linked, masked, disabled, bad, not-found
 * and transient fail.
 */
export const IS_ENABLED_STATES: readonly string[] = [
  'enabled',
  'enabled-runtime',
  'static',
  'alias',
  'indirect',
  'generated',
];

/** Whether `systemctl is-active UNIT` succeeds for a unit with these properties. */
export function isActive(unit: UnitProperties): boolean {
  return IS_ACTIVE_STATES.includes(unit.ActiveState ?? '');
}

/** Whether `systemctl is-enabled UNIT` succeeds when it prints `word`. */
export function isEnabledWord(word: string): boolean {
  return IS_ENABLED_STATES.includes(word);
}

/**
 * Whether `systemctl cat UNIT` succeeds (systemctl-cat.c, unit_find_paths()):
 * it fails for a unit systemd did not find, and for a loaded one without a
 * file on disk (no fragment, no drop-in: a transient unit); a masked unit
 * prints "# Unit … is masked", one systemd could not load "… could not be
 * loaded", and both succeed.
 */
export function catSucceeds(unit: UnitProperties): boolean {
  switch (unit.LoadState ?? '') {
    case '':
    case 'not-found':
      return false;
    case 'loaded':
    case 'bad-setting':
      return (unit.FragmentPath ?? '') !== '' || (unit.DropInPaths ?? '') !== '';
    default:
      return true;
  }
}

/**
 * Parses `systemctl show -p … UNIT...` output: one entry per unit named,
 * in order. Units it printed nothing for (systemctl failed) have no properties.
 */
export function parseSystemctlShow(stdout: string, unitCount: number): UnitProperties[] {
  const units: UnitProperties[] = Array.from({ length: unitCount }, () => ({}));
  let index = 0;
  for (const line of stdout.split('\n')) {
    // Every unit after the first starts with a blank line, even one that printed no property.
    if (line === '') {
      index++;
      continue;
    }
    const eq = line.indexOf('=');
    const unit = units[index];
    if (eq > 0 && unit !== undefined) unit[line.slice(0, eq) as UnitProperty] = line.slice(eq + 1);
  }
  return units;
}

/** The shell variable holding property `property` of the `index`th unit named to systemctlShowLines. */
export function unitVariable(index: number, property: UnitProperty): string {
  return `sd${index}_${property}`;
}

/** The command that shows these units' properties. */
function showCommand(units: readonly string[], properties: readonly UnitProperty[]): string {
  return `systemctl show -p ${properties.join(',')} ${units.map(shellQuote).join(' ')} 2>/dev/null`;
}

/**
 * Shell lines that start one `systemctl show -p PROPERTIES UNITS` and set
 * unitVariable(i, P) for each unit and property (empty when not printed),
 * as parseSystemctlShow reads them. With `shared`, the output comes from
 * the read round trip's sharedShowPrologue when it ran one.
 */
export function systemctlShowLines(
  units: readonly string[],
  properties: readonly UnitProperty[],
  shared?: string,
): string[] {
  const clear = units.flatMap((_, i) => properties.map((p) => `${unitVariable(i, p)}=`)).join(' ');
  const arms = units.flatMap((_, i) =>
    properties.map((p) => `    ${i}:${p}=*) ${unitVariable(i, p)}=\${sd_l#*=} ;;`),
  );
  const command = `$(${showCommand(units, properties)})`;
  return [
    `${clear}; sd_i=0`,
    // A here-document, not a pipe: the loop runs in this shell, so what it sets stays set.
    'while IFS= read -r sd_l; do',
    '  [ -n "$sd_l" ] || { sd_i=$((sd_i + 1)); continue; }',
    '  case $sd_i:$sd_l in',
    ...arms,
    '  esac',
    'done <<SSHFIX_SYSTEMCTL_SHOW',
    shared === undefined ? command : `\${${shared}-${command}}`,
    'SSHFIX_SYSTEMCTL_SHOW',
  ];
}

/**
 * sshd's units under either name (unit 2k a name's service, 2k+1 its
 * socket) and firewalld's, with every property the planning probes read:
 * the host facts, the sshd service's detection and the firewall probe ask
 * them with the same text (sharedShowLines), so a round trip that runs
 * several of them asks systemd once (sharedShowPrologue).
 */
export const SHARED_UNITS = ['ssh.service', 'ssh.socket', 'sshd.service', 'sshd.socket', 'firewalld.service'];
const SHARED_PROPERTIES: readonly UnitProperty[] = [
  'LoadState',
  'ActiveState',
  'CanReload',
  'Accept',
  'FragmentPath',
  'DropInPaths',
];
const SHARED_VARIABLE = 'sshfix_systemd_units';

/** systemctlShowLines over SHARED_UNITS, answered by the round trip's sharedShowPrologue when there is one. */
export function sharedShowLines(): string[] {
  return systemctlShowLines(SHARED_UNITS, SHARED_PROPERTIES, SHARED_VARIABLE);
}

/**
 * The line a read round trip starts with when more than one of its probes
 * runs sharedShowLines: one systemctl for all of them, where systemd runs
 * (sd_booted(3)). Its probes run in subshells, which see the variable.
 */
export function sharedShowPrologue(scripts: readonly string[]): string[] {
  const sharing = scripts.filter((s) => s.includes(SHARED_VARIABLE)).length;
  if (sharing < 2) return [];
  return [
    'if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then',
    `  ${SHARED_VARIABLE}=$(${showCommand(SHARED_UNITS, SHARED_PROPERTIES)})`,
    'fi',
  ];
}

/** A shell test: unit `index` is active as `systemctl is-active` has it. */
export function isActiveTest(index: number): string {
  return `case $${unitVariable(index, 'ActiveState')} in ${IS_ACTIVE_STATES.join('|')}) true ;; *) false ;; esac`;
}

/** A shell test: `systemctl cat` would find unit `index` (catSucceeds). Needs LoadState, FragmentPath and DropInPaths. */
export function catSucceedsTest(index: number): string {
  const load = `$${unitVariable(index, 'LoadState')}`;
  const files = `$${unitVariable(index, 'FragmentPath')}$${unitVariable(index, 'DropInPaths')}`;
  return `case ${load} in ''|not-found) false ;; loaded|bad-setting) [ -n "${files}" ] ;; *) true ;; esac`;
}

/**
 * A shell test: `systemctl is-enabled --quiet UNIT` succeeds, for unit
 * `index` of systemctlShowLines named `unit`. A unit systemd did not find
 * has no unit file to be enabled by (is-enabled says not-found), so it is
 * not asked: one process fewer where Debian has no sshd.socket.
 */
export function isEnabledTest(index: number, unit: string): string {
  return `{ [ "$${unitVariable(index, 'LoadState')}" != not-found ] && systemctl is-enabled --quiet ${shellQuote(unit)} 2>/dev/null; }`;
}
