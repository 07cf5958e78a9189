/**
 * How to reach one host, built the one way every command builds it: CLI
 * flags > inventory variables > sshfix.cfg/ansible.cfg and their environment
 * variables (remote_user, private_key_file) > ssh_config (`-F`, else
 * ~/.ssh/config) > what the caller falls back on (a jump host takes its target's user and
 * key) > defaults. When no key, agent or password is configured at all, the
 * SSH transport offers OpenSSH's default identities (identities.ts).
 */
import os from 'node:os';
import path from 'node:path';
import { CONNECTION_VARIABLE_NAMES, connectionVars } from '../config/inventory.js';
import { applySshConfig, type SshConfigFile } from './ssh_config.js';
import type { ConnectionSpec } from './types.js';

export interface SpecOptions {
  /** CLI overrides: they beat the inventory and ssh_config. */
  connection?: 'ssh' | 'local';
  user?: string;
  port?: number;
  privateKeyFile?: string;
  knownHostsFile?: string;
  acceptNewHostKeys: boolean;
  /** The play's `become:`, which beats the host's ansible_become. */
  become?: boolean;
  /**
   * `--become`: what neither the play nor the host's ansible_become says,
   * as Ansible's -b (a play keyword and a variable both beat it).
   */
  becomeByDefault?: boolean;
  /**
   * remote_user and private_key_file of the configuration file or the
   * environment: below the inventory (Ansible's variables beat its
   * configuration) and above ssh_config (Ansible passes them to ssh as -o).
   */
  configured?: { user?: string; privateKeyFile?: string };
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  sshConfig?: SshConfigFile;
  /** What neither a flag, the inventory nor ssh_config set: used instead of the defaults. */
  fallback?: { user?: string; privateKeyFile?: string };
}

export function defaultKnownHostsFile(): string {
  return path.join(os.homedir(), '.ssh', 'known_hosts');
}

const KEEPALIVE_INTERVAL_MS = 5000;

/** The spec of `hostName` from its inventory variables (`{}` for a host named on the command line). */
export function buildConnectionSpec(
  hostName: string,
  vars: Readonly<Record<string, unknown>>,
  options: SpecOptions,
): ConnectionSpec {
  const c = connectionVars({ name: hostName, vars: { ...vars }, groups: [] });
  const user = options.user ?? c.user ?? options.configured?.user;
  const privateKeyFile = options.privateKeyFile ?? c.privateKeyFile ?? options.configured?.privateKeyFile;
  const agent = process.env.SSH_AUTH_SOCK;
  const inInventory = (setting: keyof typeof CONNECTION_VARIABLE_NAMES): boolean =>
    CONNECTION_VARIABLE_NAMES[setting].some((name) => vars[name] !== undefined && vars[name] !== null);
  const spec: ConnectionSpec = {
    hostName,
    connection: options.connection ?? c.connection,
    address: c.address,
    port: options.port ?? c.port,
    user: user ?? options.fallback?.user ?? os.userInfo().username,
    ...(privateKeyFile !== undefined ? { privateKeyFile } : {}),
    ...(c.password !== undefined ? { password: c.password } : {}),
    ...(agent ? { agent } : {}),
    become: options.become ?? (inInventory('become') ? c.become : (options.becomeByDefault ?? c.become)),
    ...(c.becomePassword !== undefined ? { becomePassword: c.becomePassword } : {}),
    knownHostsFile: options.knownHostsFile ?? defaultKnownHostsFile(),
    acceptNewHostKeys: options.acceptNewHostKeys,
    connectTimeoutMs: options.connectTimeoutMs,
    commandTimeoutMs: options.commandTimeoutMs,
    keepaliveIntervalMs: KEEPALIVE_INTERVAL_MS,
  };
  const fixedUser = user !== undefined;
  const fixedKey = privateKeyFile !== undefined;
  const resolved = options.sshConfig
    ? applySshConfig(spec, options.sshConfig, {
        address: inInventory('address'),
        port: options.port !== undefined || inInventory('port'),
        // A fallback user is only a default: ssh_config's User beats it.
        user: fixedUser,
        privateKeyFile: fixedKey,
        knownHostsFile: options.knownHostsFile !== undefined,
        acceptNewHostKeys: options.acceptNewHostKeys,
      })
    : spec;
  const fallbackKey = options.fallback?.privateKeyFile;
  if (resolved.privateKeyFile === undefined && fallbackKey !== undefined) {
    return { ...resolved, privateKeyFile: fallbackKey };
  }
  return resolved;
}
