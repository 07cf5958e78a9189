/**
 * Which hosts a command works on, as Ansible selects them: each play's
 * `hosts:` pattern intersected with `--limit` (or `--limit` alone, for
 * `sshfix inventory`).
 *
 * A term that matches no host and no group is a warning (Ansible: "Could not
 * match supplied host pattern, ignoring"), so that a typo in an exclusion
 * (`web*:!wbe1`) does not silently select more than meant. A selection left
 * with no host at all is an error, "no hosts matched" (Ansible: "Specified
 * inventory, host pattern and/or --limit leaves us with no hosts to target"):
 * a run that does nothing must not look like a run that succeeded.
 */
import { ConfigError, type Diagnostic } from './diagnostics.js';
import { evaluatePattern, type PatternSelection } from './host_pattern.js';
import type { Inventory } from './inventory.js';
import type { PlaySpec } from './playbook.js';

export interface HostSelection {
  /** Every selected host, in inventory order. */
  hosts: string[];
  warnings: Diagnostic[];
  /** Malformed patterns, or nothing selected. */
  errors: Diagnostic[];
}

export interface PlaybookSelection extends HostSelection {
  /** The hosts of each play, in the order of the playbook's plays, each in inventory order. */
  playHosts: string[][];
}

/** Runs `evaluate`, turning a ConfigError (a malformed pattern) into its diagnostics. */
function attempt(evaluate: () => PatternSelection): { value?: PatternSelection; errors: Diagnostic[] } {
  try {
    return { value: evaluate(), errors: [] };
  } catch (error) {
    if (error instanceof ConfigError) return { errors: error.diagnostics };
    throw error;
  }
}

function prefixed(prefix: string, diagnostics: Diagnostic[]): Diagnostic[] {
  return diagnostics.map((d) => ({ ...d, summary: `${prefix}${d.summary}` }));
}

function noHostsMatched(inventory: Inventory, why: string): Diagnostic {
  const reason = inventory.hosts.size === 0 ? `${inventory.path} has no hosts` : why;
  return { severity: 'error', summary: `no hosts matched: ${reason}` };
}

/** The hosts of `--limit` (all hosts without one). */
export function selectLimitHosts(inventory: Inventory, limit: string | undefined): HostSelection {
  const { value, errors } = attempt(() => evaluatePattern(inventory, limit ?? 'all'));
  const hosts = value?.hosts ?? [];
  const warnings = prefixed('--limit: ', value?.warnings ?? []);
  if (errors.length > 0) return { hosts, warnings, errors: prefixed('--limit: ', errors) };
  const nothing =
    hosts.length === 0
      ? [noHostsMatched(inventory, `--limit '${limit ?? 'all'}' selects no host of ${inventory.path}`)]
      : [];
  return { hosts, warnings, errors: nothing };
}

/** The hosts of every play, limited by `--limit`. */
export function selectPlaybookHosts(
  plays: readonly Pick<PlaySpec, 'name' | 'hosts' | 'position'>[],
  inventory: Inventory,
  limit: string | undefined,
): PlaybookSelection {
  const errors: Diagnostic[] = [];
  const warnings: Diagnostic[] = [];
  const limited = limit === undefined ? undefined : attempt(() => evaluatePattern(inventory, limit));
  if (limited) {
    errors.push(...prefixed('--limit: ', limited.errors));
    warnings.push(...prefixed('--limit: ', limited.value?.warnings ?? []));
  }
  const allowed = limited?.value ? new Set(limited.value.hosts) : undefined;
  const selected = new Set<string>();
  const playHosts = plays.map((play) => {
    const at = (d: Diagnostic): Diagnostic => ({
      ...d,
      position: d.position ?? play.position,
      detail: d.detail ?? `in the hosts of play '${play.name}'`,
    });
    const { value, errors: patternErrors } = attempt(() => evaluatePattern(inventory, play.hosts));
    errors.push(...patternErrors.map(at));
    if (!value) return [];
    warnings.push(...value.warnings.map(at));
    const hosts = allowed ? value.hosts.filter((h) => allowed.has(h)) : value.hosts;
    // With --limit, a play left without hosts is what was asked for.
    if (hosts.length === 0 && value.warnings.length === 0 && limit === undefined) {
      warnings.push(at({ severity: 'warning', summary: `play '${play.name}' selects no host` }));
    }
    hosts.forEach((h) => selected.add(h));
    return hosts;
  });
  const hosts = [...inventory.hosts.keys()].filter((h) => selected.has(h));
  if (errors.length === 0 && hosts.length === 0) {
    const why =
      limit === undefined
        ? `the plays' host patterns select no host of ${inventory.path}`
        : `--limit '${limit}' leaves no host of the plays' host patterns in ${inventory.path}`;
    errors.push(noHostsMatched(inventory, why));
  }
  return { hosts, playHosts, warnings, errors };
}
