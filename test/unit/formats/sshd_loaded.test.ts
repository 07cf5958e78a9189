import {
  isSshdListener,
  listenerConfigFile,
  parseFileTime,
  parseSshdLoadProbe,
  pendingReload,
  pendingReloadMessage,
  sshdLoadProbeScript,
} from '../../../src/formats/sshd_loaded.js';

const MAIN = '/etc/ssh/sshd_config';
const DROP_IN = '/etc/ssh/sshd_config.d/50-cloud-init.conf';

/** What the probe prints: the listener, its command line, then `stat` of the pid file and the tree. */
function probeOutput(options: { cmdline?: string; pidFile?: string; changed?: Record<string, string> } = {}) {
  const pidFile = options.pidFile ?? '2026-12-03 07:31:59.608207804 +0000';
  const changed = options.changed ?? { [MAIN]: '2026-12-03 07:30:00.000000001 +0000' };
  return [
    'listener 20907 /run/sshd.pid',
    `cmdline ${options.cmdline ?? 'sshd: /usr/sbin/sshd -E /var/log/auth.log [listener] 0 of 10-100 startups'} `,
    `sshfix-stat ${pidFile}|${pidFile}|/run/sshd.pid`,
    ...Object.entries(changed).map(
      ([path, time]) => `sshfix-stat 2020-01-01 00:00:00.000000000 +0000|${time}|${path}`,
    ),
    '',
  ].join('\n');
}

describe('file times', () => {
  test('stat %y/%z to the nanosecond, in any offset', () => {
    expect(parseFileTime('2026-12-03 07:31:59.608207804 +0000')).toEqual({
      iso: '2026-12-03T07:31:59Z',
      ns: 1796283119608207804n,
    });
    expect(parseFileTime('2026-12-03 08:31:59.608207804 +0100')!.ns).toBe(1796283119608207804n);
    expect(parseFileTime('2026-12-03 07:31:59 +0000')!.ns).toBe(1796283119000000000n);
    expect(parseFileTime('yesterday')).toBeUndefined();
  });
});

describe('has sshd loaded what is on disk?', () => {
  test('a file changed after sshd (re)wrote its pid file is pending, oldest change first', () => {
    const facts = parseSshdLoadProbe(
      probeOutput({
        changed: {
          [MAIN]: '2026-12-03 07:40:00.000000000 +0000',
          [DROP_IN]: '2026-12-03 07:35:00.000000000 +0000',
          '/etc/ssh/sshd_config.d': '2026-12-03 07:00:00.000000000 +0000',
        },
      }),
    );
    const pending = pendingReload(facts, MAIN, [MAIN, DROP_IN, '/etc/ssh/sshd_config.d']);
    expect(pending?.newer.map((f) => f.path)).toEqual([DROP_IN, MAIN]);
    expect(pendingReloadMessage(pending!)).toBe(
      `sshd (pid 20907) has not loaded what is on disk: ${DROP_IN} changed at 2026-12-03T07:35:00Z, ` +
        `${MAIN} changed at 2026-12-03T07:40:00Z, after sshd last read its configuration at 2026-12-03T07:31:59Z: ` +
        'a reload is pending',
    );
  });

  test('nothing is pending when every file is older, even by a nanosecond, or as old', () => {
    const older = parseSshdLoadProbe(
      probeOutput({ changed: { [MAIN]: '2026-12-03 07:31:59.608207803 +0000' } }),
    );
    expect(pendingReload(older, MAIN, [MAIN])).toBeUndefined();
    const same = parseSshdLoadProbe(
      probeOutput({ changed: { [MAIN]: '2026-12-03 07:31:59.608207804 +0000' } }),
    );
    expect(pendingReload(same, MAIN, [MAIN])).toBeUndefined();
  });

  test('nothing can be said without a running sshd, for a stale pid file, or for another configuration file', () => {
    const newer = {
      [MAIN]: '2026-12-03 08:00:00.000000000 +0000',
      '/srv/sshd_config': '2026-12-03 08:00:00.000000000 +0000',
    };
    expect(pendingReload(parseSshdLoadProbe(''), MAIN, [MAIN])).toBeUndefined();
    const recycled = parseSshdLoadProbe(probeOutput({ cmdline: '/usr/bin/python3 app.py', changed: newer }));
    expect(pendingReload(recycled, MAIN, [MAIN])).toBeUndefined();
    const other = parseSshdLoadProbe(
      probeOutput({ cmdline: 'sshd: /usr/sbin/sshd -D -f /srv/sshd_config [listener]', changed: newer }),
    );
    expect(pendingReload(other, MAIN, [MAIN])).toBeUndefined();
    expect(pendingReload(other, '/srv/sshd_config', ['/srv/sshd_config'])?.newer).toHaveLength(1);
  });

  test('a stale pid file whose pid now belongs to an sshd serving one connection names no listener', () => {
    const newer = { [MAIN]: '2026-12-03 08:00:00.000000000 +0000' };
    for (const cmdline of [
      'sshd: root [priv]',
      'sshd: root@notty',
      'sshd-session: root [priv]',
      'sshd: root [net]',
    ])
      expect(
        pendingReload(parseSshdLoadProbe(probeOutput({ cmdline, changed: newer })), MAIN, [MAIN]),
      ).toBeUndefined();
    for (const cmdline of [
      'sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups',
      '/usr/sbin/sshd -D',
      'sshd',
    ])
      expect(isSshdListener(cmdline)).toBe(true);
  });

  test('the configuration file comes from -f, else the default', () => {
    expect(listenerConfigFile('sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups')).toBe(MAIN);
    expect(listenerConfigFile('/usr/sbin/sshd -D -f /etc/ssh/other_config')).toBe('/etc/ssh/other_config');
    expect(listenerConfigFile('/usr/sbin/sshd -f/etc/ssh/other_config')).toBe('/etc/ssh/other_config');
  });

  test('the probe quotes paths, and refuses globs that are not plain constants', () => {
    const script = sshdLoadProbeScript(["/etc/ssh/it's"], ['/etc/ssh/sshd_config.d/*.conf']);
    expect(script).toContain("'/etc/ssh/it'\\''s' /etc/ssh/sshd_config.d/*.conf");
    expect(() => sshdLoadProbeScript([], ['/etc/$(reboot)/*'])).toThrow(/not a plain glob/);
  });
});
