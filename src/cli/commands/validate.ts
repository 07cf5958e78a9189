/**
 * `sshfix validate PLAYBOOK [-i INVENTORY]`: every check that needs no host,
 * without contacting any — for editors, pre-commit hooks and the first step
 * of a CI pipeline.
 *
 * The playbook alone: YAML syntax, the schema (plays, tasks, unknown argument
 * keys), handlers, and the arguments that hold no `{{ }}` (they are final
 * already), checked against the resource's schema and its own checks
 * (sshd_config value types, for instance). With an inventory, also: the
 * inventory itself, each play's host pattern (a term that matches nothing is
 * a warning, as in Ansible, and no host selected at all an error, as for plan
 * and apply),
 * the connection variables of every selected host, and, for every host, its
 * task arguments rendered with its variables, checked against the resource's
 * schema and its own checks — the same `bindPlaybook` that plan and apply run
 * before they connect, so what passes here passes there.
 *
 * Exit 0 when valid (warnings allowed), 1 with file:line:column diagnostics.
 */
import {
  ConfigError,
  formatDiagnostic,
  uniqueDiagnostics,
  type Diagnostic,
} from '../../config/diagnostics.js';
import { parseExtraVars } from '../../config/extra_vars.js';
import { selectPlaybookHosts } from '../../config/selection.js';
import { connectionVars, loadInventory, type Inventory } from '../../config/inventory.js';
import {
  argumentProblemDiagnostics,
  loadPlaybook,
  renderTaskArgs,
  type Playbook,
} from '../../config/playbook.js';
import { containsTemplate } from '../../config/template.js';
import { sortByPosition } from '../../config/schema.js';
import { bindPlaybook, DEFAULT_FORKS, type RunOptions } from '../../executor/run.js';
import { RESOURCES, resourceSchemas } from '../../resources/registry.js';
import { Vault } from '../../config/vault.js';
import { EXIT } from '../exit_codes.js';
import { redactConfigError, redactDiagnostics } from '../redact.js';
import { vaultFromArgs, vaultOptions } from '../vault_password.js';
import type { CliIO, Command, ParsedArgs } from '../io.js';
import { commandSettings } from '../settings.js';

export interface ValidateInput {
  playbook: string;
  inventory?: string;
  limit?: string;
  extraVars?: Record<string, unknown>;
  /** Opens vaulted files and `!vault` values; without one, meeting them is an error. */
  vault?: Vault;
}

export interface ValidationResult {
  errors: Diagnostic[];
  warnings: Diagnostic[];
  /** What was checked, for the summary line; undefined when the file did not load. */
  plays?: number;
  tasks?: number;
  /** Hosts whose arguments were rendered and checked (with an inventory). */
  hosts?: number;
}

/** Runs `load`, turning a ConfigError into its diagnostics. */
function attempt<T>(load: () => T): { value?: T; errors: Diagnostic[] } {
  try {
    return { value: load(), errors: [] };
  } catch (error) {
    if (error instanceof ConfigError) return { errors: error.diagnostics };
    throw error;
  }
}

/** Connection variables of every selected host: all bad ones at once, not only the first. */
function connectionDiagnostics(inventory: Inventory, hosts: Iterable<string>): Diagnostic[] {
  return [...hosts].flatMap((name) => attempt(() => connectionVars(inventory.hosts.get(name)!)).errors);
}

/**
 * Without an inventory: tasks whose arguments hold no template are checked
 * as they will be for every host (schema, then the resource's own checks).
 */
function literalArgumentDiagnostics(playbook: Playbook): Diagnostic[] {
  const schemas = resourceSchemas();
  const diagnostics: Diagnostic[] = [];
  for (const play of playbook.plays) {
    for (const task of [...play.tasks, ...play.handlers]) {
      const resource = RESOURCES.get(task.resource);
      if (resource === undefined || containsTemplate(task.args)) continue;
      const rendered = attempt(() => renderTaskArgs(task, {}, schemas));
      diagnostics.push(...rendered.errors);
      if (rendered.errors.length === 0)
        diagnostics.push(...argumentProblemDiagnostics(task, resource.checkArgs?.(rendered.value) ?? []));
    }
  }
  return diagnostics;
}

/** Checks a playbook, and with an inventory everything plan would check before connecting. Never connects. */
export function validateOffline(input: ValidateInput): ValidationResult {
  const vault = input.vault ?? new Vault();
  const loadedPlaybook = attempt(() => loadPlaybook(input.playbook, resourceSchemas(), vault));
  const loadedInventory =
    input.inventory === undefined ? undefined : attempt(() => loadInventory(input.inventory!, vault));
  const playbook = loadedPlaybook.value;
  const inventory = loadedInventory?.value;
  const counts = playbook
    ? {
        plays: playbook.plays.length,
        tasks: playbook.plays.reduce((n, p) => n + p.tasks.length + p.handlers.length, 0),
      }
    : {};
  const errors = [...loadedPlaybook.errors, ...(loadedInventory?.errors ?? [])];
  if (playbook && input.inventory === undefined) errors.push(...literalArgumentDiagnostics(playbook));
  if (!playbook || !inventory)
    return { errors: sortByPosition(uniqueDiagnostics(errors)), warnings: [], ...counts };

  const selection = selectPlaybookHosts(playbook.plays, inventory, input.limit);
  errors.push(...selection.errors, ...connectionDiagnostics(inventory, selection.hosts));
  if (errors.length === 0) {
    const options: RunOptions = {
      check: true,
      limit: input.limit,
      extraVars: input.extraVars,
      forks: DEFAULT_FORKS,
      acceptNewHostKeys: false,
      connectTimeoutMs: 0,
      commandTimeoutMs: 0,
    };
    errors.push(...attempt(() => bindPlaybook(playbook, inventory, RESOURCES, options, selection)).errors);
  }
  return {
    errors: sortByPosition(uniqueDiagnostics(errors)),
    warnings: sortByPosition(uniqueDiagnostics(selection.warnings)),
    ...counts,
    hosts: selection.hosts.length,
  };
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

function summaryLine(input: ValidateInput, result: ValidationResult): string {
  const parts = [plural(result.plays ?? 0, 'play'), plural(result.tasks ?? 0, 'task')];
  if (result.hosts !== undefined) parts.push(`rendered for ${plural(result.hosts, 'host')}`);
  const against =
    input.inventory === undefined ? ' (without an inventory: hosts and variables unchecked)' : '';
  return `${input.playbook}: valid — ${parts.join(', ')}${against}`;
}

async function runValidate(args: ParsedArgs, io: CliIO): Promise<number> {
  const settings = commandSettings(args);
  if (settings.warnings.length > 0) io.stderr(settings.warnings.map(formatDiagnostic).join('\n') + '\n');
  const vault = await vaultFromArgs(args);
  let extraVars: Record<string, unknown>;
  try {
    extraVars = parseExtraVars((args['extra-vars'] as string[] | undefined) ?? [], vault);
  } catch (error) {
    throw redactConfigError(error, vault.secrets());
  }
  return reportValidation(
    {
      playbook: String(args.playbook),
      ...(settings.values.inventory !== undefined ? { inventory: settings.values.inventory } : {}),
      ...(args.limit !== undefined ? { limit: String(args.limit) } : {}),
      extraVars,
      vault,
    },
    io,
  );
}

/** Validates `input` and prints the diagnostics and the summary line (validate, apply/plan --syntax-check). */
export function reportValidation(input: ValidateInput, io: CliIO): number {
  const vault = input.vault ?? new Vault();
  const result = validateOffline(input);
  // A message may quote a value: never a vault's plaintext.
  const report = redactDiagnostics([...result.errors, ...result.warnings], vault.secrets()).map(
    formatDiagnostic,
  );
  if (report.length > 0) io.stderr(report.join('\n') + '\n');
  if (result.errors.length > 0) {
    io.stderr(`${input.playbook}: ${plural(result.errors.length, 'error')}\n`);
    return EXIT.failed;
  }
  io.stdout(summaryLine(input, result) + '\n');
  return EXIT.ok;
}

export const validateCommand: Command = {
  command: 'validate <playbook>',
  describe: 'Check a playbook (and with -i, every host of an inventory) offline, without connecting',
  builder: (y) =>
    vaultOptions(
      y
        .positional('playbook', { type: 'string', describe: 'Playbook file (YAML)' })
        .option('inventory', {
          alias: 'i',
          type: 'string',
          describe:
            'Also check host patterns, connection variables and rendered arguments for its hosts (default: inventory of the config file)',
        })
        .option('limit', { alias: 'l', type: 'string', describe: 'Check only these hosts (a host pattern)' })
        .option('extra-vars', {
          alias: 'e',
          type: 'string',
          array: true,
          describe:
            'Variables that beat every other source, as for apply: key=value, a YAML/JSON mapping, or @FILE',
        }),
    ).epilog('Exit codes: 0 valid (warnings are printed but allowed); 1 invalid, with file:line:column.'),
  run: (args, io) => runValidate(args, io),
};
