import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import fc from 'fast-check';
import type { FileState } from '../../../src/plan/types.js';
import {
  effectiveMatches,
  effectiveSetting,
  loadSshdTree,
  matchesEveryConnection,
  parseSshdT,
  planSshdSettings,
  stageTreeForValidation,
  unmatchedConnectionSpec,
  type SettingValue,
  type SshdTree,
  type SshdTreeReader,
} from '../../../src/formats/sshd_effective.js';

const MAIN = '/etc/ssh/sshd_config';

/** An in-memory host: glob supports `*` and `?` within one path segment, sorted like glob(3). */
function fakeHost(files: Record<string, string>): SshdTreeReader & { reads: string[][] } {
  const reads: string[][] = [];
  return {
    reads,
    async readFiles(paths) {
      reads.push(paths);
      const result = new Map<string, FileState>();
      for (const path of paths) {
        const content = files[path];
        result.set(path, { path, exists: content !== undefined, content: content ?? '' });
      }
      return result;
    },
    async glob(pattern) {
      const regex = new RegExp(
        `^${pattern
          .replace(/[.+^${}()|[\]\\]/g, '\\$&')
          .replace(/\*/g, '[^/]*')
          .replace(/\?/g, '[^/]')}$`,
      );
      return Object.keys(files)
        .filter((p) => regex.test(p))
        .sort();
    },
  };
}

async function tree(files: Record<string, string>, main = MAIN): Promise<SshdTree> {
  return loadSshdTree(main, fakeHost(files));
}

/** Applies a plan to the file set, like apply would. */
function applied(
  files: Record<string, string>,
  plan: { files: Map<string, string> },
): Record<string, string> {
  return { ...files, ...Object.fromEntries(plan.files) };
}

const DEBIAN_MAIN = [
  '# This is the sshd server system-wide configuration file.',
  'Include /etc/ssh/sshd_config.d/*.conf',
  '',
  '#Port 22',
  '#PasswordAuthentication yes',
  '#MaxSessions 10',
  'KbdInteractiveAuthentication no',
  'UsePAM yes',
  'X11Forwarding yes',
  'PrintMotd no',
  'AcceptEnv LANG LC_*',
  'Subsystem\tsftp\t/usr/lib/openssh/sftp-server',
  '',
  '# Example of overriding settings on a per-user basis',
  '#Match User anoncvs',
  '#\tX11Forwarding no',
  '',
].join('\n');

const INCLUDE_2 = '/etc/ssh/sshd_config.i.2';

/** openssh-portable regress/servcfginclude.sh: one glob included from six Match blocks. */
const SERVCFGINCLUDE: Record<string, string> = {
  [MAIN]: [
    'HostKey /etc/ssh/ssh_host_ed25519_key',
    'Match host=a',
    '\tBanner /aa',
    '',
    'Match host b',
    '\tBanner /bb',
    '\tInclude /etc/ssh/sshd_config.i.* # comment',
    '',
    'Match host=c',
    '\tInclude /etc/ssh/sshd_config.i.* # comment',
    '\tBanner /cc',
    '',
    'Match host m',
    '\tInclude /etc/ssh/sshd_config.i.*',
    '',
    'Match Host d',
    '\tBanner /dd # comment',
    '',
    'Match Host e',
    '\tBanner /ee',
    '\tInclude /etc/ssh/sshd_config.i.*',
    '',
    'Match Host=f',
    '\tInclude /etc/ssh/sshd_config.i.*',
    '\tBanner /ff',
    '',
    'Match Host n',
    '\tInclude /etc/ssh/sshd_config.i.*',
    '',
  ].join('\n'),
  '/etc/ssh/sshd_config.i.0': 'Match host xxxxxx\n',
  '/etc/ssh/sshd_config.i.1': ['a', 'b', 'c', 'd', 'e', 'f']
    .map((h) => `Match host ${h}\n\tBanner /${h.repeat(3)}\n`)
    .join('\n'),
  [INCLUDE_2]: [
    ...['a', 'b', 'c', 'd', 'e', 'f'].map((h) => `Match host ${h}\n\tBanner /${h.repeat(4)}\n`),
    'Match all\n\tBanner /xxxx\n',
  ].join('\n'),
};

describe('loadSshdTree', () => {
  it('reads Includes where they stand, relative to /etc/ssh, several per line, sorted lexically', async () => {
    const t = await tree({
      [MAIN]: 'Port 1\nInclude conf.d/b*.conf /etc/ssh/other.conf\nPort 4\n',
      '/etc/ssh/conf.d/b2.conf': 'Port 3\n',
      '/etc/ssh/conf.d/b10.conf': 'Port 2\n',
      '/etc/ssh/other.conf': 'Port 5\n',
    });
    const ports = t.occurrences.filter((o) => o.key === 'port');
    expect(ports.map((o) => [o.args[0], o.file, o.line])).toEqual([
      ['1', MAIN, 1],
      ['2', '/etc/ssh/conf.d/b10.conf', 1],
      ['3', '/etc/ssh/conf.d/b2.conf', 1],
      ['5', '/etc/ssh/other.conf', 1],
      ['4', MAIN, 3],
    ]);
  });

  it('accepts a glob that matches nothing', async () => {
    const t = await tree({ [MAIN]: 'Include /etc/ssh/sshd_config.d/*.conf\nPort 22\n' });
    expect(effectiveSetting(t, 'Port').values).toEqual(['22']);
  });

  it('follows nested Includes up to depth 16 and fails beyond', async () => {
    const chain = (depth: number): Record<string, string> => {
      const files: Record<string, string> = { [MAIN]: 'Include /etc/ssh/n1.conf\n' };
      for (let i = 1; i <= depth; i++) {
        files[`/etc/ssh/n${i}.conf`] = i < depth ? `Include /etc/ssh/n${i + 1}.conf\n` : 'MaxSessions 3\n';
      }
      return files;
    };
    expect(effectiveSetting(await tree(chain(16)), 'MaxSessions').values).toEqual(['3']);
    await expect(tree(chain(17))).rejects.toThrow(/too many recursive configuration includes/);
    await expect(tree({ [MAIN]: 'Include /etc/ssh/sshd_config\n' })).rejects.toThrow(/recursive/);
  });

  it('fails clearly when the main file is missing', async () => {
    await expect(tree({})).rejects.toThrow(`${MAIN}: sshd_config not found`);
  });

  it('ends a Match block at the end of the included file that holds it', async () => {
    // servconf.c restores `*activep = oactive` after each included file.
    const t = await tree({
      [MAIN]: 'Include /etc/ssh/sshd_config.d/*.conf\nPasswordAuthentication no\n',
      '/etc/ssh/sshd_config.d/10-match.conf': 'Match User deploy\n  PasswordAuthentication yes\n',
    });
    const pa = t.occurrences.filter((o) => o.key === 'passwordauthentication');
    expect(pa.map((o) => o.inMatch)).toEqual([true, false]);
    expect(pa[0]?.matchAt).toEqual({ file: '/etc/ssh/sshd_config.d/10-match.conf', line: 1 });
    expect(effectiveSetting(t, 'PasswordAuthentication').values).toEqual(['no']);
  });

  it('makes included lines conditional when the Include sits inside a Match block', async () => {
    const t = await tree({
      [MAIN]: 'Match Address 10.0.0.0/8\n  Include /etc/ssh/inner.conf\n',
      '/etc/ssh/inner.conf': 'MaxSessions 2\n',
    });
    const ms = t.occurrences.find((o) => o.key === 'maxsessions');
    expect(ms).toMatchObject({ inMatch: true, matchAt: { file: MAIN, line: 1 } });
    expect(effectiveSetting(t, 'MaxSessions').values).toEqual([]);
  });

  it('keeps `Match all` in a file included inside a Match block under that block (servcfginclude.sh)', async () => {
    // servconf.c parses a file included from a non-matching block with
    // SSHCFG_NEVERMATCH: its `Match all` never reaches other connections.
    const t = await tree(SERVCFGINCLUDE);
    const banners = t.occurrences.filter((o) => o.key === 'banner');
    expect(banners.every((o) => o.inMatch)).toBe(true);
    const xxxx = banners.filter((o) => o.args[0] === '/xxxx');
    // Read once for each of the six blocks that include the glob, under that block.
    expect(xxxx.map((o) => [o.line, o.matchAt?.file, o.matchAt?.line])).toEqual(
      [5, 9, 13, 19, 23, 27].map((matchLine) => [20, MAIN, matchLine]),
    );
    expect(effectiveSetting(t, 'Banner')).toMatchObject({ values: [], contributing: [], ignored: [] });
    // At the top level `Match all` still ends the block.
    const top = await tree({
      [MAIN]: 'Include /etc/ssh/inner.conf\nMaxSessions 3\n',
      '/etc/ssh/inner.conf': 'Match User x\nMaxSessions 2\nMatch all\nMaxSessions 5\n',
    });
    expect(effectiveSetting(top, 'MaxSessions')).toMatchObject({ values: ['5'], winner: { line: 4 } });
  });

  it('returns to global context after `Match all`', async () => {
    const t = await tree({ [MAIN]: 'Match User x\nMaxSessions 2\nMatch all\nMaxSessions 5\n' });
    expect(effectiveSetting(t, 'MaxSessions')).toMatchObject({ values: ['5'], winner: { line: 4 } });
  });

  it('reports unknown keywords with a suggestion and global-only keywords inside Match', async () => {
    const t = await tree({ [MAIN]: 'PasswordAuthentification no\nMatch User x\nUseDNS no\n' });
    expect(t.diagnostics.map((d) => d.summary)).toEqual([
      'unknown sshd_config keyword "PasswordAuthentification" (did you mean PasswordAuthentication?)',
      "Directive 'UseDNS' is not allowed within a Match block",
    ]);
    expect(t.diagnostics[1]?.position).toEqual({ file: MAIN, line: 3, column: 1 });
  });
});

describe('matchesEveryConnection', () => {
  it.each<[string, boolean]>([
    ['Address *', true],
    ['User=* Host *', true],
    ['LocalAddress 10.0.0.1,*', true],
    ['address *', true],
    ['Address *,!10.0.0.1', false],
    ['Address 10.0.0.0/8', false],
    ['User * Address 10.0.0.0/8', false],
    ['Group *', false],
    ['LocalPort 22', false],
    ['all', false],
  ])('Match %s → %s', (criteria, expected) => {
    expect(matchesEveryConnection(criteria.split(' '))).toBe(expected);
  });
});

describe('effectiveSetting', () => {
  it('takes the first global value of a single-valued keyword, in any spelling', async () => {
    const t = await tree({ [MAIN]: 'maxstartups 5\nMaxStartups 10:30:100\n' });
    const e = effectiveSetting(t, 'MAXSTARTUPS');
    expect(e.values).toEqual(['5']);
    expect(e.winner?.line).toBe(1);
    expect(e.ignored.map((o) => o.line)).toEqual([2]);
    expect(e.versionDependent).toBe(true);
  });

  it('collects every global line of multi-valued keywords', async () => {
    const t = await tree({
      [MAIN]: 'Port 22\nAllowUsers alice bob\nMatch User x\n  AllowUsers carol\n',
      '/etc/ssh/x': '',
    });
    expect(effectiveSetting(t, 'AllowUsers').values).toEqual(['alice', 'bob']);
    expect(effectiveSetting(t, 'AllowUsers').inMatch).toHaveLength(1);
  });

  it('treats ChallengeResponseAuthentication as KbdInteractiveAuthentication', async () => {
    const t = await tree({
      [MAIN]: 'ChallengeResponseAuthentication yes\nKbdInteractiveAuthentication no\n',
    });
    expect(effectiveSetting(t, 'KbdInteractiveAuthentication').values).toEqual(['yes']);
  });
});

describe('planSshdSettings', () => {
  async function plan(files: Record<string, string>, settings: Record<string, SettingValue>) {
    return planSshdSettings(await tree(files), settings);
  }

  it('inserts an absent directive at the end, adding the missing final newline', async () => {
    const p = await plan({ [MAIN]: 'Port 22' }, { MaxSessions: 10 });
    expect(p.files.get(MAIN)).toBe('Port 22\nMaxSessions 10\n');
    expect(p.decisions[0]).toMatchObject({ action: 'insert', message: 'MaxSessions (unset, default) → 10' });
  });

  it('inserts right after a commented-out default', async () => {
    const p = await plan({ [MAIN]: DEBIAN_MAIN }, { MaxSessions: 4, PasswordAuthentication: false });
    const lines = p.files.get(MAIN)?.split('\n') ?? [];
    expect(lines.slice(3, 8)).toEqual([
      '#Port 22',
      '#PasswordAuthentication yes',
      'PasswordAuthentication no',
      '#MaxSessions 10',
      'MaxSessions 4',
    ]);
  });

  it('replaces the first of duplicated values and comments out the rest', async () => {
    const files = { [MAIN]: 'MaxStartups 5\nPort 22\nMaxStartups 10:30:100 # later\n' };
    const p = await plan(files, { MaxStartups: '30:30:100' });
    expect(p.files.get(MAIN)).toBe(
      'MaxStartups 30:30:100\nPort 22\n# sshfix: ignored duplicate (first value wins): MaxStartups 10:30:100 # later\n',
    );
    expect(p.decisions[0]).toMatchObject({
      action: 'replace',
      current: { values: ['5'], file: MAIN, line: 1 },
      message: `MaxStartups 5 from ${MAIN}:1 → 30:30:100`,
    });
  });

  it('edits the drop-in that wins over the main file (cloud-init 50-cloud-init.conf)', async () => {
    const dropIn = '/etc/ssh/sshd_config.d/50-cloud-init.conf';
    const files = {
      [MAIN]: DEBIAN_MAIN.replace('#PasswordAuthentication yes', 'PasswordAuthentication no'),
      [dropIn]: 'PasswordAuthentication yes\n',
    };
    const p = await plan(files, { PasswordAuthentication: 'no' });
    expect(p.files.get(dropIn)).toBe('PasswordAuthentication no\n');
    // The main file's own line comes later: sshd ignores it, so it is marked as such.
    expect(p.files.get(MAIN)).toContain(
      '\n# sshfix: ignored duplicate (first value wins): PasswordAuthentication no\n',
    );
    expect(p.decisions[0]?.message).toBe(`PasswordAuthentication yes from ${dropIn}:1 → no`);
  });

  it('keeps the value when the winning occurrence already has it, comparing semantically', async () => {
    const p = await plan(
      { [MAIN]: 'permitrootlogin without-password\nLoginGraceTime 5m\nPasswordAuthentication NO\n' },
      { PermitRootLogin: 'prohibit-password', LoginGraceTime: 300, passwordauthentication: false },
    );
    expect(p.files.size).toBe(0);
    expect(p.decisions.map((d) => d.action)).toEqual(['keep', 'keep', 'keep']);
  });

  it('inserts before a trailing Match block instead of appending into it', async () => {
    const files = { [MAIN]: 'Port 22\nMatch User backup\n  X11Forwarding no\n' };
    const p = await plan(files, { X11Forwarding: 'no', UseDNS: false });
    expect(p.files.get(MAIN)).toBe(
      'Port 22\nX11Forwarding no\nUseDNS no\nMatch User backup\n  X11Forwarding no\n',
    );
    expect(p.decisions[0]?.warnings).toEqual([
      `also set at ${MAIN}:3 inside the Match block at ${MAIN}:2 (applies only to matching connections)`,
    ]);
    const after = await tree(applied(files, p));
    expect(effectiveSetting(after, 'UseDNS').winner).toMatchObject({ inMatch: false, line: 3 });
  });

  it('converges the servcfginclude.sh tree in one plan, touching no included file, warning once per line', async () => {
    const p = await plan(SERVCFGINCLUDE, { Banner: '/etc/issue.net' });
    expect([...p.files.keys()]).toEqual([MAIN]);
    expect(p.files.get(MAIN)?.split('\n').slice(0, 3)).toEqual([
      'HostKey /etc/ssh/ssh_host_ed25519_key',
      'Banner /etc/issue.net',
      'Match host=a',
    ]);
    expect(p.decisions[0]).toMatchObject({
      action: 'insert',
      message: 'Banner (unset, default) → /etc/issue.net',
    });
    expect(p.decisions[0]?.warnings).toEqual([
      'also set on 19 lines inside Match blocks (apply only to matching connections): ' +
        `${MAIN}:3,6,11,17,20,25; /etc/ssh/sshd_config.i.1:2,5,8,11,14,17; ${INCLUDE_2}:2,5,8,11,14,17,20`,
    ]);
    const again = await plan(applied(SERVCFGINCLUDE, p), { Banner: '/etc/issue.net' });
    expect(again.files.size).toBe(0);
    expect(again.decisions[0]?.action).toBe('keep');
  });

  it('edits a file included twice at the top level once, keeping its line', async () => {
    const files = {
      [MAIN]: 'Include /etc/ssh/a.conf\nInclude /etc/ssh/a.conf\n',
      '/etc/ssh/a.conf': 'MaxSessions 2\n',
    };
    const p = await plan(files, { MaxSessions: 4 });
    expect(Object.fromEntries(p.files)).toEqual({ '/etc/ssh/a.conf': 'MaxSessions 4\n' });
    expect(p.decisions[0]?.warnings).toEqual([]);
  });

  it('treats a Match block that matches every connection as overriding the global value', async () => {
    const files = {
      [MAIN]: 'MaxAuthTries 3\nAllowUsers root\nMatch Address *\n  MaxAuthTries 6\n  AllowUsers admin\n',
    };
    const p = await plan(files, { MaxAuthTries: 3, AllowUsers: ['root'] });
    expect(p.files.get(MAIN)).toBe(
      'MaxAuthTries 3\nAllowUsers root\nMatch Address *\n  MaxAuthTries 3\n  AllowUsers root\n',
    );
    expect(p.decisions.map((d) => [d.action, d.message, d.warnings])).toEqual([
      [
        'replace',
        `MaxAuthTries 6 at ${MAIN}:4 (inside the Match block at ${MAIN}:3, which matches every connection) → 3`,
        [],
      ],
      [
        'replace',
        `AllowUsers admin at ${MAIN}:5 (inside the Match block at ${MAIN}:3, which matches every connection) → root`,
        [],
      ],
    ]);
    const again = await plan(applied(files, p), { MaxAuthTries: 3, AllowUsers: ['root'] });
    expect(again.decisions.map((d) => d.action)).toEqual(['keep', 'keep']);
  });

  it('ignores a commented default that sits inside the Match block', async () => {
    const files = { [MAIN]: 'Port 22\nMatch User x\n#MaxSessions 10\n' };
    const p = await plan(files, { MaxSessions: 3 });
    expect(p.files.get(MAIN)).toBe('Port 22\nMaxSessions 3\nMatch User x\n#MaxSessions 10\n');
  });

  it('keeps CRLF line endings', async () => {
    const p = await plan({ [MAIN]: 'Port 22\r\nMaxSessions 3\r\n' }, { MaxSessions: 4, UseDNS: 'no' });
    expect(p.files.get(MAIN)).toBe('Port 22\r\nMaxSessions 4\r\nUseDNS no\r\n');
  });

  it('writes one line per value for multi-valued keywords and compares them as a set', async () => {
    const files = { [MAIN]: 'Port 22\nListenAddress 0.0.0.0\nPort 2222 # old\n' };
    const p = await plan(files, { Port: [2200, 22] });
    expect(p.files.get(MAIN)).toBe(
      `Port 2200\nPort 22\nListenAddress 0.0.0.0\n# sshfix: superseded (Port is now set at ${MAIN}:1): Port 2222 # old\n`,
    );
    const again = await plan(applied(files, p), { Port: [22, 2200] });
    expect(again.decisions[0]?.action).toBe('keep');
  });

  it('writes list keywords (first line wins) as one line', async () => {
    const p = await plan({ [MAIN]: '' }, { AuthorizedKeysFile: ['.ssh/authorized_keys', '/etc/keys/%u'] });
    expect(p.files.get(MAIN)).toBe('AuthorizedKeysFile .ssh/authorized_keys /etc/keys/%u\n');
  });

  it('rejects bad input', async () => {
    const files = { [MAIN]: 'Port 22\n' };
    await expect(plan(files, { MaxSessions: [1, 2] })).rejects.toThrow(/single value/);
    await expect(plan(files, { Banner: '/etc/issue\nPermitRootLogin yes' })).rejects.toThrow(
      /control character/,
    );
    await expect(plan(files, { MaxSesions: 3 })).rejects.toThrow(/did you mean MaxSessions/);
    await expect(plan(files, { MaxSessions: 3, maxsessions: 4 })).rejects.toThrow(/both set MaxSessions/);
    await expect(plan(files, { Subsystem: 'sftp "/usr/lib' })).rejects.toThrow(/invalid quotes/);
  });

  it('rejects values sshd would refuse for the keyword type, before reading any host', async () => {
    const files = { [MAIN]: 'Port 22\n' };
    await expect(plan(files, { MaxAuthTries: 'ten' })).rejects.toThrow(
      'MaxAuthTries: "ten" is not a whole number',
    );
    await expect(plan(files, { MaxStartups: '100:30:10' })).rejects.toThrow(
      'MaxStartups: "100:30:10": start (100) is above full (10)',
    );
    await expect(plan(files, { PubkeyAuthentication: 'maybe' })).rejects.toThrow(/"maybe" is not yes or no/);
  });

  it('quotes a one-argument value with spaces, and each list item, as sshd reads them back', async () => {
    const p = await plan(
      { [MAIN]: 'Port 22\n' },
      {
        Banner: "/etc/ssh/the team's banner",
        AllowUsers: ['alice smith', 'bob'],
        Subsystem: 'sftp internal-sftp -l INFO',
      },
    );
    expect(p.files.get(MAIN)).toBe(
      'Port 22\nBanner "/etc/ssh/the team\'s banner"\nAllowUsers "alice smith"\nAllowUsers bob\nSubsystem sftp internal-sftp -l INFO\n',
    );
  });

  it('refuses a value no sshd_config quoting can hold', async () => {
    await expect(plan({ [MAIN]: '' }, { Banner: '/etc/my "issue" file' })).rejects.toThrow(
      'Banner: "/etc/my \\"issue\\" file" contains a double quote ("), which sshd_config cannot hold in an argument',
    );
    await expect(plan({ [MAIN]: '' }, { AllowUsers: ['a"b'] })).rejects.toThrow(/AllowUsers: .*double quote/);
  });

  it('removes differing duplicates of keywords whose winner depends on the sshd version', async () => {
    // OpenSSH 9.2 keeps the last MaxStartups; newer releases the first.
    const p = await plan(
      { [MAIN]: 'MaxStartups 30:30:100\nMaxStartups 10:30:100\n' },
      { MaxStartups: '30:30:100' },
    );
    expect(p.files.get(MAIN)).toBe(
      'MaxStartups 30:30:100\n# sshfix: ignored duplicate (first value wins): MaxStartups 10:30:100\n',
    );
  });

  it('leaves a different later duplicate of a first-wins keyword but warns about it', async () => {
    const p = await plan({ [MAIN]: 'MaxSessions 4\nMaxSessions 8\n' }, { MaxSessions: 4 });
    expect(p.files.size).toBe(0);
    expect(p.decisions[0]?.warnings).toEqual([
      `ignored duplicate at ${MAIN}:2: MaxSessions 8 (first value wins)`,
    ]);
  });

  describe('properties', () => {
    const keywordValues: [string, fc.Arbitrary<SettingValue>][] = [
      ['MaxSessions', fc.integer({ min: 0, max: 50 })],
      ['PasswordAuthentication', fc.boolean()],
      ['MaxStartups', fc.constantFrom('10:30:100', '30:30:100', '5')],
      ['LoginGraceTime', fc.constantFrom('30', '1m', '2m', 120)],
      ['PermitRootLogin', fc.constantFrom('no', 'prohibit-password', 'without-password', 'yes')],
      ['Port', fc.uniqueArray(fc.integer({ min: 1, max: 65535 }), { minLength: 1, maxLength: 3 })],
      ['AllowUsers', fc.uniqueArray(fc.constantFrom('alice', 'bob', 'carol'), { minLength: 1 })],
    ];
    const lineArb = fc.oneof(
      fc.constantFrom(
        '',
        '# comment',
        '#MaxSessions 10',
        '#Port 22',
        'Match User x',
        'Match all',
        'UseDNS no',
      ),
      fc
        .tuple(
          fc.constantFrom(...keywordValues.map(([k]) => k)),
          fc.constantFrom(' ', '\t', '=', ' = '),
          fc.constantFrom('4', 'yes', 'no', '10:30:100', '2m', '22', 'alice', 'prohibit-password'),
          fc.constantFrom('', ' # note'),
        )
        .map(([k, sep, v, c]) => `${k}${sep}${v}${c}`),
    );
    const fileArb = fc
      .tuple(fc.array(lineArb, { maxLength: 10 }), fc.constantFrom('\n', '\r\n'), fc.boolean())
      .map(([lines, eol, finalNewline]) => lines.join(eol) + (finalNewline && lines.length > 0 ? eol : ''));
    const scenarioArb = fc.record({
      main: fileArb,
      dropIn: fileArb,
      includeAtTop: fc.boolean(),
      settings: fc
        .uniqueArray(fc.constantFrom(...keywordValues), { minLength: 1, selector: ([k]) => k })
        .chain((pairs) =>
          fc.tuple(...pairs.map(([k, arb]) => arb.map((v): [string, SettingValue] => [k, v]))),
        )
        .map((pairs) => Object.fromEntries(pairs)),
    });
    const DROP_IN = '/etc/ssh/sshd_config.d/50-cloud-init.conf';
    const filesOf = (s: { main: string; dropIn: string; includeAtTop: boolean }) => ({
      [MAIN]: s.includeAtTop ? `Include /etc/ssh/sshd_config.d/*.conf\n${s.main}` : s.main,
      [DROP_IN]: s.dropIn,
    });

    it('after applying the plan sshd sees every desired value, and planning again keeps everything', async () => {
      await fc.assert(
        fc.asyncProperty(scenarioArb, async (s) => {
          const files = filesOf(s);
          const first = planSshdSettings(await tree(files), s.settings);
          const after = await tree(applied(files, first));
          for (const [keyword, value] of Object.entries(s.settings)) {
            expect(effectiveMatches(keyword, value, sshdTView(after, keyword))).toBe(true);
          }
          const second = planSshdSettings(after, s.settings);
          expect(second.files.size).toBe(0);
          expect(second.decisions.every((d) => d.action === 'keep')).toBe(true);
        }),
        { numRuns: 300 },
      );
    });

    it('leaves every line it does not decide about byte-identical', async () => {
      await fc.assert(
        fc.asyncProperty(scenarioArb, async (s) => {
          const files = filesOf(s);
          const before = await tree(files);
          const p = planSshdSettings(before, s.settings);
          const touched = new Set(Object.keys(s.settings).map((k) => k.toLowerCase()));
          for (const [path, content] of p.files) {
            const untouched = (text: string) =>
              text
                .split(/\r?\n/)
                .filter((l) => !touched.has(l.trim().split(/[\s=]/)[0]?.toLowerCase() ?? ''));
            const newLines = untouched(content).filter((l) => !l.includes('# sshfix:'));
            expect(newLines.filter((l) => l !== '')).toEqual(
              untouched((files as Record<string, string>)[path] ?? '').filter((l) => l !== ''),
            );
          }
        }),
        { numRuns: 300 },
      );
    });
  });
});

/** What `sshd -T` would print for `keyword`, computed from the tree (global context). */
function sshdTView(t: SshdTree, keyword: string): Map<string, string[]> {
  const e = effectiveSetting(t, keyword);
  return new Map([[e.keyword.toLowerCase(), e.contributing.length > 1 ? e.values : [e.values.join(' ')]]]);
}

describe('stageTreeForValidation', () => {
  it('relocates every file and rewrites only the Include arguments', async () => {
    const files = {
      [MAIN]: 'Port 22\r\nInclude sshd_config.d/*.conf /etc/ssh/extra.conf # both\r\nX11Forwarding yes',
      '/etc/ssh/sshd_config.d/a.conf': 'MaxSessions 2\n',
      '/etc/ssh/extra.conf': 'Match User x\n\tInclude /etc/ssh/inner.conf\n',
      '/etc/ssh/inner.conf': 'X11Forwarding no\n',
    };
    const t = await tree(files);
    const staged = stageTreeForValidation(
      t,
      new Map([['/etc/ssh/sshd_config.d/a.conf', 'MaxSessions 3\n']]),
      '/tmp/stage/',
    );
    expect(staged.mainPath).toBe('/tmp/stage/etc/ssh/sshd_config');
    expect(Object.fromEntries(staged.files)).toEqual({
      '/tmp/stage/etc/ssh/sshd_config':
        'Port 22\r\nInclude /tmp/stage/etc/ssh/sshd_config.d/*.conf /tmp/stage/etc/ssh/extra.conf # both\r\nX11Forwarding yes',
      '/tmp/stage/etc/ssh/sshd_config.d/a.conf': 'MaxSessions 3\n',
      '/tmp/stage/etc/ssh/extra.conf': 'Match User x\n\tInclude /tmp/stage/etc/ssh/inner.conf\n',
      '/tmp/stage/etc/ssh/inner.conf': 'X11Forwarding no\n',
    });
  });

  const sshd = '/usr/sbin/sshd';
  const haveSshd = existsSync(sshd) && process.getuid?.() === 0;
  (haveSshd ? it : it.skip)('lets the real `sshd -t -f` validate the whole staged tree', async () => {
    const root = mkdtempSync(join(tmpdir(), 'sshfix-stage-'));
    try {
      mkdirSync('/run/sshd', { recursive: true });
      const hostKey = '/etc/ssh/ssh_host_ed25519_key';
      const files = {
        [MAIN]: `HostKey ${hostKey}\nInclude /etc/ssh/sshd_config.d/*.conf\nPort 22\n`,
        '/etc/ssh/sshd_config.d/50-cloud-init.conf': 'PasswordAuthentication yes\n',
      };
      const t = await tree(files);
      const check = (settings: Record<string, SettingValue>) => {
        const stageRoot = mkdtempSync(join(root, 'run-'));
        const staged = stageTreeForValidation(t, planSshdSettings(t, settings).files, stageRoot);
        for (const [path, content] of staged.files) {
          mkdirSync(dirname(path), { recursive: true });
          writeFileSync(path, content);
        }
        return execFileSync(sshd, ['-t', '-f', staged.mainPath], { encoding: 'utf8', stdio: 'pipe' });
      };
      expect(() => check({ MaxSessions: 10, PasswordAuthentication: false })).not.toThrow();
      let message = '';
      try {
        check({ RekeyLimit: 'lots' });
      } catch (error) {
        message = String((error as { stderr?: string }).stderr);
      }
      expect(message).toMatch(/Bad RekeyLimit number 'lots'/);
      expect(message).toContain(`${root}`);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('sshd -T', () => {
  const output = [
    'port 22',
    'port 2222',
    'listenaddress [::]:22',
    'listenaddress 0.0.0.0:22',
    'logingracetime 120',
    'maxsessions 10',
    'permitrootlogin without-password',
    'passwordauthentication no',
    'loglevel INFO',
    'maxstartups 10:30:100',
    'ciphers chacha20-poly1305@openssh.com,aes128-ctr,aes256-gcm@openssh.com',
    'acceptenv LANG',
    'acceptenv LC_*',
    'setenv A=1',
    'setenv B=2',
    'subsystem sftp /usr/lib/openssh/sftp-server',
    'ipqos af21 af21',
    'unusedconnectiontimeout none',
    'authorizedkeysfile .ssh/authorized_keys .ssh/authorized_keys2',
    '',
  ].join('\n');
  const parsed = parseSshdT(output);

  it('parses lowercase keys and accumulates repeated ones', () => {
    expect(parsed.get('port')).toEqual(['22', '2222']);
    expect(parsed.get('maxstartups')).toEqual(['10:30:100']);
    expect(parseSshdT('PermitRootLogin no\r\n').get('permitrootlogin')).toEqual(['no']);
  });

  it.each<[string, SettingValue, boolean]>([
    ['LoginGraceTime', '2m', true],
    ['LoginGraceTime', '1m', false],
    ['MaxSessions', 10, true],
    ['PermitRootLogin', 'prohibit-password', true],
    ['PermitRootLogin', 'no', false],
    ['PasswordAuthentication', false, true],
    ['LogLevel', 'info', true],
    ['MaxStartups', '10:30:100', true],
    ['MaxStartups', '30:30:100', false],
    ['Port', [2222, 22], true],
    ['Port', 22, false],
    ['ListenAddress', ['0.0.0.0', '::'], true],
    ['ListenAddress', '10.0.0.1', false],
    ['Ciphers', '-aes128-cbc', true],
    ['Ciphers', '+aes128-ctr', true],
    ['Ciphers', '^aes128-ctr', false],
    ['AcceptEnv', ['LC_*', 'LANG'], true],
    ['SetEnv', ['A=1', 'B=2'], true],
    ['Subsystem', 'sftp /usr/lib/openssh/sftp-server', true],
    ['IPQoS', 'af21', true],
    ['UnusedConnectionTimeout', 'none', true],
    ['AuthorizedKeysFile', '.ssh/authorized_keys .ssh/authorized_keys2', true],
    ['UseDNS', 'no', false],
  ])('effectiveMatches(%s, %j) is %s', (keyword, desired, expected) => {
    expect(effectiveMatches(keyword, desired, parsed)).toBe(expected);
  });

  it('finds a local port no Match LocalPort names, for sshd -T -C', async () => {
    expect(unmatchedConnectionSpec(await tree({ [MAIN]: 'Port 22\n' }))).toBe('lport=65535');
    const t = await tree({
      [MAIN]: 'Include /etc/ssh/d.conf\nMatch LocalPort 65535\n  X11Forwarding no\n',
      '/etc/ssh/d.conf': 'Match User x LocalPort=65534\n',
    });
    expect(unmatchedConnectionSpec(t)).toBe('lport=65533');
  });

  const realSshd = existsSync('/usr/sbin/sshd') && process.getuid?.() === 0;
  (realSshd ? it : it.skip)(
    'shows the real sshd -T of a tree with Match LocalPort/LocalAddress what unmatched connections get',
    async () => {
      const root = mkdtempSync(join(tmpdir(), 'sshfix-T-'));
      try {
        mkdirSync('/run/sshd', { recursive: true });
        const t = await tree({
          [MAIN]: [
            'HostKey /etc/ssh/ssh_host_ed25519_key',
            'MaxAuthTries 3',
            'Match LocalPort 22',
            '  MaxAuthTries 5',
            'Match LocalAddress 10.0.0.1',
            '  MaxAuthTries 4',
            '',
          ].join('\n'),
        });
        const staged = stageTreeForValidation(t, new Map(), root);
        for (const [path, content] of staged.files) {
          mkdirSync(dirname(path), { recursive: true });
          writeFileSync(path, content);
        }
        const sshdT = (args: string[]) =>
          execFileSync('/usr/sbin/sshd', ['-T', '-f', staged.mainPath, ...args], {
            encoding: 'utf8',
            stdio: 'pipe',
          });
        expect(() => sshdT([])).toThrow(/'Match LocalPort' in configuration but 'lport' not in connection/);
        expect(parseSshdT(sshdT(['-C', unmatchedConnectionSpec(t)])).get('maxauthtries')).toEqual(['3']);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    },
  );

  (realSshd ? it : it.skip)('agrees with the real sshd -T about values written by the planner', async () => {
    const root = mkdtempSync(join(tmpdir(), 'sshfix-T-'));
    try {
      mkdirSync('/run/sshd', { recursive: true });
      const settings: Record<string, SettingValue> = {
        Banner: "/etc/ssh/the team's banner",
        AllowUsers: ['alice smith', 'bob'],
        MaxStartups: '30:30:100',
        LoginGraceTime: '1m30s',
        PermitRootLogin: 'prohibit-password',
        ClientAliveInterval: '5m',
        PasswordAuthentication: false,
        Port: [22, 2222],
      };
      const t = await tree({ [MAIN]: 'HostKey /etc/ssh/ssh_host_ed25519_key\n' });
      const staged = stageTreeForValidation(t, planSshdSettings(t, settings).files, root);
      for (const [path, content] of staged.files) {
        mkdirSync(dirname(path), { recursive: true });
        writeFileSync(path, content);
      }
      const stdout = execFileSync('/usr/sbin/sshd', ['-T', '-f', staged.mainPath], { encoding: 'utf8' });
      const sshdT = parseSshdT(stdout);
      for (const [keyword, value] of Object.entries(settings)) {
        expect([keyword, effectiveMatches(keyword, value, sshdT)]).toEqual([keyword, true]);
      }
      // One argument each: sshd -T prints one allowusers line per entry.
      expect(sshdT.get('allowusers')).toEqual(['alice smith', 'bob']);
      expect(sshdT.get('banner')).toEqual(["/etc/ssh/the team's banner"]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
