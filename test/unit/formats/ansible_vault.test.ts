/**
 * Decryption of vaults written by `ansible-vault` (ansible-core 2.14): the
 * fixtures in test/fixtures/vault were made by it with the password in
 * password.txt (see the README there); test/lab/vault_files.test.ts encrypts
 * fresh ones on every run.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import {
  decryptVault,
  isVaultText,
  parseVaultEnvelope,
  VaultFormatError,
  VaultPasswordError,
  type VaultPassword,
} from '../../../src/formats/ansible_vault.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/vault');
const fixture = (name: string) => readFileSync(path.join(FIXTURES, name), 'utf8');
const password = (secret: string, id = 'default'): VaultPassword => ({ id, secret: Buffer.from(secret) });
const RIGHT = password('correct horse battery staple');

/** The ciphertext of an `encrypt_string` output (`name: !vault |` and the indented envelope). */
function vaultString(file: string): string {
  const value: unknown = parse(fixture(file), { customTags: [{ tag: '!vault', resolve: (s: string) => s }] });
  return Object.values(value as Record<string, string>)[0]!;
}

describe('ansible-vault files', () => {
  it('decrypts a whole file (1.1), UTF-8 included', () => {
    const text = fixture('vars.yml');
    expect(isVaultText(text)).toBe(true);
    expect(parse(decryptVault(text, [RIGHT]))).toEqual({
      db_password: 's3cr3t-db-Quokka',
      admin_net: '192.0.2.0/24',
      note: 'pässwörd ünïcode',
    });
  });

  it('reads the vault id of a 1.2 file, and opens it with a password for another id, as Ansible does', () => {
    const text = fixture('vars_id.yml');
    expect(parseVaultEnvelope(text)).toMatchObject({ version: '1.2', cipher: 'AES256', vaultId: 'prod' });
    expect(decryptVault(text, [password('nope', 'prod'), password('correct horse battery staple')])).toBe(
      'api_token: tok-Wallaby-1234\n',
    );
  });

  it('decrypts encrypt_string values, a plaintext of a whole AES block included (a full block of padding)', () => {
    expect(decryptVault(vaultString('become_string.yml'), [RIGHT])).toBe('hunter2-Numbat');
    expect(decryptVault(vaultString('sixteen_string.yml'), [RIGHT])).toBe('Sixteen-bytes!!!');
  });

  it('refuses a wrong password without returning anything', () => {
    expect(() => decryptVault(fixture('vars.yml'), [password('correct horse battery stapl')])).toThrow(
      VaultPasswordError,
    );
    expect(() => decryptVault(fixture('vars.yml'), [password('a'), password('b')])).toThrow(
      'wrong vault password (none of the 2 given opens it)',
    );
    expect(() => decryptVault(fixture('vars.yml'), [])).toThrow('no vault password given');
  });

  it('refuses a vault whose ciphertext was altered, by its HMAC', () => {
    const text = fixture('vars.yml');
    const envelope = parseVaultEnvelope(text);
    // Flip one ciphertext bit and write the envelope back as ansible-vault would.
    envelope.ciphertext[0]! ^= 1;
    const inner = [envelope.salt, envelope.hmac, envelope.ciphertext]
      .map((b) => b.toString('hex'))
      .join('\n');
    const body = Buffer.from(inner, 'latin1').toString('hex');
    const tampered = `$ANSIBLE_VAULT;1.1;AES256\n${body.match(/.{1,80}/g)!.join('\n')}\n`;
    expect(() => decryptVault(tampered, [RIGHT])).toThrow(/HMAC does not match/);
  });

  it.each([
    ['another format version', '$ANSIBLE_VAULT;2.0;AES256\n3030\n', /vault format 2.0 is not supported/],
    ['another cipher', '$ANSIBLE_VAULT;1.1;AES\n3030\n', /cipher AES is not supported/],
    ['a body that is not hex', '$ANSIBLE_VAULT;1.1;AES256\nzz\n', /not hexadecimal/],
    ['a body without three parts', '$ANSIBLE_VAULT;1.1;AES256\n3030\n', /salt, an HMAC and a ciphertext/],
    ['a cut-off file', fixture('vars.yml').slice(0, 200), /not hexadecimal|salt, an HMAC and a ciphertext/],
  ])('says what is wrong with %s', (_what, text, message) => {
    expect(() => decryptVault(text, [RIGHT])).toThrow(VaultFormatError);
    expect(() => decryptVault(text, [RIGHT])).toThrow(message);
  });

  it('takes only the header as the mark of a vault', () => {
    expect(isVaultText('db_password: x\n')).toBe(false);
    expect(isVaultText(' $ANSIBLE_VAULT;1.1;AES256\n')).toBe(false);
  });
});
