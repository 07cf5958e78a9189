/**
 * The command line on top of the configuration file and the environment
 * (config/settings.ts): a flag given beats both. Flags that a setting can
 * supply have no yargs default, so "not given" can be told from "given the
 * default value"; the default comes from the settings instead.
 */
import fs from 'node:fs';
import os from 'node:os';
import { ConfigError } from '../config/diagnostics.js';
import {
  describeOrigin,
  loadSettings,
  parseBackupDir,
  SETTING_NAMES,
  type SettingName,
  type Settings,
} from '../config/settings.js';
import type { ParsedArgs } from './io.js';
import { countOption, readableFileOption, secondsOption } from './options.js';
import { errorMessage } from '../errors.js';

function unreadableFile(file: string): string | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (error) {
    return `cannot read it: ${errorMessage(error)}`;
  }
  try {
    return fs.fstatSync(fd).isFile() ? undefined : 'not a file';
  } finally {
    fs.closeSync(fd);
  }
}

/** The flag that sets each setting, for the commands that have it. */
export const SETTING_FLAGS: Record<SettingName, string> = {
  inventory: 'inventory',
  forks: 'forks',
  remote_user: 'user',
  private_key_file: 'private-key',
  host_key_checking: 'accept-new-host-keys',
  timeout: 'connect-timeout',
  backup_dir: 'backup-dir',
};

/** Settings of this process: its environment, current directory and home. */
export function processSettings(): Settings {
  return loadSettings({ env: process.env, cwd: process.cwd(), home: os.homedir() });
}

/** `settings` with the flags given in `args` applied over them, each checked as the flag's own check does. */
export function withCommandLine(settings: Settings, args: ParsedArgs): Settings {
  const values = { ...settings.values };
  const origins = { ...settings.origins };
  const given = (name: SettingName): boolean => args[SETTING_FLAGS[name]] !== undefined;
  const cli = (name: SettingName) => {
    origins[name] = { kind: 'cli', option: `--${SETTING_FLAGS[name]}` };
  };
  if (given('inventory')) {
    values.inventory = String(args.inventory);
    cli('inventory');
  }
  if (given('forks')) {
    values.forks = countOption(args, 'forks', 'how many hosts to work on at once');
    cli('forks');
  }
  if (given('remote_user')) {
    values.remote_user = String(args.user);
    cli('remote_user');
  }
  if (given('private_key_file')) {
    values.private_key_file = readableFileOption(args, 'private-key')!;
    cli('private_key_file');
  }
  if (given('host_key_checking')) {
    // --accept-new-host-keys is host_key_checking = False; --no-accept-new-host-keys is True.
    values.host_key_checking = !args['accept-new-host-keys'];
    cli('host_key_checking');
  }
  if (given('timeout')) {
    values.timeout = secondsOption(args, 'connect-timeout');
    cli('timeout');
  }
  if (given('backup_dir')) {
    try {
      values.backup_dir = parseBackupDir(String(args['backup-dir']));
    } catch (error) {
      throw new ConfigError([{ severity: 'error', summary: `--backup-dir: ${errorMessage(error)}` }]);
    }
    cli('backup_dir');
  }
  return { ...settings, values, origins };
}

/** The flags' settings over the configuration file's and the environment's. */
export function commandSettings(args: ParsedArgs): Settings {
  return withCommandLine(processSettings(), args);
}

/**
 * Ansible's "config file = ..." line, then each setting with where its value
 * came from (`sshfix config`, and apply/plan --verbose).
 */
export function describeSettings(settings: Settings): string {
  const lines = [`config file = ${settings.file ?? 'None'}`];
  for (const name of SETTING_NAMES) {
    const value = settings.values[name];
    const shown = value === undefined ? '(unset)' : String(value);
    lines.push(`${name} = ${shown}  (${describeOrigin(settings.origins[name])})`);
  }
  return lines.join('\n') + '\n';
}

/**
 * remote_user and private_key_file from the file or the environment rank
 * below the inventory's ansible_user and ansible_ssh_private_key_file, as in
 * Ansible (variables beat configuration); given as flags they beat it.
 */
export function configuredConnection(settings: Settings): { user?: string; privateKeyFile?: string } {
  const fromConfig = (name: SettingName): boolean => settings.origins[name].kind !== 'cli';
  const { remote_user: user, private_key_file: key } = settings.values;
  if (key !== undefined && fromConfig('private_key_file')) {
    // Checked now, as --private-key is: one unreadable key would make every host look unreachable.
    const where = describeOrigin(settings.origins.private_key_file);
    const problem = unreadableFile(key);
    if (problem !== undefined)
      throw new ConfigError([
        { severity: 'error', summary: `private_key_file ${key} (${where}): ${problem}` },
      ]);
  }
  return {
    ...(user !== undefined && fromConfig('remote_user') ? { user } : {}),
    ...(key !== undefined && fromConfig('private_key_file') ? { privateKeyFile: key } : {}),
  };
}
