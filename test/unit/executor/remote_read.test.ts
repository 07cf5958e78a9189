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
        const result = await localShell().runScript(buildReadScript(requests));
        const [answer] = parseReadOutput(requests, result.stdout);
        expect(answer).toMatchObject({
          kind: 'file',
          file: { content: Buffer.from(content, 'utf8').toString('utf8') },
        });
      }),
      { numRuns: 25 },
    );
    // Each run starts a real shell: generous on a loaded 2-core machine.
  }, 60000);

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
