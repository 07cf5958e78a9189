/**
 * The commands of the bench's measured lower bounds (bench/lib/bounds.mjs),
 * run by a real /bin/sh on files under a scratch directory: the read sends
 * every file that exists and the ruleset, and the guarded change rewrites the
 * managed files with their own bytes, backs them up, arms a dead-man timer
 * that restores only while its backup exists, and is disarmed afterwards.
 * The lab runs of the same commands are the bench's (`npm run bench`).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { disarmCommand, guardedChangeCommand, readCommand } from '../../../bench/lib/bounds.mjs';

function sh(script: string): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync('/bin/sh', ['-c', script], { encoding: 'utf8' });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Running, not a zombie: a killed timer is reparented, and its new parent may not reap it at once. */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Polls `check` (no time limit of its own beyond `attempts`): the timer's sleep is all it waits for. */
async function eventually(check: () => boolean, attempts = 200): Promise<boolean> {
  for (let i = 0; i < attempts; i++) {
    if (check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return check();
}

describe('the bench bounds', () => {
  let root: string;
  let guardDir: string;
  let files: { config: string; dropIn: string; allow: string };

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-bounds-'));
    guardDir = path.join(root, 'guard');
    fs.mkdirSync(path.join(root, 'etc', 'conf.d'), { recursive: true });
    files = {
      config: path.join(root, 'etc', 'config'),
      dropIn: path.join(root, 'etc', 'conf.d', '50-drop.conf'),
      allow: path.join(root, 'etc', 'allow'),
    };
    fs.writeFileSync(files.config, 'Include conf.d/*.conf\n', { mode: 0o600 });
    fs.writeFileSync(files.dropIn, 'MaxStartups 2:50:5\n');
    fs.writeFileSync(files.allow, 'sshd: 10.0.0.0/8\n');
  });

  afterEach(() => {
    // A timer a failed test left behind must not outlive it.
    const pidFile = path.join(guardDir, 'timer.pid');
    if (fs.existsSync(pidFile)) {
      try {
        process.kill(-Number(fs.readFileSync(pidFile, 'utf8').trim()), 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    fs.rmSync(root, { recursive: true, force: true });
  });

  const paths = () => [
    files.config,
    path.join(root, 'etc', 'conf.d', '*.conf'),
    files.allow,
    path.join(root, 'absent'),
  ];

  it('reads every file that exists, globs expanded, then the ruleset', () => {
    const result = sh(readCommand({ readPaths: paths(), rulesetCommand: 'echo RULESET' }));
    expect(result).toEqual({
      code: 0,
      stdout: 'Include conf.d/*.conf\nMaxStartups 2:50:5\nsshd: 10.0.0.0/8\nRULESET\n',
      stderr: '',
    });
  });

  it('rewrites the managed files with their own bytes and mode, backs them up, reloads, and is disarmed', () => {
    const inodes = Object.values(files).map((f) => fs.statSync(f).ino);
    const reloaded = path.join(root, 'reloaded');
    const result = sh(
      guardedChangeCommand({
        reload: `touch '${reloaded}'`,
        guardDir,
        readPaths: paths(),
        managedPaths: paths(),
        rulesetCommand: 'echo RULESET',
        firewallRule: null,
      }),
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('Include conf.d/*.conf\nMaxStartups 2:50:5\nsshd: 10.0.0.0/8\nRULESET\n');
    expect(fs.existsSync(reloaded)).toBe(true);
    // Written anew (a rename gives a new inode), with the same bytes and mode, no temp file left.
    expect(Object.values(files).map((f) => fs.statSync(f).ino)).not.toEqual(inodes);
    expect(fs.readFileSync(files.dropIn, 'utf8')).toBe('MaxStartups 2:50:5\n');
    expect(fs.statSync(files.config).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(path.join(root, 'etc', 'conf.d'))).toEqual(['50-drop.conf']);
    expect(fs.readFileSync(path.join(guardDir, 'backup', files.dropIn), 'utf8')).toBe('MaxStartups 2:50:5\n');

    const timer = Number(fs.readFileSync(path.join(guardDir, 'timer.pid'), 'utf8').trim());
    expect(alive(timer)).toBe(true);
    expect(sh(disarmCommand({ guardDir }))).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(fs.existsSync(guardDir)).toBe(false);
    expect(alive(timer)).toBe(false);
  });

  it('restores the backup when the timer fires before the disarm', async () => {
    const command = guardedChangeCommand({
      reload: 'true',
      guardDir,
      readPaths: paths(),
      managedPaths: paths(),
      rulesetCommand: 'true',
      firewallRule: null,
      timerSeconds: 600,
    });
    expect(sh(command).code).toBe(0);
    fs.writeFileSync(files.dropIn, 'changed since\n');
    // The timer fires now, not after a delay this test would race: its sleep ends.
    const timer = Number(fs.readFileSync(path.join(guardDir, 'timer.pid'), 'utf8').trim());
    expect(spawnSync('pkill', ['-P', String(timer), 'sleep']).status).toBe(0);
    expect(await eventually(() => fs.readFileSync(files.dropIn, 'utf8') === 'MaxStartups 2:50:5\n')).toBe(
      true,
    );
  });

  it('restores nothing once its backup is gone, even if the timer escaped its kill', async () => {
    const command = guardedChangeCommand({
      reload: 'true',
      guardDir,
      readPaths: paths(),
      managedPaths: paths(),
      rulesetCommand: 'true',
      firewallRule: null,
      timerSeconds: 1,
    });
    expect(sh(command).code).toBe(0);
    const timer = Number(fs.readFileSync(path.join(guardDir, 'timer.pid'), 'utf8').trim());
    fs.rmSync(path.join(guardDir, 'backup'), { recursive: true });
    fs.writeFileSync(files.dropIn, 'changed since\n');
    // The timer's shell ends after its sleep and its test: then it has done all it would.
    expect(await eventually(() => !alive(timer))).toBe(true);
    expect(fs.readFileSync(files.dropIn, 'utf8')).toBe('changed since\n');
  });
});
