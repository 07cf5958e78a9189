/**
 * Vault passwords from the command line, as ansible-playbook takes them:
 *
 * - `--vault-password-file FILE`: the file's content with surrounding
 *   whitespace stripped; or, when FILE is executable, what the program prints
 *   on stdout, stripped of line ends (its stderr and stdin stay the
 *   terminal's, so it may prompt). A program whose name ends in `-client`
 *   (`vault-pass-client.py`) is asked with `--vault-id default`, as Ansible
 *   asks its client scripts. May be given several times: each is tried.
 * - `--ask-vault-pass`: prompts on the terminal, without echo. With no
 *   terminal (CI, a pipe) it is an error that says so, never a hang.
 * - `--vault-id LABEL@SOURCE`: SOURCE is a file (or program) as above, or
 *   `prompt`; LABEL is the vault id whose 1.2 vaults its password is tried
 *   on first. A bare SOURCE has the label "default".
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Argv } from 'yargs';
import { ConfigError } from '../config/diagnostics.js';
import { Vault } from '../config/vault.js';
import { errorMessage } from '../errors.js';
import { DEFAULT_VAULT_ID, type VaultPassword } from '../formats/ansible_vault.js';
import type { ParsedArgs } from './io.js';

function invalid(summary: string): ConfigError {
  return new ConfigError([{ severity: 'error', summary }]);
}

export function vaultOptions(y: Argv): Argv {
  return y
    .option('vault-password-file', {
      alias: 'vault-pass-file',
      type: 'string',
      array: true,
      describe:
        'Password for Ansible Vault files and !vault values: a file, or a program that prints it (if executable); may be repeated',
    })
    .option('vault-id', {
      type: 'string',
      array: true,
      describe:
        'A labelled vault password: LABEL@FILE, LABEL@prompt or FILE; tried first on vaults made with that --vault-id; may be repeated',
    })
    .option('ask-vault-pass', {
      alias: ['J', 'ask-vault-password'],
      type: 'boolean',
      default: false,
      describe: 'Prompt for the vault password on the terminal (an error without one)',
    });
}

/** Python's bytes.strip(): ASCII whitespace at both ends. */
function stripWhitespace(text: string): string {
  return text.replace(/^[ \t\n\r\v\f]+|[ \t\n\r\v\f]+$/g, '');
}

function isExecutableFile(file: string): boolean {
  try {
    const stat = fs.statSync(file);
    if (!stat.isFile()) return false;
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The password `--vault-password-file FILE` names (see the module comment); `id` labels it. */
export function readVaultPasswordFile(
  file: string,
  id: string = DEFAULT_VAULT_ID,
  option = '--vault-password-file',
): VaultPassword {
  const label = `${option} ${file}`;
  if (!fs.existsSync(file)) throw invalid(`${label}: no such file`);
  let secret: string;
  if (isExecutableFile(file)) {
    const client = path.parse(file).name.endsWith('-client');
    try {
      const stdout = execFileSync(path.resolve(file), client ? ['--vault-id', id] : [], {
        stdio: ['inherit', 'pipe', 'inherit'],
        maxBuffer: 1024 * 1024,
      });
      secret = stdout.toString('utf8').replace(/^[\r\n]+|[\r\n]+$/g, '');
    } catch (error) {
      const status = (error as { status?: unknown }).status;
      throw invalid(
        `${label}: the password program failed${typeof status === 'number' ? ` (exit ${status})` : `: ${errorMessage(error)}`}`,
      );
    }
    if (secret === '') throw invalid(`${label}: the password program printed no password`);
  } else {
    try {
      secret = stripWhitespace(fs.readFileSync(file, 'utf8'));
    } catch (error) {
      throw invalid(`${label}: cannot read it: ${errorMessage(error)}`);
    }
    if (secret === '') throw invalid(`${label}: the file holds no password`);
  }
  return { id, secret: Buffer.from(secret, 'utf8') };
}

/** Reads one line from a terminal without echoing it; rejects on Ctrl-C and Ctrl-D. */
function promptHidden(prompt: string, input: NodeJS.ReadStream, output: NodeJS.WriteStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let typed = '';
    const finish = (error?: Error) => {
      input.off('data', onData);
      input.setRawMode(false);
      input.pause();
      output.write('\n');
      if (error) reject(error);
      else resolve(typed);
    };
    const onData = (chunk: Buffer) => {
      for (const char of chunk.toString('utf8')) {
        if (char === '\r' || char === '\n') return finish();
        if (char === '\u0003') return finish(invalid('--ask-vault-pass: interrupted'));
        if (char === '\u0004') return finish(invalid('--ask-vault-pass: no password given (Ctrl-D)'));
        if (char === '\u007f' || char === '\b') typed = [...typed].slice(0, -1).join('');
        else typed += char;
      }
    };
    // Echo off before the prompt shows: a password typed (or sent by a
    // script) the moment the prompt appears must not reach the screen.
    input.setRawMode(true);
    output.write(prompt);
    input.resume();
    input.on('data', onData);
  });
}

/**
 * The run's Vault, with the passwords the options give (none: a vault met
 * later is an error saying how to give one).
 */
export async function vaultFromArgs(
  args: ParsedArgs,
  terminal: { input: NodeJS.ReadStream; output: NodeJS.WriteStream } = {
    input: process.stdin,
    output: process.stderr,
  },
): Promise<Vault> {
  const files = ((args['vault-password-file'] as string[] | undefined) ?? []).map(String);
  const passwords = files.map((file) => readVaultPasswordFile(file));
  const ask = async (option: string, id: string, prompt: string): Promise<VaultPassword> => {
    if (!terminal.input.isTTY)
      throw invalid(
        `${option}: there is no terminal to ask on (stdin is not a TTY); give --vault-password-file FILE instead`,
      );
    const typed = stripWhitespace(await promptHidden(prompt, terminal.input, terminal.output));
    if (typed === '') throw invalid(`${option}: no password given`);
    return { id, secret: Buffer.from(typed, 'utf8') };
  };
  for (const given of ((args['vault-id'] as string[] | undefined) ?? []).map(String)) {
    const at = given.indexOf('@');
    const id = at === -1 ? DEFAULT_VAULT_ID : given.slice(0, at);
    const source = at === -1 ? given : given.slice(at + 1);
    const option = `--vault-id ${given}`;
    if (id === '' || source === '') throw invalid(`${option}: give LABEL@FILE, LABEL@prompt or FILE`);
    passwords.push(
      source === 'prompt'
        ? await ask(option, id, `Vault password (${id}): `)
        : readVaultPasswordFile(source, id, '--vault-id'),
    );
  }
  if (args['ask-vault-pass'])
    passwords.push(await ask('--ask-vault-pass', DEFAULT_VAULT_ID, 'Vault password: '));
  return new Vault(passwords);
}
