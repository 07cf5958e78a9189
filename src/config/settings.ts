/**
 * Settings that a project or a user sets once instead of on every command
 * line, read as Ansible reads them (ansible-config(1), "Ansible Configuration
 * Settings"), so an existing ansible.cfg works unchanged:
 *
 * - One configuration file is used, the first that exists of:
 *   `$SSHFIX_CONFIG`, `$ANSIBLE_CONFIG`, `./sshfix.cfg`, `./ansible.cfg`,
 *   `~/.sshfix.cfg`, `~/.ansible.cfg`, `/etc/ansible/ansible.cfg`. Files are
 *   not merged (Ansible ignores every file after the first it finds); at each
 *   place sshfix.cfg comes before ansible.cfg, so a project can hold settings
 *   for sshfix alone beside the ansible.cfg its Ansible runs use. A directory
 *   in either variable means its sshfix.cfg or ansible.cfg. Like Ansible,
 *   files in a world-writable current directory are skipped, with a warning.
 * - Both files are INI read as Python's configparser reads them (the dialect
 *   of formats/fail2ban_ini.ts: Ansible's ConfigParser also takes only `;` as
 *   an inline comment), and only their `[defaults]` section is read (plus
 *   `[DEFAULT]`, which configparser merges into every section).
 * - Values: quotes around a value are removed (Ansible's unquote); a path has
 *   `$VAR`/`${VAR}` and a leading `~` expanded and, when relative, is taken
 *   relative to the directory of the file that set it (from the environment:
 *   to the current directory), as Ansible's resolve_path does.
 * - Precedence, per setting: command line > environment (`SSHFIX_*` before
 *   the `ANSIBLE_*` of the same setting) > configuration file > default.
 *
 * Unlike Ansible, a bad value is an error naming file:line or the variable,
 * even where a higher source overrides it, and booleans accept only Ansible's
 * boolean words: Ansible reads `host_key_checking = Flase` as false, turning
 * host key checks off through a typo. Keys sshfix does not read are warned
 * about with their file:line, except, in ansible.cfg, keys that Ansible itself
 * knows (the file serves both).
 */
import fs from 'node:fs';
import path from 'node:path';
import { DEFAULT_SECTION, parseIni } from '../formats/fail2ban_ini.js';
import { ConfigError, type Diagnostic } from './diagnostics.js';
import { parseAnsibleBoolean } from './inventory.js';
import { didYouMean } from './suggest.js';

export interface SettingValues {
  /** One inventory file (Ansible's `inventory` is a list; sshfix reads one). */
  inventory?: string;
  forks: number;
  remote_user?: string;
  private_key_file?: string;
  host_key_checking: boolean;
  /** Seconds to wait for a connection. */
  timeout: number;
  /**
   * Where each host keeps the run directories (backups, restore script) of
   * changes (default /var/backups/sshfix): an absolute path on the host. Runs
   * sharing a host must share it, since that is where a run sees another's
   * undecided change.
   */
  backup_dir?: string;
}

export type SettingName = keyof SettingValues;

export type SettingOrigin =
  | { kind: 'default' }
  | { kind: 'cli'; option: string }
  | { kind: 'env'; variable: string }
  | { kind: 'file'; file: string; line: number };

export interface Settings {
  values: SettingValues;
  origins: Record<SettingName, SettingOrigin>;
  /** The configuration file read, if any. */
  file?: string;
  warnings: Diagnostic[];
}

/** setTimeout's limit, 2^31 - 1 ms, as for --connect-timeout. */
const MAX_TIMEOUT_S = 2_147_483;

export const DEFAULTS: SettingValues = { forks: 25, host_key_checking: true, timeout: 10 };

interface SettingDefinition {
  /** `SSHFIX_*` first: it beats Ansible's variable. */
  env: readonly string[];
  /** The value of `text` (unquoted already); throws Error saying what is wanted. */
  parse(text: string, context: PathContext): SettingValues[SettingName];
}

interface PathContext {
  /** Relative paths are taken from here. */
  baseDir: string;
  env: Readonly<Record<string, string | undefined>>;
  home: string;
}

/** Python's os.path.expandvars then expanduser (`~` and `~/` only): unknown variables stay as written. */
export function expandPath(text: string, context: PathContext): string {
  const expanded = text.replace(
    /\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{([^}]*)\})/g,
    (whole, bare: string | undefined, braced: string | undefined) =>
      context.env[bare ?? braced ?? ''] ?? whole,
  );
  const home = expanded === '~' || expanded.startsWith('~/') ? context.home + expanded.slice(1) : expanded;
  return path.resolve(context.baseDir, home);
}

/** Ansible's unquote: one pair of matching quotes around the whole value goes. */
export function unquote(text: string): string {
  const quoted = text.length > 1 && text[0] === text[text.length - 1] && (text[0] === '"' || text[0] === "'");
  return quoted && text[text.length - 2] !== '\\' ? text.slice(1, -1) : text;
}

function wholeNumber(text: string, atLeast: number, atMost: number, want: string): number {
  // Ansible's int conversion takes "5" and "5.0", not "5.5" or "five".
  const match = /^\s*\+?(\d+)(?:\.0*)?\s*$/.exec(text);
  const value = match ? Number(match[1]) : NaN;
  if (!Number.isSafeInteger(value) || value < atLeast || value > atMost) throw new Error(want);
  return value;
}

const SETTINGS: Record<SettingName, SettingDefinition> = {
  inventory: {
    env: ['SSHFIX_INVENTORY', 'ANSIBLE_INVENTORY'],
    parse: (text, context) => {
      // A comma-separated list in Ansible (pathlist); one file here.
      const paths = text
        .split(',')
        .map((p) => p.trim())
        .filter((p) => p !== '');
      if (paths.length !== 1)
        throw new Error(
          paths.length === 0 ? 'give an inventory file' : `give one inventory file, not ${paths.length}`,
        );
      return expandPath(paths[0]!, context);
    },
  },
  forks: {
    env: ['SSHFIX_FORKS', 'ANSIBLE_FORKS'],
    parse: (text) =>
      wholeNumber(text, 1, Number.MAX_SAFE_INTEGER, 'give how many hosts to work on at once, 1 or more'),
  },
  remote_user: {
    env: ['SSHFIX_REMOTE_USER', 'ANSIBLE_REMOTE_USER'],
    parse: (text) => {
      if (text.trim() === '') throw new Error('give a user name');
      return text;
    },
  },
  private_key_file: {
    env: ['SSHFIX_PRIVATE_KEY_FILE', 'ANSIBLE_PRIVATE_KEY_FILE'],
    parse: (text, context) => {
      if (text.trim() === '') throw new Error('give a key file');
      return expandPath(text, context);
    },
  },
  host_key_checking: {
    env: ['SSHFIX_HOST_KEY_CHECKING', 'ANSIBLE_HOST_KEY_CHECKING'],
    parse: (text) => {
      const value = parseAnsibleBoolean(text);
      if (value === undefined) throw new Error('give a boolean (yes/no, true/false, on/off, 1/0)');
      return value;
    },
  },
  timeout: {
    env: ['SSHFIX_TIMEOUT', 'ANSIBLE_TIMEOUT'],
    parse: (text) => wholeNumber(text, 1, MAX_TIMEOUT_S, `give whole seconds, 1 to ${MAX_TIMEOUT_S}`),
  },
  backup_dir: {
    env: ['SSHFIX_BACKUP_DIR'],
    // A path on the hosts, not on this machine: neither resolved nor expanded here.
    parse: (text) => parseBackupDir(text),
  },
};

/** An absolute path on the hosts; throws Error saying what is wanted. */
export function parseBackupDir(text: string): string {
  const dir = text.trim();
  if (!dir.startsWith('/') || dir.split('/').includes('..'))
    throw new Error('give an absolute path on the hosts, e.g. /var/backups/sshfix');
  return dir.length > 1 ? dir.replace(/\/+$/, '') : dir;
}

export const SETTING_NAMES = Object.keys(SETTINGS) as SettingName[];

/** The environment variables read for settings, `SSHFIX_CONFIG` and `ANSIBLE_CONFIG` included. */
export const SETTING_VARIABLES = [
  'SSHFIX_CONFIG',
  'ANSIBLE_CONFIG',
  ...SETTING_NAMES.flatMap((name) => SETTINGS[name].env),
];

/**
 * Keys of ansible.cfg's [defaults] that Ansible reads (its base.yml and the
 * built-in plugins, ansible-core 2.14 to 2.18, plus older names still found
 * in real files): sshfix ignores them without a warning.
 */
const ANSIBLE_DEFAULTS_KEYS = new Set(
  (
    'action_plugins action_warnings admin_users allow_unsafe_lookups allow_world_readable_tmpfiles ' +
    'ansible_managed any_errors_fatal ask_pass ask_sudo_pass ask_vault_pass async_dir become_password_file ' +
    'become_plugins bin_ansible_callbacks cache_plugins callback_format_pretty callback_plugins ' +
    'callback_result_format callback_whitelist callbacks_enabled check_mode_markers cliconf_plugins ' +
    'collections_on_ansible_version_mismatch collections_path collections_paths collections_scan_sys_path ' +
    'command_warnings common_remote_group connection_password_file connection_plugins cow_selection cowpath ' +
    'cowsay_enabled_stencils debug deprecation_warnings devel_warning display_args_to_stdout ' +
    'display_failed_stderr display_ok_hosts display_skipped_hosts doc_fragment_plugins docsite_root_url ' +
    'duplicate_dict_key editor enable_task_debugger error_on_missing_handler error_on_undefined_vars ' +
    'executable fact_caching fact_caching_connection fact_caching_prefix fact_caching_timeout fact_path ' +
    'facts_modules filter_plugins force_color force_handlers force_valid_group_names forks gather_subset ' +
    'gather_timeout gathering hash_behaviour home host_key_checking hostfile httpapi_plugins ' +
    'inject_facts_as_vars internal_poll_interval interpreter_python invalid_task_attribute_failed inventory ' +
    'inventory_ignore_extensions inventory_ignore_patterns inventory_plugins jinja2_extensions jinja2_native ' +
    'keep_remote_files library local_tmp localhost_warning log_filter log_path log_verbosity lookup_plugins ' +
    'max_diff_size module_args module_compression module_ignore_exts module_lang module_name ' +
    'module_set_locale module_strict_utf8_response module_utils netconf_plugins network_group_modules ' +
    'no_log no_target_syslog nocolor nocows null_representation old_plugin_cache_clear pager pipelining ' +
    'playbook_dir playbook_vars_root plugin_filters_cfg poll_interval precedence private_key_file ' +
    'private_role_vars python_module_rlimit_nofile remote_port remote_tmp remote_user retry_files_enabled ' +
    'retry_files_save_path roles_path run_vars_plugins show_custom_stats show_per_host_start ' +
    'show_task_path_on_failure stdout_callback strategy strategy_plugins string_conversion_action su ' +
    'sudo sudo_exe sudo_flags sudo_user syslog_facility system_tmpdirs system_warnings target_log_info ' +
    'task_debugger_ignore_errors task_timeout terminal_plugins test_plugins timeout transport ' +
    'use_persistent_connections validate_action_group_metadata vars_plugins vars_plugins_enabled ' +
    'vault_encrypt_identity vault_encrypt_salt vault_id_match vault_identity vault_identity_list ' +
    'vault_password_file verbose_to_stderr verbosity win_async_startup_timeout yaml_valid_extensions'
  ).split(' '),
);

const SECTION = 'defaults';

/** A setting as a configuration file gives it, before it is parsed. */
export interface FileSetting {
  text: string;
  line: number;
}

export interface ConfigFileContent {
  settings: Partial<Record<SettingName, FileSetting>>;
  errors: Diagnostic[];
  warnings: Diagnostic[];
}

const isSshfixFile = (file: string): boolean => path.basename(file).endsWith('sshfix.cfg');

/**
 * The settings a configuration file's text sets, with what is wrong in it.
 * `file` names it in diagnostics and says its kind: keys only Ansible reads
 * are quiet in ansible.cfg, and warned about in sshfix.cfg.
 */
export function readConfigText(file: string, text: string): ConfigFileContent {
  const doc = parseIni(text);
  const at = (line: number) => ({ file, line, column: 1 });
  // Ansible refuses a file configparser cannot read; so does sshfix.
  const errors: Diagnostic[] = doc.problems.map((p) => ({
    severity: 'error',
    summary: p.message,
    position: at(p.line),
  }));
  const warnings: Diagnostic[] = [];
  const settings: Partial<Record<SettingName, FileSetting>> = {};
  const hasDefaults = doc.sections.some((s) => s.name === SECTION);
  // configparser merges [DEFAULT] into every section that exists, so it is read first.
  const read = [
    ...(hasDefaults ? doc.sections.filter((s) => s.name === DEFAULT_SECTION) : []),
    ...doc.sections.filter((s) => s.name === SECTION),
  ];
  for (const section of read) {
    for (const option of section.options) {
      if ((SETTING_NAMES as string[]).includes(option.key)) {
        settings[option.key as SettingName] = { text: option.value, line: option.line + 1 };
        continue;
      }
      if (section.name === DEFAULT_SECTION) continue;
      if (!isSshfixFile(file) && ANSIBLE_DEFAULTS_KEYS.has(option.key)) continue;
      warnings.push({
        severity: 'warning',
        summary: `unknown key '${option.key}' in [${SECTION}], ignored${didYouMean(option.key, SETTING_NAMES)}`,
        detail: `sshfix reads ${SETTING_NAMES.join(', ')}`,
        position: at(option.line + 1),
      });
    }
  }
  if (isSshfixFile(file)) {
    for (const section of doc.sections) {
      if (section.name === SECTION || section.name === DEFAULT_SECTION) continue;
      warnings.push({
        severity: 'warning',
        summary: `section [${section.name}] is not read by sshfix, only [${SECTION}]${didYouMean(section.name, [SECTION])}`,
        position: at(section.line + 1),
      });
    }
  }
  return { settings, errors, warnings };
}

export interface SettingsInput {
  /** The configuration file found, and its text. */
  file?: { path: string; text: string };
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
  home: string;
  /** Diagnostics from finding the file (a skipped world-writable directory). */
  warnings?: Diagnostic[];
}

/**
 * Every setting from the environment over the configuration file over the
 * defaults (the command line is applied on top by the caller, which knows
 * which flags were given). Throws ConfigError listing every bad value.
 */
export function resolveSettings(input: SettingsInput): Settings {
  const content = input.file ? readConfigText(input.file.path, input.file.text) : undefined;
  const errors: Diagnostic[] = [...(content?.errors ?? [])];
  const values: Record<string, unknown> = { ...DEFAULTS };
  const origins = Object.fromEntries(SETTING_NAMES.map((n) => [n, { kind: 'default' }])) as Record<
    SettingName,
    SettingOrigin
  >;
  const fileDir = input.file ? path.dirname(path.resolve(input.cwd, input.file.path)) : input.cwd;
  for (const name of SETTING_NAMES) {
    const definition = SETTINGS[name];
    const fromFile = content?.settings[name];
    if (fromFile !== undefined && input.file) {
      const context = { baseDir: fileDir, env: input.env, home: input.home };
      try {
        values[name] = definition.parse(unquote(fromFile.text.trim()), context);
        origins[name] = { kind: 'file', file: input.file.path, line: fromFile.line };
      } catch (error) {
        errors.push({
          severity: 'error',
          summary: `${name} = ${fromFile.text}: ${(error as Error).message}`,
          position: { file: input.file.path, line: fromFile.line, column: 1 },
        });
      }
    }
    // The lowest-ranked variable first, so the one that wins is applied last.
    for (const variable of [...definition.env].reverse()) {
      const text = input.env[variable];
      // An empty variable counts as unset, as Ansible does for non-strings.
      if (text === undefined || text.trim() === '') continue;
      const context = { baseDir: input.cwd, env: input.env, home: input.home };
      try {
        values[name] = definition.parse(text.trim(), context);
        origins[name] = { kind: 'env', variable };
      } catch (error) {
        errors.push({
          severity: 'error',
          summary: `${variable}=${text}: ${(error as Error).message}`,
        });
      }
    }
  }
  if (errors.length > 0) throw new ConfigError(errors);
  return {
    values: values as unknown as SettingValues,
    origins,
    ...(input.file ? { file: input.file.path } : {}),
    warnings: [...(input.warnings ?? []), ...(content?.warnings ?? [])],
  };
}

export interface ConfigFileSearch {
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
  home: string;
}

/** Where configuration files are looked for, in order; the first that exists is used. */
export function configFileCandidates(search: ConfigFileSearch): Array<{ path: string; from?: string }> {
  const fromVariable = (variable: string, directoryFile: string): Array<{ path: string; from: string }> => {
    const value = search.env[variable];
    if (value === undefined || value === '') return [];
    const file = path.resolve(search.cwd, value);
    const isDirectory = fs.statSync(file, { throwIfNoEntry: false })?.isDirectory() ?? false;
    return [{ path: isDirectory ? path.join(file, directoryFile) : file, from: variable }];
  };
  return [
    ...fromVariable('SSHFIX_CONFIG', 'sshfix.cfg'),
    ...fromVariable('ANSIBLE_CONFIG', 'ansible.cfg'),
    { path: path.join(search.cwd, 'sshfix.cfg') },
    { path: path.join(search.cwd, 'ansible.cfg') },
    { path: path.join(search.home, '.sshfix.cfg') },
    { path: path.join(search.home, '.ansible.cfg') },
    { path: '/etc/ansible/ansible.cfg' },
  ];
}

/**
 * Finds and reads the configuration file, then resolves the settings from it
 * and the environment. `SSHFIX_CONFIG` naming a file that cannot be read is
 * an error (it was asked for by name); `ANSIBLE_CONFIG` falls through to the
 * next place, as in Ansible.
 */
export function loadSettings(search: ConfigFileSearch): Settings {
  const warnings: Diagnostic[] = [];
  const worldWritableCwd = ((fs.statSync(search.cwd, { throwIfNoEntry: false })?.mode ?? 0) & 0o002) !== 0;
  for (const candidate of configFileCandidates(search)) {
    const inCwd = path.dirname(candidate.path) === search.cwd && candidate.from === undefined;
    let text: string;
    try {
      text = fs.readFileSync(candidate.path, 'utf8');
    } catch (error) {
      if (candidate.from === 'SSHFIX_CONFIG')
        throw new ConfigError([
          {
            severity: 'error',
            summary: `SSHFIX_CONFIG=${search.env.SSHFIX_CONFIG}: cannot read ${candidate.path}: ${(error as Error).message}`,
          },
        ]);
      continue;
    }
    if (inCwd && worldWritableCwd) {
      // Anyone could have put it there (Ansible skips it too).
      warnings.push({
        severity: 'warning',
        summary: `${candidate.path} ignored: the current directory is world-writable`,
      });
      continue;
    }
    return resolveSettings({ ...search, file: { path: candidate.path, text }, warnings });
  }
  return resolveSettings({ ...search, warnings });
}

/** "file:line", "SSHFIX_FORKS", "--forks" or "default". */
export function describeOrigin(origin: SettingOrigin): string {
  switch (origin.kind) {
    case 'default':
      return 'default';
    case 'cli':
      return origin.option;
    case 'env':
      return origin.variable;
    case 'file':
      return `${origin.file}:${origin.line}`;
  }
}
