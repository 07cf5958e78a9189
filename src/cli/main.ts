/**
 * The command line: parses arguments (yargs), calls the executor, renders the
 * results. No logic of its own beyond that. `main` returns the exit code so
 * tests can run the CLI in-process.
 */
import yargs, { type Argv } from 'yargs';
import { ConfigError, formatDiagnostic } from '../config/diagnostics.js';
import { loadInventory, selectHosts } from '../config/inventory.js';
import { loadPlaybook } from '../config/playbook.js';
import { RESOURCES, resourceSchemas } from '../resources/registry.js';
import { bindPlaybook, DEFAULT_FORKS, runJobs, type RunOptions } from '../executor/run.js';
import type { HostResult } from '../executor/results.js';
import { EXIT, exitCodeFor } from './exit_codes.js';
import { renderHost, renderRecap, type TextStyle } from './render_text.js';
import { renderJson } from './render_json.js';
import { VERSION } from './version.js';
import { runDemo } from './demo.js';

export interface CliIO {
  stdout(text: string): void;
  stderr(text: string): void;
  isTTY: boolean;
}

export const processIO: CliIO = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  isTTY: Boolean(process.stdout.isTTY),
};

const EPILOG = `Exit codes: 0 success; 1 a task failed or bad input; 2 changes pending (with --detailed-exitcode); 4 a host was unreachable (and nothing failed).`;

function runOptions(y: Argv) {
  return y
    .option('inventory', {
      alias: 'i',
      type: 'string',
      demandOption: true,
      describe: 'Inventory file (Ansible YAML or INI)',
    })
    .option('limit', {
      alias: 'l',
      type: 'string',
      describe: 'Further limit the hosts with a pattern (a:b, a:&b, a:!b, globs)',
    })
    .option('forks', {
      alias: 'f',
      type: 'number',
      default: DEFAULT_FORKS,
      describe: 'Hosts worked on at once',
    })
    .option('format', {
      choices: ['text', 'json'] as const,
      default: 'text' as const,
      describe: 'Output format',
    })
    .option('connection', {
      alias: 'c',
      choices: ['ssh', 'local'] as const,
      describe: 'Connection type for every host',
    })
    .option('user', {
      alias: 'u',
      type: 'string',
      describe: 'Remote user (default: inventory ansible_user, else yours)',
    })
    .option('private-key', {
      alias: 'key-file',
      type: 'string',
      describe: 'Private key file for authentication',
    })
    .option('known-hosts', {
      type: 'string',
      describe: 'known_hosts file to verify host keys against (default ~/.ssh/known_hosts)',
    })
    .option('accept-new-host-keys', {
      type: 'boolean',
      default: false,
      describe: 'Record the keys of hosts not yet in known_hosts (a changed key is still refused)',
    })
    .option('connect-timeout', { type: 'number', default: 10, describe: 'Seconds to wait for a connection' })
    .option('command-timeout', {
      type: 'number',
      default: 120,
      describe: 'Seconds a remote command may take',
    })
    .option('detailed-exitcode', {
      type: 'boolean',
      default: false,
      describe: 'Exit 2 when changes are pending (plan) or were made (apply)',
    });
}

function buildParser(argv: string[]) {
  return yargs(argv)
    .scriptName('sshfix')
    .usage('$0 <command> [options]\n\nKeep fleets of Linux servers reachable over SSH.')
    .command('apply <playbook>', 'Converge hosts to the playbook', (y) =>
      runOptions(y)
        .positional('playbook', { type: 'string', describe: 'Playbook file (YAML)' })
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
        .epilog(EPILOG),
    )
    .command('plan <playbook>', 'Show what apply would change (apply --check --diff)', (y) =>
      runOptions(y)
        .positional('playbook', { type: 'string', describe: 'Playbook file (YAML)' })
        .epilog(EPILOG),
    )
    .command('inventory', 'Show the resolved hosts and their variables', (y) =>
      y
        .option('inventory', {
          alias: 'i',
          type: 'string',
          demandOption: true,
          describe: 'Inventory file (Ansible YAML or INI)',
        })
        .option('limit', { alias: 'l', type: 'string', describe: 'Host pattern' })
        .option('format', { choices: ['text', 'json'] as const, default: 'text' as const }),
    )
    .command(
      'demo',
      'Build a throw-away lab of real sshd hosts, break them, and fix them (Linux, root)',
      (y) =>
        y
          .option('hosts', { type: 'number', default: 3, describe: 'How many lab hosts' })
          .option('keep', { type: 'boolean', default: false, describe: 'Leave the lab running afterwards' }),
    )
    .demandCommand(1, 'Name a command: apply, plan, inventory or demo.')
    .strict()
    .version(VERSION)
    .help()
    .alias('h', 'help')
    .wrap(Math.min(110, process.stdout.columns || 100))
    .epilog(EPILOG);
}

interface ParsedArgs {
  _: (string | number)[];
  [key: string]: unknown;
}

function parse(argv: string[]): { args?: ParsedArgs; output: string; error?: string } {
  let output = '';
  let error: string | undefined;
  let args: ParsedArgs | undefined;
  buildParser(argv)
    .exitProcess(false)
    .parse(argv, {}, (err: Error | undefined, parsed: ParsedArgs, out: string) => {
      output = out;
      if (err) error = err.message;
      args = parsed;
    });
  return { args, output, ...(error !== undefined ? { error } : {}) };
}

async function runPlaybook(args: ParsedArgs, mode: 'apply' | 'plan', io: CliIO): Promise<number> {
  const check = mode === 'plan' || Boolean(args.check);
  const format = args.format as 'text' | 'json';
  const style: TextStyle = {
    color: io.isTTY && format === 'text',
    diff: mode === 'plan' || Boolean(args.diff),
    check,
  };
  const playbook = loadPlaybook(String(args.playbook), resourceSchemas());
  const inventory = loadInventory(String(args.inventory));
  const options: RunOptions = {
    check,
    limit: args.limit as string | undefined,
    forks: Number(args.forks),
    connection: args.connection as 'ssh' | 'local' | undefined,
    user: args.user as string | undefined,
    privateKeyFile: args['private-key'] as string | undefined,
    knownHostsFile: args['known-hosts'] as string | undefined,
    acceptNewHostKeys: Boolean(args['accept-new-host-keys']),
    connectTimeoutMs: Number(args['connect-timeout']) * 1000,
    commandTimeoutMs: Number(args['command-timeout']) * 1000,
    onHostDone: format === 'text' ? (r: HostResult) => io.stdout(renderHost(r, style)) : undefined,
  };
  const jobs = bindPlaybook(playbook, inventory, RESOURCES, options);
  const results = await runJobs(jobs, options);
  io.stdout(format === 'json' ? renderJson(results, mode) : '\n' + renderRecap(results, style));
  return exitCodeFor(results, Boolean(args['detailed-exitcode']));
}

function showInventory(args: ParsedArgs, io: CliIO): number {
  const inventory = loadInventory(String(args.inventory));
  const names = selectHosts(inventory, (args.limit as string | undefined) ?? 'all');
  const hosts = names.map((n) => inventory.hosts.get(n)!);
  if (args.format === 'json') {
    io.stdout(
      JSON.stringify(
        { hosts: Object.fromEntries(hosts.map((h) => [h.name, { groups: h.groups, vars: h.vars }])) },
        null,
        2,
      ) + '\n',
    );
  } else {
    for (const h of hosts) {
      io.stdout(`${h.name}  groups: ${h.groups.join(', ')}\n`);
      for (const [k, v] of Object.entries(h.vars)) io.stdout(`    ${k}: ${JSON.stringify(v)}\n`);
    }
  }
  return EXIT.ok;
}

export async function main(argv: string[], io: CliIO = processIO): Promise<number> {
  const { args, output, error } = parse(argv);
  if (error !== undefined) {
    io.stderr(`${output ? output + '\n\n' : ''}sshfix: ${error}\n`);
    return EXIT.failed;
  }
  if (output) {
    io.stdout(output + '\n');
    return EXIT.ok;
  }
  if (!args) return EXIT.failed;
  try {
    switch (args._[0]) {
      case 'apply':
        return await runPlaybook(args, 'apply', io);
      case 'plan':
        return await runPlaybook(args, 'plan', io);
      case 'inventory':
        return showInventory(args, io);
      case 'demo':
        return await runDemo({ hosts: Number(args.hosts), keep: Boolean(args.keep) }, io, (argv) =>
          main(argv, io),
        );
      default:
        io.stderr(`sshfix: unknown command ${String(args._[0])}\n`);
        return EXIT.failed;
    }
  } catch (e) {
    if (e instanceof ConfigError) {
      io.stderr(e.diagnostics.map(formatDiagnostic).join('\n') + '\n');
      return EXIT.failed;
    }
    throw e;
  }
}
