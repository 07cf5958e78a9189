/**
 * The settings read as Ansible itself reads them: for the same files and
 * environment, loadSettings gives what `ansible-config dump --only-changed`
 * (ansible-core) prints, values and origins, and picks the same file.
 * Skipped with a warning where ansible-config is not installed, a failure
 * under CI=true (scripts/install-lab-packages.sh installs ansible-core).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadSettings, type SettingName, type Settings } from '../../../src/config/settings.js';

const haveAnsibleConfig = spawnSync('ansible-config', ['--version'], { encoding: 'utf8' }).status === 0;
/** Where ansible-config is missing: skipped with a warning, except under CI, where a skip would hide a failure. */
function describeWithAnsible(name: string, body: () => void): void {
  if (haveAnsibleConfig || process.env.CI === 'true') describe(name, body);
  else {
    console.warn(`skipping "${name}": ansible-config is not installed (apt-get install ansible-core)`);
    describe.skip(`${name} (skipped: no ansible-config)`, body);
  }
}

/** Ansible's names of the settings sshfix reads. */
const ANSIBLE_NAMES: Record<string, SettingName> = {
  DEFAULT_HOST_LIST: 'inventory',
  DEFAULT_FORKS: 'forks',
  DEFAULT_REMOTE_USER: 'remote_user',
  DEFAULT_PRIVATE_KEY_FILE: 'private_key_file',
  HOST_KEY_CHECKING: 'host_key_checking',
  DEFAULT_TIMEOUT: 'timeout',
};

interface Dump {
  file: string | undefined;
  /** sshfix's setting name -> "value (origin)", values written as sshfix holds them. */
  settings: Record<string, string>;
}

/** ansible-config dump --only-changed, run in `cwd` with only `env`. */
function ansibleDump(cwd: string, env: Record<string, string>): Dump {
  const run = spawnSync('ansible-config', ['dump', '--only-changed'], { cwd, env, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`ansible-config failed: ${run.stderr}`);
  const dump: Dump = { file: undefined, settings: {} };
  for (const line of run.stdout.split('\n')) {
    const m = /^(\w+)\((.*)\) = (.*)$/.exec(line);
    if (!m) continue;
    const [, name, origin, value] = m as unknown as [string, string, string, string];
    if (name === 'CONFIG_FILE') dump.file = value === 'None' ? undefined : value;
    const setting = ANSIBLE_NAMES[name];
    if (setting === undefined) continue;
    // ['/a/hosts.yml'] -> /a/hosts.yml; True/False -> true/false.
    const shown = value.replace(/^\['(.*)'\]$/, '$1').replace(/^(True|False)$/, (w) => w.toLowerCase());
    dump.settings[setting] = `${shown} (${origin.replace(/^env: /, '')})`;
  }
  return dump;
}

function sshfixDump(settings: Settings): Dump {
  const dump: Dump = { file: settings.file, settings: {} };
  for (const [name, origin] of Object.entries(settings.origins)) {
    if (origin.kind === 'default') continue;
    const where =
      origin.kind === 'env' ? origin.variable : origin.kind === 'file' ? origin.file : origin.option;
    dump.settings[name] = `${String(settings.values[name as SettingName])} (${where})`;
  }
  return dump;
}

describeWithAnsible('the same settings as ansible-config', () => {
  let root: string;
  let cwd: string;
  let home: string;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-ansible-config-'));
    cwd = path.join(root, 'project');
    home = path.join(root, 'home');
    fs.mkdirSync(cwd, { mode: 0o755 });
    fs.mkdirSync(home, { mode: 0o755 });
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  function compare(extraEnv: Record<string, string> = {}): Dump {
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, ...extraEnv };
    const ansible = ansibleDump(cwd, env);
    const sshfix = sshfixDump(loadSettings({ env, cwd, home }));
    expect(sshfix).toEqual(ansible);
    return sshfix;
  }

  const DIALECT = [
    '# comment line',
    '; another',
    '[DEFAULT]',
    'timeout = 33',
    '',
    '[defaults]',
    'inventory = inv/hosts.yml ; the fleet',
    'forks: 12',
    "REMOTE_USER = 'deploy'",
    'private_key_file = $KEYDIR/id_x',
    'host_key_checking = off',
    'roles_path = roles',
    '',
    '[ssh_connection]',
    'pipelining = True',
    '',
  ].join('\n');

  test('the dialect: comments, `:`, key case, quotes, [DEFAULT], $VAR, paths relative to the file', () => {
    fs.writeFileSync(path.join(cwd, 'ansible.cfg'), DIALECT);
    const dump = compare({ KEYDIR: '/keys' });
    // Not an empty comparison: every setting came from the file.
    expect(Object.keys(dump.settings).sort()).toEqual([
      'forks',
      'host_key_checking',
      'inventory',
      'private_key_file',
      'remote_user',
      'timeout',
    ]);
  });

  test('the environment over the file', () => {
    fs.writeFileSync(path.join(cwd, 'ansible.cfg'), DIALECT);
    const dump = compare({
      KEYDIR: '/keys',
      ANSIBLE_FORKS: '8',
      ANSIBLE_HOST_KEY_CHECKING: 'yes',
      ANSIBLE_INVENTORY: 'env/hosts.ini',
      ANSIBLE_PRIVATE_KEY_FILE: '~/.ssh/id_env',
    });
    expect(dump.settings.forks).toBe('8 (ANSIBLE_FORKS)');
  });

  test('which file: ./ansible.cfg before ~/.ansible.cfg, ANSIBLE_CONFIG (a file or a directory) before both', () => {
    fs.writeFileSync(path.join(home, '.ansible.cfg'), '[defaults]\nforks = 2\n');
    expect(compare().file).toBe(path.join(home, '.ansible.cfg'));
    fs.writeFileSync(path.join(cwd, 'ansible.cfg'), '[defaults]\nforks = 3\n');
    expect(compare().file).toBe(path.join(cwd, 'ansible.cfg'));
    const elsewhere = path.join(root, 'elsewhere');
    fs.mkdirSync(elsewhere);
    fs.writeFileSync(path.join(elsewhere, 'ansible.cfg'), '[defaults]\nforks = 4\n');
    expect(compare({ ANSIBLE_CONFIG: elsewhere }).file).toBe(path.join(elsewhere, 'ansible.cfg'));
    expect(compare({ ANSIBLE_CONFIG: path.join(root, 'missing.cfg') }).file).toBe(
      path.join(cwd, 'ansible.cfg'),
    );
  });

  test('a world-writable current directory: its ansible.cfg is skipped', () => {
    fs.writeFileSync(path.join(home, '.ansible.cfg'), '[defaults]\nforks = 2\n');
    fs.writeFileSync(path.join(cwd, 'ansible.cfg'), '[defaults]\nforks = 3\n');
    fs.chmodSync(cwd, 0o777);
    expect(compare().file).toBe(path.join(home, '.ansible.cfg'));
  });
});
