import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  authLogScript,
  listenerDrop,
  logLineTime,
  mentionsAddress,
  parseFail2banBanned,
  parseListenerTitle,
  parseServerChecks,
  serverCheckScript,
  splitSections,
} from '../../../src/diagnose/server_checks.js';
import { localShell } from '../../support/local_sh.js';

const params = { client: '10.20.0.5', port: 22, user: 'root' };
const b64 = (s: string): string => Buffer.from(s).toString('base64');

const OUTPUT = [
  '',
  '### sshfix:sshd_path',
  '/usr/sbin/sshd',
  '### sshfix:ps',
  '  812 sshd: /usr/sbin/sshd [listener] 3 of 10-100 startups',
  '### sshfix:pidfile',
  '812',
  '### sshfix:ss',
  'LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=812,fd=3))',
  '### sshfix:sshd_t',
  'rc=0',
  '### sshfix:sshd_T',
  'port 22',
  'maxstartups 10:30:100',
  'maxauthtries 6',
  'rc=0',
  '### sshfix:ldd',
  '\tlibwrap.so.0 => /lib/x86_64-linux-gnu/libwrap.so.0 (0x00007f)',
  'rc=0',
  '### sshfix:file /etc/hosts.allow',
  '### sshfix:absent',
  '### sshfix:file /etc/hosts.deny',
  b64('# ALL: PARANOID'),
  '### sshfix:iptables',
  '*filter',
  ':INPUT ACCEPT [0:0]',
  'COMMIT',
  '### sshfix:nft',
  '### sshfix:absent',
  '### sshfix:ufw',
  'Status: inactive',
  '### sshfix:fail2ban',
  "[{'sshd': ['10.20.0.5', '10.9.9.9']}, {'recidive': []}]",
  '### sshfix:authlog',
  'refused connect from 10.20.0.5 (10.20.0.5)',
  '### sshfix:oom',
  '### sshfix:meminfo',
  'MemTotal:        4000000 kB',
  'MemAvailable:    100000 kB',
  '### sshfix:df',
  'Filesystem 1024-blocks Used Available Capacity Mounted on',
  '/dev/sda1 100 99 1 99% /',
  '/dev/sda1 100 99 1 99% /',
  'tmpfs 100 1 99 1% /run',
  '### sshfix:sshsocket',
  'inactive',
  '### sshfix:end',
].join('\n');

describe('server checks', () => {
  it('quotes every value and refuses a client that is not an address', () => {
    const script = serverCheckScript(params);
    expect(script).toContain("client='10.20.0.5'");
    expect(script).toContain("-C 'user=root,host=10.20.0.5,addr=10.20.0.5'");
    expect(() => serverCheckScript({ ...params, client: "10.0.0.1'; reboot; '" })).toThrow(
      /not an IPv4 or IPv6/,
    );
    expect(() => serverCheckScript({ ...params, user: "x'y" })).not.toThrow();
    expect(serverCheckScript({ ...params, user: "x'y" })).toContain("'user=x'\\''y,");
    expect(serverCheckScript({ ...params, client: 'fd00::5' })).toContain('ip6tables-save');
  });

  it('parses every section', () => {
    const e = parseServerChecks(OUTPUT, params);
    expect(e.sshdRunning).toBe(true);
    expect(e.startups).toEqual({ current: 3, limits: '10-100' });
    expect(e.sshdTest.ok).toBe(true);
    expect(e.effective?.get('maxstartups')).toEqual(['10:30:100']);
    expect(e.libwrap).toBe(true);
    expect(e.hostsAllow).toBeNull();
    // The bytes exactly: the missing final newline matters to libwrap.
    expect(e.hostsDeny).toBe('# ALL: PARANOID');
    expect(e.nft).toBeNull();
    expect(e.fail2ban.bannedIn).toEqual(['sshd']);
    expect(e.authLog).toEqual(['refused connect from 10.20.0.5 (10.20.0.5)']);
    expect(e.memory).toEqual({ totalKb: 4000000, availableKb: 100000 });
    expect(e.disks).toEqual([
      { mount: '/', usePercent: 99 },
      { mount: '/run', usePercent: 1 },
    ]);
    expect(e.sshSocketActive).toBe(false);
  });

  it('reports a failing sshd -t and a stopped sshd', () => {
    const broken = OUTPUT.replace('  812 sshd: /usr/sbin/sshd [listener] 3 of 10-100 startups\n', '')
      .replace('### sshfix:pidfile\n812', '### sshfix:pidfile')
      .replace('### sshfix:sshd_t\nrc=0', '### sshfix:sshd_t\nline 5: Bad configuration option: Foo\nrc=255')
      .replace(
        /### sshfix:sshd_T\n[^#]*/,
        '### sshfix:sshd_T\nline 5: Bad configuration option: Foo\nrc=255\n',
      );
    const e = parseServerChecks(broken, params);
    expect(e.sshdRunning).toBe(false);
    expect(e.sshdTest).toEqual({ ok: false, output: 'line 5: Bad configuration option: Foo' });
    expect(e.effective).toBeNull();
    expect(e.effectiveError).toContain('Bad configuration option');
  });

  it('reads the configuration lines sshd -t names', () => {
    const e = parseServerChecks(
      OUTPUT.replace(
        '### sshfix:sshd_T',
        '### sshfix:sshd_t_lines\n/etc/ssh/sshd_config.d/10.conf\t1\tPermitRootLogin maybe\n### sshfix:sshd_T',
      ),
      params,
    );
    expect(e.sshdTestLines).toEqual([
      { file: '/etc/ssh/sshd_config.d/10.conf', line: 1, text: 'PermitRootLogin maybe' },
    ]);
  });

  it('splits sections and reads titles and ban lists', () => {
    expect([...splitSections('x\n### sshfix:a\n1\n2\n### sshfix:b\n').entries()]).toEqual([
      ['a', '1\n2'],
      ['b', ''],
    ]);
    expect(parseListenerTitle(['1 sshd: /usr/sbin/sshd -D [listener] 0 of 1-1 startups'])).toEqual({
      current: 0,
      limits: '1-1',
    });
    expect(parseListenerTitle(['1 /usr/sbin/sshd -D'])).toBeNull();
    expect(parseFail2banBanned("[{'sshd': ['10.20.0.50']}]", '10.20.0.5')).toEqual([]);
  });
});

describe('auth log lines', () => {
  it('names an address exactly, never as part of another', () => {
    expect(mentionsAddress('Failed password for root from 10.0.0.1 port 5 ssh2', '10.0.0.1')).toBe(true);
    expect(
      mentionsAddress('drop connection #0 from [10.0.0.1]:5 on [10.0.0.9]:22 past MaxStartups', '10.0.0.1'),
    ).toBe(true);
    expect(mentionsAddress('refused connect from 10.0.0.1 (10.0.0.1)', '10.0.0.1')).toBe(true);
    expect(mentionsAddress('Connection closed by 10.0.0.1.', '10.0.0.1')).toBe(true);
    expect(
      mentionsAddress('maximum authentication attempts exceeded for root from 10.0.0.10 port 5', '10.0.0.1'),
    ).toBe(false);
    expect(mentionsAddress('refused connect from 110.0.0.1 (110.0.0.1)', '10.0.0.1')).toBe(false);
    expect(mentionsAddress('from 10.0.0.1.5 port 2', '10.0.0.1')).toBe(false);
    expect(mentionsAddress('from fd00::10 port 2', 'fd00::1')).toBe(false);
    expect(mentionsAddress('from [fd00::1]:2', 'fd00::1')).toBe(true);
  });

  it('keeps only the lines logged since sshd last started, and only refusals, drops and limits', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-authlog-'));
    const log = path.join(dir, 'auth.log');
    fs.writeFileSync(
      log,
      [
        'Server listening on 0.0.0.0 port 22.',
        'error: maximum authentication attempts exceeded for root from 10.0.0.1 port 5 ssh2 [preauth]',
        'Received SIGHUP; restarting.',
        'Server listening on 0.0.0.0 port 22.',
        'Server listening on :: port 22.',
        'Accepted publickey for root from 10.0.0.1 port 6 ssh2',
        'Disconnecting authenticating user root 10.0.0.7 port 7: Too many authentication failures [preauth]',
        'drop connection #1 from [10.0.0.8]:8 on [10.0.0.9]:22 past MaxStartups',
        '',
      ].join('\n'),
    );
    const script = `have() { command -v "$1" >/dev/null 2>&1; }\n${authLogScript([log, path.join(dir, 'absent')])}\n`;
    const result = await localShell().runScript(script);
    fs.rmSync(dir, { recursive: true, force: true });
    expect(result.stdout.split('\n').filter((l) => l !== '')).toEqual([
      'Disconnecting authenticating user root 10.0.0.7 port 7: Too many authentication failures [preauth]',
      'drop connection #1 from [10.0.0.8]:8 on [10.0.0.9]:22 past MaxStartups',
    ]);
  });
});

describe('sshd logs in the journal (hosts without an auth log: Debian 13 has no rsyslog)', () => {
  const JOURNAL = [
    '2026-12-03T08:15:40+00:00 h01 sshd[60]: Server listening on 0.0.0.0 port 22.',
    '2026-12-03T08:15:41+00:00 h01 sshd[60]: drop connection #0 from [10.0.0.1]:1 on [10.0.0.9]:22 penalty: failed authentication',
    '2026-12-03T08:19:47+00:00 h01 sshd[60]: Received SIGHUP; restarting.',
    '2026-12-03T08:19:47+00:00 h01 sshd[60]: Server listening on 0.0.0.0 port 22.',
    '2026-12-03T08:20:01+00:00 h01 sshd-session[82]: refused connect from 10.0.0.2 (10.0.0.2)',
    '2026-12-03T08:20:02+00:00 h01 sshd-session[83]: Accepted publickey for root from 10.0.0.1 port 6 ssh2',
    '2026-12-03T08:20:03+00:00 h01 sshd[60]: drop connection #1 from [10.0.0.3]:34575 on [10.0.0.9]:22 Maxstartups',
    '2026-12-03T08:20:04+00:00 h01 sshd[60]: drop connection #0 from [10.0.0.1]:34479 on [10.0.0.9]:22 penalty: connections without attempting authentication',
    '2026-12-03T08:20:05+00:00 h01 sshd-session[90]: Disconnecting authenticating user root 10.0.0.7 port 7: Too many authentication failures [preauth]',
  ];

  it("reads sshd's unit journal in short-iso when no auth log exists, since the listener last started", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-journal-'));
    const argsFile = path.join(dir, 'args');
    // Stands in for journalctl: prints the lines above and records how it was called.
    fs.writeFileSync(
      path.join(dir, 'journalctl'),
      `#!/bin/sh\nprintf '%s\\n' "$@" > ${argsFile}\ncat <<'LINES'\n${JOURNAL.join('\n')}\nLINES\n`,
      { mode: 0o755 },
    );
    const script = `PATH=${dir}:$PATH\nhave() { command -v "$1" >/dev/null 2>&1; }\n${authLogScript([path.join(dir, 'absent.log')])}\n`;
    const result = await localShell().runScript(script);
    const args = fs.readFileSync(argsFile, 'utf8').split('\n');
    fs.rmSync(dir, { recursive: true, force: true });
    expect(result.stdout.split('\n').filter((l) => l !== '')).toEqual(
      JOURNAL.slice(4).filter((l) => !l.includes('Accepted')),
    );
    expect(args).toEqual(expect.arrayContaining(['-o', 'short-iso', '-u', 'ssh', '-u', 'sshd', '--since']));
    expect(args[args.indexOf('--since') + 1]).toMatch(/^(-1d|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)$/);
  });

  it('tells MaxStartups drops (both wordings) from penalty drops, and dates journal and rsyslog lines', () => {
    expect(JOURNAL.map(listenerDrop)).toEqual([
      null,
      'penalty',
      null,
      null,
      null,
      null,
      'max_startups',
      'penalty',
      null,
    ]);
    expect(listenerDrop('drop connection #1 from [10.0.0.8]:8 on [10.0.0.9]:22 past MaxStartups')).toBe(
      'max_startups',
    );
    expect(logLineTime(JOURNAL[0]!)).toBe(Date.parse('2026-12-03T08:15:40Z') / 1000);
    expect(logLineTime('2026-12-03T09:15:40.123456+0100 h01 sshd[1]: x')).toBe(
      Date.parse('2026-12-03T08:15:40Z') / 1000,
    );
    expect(logLineTime('Dec  3 08:15:40 h01 sshd[1]: x')).toBeNull();
    expect(logLineTime('drop connection #1 from [10.0.0.8]:8 on [10.0.0.9]:22 past MaxStartups')).toBeNull();
  });

  it('reads the host clock', () => {
    expect(parseServerChecks(`${OUTPUT}\n### sshfix:now\n1796286379\n### sshfix:end\n`, params).now).toBe(
      1796286379,
    );
  });
});
