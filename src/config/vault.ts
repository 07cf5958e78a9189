/**
 * Ansible Vault in playbooks, inventories and vars files: whole files that
 * `ansible-vault encrypt` wrote, and `!vault |` values that
 * `ansible-vault encrypt_string` wrote (the crypto is formats/ansible_vault.ts).
 *
 * One Vault serves a whole run: it holds the passwords (--vault-password-file,
 * --ask-vault-pass) and remembers every plaintext it revealed, so that the
 * CLI masks them in every output as it masks secret-named variables
 * (cli/redact.ts). A value that comes out of a vault is a secret whatever its
 * variable is called.
 */
import { visit, type Document } from 'yaml';
import {
  decryptVault,
  isVaultText,
  VaultFormatError,
  VaultPasswordError,
  type VaultPassword,
} from '../formats/ansible_vault.js';
import { ConfigError, type Diagnostic, type SourcePosition } from './diagnostics.js';

export const VAULT_TAG = '!vault';

/**
 * For the `yaml` parser: a `!vault` scalar keeps its envelope as a string
 * until decryptVaultValues replaces it (without this, `yaml` warns about an
 * unknown tag).
 */
export const VAULT_YAML_TAGS = [{ tag: VAULT_TAG, resolve: (text: string) => text }];

const HOW_TO_GIVE_A_PASSWORD = 'give its password with --vault-password-file FILE or --ask-vault-pass';

/** Every string and number in `value`, at any depth: what a vaulted file holds as values. */
function scalars(value: unknown): string[] {
  if (typeof value === 'string' || typeof value === 'number') return [String(value)];
  if (Array.isArray(value)) return value.flatMap(scalars);
  if (typeof value === 'object' && value !== null) return Object.values(value).flatMap(scalars);
  return [];
}

export class Vault {
  private readonly revealed = new Set<string>();

  constructor(private readonly passwords: readonly VaultPassword[] = []) {}

  /** Whether any password was given at all. */
  get hasPasswords(): boolean {
    return this.passwords.length > 0;
  }

  /** Every plaintext this vault revealed, and every value remembered with rememberSecrets. */
  secrets(): string[] {
    return [...this.revealed];
  }

  /** Values read from a vaulted file: each one is a secret. */
  rememberSecrets(value: unknown): void {
    for (const text of scalars(value)) if (text !== '') this.revealed.add(text);
  }

  /** `summary` for a vault that cannot be opened; throws anything else. */
  private failure(error: unknown, what: string): string {
    if (error instanceof VaultPasswordError) {
      return error.tried === 0
        ? `${what} is encrypted with Ansible Vault: ${HOW_TO_GIVE_A_PASSWORD}`
        : `cannot decrypt ${what}: ${error.message}${error.vaultId !== undefined ? ` (vault id '${error.vaultId}')` : ''}`;
    }
    if (error instanceof VaultFormatError)
      return `cannot decrypt ${what}: not a valid vault: ${error.reason}`;
    throw error;
  }

  /**
   * A file's text, decrypted when it is a whole vault (`encrypted` then
   * says so). A file that cannot be opened is a ConfigError naming it.
   */
  openFile(text: string, file: string): { text: string; encrypted: boolean } {
    if (!isVaultText(text)) return { text, encrypted: false };
    try {
      return { text: decryptVault(text, this.passwords), encrypted: true };
    } catch (error) {
      const summary = this.failure(error, 'this file');
      throw new ConfigError([{ severity: 'error', summary, position: { file, line: 1, column: 1 } }]);
    }
  }

  /** The plaintext of one `!vault` value, remembered as a secret; a Diagnostic at `position` when it cannot be opened. */
  openValue(envelope: string, position: SourcePosition): string | Diagnostic {
    try {
      const plaintext = decryptVault(envelope.trim(), this.passwords);
      if (plaintext !== '') this.revealed.add(plaintext);
      return plaintext;
    } catch (error) {
      return { severity: 'error', summary: this.failure(error, 'this !vault value'), position };
    }
  }
}

/**
 * Replaces every `!vault` scalar of a parsed document by its plaintext (a
 * plain string from then on), in place; returns what could not be decrypted,
 * each at its value.
 */
export function decryptVaultValues(
  doc: Document,
  vault: Vault,
  at: (offset: number) => SourcePosition,
): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  visit(doc, {
    Scalar(_key, node) {
      if (node.tag !== VAULT_TAG) return;
      const position = at(node.range?.[0] ?? 0);
      if (typeof node.value !== 'string') {
        diagnostics.push({
          severity: 'error',
          summary: 'a !vault value must be the text that ansible-vault encrypt_string wrote',
          position,
        });
        return;
      }
      const opened = vault.openValue(node.value, position);
      if (typeof opened !== 'string') {
        diagnostics.push(opened);
        return;
      }
      node.value = opened;
      delete node.tag;
    },
  });
  return diagnostics;
}
