/** Where the CLI writes; tests pass their own to run commands in-process. */
export interface CliIO {
  stdout(text: string): void;
  stderr(text: string): void;
  isTTY: boolean;
  /**
   * Ends the process at once (apply's third SIGINT). Unset: process.exit.
   * `sshfix demo` runs apply in-process and must tear its lab down first.
   */
  exit?(code: number): void;
}

/**
 * Colour only on a terminal, and not when NO_COLOR is set to anything but
 * the empty string (no-color.org).
 */
export function colourWanted(io: Pick<CliIO, 'isTTY'>, env: NodeJS.ProcessEnv = process.env): boolean {
  return io.isTTY && (env.NO_COLOR ?? '') === '';
}

export const processIO: CliIO = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  isTTY: Boolean(process.stdout.isTTY),
};

/** Runs another command of the CLI in-process (the demo's steps), optionally with its own IO. */
export type CliRunner = (argv: string[], io?: CliIO) => Promise<number>;

/** Arguments as yargs parsed them. */
export interface ParsedArgs {
  _: (string | number)[];
  [key: string]: unknown;
}

/** One sub-command: its yargs definition and what it runs. */
export interface Command {
  /** yargs command string, e.g. "apply <playbook>". */
  command: string;
  describe: string;
  builder(y: import('yargs').Argv): import('yargs').Argv;
  run(args: ParsedArgs, io: CliIO, cli: CliRunner): Promise<number>;
}

export const EXIT_CODES_EPILOG =
  "Exit codes: 0 success; 1 a task failed, bad input, or apply PLAN refused the whole plan (digest, version, --max-age, other inputs: no host contacted); 2 changes pending (with --detailed-exitcode); 3 apply PLAN refused some host as stale (its facts changed since the plan; the other hosts were applied); 4 a host was unreachable; 130/143 interrupted by SIGINT/SIGTERM (the recap gives each host's state). When several apply, the first of 1, 3, 4, 2 wins.";
