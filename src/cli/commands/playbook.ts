/** `sshfix apply` and `sshfix plan`: the same code path, plan being apply --check --diff. */
import type { Argv } from 'yargs';
import { ConfigError, formatDiagnostic } from '../../config/diagnostics.js';
import type { HostPlan } from '../../plan/types.js';
import { writePlanFile } from '../plan_file_io.js';
import { isPlanFile, loadReviewedRun, parseMaxAge, savedPlanDocument } from '../reviewed_plan.js';
import { loadInventory, type Inventory } from '../../config/inventory.js';
import { selectPlaybookHosts } from '../../config/selection.js';
import { loadPlaybook, playVariables, type Playbook } from '../../config/playbook.js';
import { parseTagOption, selectTasks } from '../../config/task_selection.js';
import { renderTaskList } from '../render_task_list.js';
import { RESOURCES, resourceSchemas } from '../../resources/registry.js';
import { loadSshConfig } from '../../transport/ssh_config.js';
import { bindPlaybook, runJobs, type RunOptions } from '../../executor/run.js';
import { DEFAULTS, type Settings } from '../../config/settings.js';
import { commandSettings, configuredConnection, describeSettings } from '../settings.js';
import { reportValidation } from './validate.js';
import type { HostResult } from '../../executor/results.js';
import { EXIT, exitCodeFor } from '../exit_codes.js';
import { parseExtraVars } from '../../config/extra_vars.js';
import { renderHost, renderRecap, type TextStyle } from '../render_text.js';
import { renderJson } from '../render_json.js';
import { renderJunit } from '../render_junit.js';
import { parseShard, selectShard } from '../shard.js';
import { createLiveOutput } from '../progress.js';
import { tracingConnect } from '../verbose.js';
import { redactConfigError, redactHostResult } from '../redact.js';
import { secretValues } from '../../config/secrets.js';
import { vaultFromArgs, vaultOptions } from '../vault_password.js';
import type { Vault } from '../../config/vault.js';
import { openConnection } from '../../transport/connect.js';
import { colourWanted, EXIT_CODES_EPILOG, type CliIO, type Command, type ParsedArgs } from '../io.js';
import { inOrder } from '../host_order.js';
import { parseMaxFailPercentage, parseSerial } from '../../executor/rollout.js';
import { DEFAULT_CONFIRM_TIMEOUT_S } from '../../executor/transaction.js';
import { numberOption, secondsOption } from '../options.js';
import { Interruption } from '../../executor/interruption.js';
import { handleInterrupts, interruptedExitCode, recapInterruption, unsettledReport } from '../interrupts.js';

export function runOptions(y: Argv): Argv {
  const run = y
    .option('inventory', {
      alias: 'i',
      type: 'string',
      describe:
        'Inventory file (Ansible YAML or INI); default: inventory of sshfix.cfg/ansible.cfg or $SSHFIX_INVENTORY; ' +
        'apply PLAN: the one recorded in the plan unless given',
    })
    .option('limit', {
      alias: 'l',
      type: 'string',
      describe:
        'Further limit the hosts with a pattern (a:b, a:&b, a:!b, globs); a term matching nothing warns, no host left is an error',
    })
    .option('forks', {
      alias: 'f',
      type: 'number',
      defaultDescription: `forks of the config file, else ${DEFAULTS.forks}`,
      describe: 'Hosts worked on at once (a whole number, 1 or more)',
    })
    .option('format', {
      choices: ['text', 'json', 'junit'] as const,
      default: 'text' as const,
      describe:
        'Output format (junit: JUnit XML for CI test reports); on bad input, json and junit still write a document saying what was wrong',
    })
    .option('shard', {
      type: 'string',
      describe:
        'Run only shard K of N (e.g. 2/5) of the selected hosts: round-robin over the sorted host names, for CI matrices',
    })
    .option('verbose', {
      alias: 'v',
      type: 'boolean',
      default: false,
      describe:
        'Print the config file and settings used, and every script sent to a host and how it ended, on stderr (secrets masked)',
    })
    .option('connection', {
      alias: 'c',
      choices: ['ssh', 'local'] as const,
      describe: 'Connection type for every host',
    })
    .option('user', {
      alias: 'u',
      type: 'string',
      describe:
        'Remote user, for every host (default: inventory ansible_user, else remote_user of the config file, else ssh_config, else yours)',
    })
    .option('private-key', {
      alias: 'key-file',
      type: 'string',
      describe:
        'Private key file for every host (must be readable: checked before connecting; default: inventory, else private_key_file of the config file)',
    })
    .option('ssh-config', {
      alias: 'F',
      type: 'string',
      describe:
        'OpenSSH client config for HostName, Port, User, IdentityFile, ProxyJump… (default ~/.ssh/config; -F /dev/null reads none)',
    })
    .option('known-hosts', {
      type: 'string',
      describe: 'known_hosts file to verify host keys against (default ~/.ssh/known_hosts)',
    })
    .option('accept-new-host-keys', {
      type: 'boolean',
      defaultDescription: 'false, or true with host_key_checking = False in the config file',
      describe: 'Record the keys of hosts not yet in known_hosts (a changed key is still refused)',
    })
    .option('become', {
      alias: 'b',
      type: 'boolean',
      describe:
        "Run as root through sudo on hosts whose play and inventory do not say otherwise (a play's become: and ansible_become beat it, as in Ansible)",
    })
    .option('become-user', {
      type: 'string',
      describe: 'Only root: sshfix edits files that only root may change',
    })
    .option('list-hosts', {
      type: 'boolean',
      default: false,
      describe: 'List the hosts of each play, as ansible-playbook does, and stop (nothing is contacted)',
    })
    .option('syntax-check', {
      type: 'boolean',
      default: false,
      describe: 'Check the playbook as sshfix validate does, and stop (nothing is contacted)',
    })
    .option('extra-vars', {
      alias: 'e',
      type: 'string',
      array: true,
      describe:
        'Variables that beat every other source: key=value, a YAML/JSON mapping, or @FILE (YAML/JSON, maybe vaulted)',
    })
    .option('connect-timeout', {
      type: 'number',
      defaultDescription: `timeout of the config file, else ${DEFAULTS.timeout}`,
      describe: 'Seconds to wait for a connection (more than 0)',
    })
    .option('command-timeout', {
      type: 'number',
      default: 120,
      describe: 'Seconds a remote command may take (more than 0)',
    })
    .option('tags', {
      alias: 't',
      type: 'string',
      array: true,
      describe:
        'Run only tasks with one of these tags (commas separate tags; play tags count; "always" tasks run too, "never" ones only when named)',
    })
    .option('skip-tags', {
      type: 'string',
      array: true,
      describe: 'Run no task with one of these tags (commas separate tags)',
    })
    .option('start-at-task', {
      type: 'string',
      describe: 'Skip every task before the first task of this name (handlers still run when notified)',
    })
    .option('list-tasks', {
      type: 'boolean',
      default: false,
      describe:
        'List the tasks that would run (after --tags, --skip-tags, --start-at-task) and exit; contacts no host',
    })
    .option('detailed-exitcode', {
      type: 'boolean',
      default: false,
      describe: 'Exit 2 when changes are pending (plan) or were made (apply)',
    });
  return vaultOptions(run);
}

async function runPlaybook(args: ParsedArgs, mode: 'apply' | 'plan', io: CliIO): Promise<number> {
  const vault = await vaultFromArgs(args);
  try {
    return await runPlaybookWith(vault, args, mode, io);
  } catch (error) {
    // A message may quote a value (a schema complaint, a rendered argument): never a vault's plaintext.
    throw redactConfigError(error, vault.secrets());
  }
}

async function runPlaybookWith(
  vault: Vault,
  args: ParsedArgs,
  mode: 'apply' | 'plan',
  io: CliIO,
): Promise<number> {
  const check = mode === 'plan' || Boolean(args.check);
  const format = args.format as 'text' | 'json' | 'junit';
  const shard = args.shard === undefined ? undefined : parseShard(String(args.shard));
  const style: TextStyle = {
    color: colourWanted(io) && format === 'text',
    diff: mode === 'plan' || Boolean(args.diff),
    check,
  };
  const settings = commandSettings(args);
  if (args.verbose) io.stderr(describeSettings(settings));
  if (settings.warnings.length > 0) io.stderr(settings.warnings.map(formatDiagnostic).join('\n') + '\n');
  if (args['syntax-check']) return syntaxCheck(args, settings, io, vault);
  const { forks, timeout: connectTimeoutS } = settings.values;
  const commandTimeoutS = secondsOption(args, 'command-timeout');
  const privateKeyFile =
    settings.origins.private_key_file.kind === 'cli' ? settings.values.private_key_file : undefined;
  const configured = configuredConnection(settings);
  const become = becomeOption(args);
  const safety = applySafetyOptions(args);
  const givenVars = parseExtraVars((args['extra-vars'] as string[] | undefined) ?? [], vault);
  const reviewed =
    mode === 'apply' && !check && isPlanFile(String(args.playbook))
      ? await loadReviewedRun(String(args.playbook), {
          ...(args.inventory !== undefined ? { inventory: String(args.inventory) } : {}),
          extraVars: givenVars,
          ...(args['max-age'] !== undefined ? { maxAgeMs: parseMaxAge(String(args['max-age'])) } : {}),
          now: new Date(),
        })
      : undefined;
  if (reviewed === undefined && mode === 'apply' && isPlanFile(String(args.playbook)))
    throw new ConfigError([
      {
        severity: 'error',
        summary: `${String(args.playbook)} is a plan file: apply --check does not take one; read it with sshfix show`,
      },
    ]);
  if (reviewed === undefined && args['max-age'] !== undefined)
    throw new ConfigError([
      { severity: 'error', summary: '--max-age applies to apply PLAN (a plan file) only' },
    ]);
  const playbookPath = reviewed?.playbookPath ?? String(args.playbook);
  const playbook = selectedTasks(loadPlaybook(playbookPath, resourceSchemas(), vault), args, io, {
    reviewed: reviewed !== undefined,
    saving: mode === 'plan' && args.out !== undefined,
  });
  if (args['list-tasks']) {
    io.stdout(renderTaskList(playbook));
    return 0;
  }
  // A plan file records its inventory: only -i replaces it, never a config file's.
  const inventoryPath = reviewed?.inventoryPath ?? settings.values.inventory;
  if (inventoryPath === undefined)
    throw new ConfigError([{ severity: 'error', summary: 'Missing required argument: inventory' }]);
  const inventory = loadInventory(inventoryPath, vault);
  if (args['list-hosts']) return listHosts(playbook, inventory, args.limit as string | undefined, io);
  const options: RunOptions = {
    check,
    limit: args.limit as string | undefined,
    forks,
    connection: args.connection as 'ssh' | 'local' | undefined,
    user: args.user as string | undefined,
    ...(privateKeyFile !== undefined ? { privateKeyFile } : {}),
    ...(configured.user !== undefined || configured.privateKeyFile !== undefined ? { configured } : {}),
    ...(become !== undefined ? { become } : {}),
    knownHostsFile: args['known-hosts'] as string | undefined,
    sshConfig: loadSshConfig(args['ssh-config'] as string | undefined),
    // host_key_checking = False is --accept-new-host-keys: unknown keys are recorded, changed ones refused.
    acceptNewHostKeys: !settings.values.host_key_checking,
    ...(settings.values.backup_dir !== undefined ? { backupRoot: settings.values.backup_dir } : {}),
    extraVars: reviewed?.extraVars ?? givenVars,
    connectTimeoutMs: connectTimeoutS * 1000,
    commandTimeoutMs: commandTimeoutS * 1000,
    ...safety,
    ...(reviewed ? { reviewed: reviewed.plays } : {}),
  };
  const selection = selectPlaybookHosts(playbook.plays, inventory, options.limit);
  if (selection.warnings.length > 0) io.stderr(selection.warnings.map(formatDiagnostic).join('\n') + '\n');
  const bound = bindPlaybook(playbook, inventory, RESOURCES, options, selection);
  // apply PLAN: hosts the plan does not hold are never touched; --limit and --shard narrow it further.
  const jobs = selectShard(reviewed ? bound.filter((j) => reviewed.plays.has(j.host)) : bound, shard);
  const live = createLiveOutput(io, {
    live: io.isTTY,
    total: jobs.length,
    columns: process.stdout.columns || 80,
  });
  const varSets = [...[...inventory.hosts.values()].map((h) => h.vars), ...playbook.plays.map(playVariables)];
  // Secret-named variables, and whatever came out of a vault under any name.
  const secrets = [...[...varSets, options.extraVars ?? {}].flatMap(secretValues), ...vault.secrets()];
  options.onProgress = live.step;
  const out = mode === 'plan' && args.out !== undefined ? String(args.out) : undefined;
  const hostPlans = new Map<string, HostPlan[]>();
  if (out !== undefined)
    options.onHostPlan = (host, plan) => hostPlans.set(host, [...(hostPlans.get(host) ?? []), plan]);
  const blocks = inOrder<HostResult>(
    jobs.map((j) => j.host),
    (r) => live.print(renderHost(redactHostResult(r, secrets), style)),
  );
  options.onHostDone = (r: HostResult) => {
    live.hostDone(r);
    if (format === 'text') blocks.done(r.host, r);
  };
  if (args.verbose) {
    options.connect = tracingConnect(options.connect ?? openConnection, live.printError, secrets);
  }
  // Only a run that changes hosts has transactions to settle; a dry run may simply die.
  const interruption = check ? undefined : new Interruption();
  if (interruption) options.interruption = interruption;
  const stopHandling = interruption
    ? handleInterrupts(interruption, live.printError, io.exit ?? ((code) => process.exit(code)))
    : () => undefined;
  const results = (
    await runJobs(jobs, options).finally(() => {
      stopHandling();
      blocks.flush();
      live.finish();
    })
  ).map((r) => redactHostResult(r, secrets));
  if (out !== undefined) {
    const doc = savedPlanDocument({
      results,
      plans: hostPlans,
      playbookPath,
      inventoryPath,
      extraVars: options.extraVars ?? {},
      secrets,
      now: new Date(),
    });
    await writePlanFile(out, doc);
    io.stderr(`Plan saved to ${out} (${doc.digest}); review it with: sshfix show ${out}\n`);
  }
  const interrupted = recapInterruption(interruption);
  if (format === 'json') io.stdout(renderJson(results, mode, interrupted));
  else if (format === 'junit') io.stdout(renderJunit(results, { mode, check, diff: style.diff }));
  else io.stdout('\n' + renderRecap(results, style, interrupted));
  if (interruption?.signal === undefined) return exitCodeFor(results, Boolean(args['detailed-exitcode']));
  io.stderr(unsettledReport(interruption));
  return interruptedExitCode(interruption.signal);
}

/**
 * `--become` and `--become-user`. sshfix edits sshd_config, the firewall and
 * TCP wrappers, which only root may change, so root is the only user to
 * become: any other is refused rather than ignored.
 */
function becomeOption(args: ParsedArgs): boolean | undefined {
  const user = args['become-user'];
  if (user !== undefined && String(user) !== 'root')
    throw new ConfigError([
      {
        severity: 'error',
        summary: `--become-user ${String(user)}: sshfix becomes root only (it edits files only root may change)`,
      },
    ]);
  return args.become === undefined ? undefined : Boolean(args.become);
}

/**
 * `--list-hosts`: each play's hosts (after --limit), in ansible-playbook's
 * layout, without contacting any. Hosts are in inventory order.
 */
function listHosts(playbook: Playbook, inventory: Inventory, limit: string | undefined, io: CliIO): number {
  const selection = selectPlaybookHosts(playbook.plays, inventory, limit);
  if (selection.warnings.length > 0) io.stderr(selection.warnings.map(formatDiagnostic).join('\n') + '\n');
  if (selection.errors.length > 0) throw new ConfigError(selection.errors);
  const lines = ['', `playbook: ${playbook.path}`];
  playbook.plays.forEach((play, index) => {
    const hosts = selection.playHosts[index] ?? [];
    lines.push(
      '',
      `  play #${index + 1} (${play.hosts}): ${play.name}`,
      `    pattern: ['${play.hosts}']`,
      `    hosts (${hosts.length}):`,
      ...hosts.map((h) => `      ${h}`),
    );
  });
  io.stdout(lines.join('\n') + '\n');
  return EXIT.ok;
}

/** `--syntax-check`: `sshfix validate` with the same playbook, inventory, --limit and -e. */
function syntaxCheck(args: ParsedArgs, settings: Settings, io: CliIO, vault: Vault): number {
  return reportValidation(
    {
      playbook: String(args.playbook),
      ...(settings.values.inventory !== undefined ? { inventory: settings.values.inventory } : {}),
      ...(args.limit !== undefined ? { limit: String(args.limit) } : {}),
      extraVars: parseExtraVars((args['extra-vars'] as string[] | undefined) ?? [], vault),
      vault,
    },
    io,
  );
}

/**
 * The playbook with the tasks --tags, --skip-tags and --start-at-task select
 * (warnings, such as a tag no task has, on stderr). A saved plan holds every
 * task and apply PLAN applies what was reviewed: neither takes a selection.
 */
function selectedTasks(
  playbook: Playbook,
  args: ParsedArgs,
  io: CliIO,
  context: { reviewed: boolean; saving: boolean },
): Playbook {
  const tags = parseTagOption((args.tags as string[] | undefined) ?? []);
  const skipTags = parseTagOption((args['skip-tags'] as string[] | undefined) ?? []);
  const startAtTask = args['start-at-task'] === undefined ? undefined : String(args['start-at-task']);
  const given = [
    ...(tags.length > 0 ? ['--tags'] : []),
    ...(skipTags.length > 0 ? ['--skip-tags'] : []),
    ...(startAtTask !== undefined ? ['--start-at-task'] : []),
  ];
  const refuse = (why: string): never => {
    throw new ConfigError([{ severity: 'error', summary: `${given.join(', ')}: ${why}` }]);
  };
  // Without these options the selection still leaves out tasks tagged `never`, as Ansible does.
  if (given.length > 0 && context.reviewed)
    refuse('apply PLAN applies the tasks the plan was made with; select them when planning');
  if (given.length > 0 && context.saving)
    refuse('a saved plan (--out) holds every task of the playbook; drop the selection to save it');
  const selection = selectTasks(playbook, {
    tags,
    skipTags,
    ...(startAtTask !== undefined ? { startAtTask } : {}),
  });
  if (selection.warnings.length > 0) io.stderr(selection.warnings.map(formatDiagnostic).join('\n') + '\n');
  return selection.playbook;
}

/** --no-rollback, --confirm-timeout, --force, --serial, --max-fail-percentage (apply only). */
function applySafetyOptions(args: ParsedArgs): Partial<RunOptions> {
  const options: Partial<RunOptions> = {};
  if (args.rollback !== undefined) options.rollback = Boolean(args.rollback);
  if (args['confirm-timeout'] !== undefined)
    options.confirmTimeoutS = secondsOption(args, 'confirm-timeout', 5);
  if (args.force !== undefined) options.force = Boolean(args.force);
  if (args.serial !== undefined) options.serial = parseSerial(String(args.serial));
  if (args['max-fail-percentage'] !== undefined)
    options.maxFailPercentage = parseMaxFailPercentage(
      numberOption(args, 'max-fail-percentage', 'give a percentage from 0 to 100'),
    );
  return options;
}

export const applyCommand: Command = {
  command: 'apply <playbook>',
  describe: 'Converge hosts to the playbook, or apply a plan saved by plan --out exactly as reviewed',
  builder: (y) =>
    runOptions(y)
      .positional('playbook', {
        type: 'string',
        describe:
          'Playbook file (YAML), or a plan file (JSON, from plan --out): then only its hosts are contacted, ' +
          'each planned again and changed only if its facts and changes are those reviewed (else refused as stale, exit 3)',
      })
      .option('max-age', {
        type: 'string',
        describe:
          'apply PLAN: refuse a plan made longer ago than this (e.g. 30m, 24h, 7d); no limit unless given',
      })
      .option('check', {
        alias: 'C',
        type: 'boolean',
        default: false,
        describe: 'Dry run: show what would change, change nothing',
      })
      .option('diff', {
        alias: 'D',
        type: 'boolean',
        default: false,
        describe: 'Show unified diffs of file changes',
      })
      .option('backup-dir', {
        type: 'string',
        defaultDescription: '/var/backups/sshfix, or backup_dir of the config file',
        describe:
          "Where each host keeps the run's backups and restore script (an absolute path on the hosts); " +
          "runs sharing a host must share it: it is where a run sees another run's undecided change",
      })
      .option('confirm-timeout', {
        type: 'number',
        default: DEFAULT_CONFIRM_TIMEOUT_S,
        describe:
          'Seconds each changed host waits, from its reload, for sshfix to confirm the change over a NEW SSH ' +
          'connection; past that, the host restores its backup by itself (also if sshfix dies or loses the host). ' +
          'A confirmation whose new connection got through the key exchange may extend it, to twice this at most',
      })
      .option('rollback', {
        type: 'boolean',
        default: true,
        describe:
          'Back up, arm an on-host rollback timer and confirm with a new connection. DANGER: --no-rollback ' +
          'applies changes bare: a change that locks you out (sshd, firewall, hosts.deny) stays in place ' +
          'and the host may only be reachable from its console afterwards',
      })
      .option('force', {
        type: 'boolean',
        default: false,
        describe:
          'Apply even when a lockout guard refuses the change (AllowUsers/DenyUsers excluding you, ' +
          'PermitRootLogin no as root, a blocked Port...); the new-connection check still rolls it back',
      })
      .option('serial', {
        type: 'string',
        describe: 'Roll out in batches of N hosts or N% of the hosts, one batch after the other',
      })
      .option('max-fail-percentage', {
        type: 'number',
        describe: 'Stop the rollout (later batches are not run) when more than P% of a batch fails',
      })
      .epilog(EXIT_CODES_EPILOG),
  run: (args, io) => runPlaybook(args, 'apply', io),
};

export const planCommand: Command = {
  command: 'plan <playbook>',
  describe: 'Show what apply would change (apply --check --diff)',
  builder: (y) =>
    runOptions(y)
      .positional('playbook', { type: 'string', describe: 'Playbook file (YAML)' })
      .option('out', {
        type: 'string',
        describe:
          'Also save the plan to this file (JSON, secrets masked) for review (sshfix show) and for apply PLAN',
      })
      .epilog(EXIT_CODES_EPILOG),
  run: (args, io) => runPlaybook(args, 'plan', io),
};
