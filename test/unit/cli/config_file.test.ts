/**
 * sshfix.cfg, ansible.cfg and the environment, through the built CLI
 * (dist/cli/bin.js, `npm run build` first) in a throw-away project directory
 * and home: each source wins over the ones below it (flag > SSHFIX_* >
 * ANSIBLE_* > file in the project > file in the home > default), a bad value
 * stops everything naming file:line or the variable, and the Ansible flags
 * --list-hosts, --syntax-check, --become and --become-user.
 *
 * Runs use `-c local` hosts and `--list-hosts`, `--syntax-check` or plan:
 * nothing outside the temporary directory is touched.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import requireFreshBuild from '../../support/fresh_build.mjs';

const BIN = path.resolve('dist/cli/bin.js');

let root: string;
let project: string;
let home: string;
let marker: string;

function write(file: string, text: string): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  return file;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The CLI in `project`, with `home` as HOME and only `env` of the sshfix/Ansible variables. */
function sshfix(args: string[], env: Record<string, string> = {}): Run {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    cwd: project,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, ...env },
    encoding: 'utf8',
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** An inventory whose one local host is named `name`, so a run's output says which inventory it read. */
function inventory(file: string, name: string): string {
  return write(file, `${name} ansible_connection=local\n`);
}

beforeAll(requireFreshBuild);

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-cfg-'));
  project = path.join(root, 'project');
  home = path.join(root, 'home');
  fs.mkdirSync(project, { mode: 0o755 });
  fs.mkdirSync(home, { mode: 0o755 });
  marker = path.join(root, 'touched');
  write(
    path.join(project, 'site.yml'),
    `- name: motd\n  hosts: all\n  tasks:\n    - name: motd\n      file: { dest: ${marker}, content: "hello\\n" }\n`,
  );
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

/** The host names --list-hosts printed. */
function listedHosts(run: Run): string[] {
  return run.stdout
    .split('\n')
    .filter((line) => line.startsWith('      '))
    .map((line) => line.trim());
}

describe('the inventory comes from the first source that sets it', () => {
  test('flag > SSHFIX_INVENTORY > ANSIBLE_INVENTORY > ./sshfix.cfg > ./ansible.cfg > ~/.sshfix.cfg > ~/.ansible.cfg', () => {
    const list = (env: Record<string, string> = {}, args: string[] = []) =>
      listedHosts(sshfix(['plan', 'site.yml', '--list-hosts', ...args], env));

    const none = sshfix(['plan', 'site.yml', '--list-hosts']);
    expect(none.stderr).toContain('Missing required argument: inventory');
    expect(none.code).toBe(1);

    // Relative paths are taken from the config file's own directory.
    inventory(path.join(home, 'inv', 'home-ansible.ini'), 'home-ansible');
    write(path.join(home, '.ansible.cfg'), '[defaults]\ninventory = inv/home-ansible.ini\n');
    expect(list()).toEqual(['home-ansible']);

    inventory(path.join(home, 'inv', 'home-sshfix.ini'), 'home-sshfix');
    write(path.join(home, '.sshfix.cfg'), '[defaults]\ninventory = inv/home-sshfix.ini\n');
    expect(list()).toEqual(['home-sshfix']);

    inventory(path.join(project, 'project-ansible.ini'), 'project-ansible');
    write(path.join(project, 'ansible.cfg'), '[defaults]\ninventory = project-ansible.ini\n');
    expect(list()).toEqual(['project-ansible']);

    inventory(path.join(project, 'project-sshfix.ini'), 'project-sshfix');
    write(path.join(project, 'sshfix.cfg'), '[defaults]\ninventory = project-sshfix.ini\n');
    expect(list()).toEqual(['project-sshfix']);

    const ansibleEnv = inventory(path.join(root, 'ansible-env.ini'), 'ansible-env');
    expect(list({ ANSIBLE_INVENTORY: ansibleEnv })).toEqual(['ansible-env']);

    const sshfixEnv = inventory(path.join(root, 'sshfix-env.ini'), 'sshfix-env');
    expect(list({ ANSIBLE_INVENTORY: ansibleEnv, SSHFIX_INVENTORY: sshfixEnv })).toEqual(['sshfix-env']);

    const flag = inventory(path.join(root, 'flag.ini'), 'flag');
    expect(list({ ANSIBLE_INVENTORY: ansibleEnv, SSHFIX_INVENTORY: sshfixEnv }, ['-i', flag])).toEqual([
      'flag',
    ]);
  });

  test('ANSIBLE_CONFIG and SSHFIX_CONFIG name the file to read', () => {
    inventory(path.join(project, 'project.ini'), 'project');
    write(path.join(project, 'ansible.cfg'), '[defaults]\ninventory = project.ini\n');
    inventory(path.join(root, 'conf', 'a.ini'), 'from-ansible-config');
    const ansibleConfig = write(path.join(root, 'conf', 'ansible.cfg'), '[defaults]\ninventory = a.ini\n');
    inventory(path.join(root, 'conf', 's.ini'), 'from-sshfix-config');
    const sshfixConfig = write(path.join(root, 'conf', 'mine.cfg'), '[defaults]\ninventory = s.ini\n');
    const list = (env: Record<string, string>) =>
      listedHosts(sshfix(['plan', 'site.yml', '--list-hosts'], env));
    expect(list({ ANSIBLE_CONFIG: ansibleConfig })).toEqual(['from-ansible-config']);
    expect(list({ ANSIBLE_CONFIG: ansibleConfig, SSHFIX_CONFIG: sshfixConfig })).toEqual([
      'from-sshfix-config',
    ]);
  });

  test("apply PLAN keeps the plan's inventory: a config file's does not replace it", () => {
    inventory(path.join(project, 'planned.ini'), 'planned');
    expect(sshfix(['plan', 'site.yml', '-i', 'planned.ini', '--out', 'plan.json']).code).toBe(0);
    inventory(path.join(project, 'other.ini'), 'other');
    write(path.join(project, 'ansible.cfg'), '[defaults]\ninventory = other.ini\n');
    const hostsOf = (run: Run) => Object.keys((JSON.parse(run.stdout) as { hosts: object }).hosts);
    // A playbook takes the config file's inventory...
    expect(hostsOf(sshfix(['apply', 'site.yml', '--check', '--format', 'json']))).toEqual(['other']);
    // ...a plan file its own.
    const run = sshfix(['apply', 'plan.json', '--no-rollback', '--format', 'json']);
    expect(hostsOf(run)).toEqual(['planned']);
    expect(run.code).toBe(0);
    expect(fs.readFileSync(marker, 'utf8')).toBe('hello\n');
  });

  test('validate and inventory read it too', () => {
    inventory(path.join(project, 'hosts.ini'), 'configured');
    write(path.join(project, 'ansible.cfg'), '[defaults]\ninventory = hosts.ini\n');
    const validate = sshfix(['validate', 'site.yml']);
    expect(validate.stdout).toBe('site.yml: valid — 1 play, 1 task, rendered for 1 host\n');
    expect(validate.code).toBe(0);
    const shown = sshfix(['inventory']);
    expect(shown.stdout).toMatch(/^configured {2}groups: /);
    expect(shown.code).toBe(0);
  });
});

describe('forks, timeout, remote_user, private_key_file and host_key_checking: flag > env > file > default', () => {
  /** The settings apply/plan -v says it runs with (the values it passes on). */
  function settingsLines(run: Run): Record<string, string> {
    return Object.fromEntries(
      run.stderr
        .split('\n')
        .map((line) => /^(\w+(?: file)?) = (.*)$/.exec(line))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => [m[1]!, m[2]!]),
    );
  }

  test('each source wins over the ones below it, and -v names it', () => {
    inventory(path.join(project, 'hosts.ini'), 'here');
    const key = write(path.join(project, 'keys', 'id_file'), 'not a real key\n');
    const envKey = write(path.join(root, 'id_env'), 'not a real key\n');
    const flagKey = write(path.join(root, 'id_flag'), 'not a real key\n');
    const cfg = write(
      path.join(project, 'ansible.cfg'),
      '[defaults]\ninventory = hosts.ini\nforks = 7\ntimeout = 20\nremote_user = file-user\n' +
        'private_key_file = keys/id_file\nhost_key_checking = False\n',
    );
    const run = (env: Record<string, string>, args: string[] = []) =>
      settingsLines(sshfix(['plan', 'site.yml', '--list-hosts', '-v', ...args], env));

    expect(run({})).toEqual({
      'config file': cfg,
      inventory: `${path.join(project, 'hosts.ini')}  (${cfg}:2)`,
      forks: `7  (${cfg}:3)`,
      timeout: `20  (${cfg}:4)`,
      remote_user: `file-user  (${cfg}:5)`,
      private_key_file: `${key}  (${cfg}:6)`,
      host_key_checking: `false  (${cfg}:7)`,
      backup_dir: '(unset)  (default)',
    });

    const ansibleEnv = {
      ANSIBLE_FORKS: '8',
      ANSIBLE_TIMEOUT: '30',
      ANSIBLE_REMOTE_USER: 'ansible-user',
      ANSIBLE_HOST_KEY_CHECKING: 'yes',
    };
    expect(run(ansibleEnv)).toMatchObject({
      forks: '8  (ANSIBLE_FORKS)',
      timeout: '30  (ANSIBLE_TIMEOUT)',
      remote_user: 'ansible-user  (ANSIBLE_REMOTE_USER)',
      host_key_checking: 'true  (ANSIBLE_HOST_KEY_CHECKING)',
    });

    const sshfixEnv = {
      ...ansibleEnv,
      SSHFIX_FORKS: '9',
      SSHFIX_TIMEOUT: '40',
      SSHFIX_REMOTE_USER: 'sshfix-user',
      SSHFIX_PRIVATE_KEY_FILE: envKey,
      SSHFIX_HOST_KEY_CHECKING: 'off',
    };
    expect(run(sshfixEnv)).toMatchObject({
      forks: '9  (SSHFIX_FORKS)',
      timeout: '40  (SSHFIX_TIMEOUT)',
      remote_user: 'sshfix-user  (SSHFIX_REMOTE_USER)',
      private_key_file: `${envKey}  (SSHFIX_PRIVATE_KEY_FILE)`,
      host_key_checking: 'false  (SSHFIX_HOST_KEY_CHECKING)',
    });

    const flags = ['-f', '3', '--connect-timeout', '5', '-u', 'flag-user', '--private-key', flagKey];
    expect(run(sshfixEnv, [...flags, '--no-accept-new-host-keys'])).toMatchObject({
      forks: '3  (--forks)',
      timeout: '5  (--connect-timeout)',
      remote_user: 'flag-user  (--user)',
      private_key_file: `${flagKey}  (--private-key)`,
      host_key_checking: 'true  (--accept-new-host-keys)',
    });
  });

  test('sshfix config shows the same, without a playbook', () => {
    const cfg = write(path.join(home, '.ansible.cfg'), '[defaults]\nforks = 7\n');
    const run = sshfix(['config'], { SSHFIX_TIMEOUT: '33' });
    expect(run.stdout).toBe(
      [
        `config file = ${cfg}`,
        'inventory = (unset)  (default)',
        `forks = 7  (${cfg}:2)`,
        'remote_user = (unset)  (default)',
        'private_key_file = (unset)  (default)',
        'host_key_checking = true  (default)',
        'timeout = 33  (SSHFIX_TIMEOUT)',
        'backup_dir = (unset)  (default)',
        '',
      ].join('\n'),
    );
    expect(run.code).toBe(0);
    expect(sshfix(['config']).stdout).toContain('timeout = 10  (default)');
  });
});

describe('bad settings stop everything, naming the file:line or the variable', () => {
  beforeEach(() => inventory(path.join(project, 'hosts.ini'), 'here'));

  test('a bad value in the config file', () => {
    const cfg = write(path.join(project, 'ansible.cfg'), '[defaults]\ninventory = hosts.ini\nforks = many\n');
    const run = sshfix(['apply', 'site.yml']);
    expect(run.stderr).toContain(
      `${cfg}:3:1: error: forks = many: give how many hosts to work on at once, 1 or more`,
    );
    expect(run.code).toBe(1);
    expect(fs.existsSync(marker)).toBe(false);
  });

  test('a bad environment variable, even when a flag overrides it', () => {
    const run = sshfix(['apply', 'site.yml', '-i', 'hosts.ini', '--forks', '2'], { SSHFIX_FORKS: 'lots' });
    expect(run.stderr).toContain(
      'error: SSHFIX_FORKS=lots: give how many hosts to work on at once, 1 or more',
    );
    expect(run.code).toBe(1);
    expect(fs.existsSync(marker)).toBe(false);
  });

  test('a private_key_file that cannot be read', () => {
    const cfg = write(path.join(project, 'sshfix.cfg'), '[defaults]\nprivate_key_file = missing_key\n');
    const run = sshfix(['apply', 'site.yml', '-i', 'hosts.ini']);
    expect(run.stderr).toContain(
      `error: private_key_file ${path.join(project, 'missing_key')} (${cfg}:2): cannot read it:`,
    );
    expect(run.code).toBe(1);
    expect(fs.existsSync(marker)).toBe(false);
  });

  test('a file configparser would refuse', () => {
    const cfg = write(path.join(project, 'ansible.cfg'), 'forks = 3\n');
    const run = sshfix(['apply', 'site.yml', '-i', 'hosts.ini']);
    expect(run.stderr).toContain(`${cfg}:1:1: error: text before the first [section] header`);
    expect(run.code).toBe(1);
    expect(fs.existsSync(marker)).toBe(false);
  });

  test('an unknown key is a warning with its file:line, and the run goes on', () => {
    const cfg = write(
      path.join(project, 'ansible.cfg'),
      '[defaults]\ninventory = hosts.ini\nremote_usr = x\n',
    );
    const run = sshfix(['apply', 'site.yml']);
    expect(run.stderr).toContain(
      `${cfg}:3:1: warning: unknown key 'remote_usr' in [defaults], ignored (did you mean 'remote_user'?)`,
    );
    expect(run.code).toBe(0);
    expect(fs.readFileSync(marker, 'utf8')).toBe('hello\n');
  });
});

describe('Ansible flags', () => {
  test('--list-hosts: each play and its hosts, in the layout of ansible-playbook, after --limit', () => {
    write(
      path.join(project, 'hosts.ini'),
      '[web]\nweb1\nweb2\n[db]\ndb1\n[all:vars]\nansible_connection=local\n',
    );
    write(
      path.join(project, 'two.yml'),
      '- name: web servers\n  hosts: web\n  tasks: []\n- hosts: db:web\n  tasks: []\n',
    );
    const run = sshfix(['apply', 'two.yml', '-i', 'hosts.ini', '--list-hosts', '--limit', '!web2']);
    expect(run.stdout).toBe(
      [
        '',
        'playbook: two.yml',
        '',
        '  play #1 (web): web servers',
        "    pattern: ['web']",
        '    hosts (1):',
        '      web1',
        '',
        '  play #2 (db:web): db:web',
        "    pattern: ['db:web']",
        '    hosts (2):',
        '      web1',
        '      db1',
        '',
      ].join('\n'),
    );
    expect(run.code).toBe(0);
    expect(fs.existsSync(marker)).toBe(false);
  });

  test('--syntax-check is validate: the same report, and nothing runs', () => {
    inventory(path.join(project, 'hosts.ini'), 'here');
    const checked = sshfix(['apply', 'site.yml', '-i', 'hosts.ini', '--syntax-check']);
    const validated = sshfix(['validate', 'site.yml', '-i', 'hosts.ini']);
    expect(checked).toEqual(validated);
    expect(checked.code).toBe(0);
    write(
      path.join(project, 'bad.yml'),
      '- hosts: all\n  tasks:\n    - name: x\n      file: { dest: /tmp/x, contnet: y }\n',
    );
    const bad = sshfix(['plan', 'bad.yml', '-i', 'hosts.ini', '--syntax-check']);
    expect(bad.stderr).toMatch(/^bad\.yml:4:\d+: error: .*contnet/m);
    expect(bad).toEqual(sshfix(['validate', 'bad.yml', '-i', 'hosts.ini']));
    expect(bad.code).toBe(1);
    expect(fs.existsSync(marker)).toBe(false);
  });

  test('--become (-b) runs as root where nothing says otherwise; ansible_become: no beats it', () => {
    write(
      path.join(project, 'hosts.ini'),
      'plain ansible_connection=local\nrefuses ansible_connection=local ansible_become=no\n',
    );
    const scriptsAsRoot = (run: Run) =>
      [...new Set([...run.stderr.matchAll(/^\[(\w+)\] script as root:/gm)].map((m) => m[1]))].sort();
    expect(scriptsAsRoot(sshfix(['plan', 'site.yml', '-i', 'hosts.ini', '-v']))).toEqual([]);
    const become = sshfix(['plan', 'site.yml', '-i', 'hosts.ini', '-v', '-b']);
    expect(become.code).toBe(0);
    expect(scriptsAsRoot(become)).toEqual(['plain']);
  });

  test('--become-user takes root only', () => {
    inventory(path.join(project, 'hosts.ini'), 'here');
    const other = sshfix(['apply', 'site.yml', '-i', 'hosts.ini', '-b', '--become-user', 'postgres']);
    expect(other.stderr).toContain(
      'error: --become-user postgres: sshfix becomes root only (it edits files only root may change)',
    );
    expect(other.code).toBe(1);
    expect(fs.existsSync(marker)).toBe(false);
    expect(sshfix(['plan', 'site.yml', '-i', 'hosts.ini', '-b', '--become-user', 'root']).code).toBe(0);
  });
});

describe('backup_dir: where hosts keep the run directories', () => {
  /** The run directories an apply left under `dir` (each holds restore.sh). */
  const runDirs = (dir: string): string[] =>
    fs.existsSync(dir) ? fs.readdirSync(dir).filter((name) => !name.startsWith('.')) : [];

  test('flag > SSHFIX_BACKUP_DIR > file; the run directory is made there', () => {
    inventory(path.join(project, 'hosts.ini'), 'here');
    const fromFile = path.join(root, 'backups-file');
    const fromEnv = path.join(root, 'backups-env');
    const fromFlag = path.join(root, 'backups-flag');
    write(path.join(project, 'sshfix.cfg'), `[defaults]\ninventory = hosts.ini\nbackup_dir = ${fromFile}\n`);
    const apply = (env: Record<string, string>, args: string[] = []) => {
      fs.rmSync(marker, { force: true });
      return sshfix(['apply', 'site.yml', ...args], env);
    };
    expect(apply({}).code).toBe(0);
    expect(runDirs(fromFile)).toHaveLength(1);
    expect(apply({ SSHFIX_BACKUP_DIR: fromEnv }).code).toBe(0);
    expect(runDirs(fromEnv)).toHaveLength(1);
    expect(apply({ SSHFIX_BACKUP_DIR: fromEnv }, ['--backup-dir', fromFlag]).code).toBe(0);
    expect(runDirs(fromFlag)).toHaveLength(1);
    expect(runDirs(fromFile)).toHaveLength(1);
    expect(runDirs(fromEnv)).toHaveLength(1);
  });

  test('a relative path is refused, naming where it came from, and nothing runs', () => {
    inventory(path.join(project, 'hosts.ini'), 'here');
    const cfg = write(
      path.join(project, 'sshfix.cfg'),
      '[defaults]\ninventory = hosts.ini\nbackup_dir = backups\n',
    );
    const fromFile = sshfix(['apply', 'site.yml']);
    expect(fromFile.code).not.toBe(0);
    expect(fromFile.stderr).toContain(`${cfg}:3`);
    expect(fromFile.stderr).toContain('absolute path on the hosts');
    fs.rmSync(cfg);
    const fromFlag = sshfix(['apply', 'site.yml', '-i', 'hosts.ini', '--backup-dir', 'x/../y']);
    expect(fromFlag.code).not.toBe(0);
    expect(fromFlag.stderr).toContain('--backup-dir');
    expect(fs.existsSync(marker)).toBe(false);
  });
});
