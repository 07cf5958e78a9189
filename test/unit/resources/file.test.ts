/**
 * The `file` resource through the executor, on this machine's real shell
 * (a local connection to temp files, no SSH): plan, apply, idempotence,
 * attributes without rewriting, removal, and validate on a staged copy.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileResource, type FileArgs } from '../../../src/resources/file.js';
import { runPlayOnHost, type BoundPlay } from '../../../src/executor/host_run.js';
import { RemoteHostView } from '../../../src/executor/host_view.js';
import type { TaskResult } from '../../../src/executor/results.js';
import { localShell } from '../../support/local_sh.js';
import { runCli } from '../../support/cli.js';

let dir: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-file-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function playOf(args: FileArgs[]): BoundPlay {
  return {
    name: 'files',
    playbookDir: dir,
    vars: {},
    tasks: args.map((a, i) => ({
      play: 'files',
      name: `file ${i}`,
      resource: fileResource,
      args: a,
      notify: [],
    })),
    handlers: [],
  };
}

async function apply(args: FileArgs, check = false): Promise<TaskResult> {
  const [result] = await runPlayOnHost(localShell(), playOf([args]), { check });
  return result!;
}

function plan(args: FileArgs) {
  return fileResource.plan(args, new RemoteHostView(localShell()), { vars: {}, playbookDir: dir });
}

const stat = (file: string) => {
  const s = fs.statSync(file);
  return { mode: (s.mode & 0o7777).toString(8).padStart(4, '0'), uid: s.uid, gid: s.gid, ino: s.ino };
};
/** Files in dir, so tests can see that no staged copy is left behind. */
const listing = () => fs.readdirSync(dir).sort();
const NOBODY = 65534;

describe('state: present', () => {
  test('a dest that is a symbolic link fails the plan: a write would replace the link', async () => {
    const real = path.join(dir, 'issue.real');
    fs.writeFileSync(real, 'old\n');
    const dest = path.join(dir, 'issue.net');
    fs.symlinkSync('issue.real', dest);
    await expect(plan({ dest, content: 'new\n' })).rejects.toThrow(
      `${dest} is a symbolic link to ${real}: set dest to ${real} to change that file`,
    );
    expect(fs.lstatSync(dest).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(real, 'utf8')).toBe('old\n');
  });

  test('creates a missing file with the given content, mode and owner; then nothing to do', async () => {
    const dest = path.join(dir, 'issue.net');
    const args: FileArgs = {
      dest,
      content: 'Authorised use only\n',
      mode: '0600',
      owner: 'nobody',
      group: 'nogroup',
    };
    const first = await apply(args);
    expect(first.status).toBe('changed');
    expect(first.messages).toEqual([
      `${dest} does not exist → created: 1 line, mode 0600, owner nobody:nogroup`,
    ]);
    expect(first.diff).toContain('+Authorised use only');
    expect(fs.readFileSync(dest, 'utf8')).toBe('Authorised use only\n');
    expect(stat(dest)).toMatchObject({ mode: '0600', uid: NOBODY, gid: NOBODY });

    const second = await apply(args);
    expect(second.status).toBe('ok');
    expect(second.diff).toBe('');
    expect(second.commands).toEqual([]);
  });

  test('new content keeps an existing file’s mode and owner unless they are given', async () => {
    const dest = path.join(dir, 'banner');
    fs.writeFileSync(dest, 'old\nkept\n', { mode: 0o640 });
    fs.chownSync(dest, NOBODY, NOBODY);
    const result = await apply({ dest, content: 'new\nkept\n' });
    expect(result.status).toBe('changed');
    expect(result.messages).toEqual([`${dest} content differs → replaced`]);
    expect(result.diff).toMatch(/-old\n\+new\n kept/);
    expect(fs.readFileSync(dest, 'utf8')).toBe('new\nkept\n');
    expect(stat(dest)).toMatchObject({ mode: '0640', uid: NOBODY, gid: NOBODY });
  });

  test('only the mode differs: a chmod, no diff, the file is not rewritten', async () => {
    const dest = path.join(dir, 'drop-in.conf');
    fs.writeFileSync(dest, 'MaxAuthTries 4\n', { mode: 0o644 });
    const before = stat(dest);
    const args: FileArgs = { dest, content: 'MaxAuthTries 4\n', mode: '0600' };
    const planned = await apply(args, true);
    expect(planned).toMatchObject({
      status: 'changed',
      diff: '',
      commands: [`chmod -- 0600 ${dest}`],
      messages: [`${dest} mode 0644 → 0600`],
    });
    expect(stat(dest).mode).toBe('0644'); // check mode ran nothing

    expect((await apply(args)).status).toBe('changed');
    expect(stat(dest)).toEqual({ ...before, mode: '0600' }); // same inode: chmod, not a rewrite
    expect((await apply(args)).status).toBe('ok');
  });

  test('content and owner both differ: the atomic write, then chown', async () => {
    const dest = path.join(dir, 'both');
    fs.writeFileSync(dest, 'a\n');
    const result = await apply({ dest, content: 'b\n', owner: 'nobody', group: 'nogroup' });
    expect(result.commands).toEqual([`chown -- nobody:nogroup ${dest}`]);
    expect(fs.readFileSync(dest, 'utf8')).toBe('b\n');
    expect(stat(dest)).toMatchObject({ uid: NOBODY, gid: NOBODY });
    expect((await apply({ dest, content: 'b\n', owner: 'nobody', group: 'nogroup' })).status).toBe('ok');
  });

  test('without content only the attributes are converged; a missing file is an error', async () => {
    const dest = path.join(dir, 'sshd_config');
    fs.writeFileSync(dest, 'Port 22\n', { mode: 0o644 });
    expect((await apply({ dest, mode: '0600' })).commands).toEqual([`chmod -- 0600 ${dest}`]);
    expect(fs.readFileSync(dest, 'utf8')).toBe('Port 22\n');
    const missing = await apply({ dest: path.join(dir, 'nope'), mode: '0600' });
    expect(missing.status).toBe('failed');
    expect(missing.error).toContain('does not exist, and the task gives no content');
  });

  test('a path with quotes and spaces is written where it says', async () => {
    const dest = path.join(dir, "it's a $(file)");
    expect((await apply({ dest, content: 'x\n', mode: '0640' })).status).toBe('changed');
    expect(fs.readFileSync(dest, 'utf8')).toBe('x\n');
    expect((await apply({ dest, content: 'x\n', mode: '0640' })).status).toBe('ok');
  });
});

describe('state: absent', () => {
  test('removes the file, showing the old content as a diff to nothing; then nothing to do', async () => {
    const dest = path.join(dir, '60-sshfix.conf');
    fs.writeFileSync(dest, 'MaxAuthTries 4\nLoginGraceTime 45\n');
    const planned = await plan({ dest, state: 'absent' });
    expect(planned).toMatchObject({
      action: 'change',
      fileChanges: [],
      commands: [{ description: `rm -f -- ${dest}` }],
      stateDiffs: [{ label: dest, before: 'MaxAuthTries 4\nLoginGraceTime 45\n', after: '' }],
    });
    const checked = await apply({ dest, state: 'absent' }, true);
    expect(checked.status).toBe('changed');
    expect(checked.diff).toMatch(/-MaxAuthTries 4\n-LoginGraceTime 45\n/);
    expect(fs.existsSync(dest)).toBe(true); // check mode

    expect((await apply({ dest, state: 'absent' })).status).toBe('changed');
    expect(fs.existsSync(dest)).toBe(false);
    const again = await apply({ dest, state: 'absent' });
    expect(again).toMatchObject({ status: 'ok', messages: [`${dest} is absent`], commands: [] });
  });

  test('content, mode or validate with state: absent are input errors', () => {
    const problems = fileResource.checkArgs!({ dest: '/etc/x', state: 'absent', content: 'x', mode: '0600' });
    expect(problems.map((p) => p.pointer)).toEqual(['/content', '/mode']);
    expect(problems[0]?.message).toContain('no meaning with state: absent');
  });
});

describe('validate', () => {
  test('runs on a staged copy in dest’s directory, with the final mode, and removes it', async () => {
    const dest = path.join(dir, 'app.conf');
    fs.writeFileSync(dest, 'old\n');
    const seen = path.join(os.tmpdir(), `sshfix-seen-${process.pid}`);
    const validate = `{ dirname %s; stat -c %%a %s; cat %s; } > ${seen}`;
    try {
      const result = await apply({ dest, content: 'new content\n', mode: '0640', validate });
      expect(result.status).toBe('changed');
      expect(fs.readFileSync(seen, 'utf8')).toBe(`${dir}\n640\nnew content\n`);
      expect(listing()).toEqual(['app.conf']);
    } finally {
      fs.rmSync(seen, { force: true });
    }
  });

  test('a failing validate fails the task, leaves the target untouched and no staged copy', async () => {
    const dest = path.join(dir, 'app.conf');
    fs.writeFileSync(dest, 'old\n', { mode: 0o644 });
    const before = stat(dest);
    const result = await apply({
      dest,
      content: 'broken\n',
      mode: '0600',
      validate: `grep -q '^ok' %s || { echo %s: line 1: expected ok >&2; exit 3; }`,
    });
    expect(result.status).toBe('failed');
    // The tool's message names dest, not the staged copy's temporary name.
    expect(result.error).toBe(
      `validate rejected the new content of ${dest} (exit 3): ${dest}: line 1: expected ok`,
    );
    expect(fs.readFileSync(dest, 'utf8')).toBe('old\n');
    expect(stat(dest)).toEqual(before);
    expect(listing()).toEqual(['app.conf']);
  });

  test('a validate command that exits the shell still has its staged copy removed', async () => {
    const dest = path.join(dir, 'app.conf');
    const result = await apply({ dest, content: 'x\n', validate: 'exit 9 # %s' });
    expect(result.status).toBe('failed');
    expect(result.error).toContain('(exit 9)');
    expect(listing()).toEqual([]);
  });

  test('a directory that does not exist: staging fails with a clear message', async () => {
    const dest = path.join(dir, 'missing-dir', 'app.conf');
    const result = await apply({ dest, content: 'x\n', validate: 'true %s' });
    expect(result.status).toBe('failed');
    expect(result.error).toContain(`cannot stage the new content beside ${dest}`);
  });

  test('not run when the content is already right (only the mode changes)', async () => {
    const dest = path.join(dir, 'app.conf');
    fs.writeFileSync(dest, 'x\n', { mode: 0o644 });
    const result = await apply({ dest, content: 'x\n', mode: '0600', validate: 'false %s' });
    expect(result.status).toBe('changed');
    expect(stat(dest).mode).toBe('0600');
  });
});

describe('through the CLI (-c local)', () => {
  function write(name: string, text: string): string {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    return file;
  }
  const playbook = (args: string) =>
    `- name: files\n  hosts: all\n  tasks:\n    - name: drop-in\n      file:\n        dest: ${dir}/60.conf\n        content: "MaxAuthTries 4\\n"\n${args}`;

  test('an unquoted 0644 is read as "0644" with a warning to quote it', async () => {
    const inventory = write('hosts.ini', 'here ansible_connection=local\n');
    const pb = write('ok.yml', playbook('        mode: 0644\n'));
    const run = await runCli(['apply', pb, '-i', inventory]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('mode 644 is a YAML number; it was read as "0644"');
    expect(stat(path.join(dir, '60.conf')).mode).toBe('0644');
  });

  test('a mode number that cannot be octal, and a validate without %s, are errors at their keys', async () => {
    const inventory = write('hosts.ini', 'here ansible_connection=local\n');
    const pb = write('bad.yml', playbook('        mode: 0800\n        validate: /usr/sbin/sshd -t\n'));
    const run = await runCli(['apply', pb, '-i', inventory]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`${pb}:8:9: error: mode 800 is a number, not an octal mode`);
    expect(run.stderr).toContain(`${pb}:9:9: error: validate must contain %s`);
    expect(fs.existsSync(path.join(dir, '60.conf'))).toBe(false);
  });
});
