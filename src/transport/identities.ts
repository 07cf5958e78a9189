/**
 * OpenSSH's default identities: what `ssh` (and so Ansible) offers when
 * neither IdentityFile, an agent nor a password is configured.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * ssh_config(5), IdentityFile: "~/.ssh/id_rsa, ~/.ssh/id_ecdsa, ~/.ssh/id_ecdsa_sk,
 * ~/.ssh/id_ed25519 and ~/.ssh/id_ed25519_sk", in that order. The security-key
 * (_sk) ones need the key's hardware, which ssh2 cannot use: they are left out.
 */
export const DEFAULT_IDENTITY_NAMES = ['id_rsa', 'id_ecdsa', 'id_ed25519'] as const;

/** The default identity files that exist under `home`, in OpenSSH's order. */
export function defaultIdentityFiles(
  home: string = os.homedir(),
  exists: (file: string) => boolean = fs.existsSync,
): string[] {
  return DEFAULT_IDENTITY_NAMES.map((name) => path.join(home, '.ssh', name)).filter((file) => exists(file));
}
