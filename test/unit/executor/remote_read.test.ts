import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { RemoteHostView, globToRegExp } from '../../../src/executor/host_view.js';
import { buildReadScript, globWord, parseReadOutput } from '../../../src/executor/remote_read.js';
import { localShell } from '../../support/local_sh.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-read-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('RemoteHostView', () => {
  test('batches reads issued together into one round trip and returns exact bytes', async () => {
    const weird = 'line one\n\ttab  "quoted" $HOME `x` \\ back\r\nünïcode\n\n';
    fs.writeFileSync(path.join(dir, 'a.conf'), weird);
    fs.writeFileSync(path.join(dir, 'b.conf'), '');
    fs.chmodSync(path.join(dir, 'b.conf'), 0o600);
    const conn = localShell();
    const view = new RemoteHostView(conn);
    const [files, globbed, probe] = await Promise.all([
      view.readFiles([path.join(dir, 'a.conf'), path.join(dir, 'b.conf'), path.join(dir, 'missing')]),
      view.glob(path.join(dir, '*.conf')),
      view.probe('echo out; echo err >&2; exit 3'),
    ]);
    expect(view.roundTrips).toBe(1);
    expect(files.get(path.join(dir, 'a.conf'))?.content).toBe(weird);
    expect(files.get(path.join(dir, 'b.conf'))).toMatchObject({ exists: true, content: '', mode: '0600' });
    expect(files.get(path.join(dir, 'missing'))?.exists).toBe(false);
    expect(globbed).toEqual([path.join(dir, 'a.conf'), path.join(dir, 'b.conf')]);
    expect(probe).toEqual({ stdout: 'out\n', stderr: 'err\n', exitCode: 3 });
  });

  test('globFiles returns names and contents in one round trip, with planned files', async () => {
    fs.writeFileSync(path.join(dir, 'b.conf'), 'B 1\n');
    fs.writeFileSync(path.join(dir, 'a b.conf'), 'A $x `y`\n');
    fs.writeFileSync(path.join(dir, 'skip.txt'), 'no\n');
    const view = new RemoteHostView(localShell());
    const planned = path.join(dir, 'c.conf');
    view.recordPlannedWrites([{ path: planned, before: null, beforeSha256: null, after: 'C 1\n' }]);
    const files = await view.globFiles(path.join(dir, '*.conf'));
    expect(files.map((f) => [path.basename(f.path), f.content])).toEqual([
      ['a b.conf', 'A $x `y`\n'],
      ['b.conf', 'B 1\n'],
      ['c.conf', 'C 1\n'],
    ]);
    expect(view.roundTrips).toBe(1);
  });

  test('caches answers and shows planned writes to later reads', async () => {
    const conn = localShell();
    const view = new RemoteHostView(conn);
    const target = path.join(dir, 'new.conf');
    await view.readFiles([target]);
    view.recordPlannedWrites([{ path: target, before: null, beforeSha256: null, after: 'X 1\n' }]);
    const again = await view.readFiles([target]);
    expect(again.get(target)?.content).toBe('X 1\n');
    expect(await view.glob(path.join(dir, '*.conf'))).toEqual([target]);
    expect(view.roundTrips).toBe(2);
  });

  test('names the file a symbolic link resolves to, and reads a planned write to it through the link', async () => {
    fs.mkdirSync(path.join(dir, 'dotfiles'));
    const real = path.join(dir, 'dotfiles', 'sshd_config');
    fs.writeFileSync(real, 'Port 22\n');
    const link = path.join(dir, 'sshd_config');
    fs.symlinkSync('dotfiles/sshd_config', link);
    fs.mkdirSync(path.join(dir, 'd'));
    fs.writeFileSync(path.join(dir, 'd', 'a.conf'), 'A\n');
    fs.symlinkSync('../dotfiles/sshd_config', path.join(dir, 'd', 'b.conf'));
    const view = new RemoteHostView(localShell());
    const [files, globbed] = await Promise.all([
      view.readFiles([link, real]),
      view.globFiles(path.join(dir, 'd', '*.conf')),
    ]);
    expect(files.get(link)).toMatchObject({ path: link, content: 'Port 22\n', symlinkTarget: real });
    expect(files.get(real)?.symlinkTarget).toBeUndefined();
    expect(globbed.map((f) => [path.basename(f.path), f.symlinkTarget])).toEqual([
      ['a.conf', undefined],
      ['b.conf', real],
    ]);
    view.recordPlannedWrites([{ path: real, before: 'Port 22\n', beforeSha256: null, after: 'Port 2222\n' }]);
    expect((await view.readFiles([link])).get(link)).toMatchObject({
      content: 'Port 2222\n',
      symlinkTarget: real,
    });
  });

  test('a glob pattern from a config file cannot run commands', async () => {
    const canary = path.join(dir, 'canary');
    const view = new RemoteHostView(localShell());
    await view.glob(`${dir}/$(touch ${canary})*`);
    await view.glob(`${dir}/\`touch ${canary}\`;touch ${canary}`);
    expect(fs.existsSync(canary)).toBe(false);
  });
});

describe('read script', () => {
  test('round-trips arbitrary file contents', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: 'binary' }), async (content) => {
        const file = path.join(dir, 'f');
        fs.writeFileSync(file, content, 'utf8');
        const requests = [{ kind: 'file' as const, path: file }];
        const script = buildReadScript(requests);
        const result = await localShell().runScript(script.text);
        const [answer] = parseReadOutput(requests, result.stdout, script.marker);
        expect(answer).toMatchObject({
          kind: 'file',
          file: { content: Buffer.from(content, 'utf8').toString('utf8') },
        });
      }),
      { numRuns: 25 },
    );
    // Each run starts a real shell: generous on a loaded 2-core machine.
  }, 60000);

  test('host data cannot forge a record: markers carry a nonce of the script', async () => {
    const file = path.join(dir, 'f');
    const requests = [
      { kind: 'probe' as const, script: `printf '@@sshfix 1 missing\\n@@sshfix-0 1 missing\\n'` },
      { kind: 'file' as const, path: file },
    ];
    fs.writeFileSync(file, 'real\n');
    const script = buildReadScript(requests);
    const result = await localShell().runScript(script.text);
    const [probe, answer] = parseReadOutput(requests, result.stdout, script.marker);
    expect(probe).toMatchObject({ kind: 'probe', result: { exitCode: 0 } });
    expect(answer).toMatchObject({ kind: 'file', file: { exists: true, content: 'real\n' } });
  });

  test('a probe keeps its exact stdout and stderr, trailing newlines included', async () => {
    const requests = [{ kind: 'probe' as const, script: `printf 'a\\n\\n'; printf 'e\\n\\n' >&2; exit 7` }];
    const script = buildReadScript(requests);
    const [probe] = parseReadOutput(
      requests,
      (await localShell().runScript(script.text)).stdout,
      script.marker,
    );
    expect(probe).toEqual({ kind: 'probe', result: { exitCode: 7, stdout: 'a\n\n', stderr: 'e\n\n' } });
  });

  test('file sizes that do not add up to the bytes read are an error, not a wrong content', () => {
    const requests = [{ kind: 'file' as const, path: '/x' }];
    const m = '@@sshfix-n';
    const out = [
      `${m} 0 file`,
      `${m} stat`,
      '3 644 root root',
      `${m} data`,
      Buffer.from('ab').toString('base64'),
      `${m} end`,
      '',
    ];
    expect(parseReadOutput(requests, out.join('\n'), m)[0]).toMatchObject({ kind: 'error' });
    out[4] = Buffer.from('abc').toString('base64');
    expect(parseReadOutput(requests, out.join('\n'), m)[0]).toMatchObject({
      kind: 'file',
      file: { content: 'abc', mode: '0644' },
    });
  });

  test('an unreadable file and a directory are reported, not read', async () => {
    const requests = [{ kind: 'file' as const, path: dir }];
    const script = buildReadScript(requests);
    const [answer] = parseReadOutput(
      requests,
      (await localShell().runScript(script.text)).stdout,
      script.marker,
    );
    expect(answer).toEqual({ kind: 'error', message: `${dir}: not-a-regular-file` });
  });

  test('globWord escapes everything but glob metacharacters', () => {
    expect(globWord('/etc/ssh/sshd_config.d/*.conf')).toBe('/etc/ssh/sshd_config.d/*.conf');
    expect(globWord('/a b/$(x)')).toBe('/a\\ b/\\$\\(x\\)');
    expect(() => globWord('a\nb')).toThrow();
  });

  test('globToRegExp follows shell globbing', () => {
    expect(globToRegExp('/etc/ssh/sshd_config.d/*.conf').test('/etc/ssh/sshd_config.d/50-x.conf')).toBe(true);
    expect(globToRegExp('/etc/ssh/sshd_config.d/*.conf').test('/etc/ssh/sshd_config.d/sub/x.conf')).toBe(
      false,
    );
    expect(globToRegExp('/x/[0-9]?.conf').test('/x/5a.conf')).toBe(true);
    expect(globToRegExp('/x/[!0-9].conf').test('/x/5.conf')).toBe(false);
  });
});
