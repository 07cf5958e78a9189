/**
 * The command line: parses arguments (yargs) and hands them to one command
 * module (src/cli/commands/). No logic of its own beyond that. `main` returns
 * the exit code so tests can run the CLI in-process.
 */
import yargs from 'yargs';
import { ConfigError, formatDiagnostic, type Diagnostic } from '../config/diagnostics.js';
import { renderJsonError } from './render_json.js';
import { renderJunitError } from './render_junit.js';
import { EXIT } from './exit_codes.js';
import { VERSION } from './version.js';
import { EXIT_CODES_EPILOG, processIO, type CliIO, type Command, type ParsedArgs } from './io.js';
import { applyCommand, planCommand } from './commands/playbook.js';
import { inventoryCommand } from './commands/inventory.js';
import { demoCommand } from './commands/demo.js';
import { diagnoseCommand } from './commands/diagnose.js';
import { validateCommand } from './commands/validate.js';
import { showCommand } from './commands/show.js';
import { configCommand } from './commands/config.js';

export type { CliIO } from './io.js';
export { processIO } from './io.js';

const COMMANDS: Command[] = [
  applyCommand,
  planCommand,
  validateCommand,
  showCommand,
  inventoryCommand,
  diagnoseCommand,
  configCommand,
  demoCommand,
];

const commandName = (c: Command) => c.command.split(' ')[0]!;

function buildParser(argv: string[]) {
  let parser = yargs(argv)
    .scriptName('sshfix')
    .usage('$0 <command> [options]\n\nKeep fleets of Linux servers reachable over SSH.');
  for (const c of COMMANDS) parser = parser.command(c.command, c.describe, (y) => c.builder(y));
  return parser
    .demandCommand(1, `Name a command: ${COMMANDS.map(commandName).join(', ')}.`)
    .strict()
    .version(VERSION)
    .help()
    .alias('h', 'help')
    .wrap(Math.min(110, process.stdout.columns || 100))
    .epilog(EXIT_CODES_EPILOG);
}

/**
 * yargs renders the whole help text on every run that reaches a command, in
 * case the command's handler shows help later (~50 ms of start-up, a tenth of
 * the time before the first connection). Our handlers are empty: commands run
 * after parsing, and help is only ever shown by yargs itself, which renders it
 * on demand when nothing is cached. `getInternalMethods` is yargs' own
 * instance API; if it changes shape, help is cached as before.
 */
function skipHelpCache(parser: ReturnType<typeof buildParser>): void {
  const internal = (parser as unknown as { getInternalMethods?: () => unknown }).getInternalMethods?.();
  const usage = (internal as { getUsageInstance?: () => unknown } | undefined)?.getUsageInstance?.() as
    { cacheHelpMessage?: () => void } | undefined;
  if (usage && typeof usage.cacheHelpMessage === 'function') usage.cacheHelpMessage = () => undefined;
}

function parse(argv: string[]): { args?: ParsedArgs; output: string; error?: string } {
  let output = '';
  let error: string | undefined;
  let args: ParsedArgs | undefined;
  const parser = buildParser(argv);
  skipHelpCache(parser);
  parser.exitProcess(false).parse(argv, {}, (err: Error | undefined, parsed: ParsedArgs, out: string) => {
    output = out;
    if (err) error = err.message;
    args = parsed;
  });
  return { args, output, ...(error !== undefined ? { error } : {}) };
}

/**
 * With `--format json|junit`, stdout is read by programs: on bad input they
 * get a document that says what was wrong, not nothing (stderr is for people).
 */
function writeInputErrorDocument(args: ParsedArgs | undefined, diagnostics: Diagnostic[], io: CliIO): void {
  const name = args?._[0];
  const mode = name === 'apply' || name === 'plan' ? name : undefined;
  if (args?.format === 'json') io.stdout(renderJsonError(diagnostics, mode));
  else if (args?.format === 'junit' && mode) io.stdout(renderJunitError(diagnostics, mode));
}

export async function main(argv: string[], io: CliIO = processIO): Promise<number> {
  const { args, output, error } = parse(argv);
  if (error !== undefined) {
    io.stderr(`${output ? output + '\n\n' : ''}sshfix: ${error}\n`);
    writeInputErrorDocument(args, [{ severity: 'error', summary: error }], io);
    return EXIT.failed;
  }
  if (output) {
    io.stdout(output + '\n');
    return EXIT.ok;
  }
  const command = COMMANDS.find((c) => commandName(c) === args?._[0]);
  if (!args || !command) {
    io.stderr(`sshfix: unknown command ${String(args?._[0])}\n`);
    return EXIT.failed;
  }
  try {
    return await command.run(args, io, (next, nestedIO) => main(next, nestedIO ?? io));
  } catch (e) {
    if (e instanceof ConfigError) {
      io.stderr(e.diagnostics.map(formatDiagnostic).join('\n') + '\n');
      writeInputErrorDocument(args, e.diagnostics, io);
      return EXIT.failed;
    }
    throw e;
  }
}
