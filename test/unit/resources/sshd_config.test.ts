/**
 * Planning sshd_config settings that some OpenSSH releases do not know:
 * written where the host's sshd knows them, and the whole task skipped,
 * with the reason, where it does not or where its release cannot be told.
 */
import type { FileState } from '../../../src/plan/types.js';
import type { ExecResult } from '../../../src/transport/types.js';
import type { HostView, SshdRelease } from '../../../src/resources/types.js';
import { sshdConfigResource, type SshdConfigArgs } from '../../../src/resources/sshd_config.js';

const DEBIAN_12 = 'OpenSSH_9.2, OpenSSL 3.0.19 27 Jan 2026\n';
const DEBIAN_13 = 'OpenSSH_10.0p2 Debian-7+deb13u4, OpenSSL 3.5.9 29 Sep 2026\n';

/** A host with one sshd_config whose sshd -V prints `release`; records the probes it is sent and the release asks. */
class FakeHost implements HostView {
  readonly hostName = 'h1';
  readonly probes: string[] = [];
  releaseAsks = 0;
  constructor(
    private readonly release: string,
    private readonly config = 'Include /etc/ssh/sshd_config.d/*.conf\nPort 22\n',
  ) {}
  readFiles(paths: string[]): Promise<Map<string, FileState>> {
    return Promise.resolve(
      new Map(
        paths.map((path): [string, FileState] => [
          path,
          path === '/etc/ssh/sshd_config'
            ? { path, exists: true, content: this.config, sha256: 'abc' }
            : { path, exists: false, content: '' },
        ]),
      ),
    );
  }
  glob(): Promise<string[]> {
    return Promise.resolve([]);
  }
  globFiles(): Promise<FileState[]> {
    return Promise.resolve([]);
  }
  probe(script: string): Promise<ExecResult> {
    this.probes.push(script);
    return Promise.resolve({ stdout: '', stderr: '', exitCode: 0 });
  }
  sshdRelease(): Promise<SshdRelease | undefined> {
    this.releaseAsks += 1;
    return Promise.resolve({ sshd: '/usr/sbin/sshd', versionOutput: this.release });
  }
}

const plan = (host: FakeHost, settings: SshdConfigArgs['settings']) =>
  sshdConfigResource.plan({ settings }, host, { vars: {}, playbookDir: '/' });

describe('settings newer than the host sshd', () => {
  test('OpenSSH 9.2: the task is skipped, nothing is written, and it says which keyword needs which release', async () => {
    const result = await plan(new FakeHost(DEBIAN_12), {
      MaxAuthTries: 6,
      PerSourcePenaltyExemptList: '10.20.0.0/16',
    });
    expect(result).toMatchObject({ action: 'skip', fileChanges: [], commands: [] });
    expect(result.messages).toEqual(['sshd 9.2 does not know PerSourcePenaltyExemptList (OpenSSH ≥ 9.8)']);
  });

  test('OpenSSH 10.0: the keyword is written like any other', async () => {
    const result = await plan(new FakeHost(DEBIAN_13), { PerSourcePenaltyExemptList: '10.20.0.0/16' });
    expect(result.action).toBe('change');
    expect(result.fileChanges.map((c) => c.after)).toEqual([
      'Include /etc/ssh/sshd_config.d/*.conf\nPort 22\nPerSourcePenaltyExemptList 10.20.0.0/16,::ffff:10.20.0.0/112\n',
    ]);
  });

  test('one reason per keyword the release lacks, a value newer than its keyword included', async () => {
    const release98 = 'OpenSSH_9.8p1, OpenSSL 3.3.1 4 Jun 2024\n';
    const result = await plan(new FakeHost(release98), {
      PerSourcePenalties: 'authfail:5 refuseconnection:5',
      RefuseConnection: 'no',
      PerSourcePenaltyExemptList: '10.20.0.0/16',
    });
    expect(result.action).toBe('skip');
    expect(result.messages).toEqual([
      'sshd 9.8 does not know PerSourcePenalties refuseconnection: (OpenSSH ≥ 9.9)',
      'sshd 9.8 does not know RefuseConnection (OpenSSH ≥ 9.9)',
    ]);
  });

  test('a release that cannot be told: skipped, never written', async () => {
    const result = await plan(new FakeHost('dropbear v2022.83\n'), { PerSourcePenalties: 'authfail:5' });
    expect(result).toMatchObject({ action: 'skip', fileChanges: [] });
    expect(result.messages).toEqual([
      'cannot tell which OpenSSH release /usr/sbin/sshd is (sshd -V printed "dropbear v2022.83"): not writing PerSourcePenalties (OpenSSH ≥ 9.8)',
    ]);
  });

  test('the task finds sshd with the probe the host facts use: one sshd -V per host, not one per asker', async () => {
    const host = new FakeHost(DEBIAN_12);
    expect((await plan(host, { MaxAuthTries: 6 })).action).toBe('change');
    // sshd's path and release come from the host view (the facts' probe); no probe of its own runs sshd -V.
    expect(host.releaseAsks).toBe(1);
    expect(host.probes.filter((p) => / -V\b/.test(p))).toEqual([]);
  });
});
