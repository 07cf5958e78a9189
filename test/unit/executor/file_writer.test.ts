import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildWriteScript, EXIT_CHANGED_SINCE_PLAN } from '../../../src/executor/file_writer.js';
import { sha256 } from '../../../src/executor/remote_read.js';
import { localShell } from '../../support/local_sh.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-write-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('buildWriteScript', () => {
  test('replaces files atomically, keeps mode, creates new files, leaves no temp files', async () => {
    const existing = path.join(dir, 'sshd_config');
    fs.writeFileSync(existing, 'old\n');
    fs.chmodSync(existing, 0o640);
    const inode = fs.statSync(existing).ino;
    const created = path.join(dir, 'new.conf');
    const content = "it's $HOME `x`\nSSHFIX_EOF_0\nünï\n";
    const result = await localShell().runScript(
      buildWriteScript([
        { path: existing, before: 'old\n', beforeSha256: sha256('old\n'), after: content },
        { path: created, before: null, beforeSha256: null, after: 'n\n', mode: '0600' },
      ]),
    );
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    expect(fs.readFileSync(existing, 'utf8')).toBe(content);
    expect(fs.statSync(existing).mode & 0o777).toBe(0o640);
    // rename(), not an in-place rewrite: a new inode.
    expect(fs.statSync(existing).ino).not.toBe(inode);
    expect(fs.readFileSync(created, 'utf8')).toBe('n\n');
    expect(fs.statSync(created).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(dir).sort()).toEqual(['new.conf', 'sshd_config']);
  });

  (process.getuid?.() === 0 ? test : test.skip)(
    'keeps the owner and group of the file it replaces',
    async () => {
      const existing = path.join(dir, 'hosts.allow');
      fs.writeFileSync(existing, 'old\n');
      fs.chownSync(existing, 65534, 65534);
      fs.chmodSync(existing, 0o604);
      const result = await localShell().runScript(
        buildWriteScript([
          { path: existing, before: 'old\n', beforeSha256: sha256('old\n'), after: 'new\n' },
        ]),
      );
      expect(result.exitCode).toBe(0);
      const after = fs.statSync(existing);
      expect([after.uid, after.gid, after.mode & 0o777]).toEqual([65534, 65534, 0o604]);
      expect(fs.readFileSync(existing, 'utf8')).toBe('new\n');
    },
  );

  test('refuses to replace a symbolic link with a file, and writes nothing', async () => {
    const real = path.join(dir, 'real_config');
    fs.writeFileSync(real, 'old\n');
    const link = path.join(dir, 'sshd_config');
    fs.symlinkSync('real_config', link);
    const result = await localShell().runScript(
      buildWriteScript([{ path: link, before: 'old\n', beforeSha256: sha256('old\n'), after: 'new\n' }]),
    );
    expect(result.exitCode).toBe(EXIT_CHANGED_SINCE_PLAN);
    expect(result.stderr).toBe(
      `${link} is a symbolic link (to real_config); not replacing the link with a file: write to its target instead\n`,
    );
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(real, 'utf8')).toBe('old\n');
    expect(fs.readdirSync(dir).sort()).toEqual(['real_config', 'sshd_config']);
  });

  test('refuses to overwrite a file that changed since the plan, and writes nothing', async () => {
    const a = path.join(dir, 'a');
    const b = path.join(dir, 'b');
    fs.writeFileSync(a, 'a0\n');
    fs.writeFileSync(b, 'edited by someone else\n');
    const result = await localShell().runScript(
      buildWriteScript([
        { path: a, before: 'a0\n', beforeSha256: sha256('a0\n'), after: 'a1\n' },
        { path: b, before: 'b0\n', beforeSha256: sha256('b0\n'), after: 'b1\n' },
      ]),
    );
    expect(result.exitCode).toBe(EXIT_CHANGED_SINCE_PLAN);
    expect(result.stderr).toContain(`${b} changed since the plan was made`);
    expect(fs.readFileSync(a, 'utf8')).toBe('a0\n');
    expect(fs.readFileSync(b, 'utf8')).toBe('edited by someone else\n');
    expect(fs.readdirSync(dir).sort()).toEqual(['a', 'b']);
  });

  test('a path with shell metacharacters is taken literally', async () => {
    const target = path.join(dir, "x$(echo pwned >&2)`echo pwned >&2`'y");
    const result = await localShell().runScript(
      buildWriteScript([{ path: target, before: null, beforeSha256: null, after: 'z\n' }]),
    );
    expect(result.exitCode).toBe(0);
    expect(fs.readFileSync(target, 'utf8')).toBe('z\n');
    expect(result.stderr).not.toContain('pwned');
  });
});
