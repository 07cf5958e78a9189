/**
 * Ansible Vault, format 1.1 and 1.2 (cipher AES256), as `ansible-vault`
 * writes it: decryption only, pure (node:crypto, no I/O).
 *
 * The envelope is a header line, `$ANSIBLE_VAULT;1.1;AES256` or
 * `$ANSIBLE_VAULT;1.2;AES256;<vault id>`, then hex text wrapped at 80
 * columns. That hex decodes to three lines: the salt (hex), the HMAC
 * (hex) and the ciphertext (hex). From the password and the 32-byte salt,
 * PBKDF2-HMAC-SHA256 with 10000 iterations derives 80 bytes: the AES-256
 * key, the HMAC-SHA256 key and the 16-byte CTR counter block. The HMAC
 * covers the ciphertext; the plaintext is PKCS#7-padded to 16 bytes before
 * AES-256-CTR (ansible/parsing/vault/__init__.py, VaultAES256).
 *
 * A wrong password and an altered file look the same: the HMAC does not
 * match. Nothing is decrypted before the HMAC is checked.
 */
import { createDecipheriv, createHmac, pbkdf2Sync, timingSafeEqual } from 'node:crypto';

export const VAULT_HEADER = '$ANSIBLE_VAULT';

const KEY_LENGTH = 32;
const IV_LENGTH = 16;
const PBKDF2_ITERATIONS = 10000;
const AES_BLOCK = 16;

export interface VaultEnvelope {
  version: '1.1' | '1.2';
  cipher: 'AES256';
  /** 1.2 only: the label given to `ansible-vault --vault-id LABEL@SOURCE`. */
  vaultId?: string;
  salt: Buffer;
  hmac: Buffer;
  ciphertext: Buffer;
}

/** One password, with the vault id it is for ("default" when none was given, as in Ansible). */
export interface VaultPassword {
  id: string;
  secret: Buffer;
}

export const DEFAULT_VAULT_ID = 'default';

/** The text is not a vault, or a damaged one: `reason` says what is wrong. */
export class VaultFormatError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'VaultFormatError';
  }
}

/** No password given opens the vault: each was tried and the HMAC never matched. */
export class VaultPasswordError extends Error {
  constructor(
    readonly tried: number,
    readonly vaultId: string | undefined,
  ) {
    super(
      tried === 0
        ? 'no vault password given'
        : `wrong vault password (${tried === 1 ? 'the one given does not open it' : `none of the ${tried} given opens it`}), or the vault was altered: its HMAC does not match`,
    );
    this.name = 'VaultPasswordError';
  }
}

/** Whether `text` is vault data: Ansible checks only that it starts with the header. */
export function isVaultText(text: string): boolean {
  return text.startsWith(VAULT_HEADER + ';');
}

const HEX = /^(?:[0-9a-fA-F]{2})*$/;

function unhex(text: string, what: string): Buffer {
  if (!HEX.test(text)) throw new VaultFormatError(`${what} is not hexadecimal`);
  return Buffer.from(text, 'hex');
}

/** The envelope's parts; VaultFormatError when `text` is not one `ansible-vault` could have written. */
export function parseVaultEnvelope(text: string): VaultEnvelope {
  const lines = text.split(/\r?\n/).map((line) => line.trim());
  const header = (lines[0] ?? '').split(';').map((field) => field.trim());
  if (header[0] !== VAULT_HEADER) throw new VaultFormatError(`does not start with ${VAULT_HEADER}`);
  const version = header[1];
  if (version !== '1.1' && version !== '1.2')
    throw new VaultFormatError(`vault format ${version ?? '(none)'} is not supported (1.1 and 1.2 are)`);
  if (header[2] !== 'AES256')
    throw new VaultFormatError(`cipher ${header[2] ?? '(none)'} is not supported (AES256 is)`);
  const vaultId = header.length >= 4 ? header[3] : undefined;
  const inner = unhex(lines.slice(1).join(''), 'the vault body').toString('latin1');
  const [salt, hmac, ciphertext, ...rest] = inner.split('\n');
  if (salt === undefined || hmac === undefined || ciphertext === undefined || rest.length > 0)
    throw new VaultFormatError('the vault body does not hold a salt, an HMAC and a ciphertext');
  const envelope: VaultEnvelope = {
    version,
    cipher: 'AES256',
    salt: unhex(salt, 'the salt'),
    hmac: unhex(hmac, 'the HMAC'),
    ciphertext: unhex(ciphertext, 'the ciphertext'),
  };
  if (envelope.salt.length === 0) throw new VaultFormatError('the salt is empty');
  if (envelope.hmac.length !== 32) throw new VaultFormatError('the HMAC is not 32 bytes');
  if (envelope.ciphertext.length === 0 || envelope.ciphertext.length % AES_BLOCK !== 0)
    throw new VaultFormatError('the ciphertext is not a whole number of AES blocks');
  if (vaultId !== undefined) envelope.vaultId = vaultId;
  return envelope;
}

/** The plaintext bytes when `password` opens the envelope, else undefined (HMAC mismatch). */
function openWith(envelope: VaultEnvelope, password: Buffer): Buffer | undefined {
  const derived = pbkdf2Sync(
    password,
    envelope.salt,
    PBKDF2_ITERATIONS,
    2 * KEY_LENGTH + IV_LENGTH,
    'sha256',
  );
  const aesKey = derived.subarray(0, KEY_LENGTH);
  const hmacKey = derived.subarray(KEY_LENGTH, 2 * KEY_LENGTH);
  const counter = derived.subarray(2 * KEY_LENGTH);
  const expected = createHmac('sha256', hmacKey).update(envelope.ciphertext).digest();
  if (!timingSafeEqual(expected, envelope.hmac)) return undefined;
  const decipher = createDecipheriv('aes-256-ctr', aesKey, counter);
  const padded = Buffer.concat([decipher.update(envelope.ciphertext), decipher.final()]);
  const pad = padded[padded.length - 1] ?? 0;
  const padding = padded.subarray(padded.length - pad);
  if (pad < 1 || pad > AES_BLOCK || !padding.every((byte) => byte === pad))
    throw new VaultFormatError('the plaintext is not PKCS#7-padded');
  return padded.subarray(0, padded.length - pad);
}

/**
 * Passwords in the order Ansible tries them: those for the envelope's vault
 * id first, then every other one (the id is a hint, not a lock, unless
 * Ansible's vault_id_match is set; sshfix does not have that setting).
 */
function candidates(envelope: VaultEnvelope, passwords: readonly VaultPassword[]): VaultPassword[] {
  const id = envelope.vaultId;
  if (id === undefined) return [...passwords];
  return [...passwords.filter((p) => p.id === id), ...passwords.filter((p) => p.id !== id)];
}

/**
 * Decrypts vault text (a whole file, or the value of a `!vault` scalar) to
 * UTF-8 text. Throws VaultFormatError for a damaged envelope and
 * VaultPasswordError when no password opens it.
 */
export function decryptVault(text: string, passwords: readonly VaultPassword[]): string {
  const envelope = parseVaultEnvelope(text);
  const tried = candidates(envelope, passwords);
  for (const password of tried) {
    const plaintext = openWith(envelope, password.secret);
    if (plaintext !== undefined) return plaintext.toString('utf8');
  }
  throw new VaultPasswordError(tried.length, envelope.vaultId);
}
