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

/** The password `--vault-password-file FILE` names (see the module comment). */
export function readVaultPasswordFile(file: string): VaultPassword {
  const label = `--vault-password-file ${file}`;
  if (!fs.existsSync(file)) throw invalid(`${label}: no such file`);
  let secret: string;
  if (isExecutableFile(file)) {
    const client = path.parse(file).name.endsWith('-client');
    try {
      const stdout = execFileSync(path.resolve(file), client ? ['--vault-id', DEFAULT_VAULT_ID] : [], {
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
  return { id: DEFAULT_VAULT_ID, secret: Buffer.from(secret, 'utf8') };
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
    output.write(prompt);
    input.setRawMode(true);
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
  const passwords = files.map(readVaultPasswordFile);
  if (args['ask-vault-pass']) {
    if (!terminal.input.isTTY)
      throw invalid(
        '--ask-vault-pass: there is no terminal to ask on (stdin is not a TTY); give --vault-password-file FILE instead',
      );
    const typed = stripWhitespace(await promptHidden('Vault password: ', terminal.input, terminal.output));
    if (typed === '') throw invalid('--ask-vault-pass: no password given');
    passwords.push({ id: DEFAULT_VAULT_ID, secret: Buffer.from(typed, 'utf8') });
  }
  return new Vault(passwords);
}
