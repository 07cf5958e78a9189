/**
 * sshfix.cfg / ansible.cfg and the environment: the file read as Ansible's
 * configparser reads it, paths resolved as Ansible resolves them, and
 * environment over file over default, with every bad value named by
 * file:line or by its variable.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '../../../src/config/diagnostics.js';
import {
  configFileCandidates,
  loadSettings,
  readConfigText,
  resolveSettings,
  type SettingsInput,
} from '../../../src/config/settings.js';

const CWD = '/work/project';
const HOME = '/home/alice';

function resolve(text: string | undefined, env: Record<string, string> = {}, file = '/etc/proj/ansible.cfg') {
  const input: SettingsInput = {
    env,
    cwd: CWD,
    home: HOME,
    ...(text !== undefined ? { file: { path: file, text } } : {}),
  };
  return resolveSettings(input);
}

function errorsOf(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError)
      return error.diagnostics.map((d) =>
        d.position ? `${d.position.file}:${d.position.line}: ${d.summary}` : d.summary,
      );
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('the INI dialect, as configparser reads it for Ansible', () => {
  test('= and : delimiters, keys in any case, `;` inline comments, `#` inline kept', () => {
    const content = readConfigText(
      '/p/ansible.cfg',
      '# a comment\n[defaults]\nFORKS = 7 ; seven\nremote_user: deploy # not a comment\n; another comment\n',
    );
    expect(content.errors).toEqual([]);
    expect(content.settings.forks).toEqual({ text: '7', line: 3 });
    expect(content.settings.remote_user).toEqual({ text: 'deploy # not a comment', line: 4 });
  });

  test('only [defaults] is read; [DEFAULT] fills it in when it exists', () => {
    const withDefaults = readConfigText('/p/ansible.cfg', '[DEFAULT]\nforks = 3\n[defaults]\ntimeout = 30\n');
    expect(withDefaults.settings).toEqual({
      forks: { text: '3', line: 2 },
      timeout: { text: '30', line: 4 },
    });
    const overridden = readConfigText('/p/ansible.cfg', '[DEFAULT]\nforks = 3\n[defaults]\nforks = 4\n');
    expect(overridden.settings.forks).toEqual({ text: '4', line: 4 });
    // configparser finds no [defaults] section, so Ansible reads nothing.
    expect(readConfigText('/p/ansible.cfg', '[DEFAULT]\nforks = 3\n').settings).toEqual({});
    expect(readConfigText('/p/ansible.cfg', '[ssh_connection]\ntimeout = 3\n').settings).toEqual({});
  });

  test('what configparser refuses is an error at its line', () => {
    expect(readConfigText('/p/ansible.cfg', 'forks = 3\n').errors.map((e) => e.position?.line)).toEqual([1]);
    const twice = readConfigText('/p/ansible.cfg', '[defaults]\nforks = 3\nforks = 4\n');
    expect(twice.errors).toMatchObject([
      { summary: 'forks is set twice in [defaults]', position: { line: 3 } },
    ]);
  });

  test('an unknown key warns with its file:line and the nearest key sshfix reads', () => {
    const content = readConfigText('/p/ansible.cfg', '[defaults]\nforsk = 3\n');
    expect(content.warnings).toMatchObject([
      {
        severity: 'warning',
        summary: "unknown key 'forsk' in [defaults], ignored (did you mean 'forks'?)",
        position: { file: '/p/ansible.cfg', line: 2, column: 1 },
      },
    ]);
  });

  test("in ansible.cfg, Ansible's own keys and sections are quiet; in sshfix.cfg they warn", () => {
    const text =
      '[defaults]\nroles_path = roles\nstdout_callback = yaml\n[ssh_connection]\npipelining = True\n';
    expect(readConfigText('/p/ansible.cfg', text).warnings).toEqual([]);
    const warnings = readConfigText('/p/sshfix.cfg', text).warnings;
    expect(warnings.map((w) => [w.position?.line, w.summary])).toEqual([
      [2, "unknown key 'roles_path' in [defaults], ignored"],
      [3, "unknown key 'stdout_callback' in [defaults], ignored"],
      [4, 'section [ssh_connection] is not read by sshfix, only [defaults]'],
    ]);
  });
});

describe('values', () => {
  test('relative paths are taken from the directory of the file that sets them', () => {
    const settings = resolve('[defaults]\ninventory = hosts.ini\nprivate_key_file = keys/id_ed25519\n');
    expect(settings.values.inventory).toBe('/etc/proj/hosts.ini');
    expect(settings.values.private_key_file).toBe('/etc/proj/keys/id_ed25519');
  });

  test('from the environment, relative paths are taken from the current directory', () => {
    const settings = resolve(undefined, { ANSIBLE_INVENTORY: 'inv/hosts.yml' });
    expect(settings.values.inventory).toBe('/work/project/inv/hosts.yml');
  });

  test('~, $VAR and ${VAR} are expanded; unknown variables stay; quotes go', () => {
    const settings = resolve(
      '[defaults]\ninventory = "$PROJ/hosts"\nprivate_key_file = ~/.ssh/${KEY}\nremote_user = \'$NOBODY\'\n',
      { PROJ: '/srv/proj', KEY: 'id_fleet' },
    );
    expect(settings.values.inventory).toBe('/srv/proj/hosts');
    expect(settings.values.private_key_file).toBe('/home/alice/.ssh/id_fleet');
    expect(settings.values.remote_user).toBe('$NOBODY');
  });

  test("booleans take Ansible's words; integers take 5 and 5.0", () => {
    const settings = resolve('[defaults]\nhost_key_checking = False\nforks = 5.0\ntimeout = 30\n');
    expect(settings.values).toMatchObject({ host_key_checking: false, forks: 5, timeout: 30 });
    expect(resolve('[defaults]\nhost_key_checking = yes\n').values.host_key_checking).toBe(true);
  });

  test('defaults, when nothing sets them', () => {
    const settings = resolve(undefined);
    expect(settings.values).toEqual({ forks: 25, host_key_checking: true, timeout: 10 });
    expect(settings.origins.forks).toEqual({ kind: 'default' });
    expect(settings.file).toBeUndefined();
  });

  test('every bad value is an error naming file:line or the variable, all at once', () => {
    const text =
      '[defaults]\nforks = many\nhost_key_checking = Flase\ntimeout = 0\ninventory = a.yml, b.yml\nremote_user =\n';
    expect(errorsOf(() => resolve(text, { SSHFIX_FORKS: '-1', ANSIBLE_TIMEOUT: '2.5' }))).toEqual([
      '/etc/proj/ansible.cfg:5: inventory = a.yml, b.yml: give one inventory file, not 2',
      '/etc/proj/ansible.cfg:2: forks = many: give how many hosts to work on at once, 1 or more',
      'SSHFIX_FORKS=-1: give how many hosts to work on at once, 1 or more',
      '/etc/proj/ansible.cfg:6: remote_user = : give a user name',
      '/etc/proj/ansible.cfg:3: host_key_checking = Flase: give a boolean (yes/no, true/false, on/off, 1/0)',
      '/etc/proj/ansible.cfg:4: timeout = 0: give whole seconds, 1 to 2147483',
      'ANSIBLE_TIMEOUT=2.5: give whole seconds, 1 to 2147483',
    ]);
  });
});

describe('precedence: environment > file > default', () => {
  const file = '[defaults]\nforks = 7\nremote_user = from-file\ntimeout = 20\n';

  test('the file beats the default', () => {
    const settings = resolve(file);
    expect(settings.values.forks).toBe(7);
    expect(settings.origins.forks).toEqual({ kind: 'file', file: '/etc/proj/ansible.cfg', line: 2 });
  });

  test('ANSIBLE_* beats the file, and SSHFIX_* beats ANSIBLE_*', () => {
    const settings = resolve(file, {
      ANSIBLE_FORKS: '8',
      ANSIBLE_REMOTE_USER: 'ansible-env',
      SSHFIX_REMOTE_USER: 'sshfix-env',
    });
    expect(settings.values).toMatchObject({ forks: 8, remote_user: 'sshfix-env', timeout: 20 });
    expect(settings.origins.forks).toEqual({ kind: 'env', variable: 'ANSIBLE_FORKS' });
    expect(settings.origins.remote_user).toEqual({ kind: 'env', variable: 'SSHFIX_REMOTE_USER' });
  });

  test('an empty variable counts as unset', () => {
    expect(resolve(file, { SSHFIX_FORKS: '' }).values.forks).toBe(7);
  });
});

describe('which file is read', () => {
  let root: string;
  let cwd: string;
  let home: string;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-settings-'));
    cwd = path.join(root, 'project');
    home = path.join(root, 'home');
    fs.mkdirSync(cwd, { mode: 0o755 });
    fs.mkdirSync(home);
    fs.chmodSync(cwd, 0o755);
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  const write = (file: string, forks: number) => fs.writeFileSync(file, `[defaults]\nforks = ${forks}\n`);

  test("Ansible's order, with sshfix.cfg before ansible.cfg at each place", () => {
    const env = { SSHFIX_CONFIG: '/x/s.cfg', ANSIBLE_CONFIG: '/x/a.cfg' };
    expect(configFileCandidates({ env, cwd: '/p', home: '/h' }).map((c) => c.path)).toEqual([
      '/x/s.cfg',
      '/x/a.cfg',
      '/p/sshfix.cfg',
      '/p/ansible.cfg',
      '/h/.sshfix.cfg',
      '/h/.ansible.cfg',
      '/etc/ansible/ansible.cfg',
    ]);
  });

  test('the first that exists wins, and files are not merged', () => {
    write(path.join(home, '.ansible.cfg'), 2);
    fs.writeFileSync(path.join(home, '.sshfix.cfg'), '[defaults]\ntimeout = 44\n');
    expect(loadSettings({ env: {}, cwd, home }).file).toBe(path.join(home, '.sshfix.cfg'));
    expect(loadSettings({ env: {}, cwd, home }).values.forks).toBe(25);
    write(path.join(cwd, 'ansible.cfg'), 4);
    expect(loadSettings({ env: {}, cwd, home }).values).toMatchObject({ forks: 4, timeout: 10 });
    write(path.join(cwd, 'sshfix.cfg'), 5);
    expect(loadSettings({ env: {}, cwd, home }).values.forks).toBe(5);
    const other = path.join(root, 'other.cfg');
    write(other, 6);
    expect(loadSettings({ env: { ANSIBLE_CONFIG: other }, cwd, home }).values.forks).toBe(6);
    const mine = path.join(root, 'mine.cfg');
    write(mine, 7);
    expect(
      loadSettings({ env: { ANSIBLE_CONFIG: other, SSHFIX_CONFIG: mine }, cwd, home }).values.forks,
    ).toBe(7);
  });

  test('a directory in ANSIBLE_CONFIG means its ansible.cfg; a missing one falls through, as in Ansible', () => {
    write(path.join(root, 'ansible.cfg'), 3);
    expect(loadSettings({ env: { ANSIBLE_CONFIG: root }, cwd, home }).file).toBe(
      path.join(root, 'ansible.cfg'),
    );
    write(path.join(home, '.ansible.cfg'), 2);
    expect(loadSettings({ env: { ANSIBLE_CONFIG: '/nonexistent.cfg' }, cwd, home }).values.forks).toBe(2);
  });

  test('SSHFIX_CONFIG naming a file that cannot be read is an error', () => {
    const missing = path.join(root, 'missing.cfg');
    expect(errorsOf(() => loadSettings({ env: { SSHFIX_CONFIG: missing }, cwd, home }))).toEqual([
      expect.stringMatching(new RegExp(`^SSHFIX_CONFIG=${missing}: cannot read ${missing}: .*ENOENT`)),
    ]);
  });

  test('a file in a world-writable current directory is skipped with a warning, as in Ansible', () => {
    write(path.join(cwd, 'ansible.cfg'), 4);
    write(path.join(home, '.ansible.cfg'), 2);
    fs.chmodSync(cwd, 0o777);
    const settings = loadSettings({ env: {}, cwd, home });
    expect(settings.values.forks).toBe(2);
    expect(settings.warnings.map((w) => w.summary)).toEqual([
      `${path.join(cwd, 'ansible.cfg')} ignored: the current directory is world-writable`,
    ]);
  });
});
