import fc from 'fast-check';
import {
  CAUSES,
  diagnose,
  invalidKeywords,
  isHealthy,
  type Finding,
} from '../../../src/diagnose/findings.js';
import type { ProbeEvidence } from '../../../src/diagnose/probe.js';
import type { RefusalAnswer } from '../../../src/diagnose/refusal.js';
import { CLIENT, healthyProbe, healthyServer, STOCK_SSHD_T } from './evidence.js';

const first = (findings: Finding[]): string | undefined => findings[0]?.cause;
const probeOnly = (probe: ProbeEvidence): Finding[] =>
  diagnose({ port: 22, client: CLIENT, probe, serverUnavailable: 'no way in' });

describe('diagnose: client-side evidence only', () => {
  it('a healthy probe yields nothing', () => {
    expect(probeOnly(healthyProbe())).toEqual([]);
  });

  it('a connect time-out is a firewall DROP first (TRAPS: a DROP shows as a timeout)', () => {
    const f = probeOnly(healthyProbe({ tcp: { outcome: 'timeout', ms: 3000 }, banner: undefined }));
    expect(first(f)).toBe('firewall_drop');
    expect(f[0]!.remedy).toEqual({ kind: 'firewall', client: CLIENT });
  });

  it('a reset after libwrap’s 5 s pause is TCP wrappers, high confidence', () => {
    const f = probeOnly(
      healthyProbe({ banner: { outcome: 'closed', ms: 5200 }, kex: undefined, auth: undefined }),
    );
    expect(first(f)).toBe('tcp_wrappers_deny');
    expect(f[0]!.confidence).toBe('high');
  });

  it('an immediate close before the banner is MaxStartups; an immediate RST is a firewall reset', () => {
    const closed = probeOnly(
      healthyProbe({ banner: { outcome: 'closed', ms: 3 }, kex: undefined, auth: undefined }),
    );
    const reset = probeOnly(
      healthyProbe({ banner: { outcome: 'reset', ms: 0 }, kex: undefined, auth: undefined }),
    );
    expect(first(closed)).toBe('max_startups');
    expect(first(reset)).toBe('firewall_reject');
  });

  it('"connection refused" names its family at medium confidence, never high', () => {
    const f = probeOnly(
      healthyProbe({ tcp: { outcome: 'refused', ms: 1, code: 'ECONNREFUSED' }, banner: undefined }),
    );
    expect(f.map((x) => x.cause)).toEqual(
      expect.arrayContaining(['sshd_not_running', 'firewall_reject', 'fail2ban_ban', 'sshd_config_invalid']),
    );
    expect(f.every((x) => x.confidence !== 'high')).toBe(true);
  });

  it('"Too many authentication failures" after several keys is MaxAuthTries, with room for every key', () => {
    const f = probeOnly(
      healthyProbe({
        auth: {
          outcome: 'too_many_failures',
          keysOffered: 1,
          keysAvailable: 7,
          error: 'Too many authentication failures',
        },
      }),
    );
    expect(first(f)).toBe('max_auth_tries');
    expect(f[0]!.remedy).toEqual({ kind: 'sshd_settings', settings: { MaxAuthTries: 8 } });
  });

  it('a burst where some connections are served and others dropped reveals MaxStartups', () => {
    const burst = {
      connections: 8,
      banners: 2,
      resets: 0,
      closedBeforeBanner: 6,
      timeouts: 0,
      refused: 0,
      ms: 50,
    };
    expect(first(probeOnly(healthyProbe({ burst })))).toBe('max_startups');
  });

  it('a burst that sshd closed entirely, right after it served our first connection, is MaxStartups', () => {
    // MaxStartups 1:100:1: every connection of the burst is closed before the banner, none served.
    const burst = {
      connections: 8,
      banners: 0,
      resets: 0,
      closedBeforeBanner: 8,
      timeouts: 0,
      refused: 0,
      ms: 3,
    };
    const f = probeOnly(healthyProbe({ burst }));
    expect(f[0]).toMatchObject({ cause: 'max_startups', confidence: 'high' });
    expect(f[0]!.evidence.join('\n')).toContain('all 8 were closed before it');
    // Resets may also be a firewall's connection limit: MaxStartups, but not sure.
    const resets = { ...burst, closedBeforeBanner: 0, resets: 8 };
    expect(probeOnly(healthyProbe({ burst: resets }))[0]).toMatchObject({
      cause: 'max_startups',
      confidence: 'medium',
    });
  });

  it('an unresolvable name is network_unreachable', () => {
    const f = probeOnly({
      target: { host: 'nowhere.invalid', port: 22 },
      dns: { addresses: [], ms: 3, error: 'ENOTFOUND' },
    });
    expect(first(f)).toBe('network_unreachable');
  });
});

describe('diagnose: telling the causes of "connection refused" apart, client side', () => {
  const OTHER = '10.20.0.6';
  const refused = (answer: RefusalAnswer | null, other: 'banner' | 'refused' | null): ProbeEvidence =>
    healthyProbe({
      tcp: {
        outcome: 'refused',
        ms: 1,
        code: 'ECONNREFUSED',
        ...(answer
          ? {
              refusal: {
                answer,
                attempts: 3,
                icmpDeltas: answer === 'icmp' ? [1, 1, 1] : answer === 'rst' ? [0, 0, 0] : [null, null, null],
              },
            }
          : {}),
      },
      banner: undefined,
      kex: undefined,
      auth: undefined,
      burst: undefined,
      ...(other === 'banner'
        ? {
            alternates: [
              {
                source: OTHER,
                tcp: { outcome: 'connected', ms: 2, localAddress: OTHER },
                banner: { outcome: 'banner', ms: 10, banner: 'SSH-2.0-OpenSSH_9.2p1' },
              },
            ],
          }
        : other === 'refused'
          ? { alternates: [{ source: OTHER, tcp: { outcome: 'refused', ms: 1, code: 'ECONNREFUSED' } }] }
          : {}),
    });
  const ranked = (f: Finding[]): string[] => f.map((x) => `${x.cause}:${x.confidence}`);

  it('an ICMP answer is a firewall rule, fail2ban’s first (its default banaction), never a stopped sshd', () => {
    const f = probeOnly(refused('icmp', 'banner'));
    // A ban and a plain REJECT are the same on the wire: neither is sure without the server's side.
    expect(ranked(f)).toEqual(['fail2ban_ban:medium', 'firewall_reject:medium']);
    expect(f[0]!.evidence.join('\n')).toContain(
      'refused by an ICMP destination-unreachable (InDestUnreachs +1, +1, +1)',
    );
    expect(f[0]!.remedy).toEqual({ kind: 'fail2ban', client: CLIENT });
    // Without another source to prove the block is by address: the same order, less sure.
    expect(ranked(probeOnly(refused('icmp', null)))).toEqual([
      'fail2ban_ban:medium',
      'firewall_reject:medium',
    ]);
    expect(ranked(probeOnly(refused('icmp', 'refused')))).toEqual([
      'fail2ban_ban:medium',
      'firewall_reject:medium',
    ]);
  });

  it('a reset here and a banner from another of our addresses is a tcp-reset REJECT for our address', () => {
    const f = probeOnly(refused('rst', 'banner'));
    // A fail2ban banaction that resets looks the same: first, but not sure.
    expect(ranked(f)).toEqual(['firewall_reject:medium', 'fail2ban_ban:medium']);
    const evidence = f[0]!.evidence.join('\n');
    expect(evidence).toContain(
      `from ${CLIENT}: refused (ECONNREFUSED) after 1 ms; from ${OTHER}: banner SSH-2.0-OpenSSH_9.2p1 after 12 ms`,
    );
    expect(evidence).toContain('no ICMP destination-unreachable (InDestUnreachs +0, +0, +0)');
    expect(f[0]!.remedy).toEqual({ kind: 'firewall', client: CLIENT });
  });

  it('a reset from every address is nothing listening: sshd not running, then the config that keeps it down', () => {
    for (const other of ['refused', null] as const) {
      const f = probeOnly(refused('rst', other));
      expect(f.map((x) => x.cause)).toEqual([
        'sshd_not_running',
        'sshd_config_invalid',
        'firewall_reject',
        'fail2ban_ban',
      ]);
      expect(f[0]!.remedy).toEqual({ kind: 'sshd_start' });
      expect(f[0]!.confidence).toBe('medium');
    }
    expect(probeOnly(refused('rst', 'refused'))[0]!.evidence.join('\n')).toContain(`from ${OTHER}: refused`);
  });

  it('a refused connect names no firewall rule or ban high, however it was refused', () => {
    for (const answer of ['icmp', 'rst', 'unknown', null] as const) {
      for (const other of ['banner', 'refused', null] as const) {
        const high = probeOnly(refused(answer, other)).filter((x) => x.confidence === 'high');
        expect({ answer, other, high: high.map((x) => x.cause) }).toEqual({ answer, other, high: [] });
      }
    }
  });

  it('when ICMP and reset cannot be told apart, a banner elsewhere still rules out a stopped sshd', () => {
    expect(probeOnly(refused('unknown', 'banner')).map((x) => x.cause)).toEqual([
      'firewall_reject',
      'fail2ban_ban',
    ]);
    expect(first(probeOnly(refused('unknown', null)))).toBe('sshd_not_running');
    expect(first(probeOnly(refused(null, null)))).toBe('sshd_not_running');
  });

  it('a banner from another address makes a time-out a DROP of our address, not a host that is down', () => {
    const probe = refused(null, 'banner');
    probe.tcp = { outcome: 'timeout', ms: 3000 };
    const f = probeOnly(probe);
    expect(ranked(f)[0]).toBe('firewall_drop:high');
    expect(f.some((x) => x.cause === 'network_unreachable')).toBe(false);
    const alone = probeOnly({ ...probe, alternates: [] });
    expect(ranked(alone)[0]).toBe('firewall_drop:medium');
    expect(alone.some((x) => x.cause === 'network_unreachable')).toBe(true);
  });

  it('a banner from another address strengthens TCP wrappers and a reset of established connections', () => {
    const served = refused(null, 'banner').alternates!;
    const wrapped = healthyProbe({
      banner: { outcome: 'closed', ms: 5100 },
      kex: undefined,
      auth: undefined,
    });
    expect(probeOnly({ ...wrapped, alternates: served })[0]!.score).toBeGreaterThan(
      probeOnly(wrapped)[0]!.score,
    );
    const reset = healthyProbe({ banner: { outcome: 'reset', ms: 0 }, kex: undefined, auth: undefined });
    expect(ranked(probeOnly(reset))[0]).toBe('firewall_reject:medium');
    expect(ranked(probeOnly({ ...reset, alternates: served }))[0]).toBe('firewall_reject:high');
  });
});

describe('diagnose: server-side evidence', () => {
  const withServer = (server = healthyServer(), probe?: ProbeEvidence): Finding[] =>
    diagnose({ port: 22, client: CLIENT, server, ...(probe ? { probe } : {}) });

  it('a healthy host yields no finding above low confidence', () => {
    expect(isHealthy(withServer(healthyServer(), healthyProbe()))).toBe(true);
  });

  it('hosts.deny refusing the client, with sshd linked to libwrap', () => {
    const f = withServer(healthyServer({ hostsDeny: `sshd: ${CLIENT}\n` }));
    expect(first(f)).toBe('tcp_wrappers_deny');
    expect(f[0]!.evidence.join('\n')).toContain('/etc/hosts.deny:1');
  });

  it('hosts.deny without libwrap is low confidence (TRAPS: the files have no effect there)', () => {
    const f = withServer(healthyServer({ hostsDeny: `sshd: ${CLIENT}\n`, libwrap: false }));
    expect(f.find((x) => x.cause === 'tcp_wrappers_deny')?.confidence).toBe('low');
  });

  it('an iptables DROP, a REJECT and a reset of established connections', () => {
    const table = (rule: string): string => `*filter\n:INPUT ACCEPT [0:0]\n-A INPUT ${rule}\nCOMMIT\n`;
    expect(
      first(
        withServer(healthyServer({ iptables: table(`-s ${CLIENT}/32 -p tcp -m tcp --dport 22 -j DROP`) })),
      ),
    ).toBe('firewall_drop');
    expect(
      first(
        withServer(
          healthyServer({ iptables: table('-p tcp -m tcp --dport 22 -j REJECT --reject-with tcp-reset') }),
        ),
      ),
    ).toBe('firewall_reject');
    const established = withServer(
      healthyServer({
        iptables: table(
          '-p tcp -m tcp --dport 22 -m conntrack --ctstate ESTABLISHED -j REJECT --reject-with tcp-reset',
        ),
      }),
    );
    expect(first(established)).toBe('firewall_reject');
    expect(established[0]!.evidence[0]).toContain('established');
  });

  /** `nft list ruleset` as Debian 13's fail2ban (banaction nftables) leaves it, the client in the jail's set. */
  const FAIL2BAN_NFT_TABLE = [
    'table inet f2b-table {',
    '\tset addr-set-sshd {',
    '\t\ttype ipv4_addr',
    `\t\telements = { ${CLIENT} }`,
    '\t}',
    '',
    '\tchain f2b-chain {',
    '\t\ttype filter hook input priority filter - 1; policy accept;',
    '\t\ttcp dport 22 ip saddr @addr-set-sshd reject with icmp port-unreachable',
    '\t}',
    '}',
  ].join('\n');

  it('a ban in fail2ban’s nftables table (Debian 13’s banaction) is fail2ban’s only, not a firewall REJECT too', () => {
    // `nft list ruleset` of a host whose fail2ban bans the client with nftables-multiport; iptables-save is empty.
    const nft = [
      FAIL2BAN_NFT_TABLE,
      'table inet filter {',
      '\tchain input {',
      '\t\ttype filter hook input priority filter; policy accept;',
      `\t\tip saddr ${CLIENT} tcp dport 22 drop`,
      '\t}',
      '}',
    ].join('\n');
    const banned = withServer(
      healthyServer({ iptables: '', nft, fail2ban: { running: true, bannedIn: ['sshd'], raw: '' } }),
    );
    expect(first(banned)).toBe('fail2ban_ban');
    expect(banned.map((x) => x.cause)).not.toContain('firewall_reject');
    // A rule of the host's own table still counts.
    expect(banned.find((x) => x.cause === 'firewall_drop')!.evidence[0]).toContain(
      `${CLIENT} tcp dport 22 drop`,
    );
  });

  it('a block in an f2b-* chain is fail2ban’s, not the firewall’s', () => {
    const iptables = [
      '*filter',
      ':INPUT ACCEPT [0:0]',
      ':f2b-sshd - [0:0]',
      '-A INPUT -p tcp -m multiport --dports 22 -j f2b-sshd',
      `-A f2b-sshd -s ${CLIENT}/32 -j REJECT --reject-with icmp-port-unreachable`,
      '-A f2b-sshd -j RETURN',
      'COMMIT',
    ].join('\n');
    const f = withServer(healthyServer({ iptables }));
    expect(first(f)).toBe('fail2ban_ban');
    expect(f.some((x) => x.cause === 'firewall_reject')).toBe(false);
  });

  it('a block in fail2ban’s nftables table is fail2ban’s too (Debian 13: banaction nftables)', () => {
    // `nft list ruleset` as Debian 13's fail2ban leaves it, the banned client in the jail's set.
    const fail2banTable = FAIL2BAN_NFT_TABLE;
    const own = 'table inet filter {\n\tchain input {\n\t\ttcp dport 22 drop\n\t}\n}';
    const f = withServer(healthyServer({ iptables: '', nft: `${own}\n${fail2banTable}\n` }));
    expect(f.some((x) => x.cause === 'firewall_reject')).toBe(false);
    const ban = f.find((x) => x.cause === 'fail2ban_ban');
    expect(ban?.evidence.join('\n')).toContain(
      `nftables rule of fail2ban (table inet f2b-table) that may block SSH from ${CLIENT}: tcp dport 22 ip saddr @addr-set-sshd reject`,
    );
    expect(ban?.remedy).toEqual({ kind: 'fail2ban', client: CLIENT });
    // A rule of any other table is still the firewall's.
    expect(f.find((x) => x.cause === 'firewall_drop')?.evidence[0]).toContain('tcp dport 22 drop');
  });

  it('sshd down with a config sshd -t rejects: invalid config first, with the keyword to remove', () => {
    const f = withServer(
      healthyServer({
        sshdRunning: false,
        listening: [],
        sshdTest: {
          ok: false,
          output: '/etc/ssh/sshd_config line 123: Bad configuration option: MaxStartupz',
        },
        effective: null,
      }),
    );
    expect(first(f)).toBe('sshd_config_invalid');
    expect(f[0]!.remedy).toEqual({ kind: 'sshd_remove', keywords: ['MaxStartupz'], sshdRunning: false });
  });

  it('sshd down with a valid config: not running', () => {
    expect(first(withServer(healthyServer({ sshdRunning: false, listening: [] })))).toBe('sshd_not_running');
  });

  it('unauthenticated connections at the MaxStartups start, and drop lines in the log', () => {
    const effective = new Map(STOCK_SSHD_T).set('maxstartups', ['1:100:1']);
    const f = withServer(
      healthyServer({
        effective,
        startups: { current: 1, limits: '1-1' },
        authLog: [`drop connection #1 from [${CLIENT}]:50000 on [10.20.1.1]:22 past MaxStartups`],
      }),
    );
    expect(first(f)).toBe('max_startups');
    expect(f[0]!.confidence).toBe('high');
  });

  it('MaxAuthTries below the keys the client offers', () => {
    const effective = new Map(STOCK_SSHD_T).set('maxauthtries', ['1']);
    const probe = healthyProbe({ auth: { outcome: 'too_many_failures', keysOffered: 1, keysAvailable: 4 } });
    expect(first(withServer(healthyServer({ effective }), probe))).toBe('max_auth_tries');
  });

  it('log lines of another client whose address starts like ours are not ours', () => {
    const effective = new Map(STOCK_SSHD_T).set('maxauthtries', ['6']);
    const authLog = [
      `error: maximum authentication attempts exceeded for root from ${CLIENT}0 port 5 ssh2 [preauth]`,
      `refused connect from ${CLIENT}0 (${CLIENT}0)`,
    ];
    const f = withServer(healthyServer({ effective, authLog }));
    expect(f.filter((x) => x.confidence !== 'low')).toEqual([]);
    const ours = withServer(
      healthyServer({ effective, authLog: authLog.map((l) => l.replaceAll(`${CLIENT}0`, CLIENT)) }),
    );
    expect(ours.map((x) => `${x.cause}:${x.confidence}`)).toEqual(
      expect.arrayContaining(['max_auth_tries:high', 'tcp_wrappers_deny:medium']),
    );
  });

  it('refusals logged before hosts.allow/deny granted the client are history', () => {
    const f = withServer(
      healthyServer({ hostsDeny: '', authLog: [`refused connect from ${CLIENT} (${CLIENT})`] }),
    );
    expect(f.find((x) => x.cause === 'tcp_wrappers_deny')?.confidence).toBe('medium');
  });

  it('fail2ban-client listing the client', () => {
    const f = withServer(healthyServer({ fail2ban: { running: true, bannedIn: ['sshd'], raw: '' } }));
    expect(first(f)).toBe('fail2ban_ban');
  });

  it('an OOM kill of sshd, and a short ClientAlive window', () => {
    expect(first(withServer(healthyServer({ oomKills: ['Out of memory: Killed process 812 (sshd)'] })))).toBe(
      'resources_exhausted',
    );
    const effective = new Map(STOCK_SSHD_T)
      .set('clientaliveinterval', ['5'])
      .set('clientalivecountmax', ['1']);
    expect(first(withServer(healthyServer({ effective })))).toBe('client_alive');
  });

  it('server evidence outranks the client’s guesses', () => {
    const probe = healthyProbe({
      tcp: { outcome: 'refused', ms: 1 },
      banner: undefined,
      kex: undefined,
      auth: undefined,
    });
    const iptables = `*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s ${CLIENT}/32 -p tcp --dport 22 -j REJECT\nCOMMIT\n`;
    const f = withServer(healthyServer({ iptables }), probe);
    expect(first(f)).toBe('firewall_reject');
    expect(f.filter((x) => x.cause !== 'firewall_reject').every((x) => x.confidence === 'low')).toBe(true);
  });
});

describe('findings invariants', () => {
  const probeArb = fc.record({
    tcp: fc.constantFrom('connected', 'timeout', 'refused', 'unreachable', 'error'),
    banner: fc.constantFrom('banner', 'reset', 'closed', 'timeout'),
    bannerMs: fc.integer({ min: 0, max: 9000 }),
    auth: fc.constantFrom('accepted', 'rejected', 'too_many_failures', 'disconnected', 'error'),
    keys: fc.integer({ min: 0, max: 8 }),
    refusal: fc.constantFrom('icmp', 'rst', 'unknown', null),
    other: fc.constantFrom('banner', 'reset', 'refused', 'timeout', null),
  });

  it('are sorted by score, use only stable cause ids, and name each cause once', () => {
    fc.assert(
      fc.property(probeArb, fc.boolean(), (p, withServer) => {
        const probe = healthyProbe({
          tcp: {
            outcome: p.tcp,
            ms: 1,
            ...(p.refusal ? { refusal: { answer: p.refusal, attempts: 3, icmpDeltas: [1, 0, 1] } } : {}),
          },
          banner: { outcome: p.banner, ms: p.bannerMs },
          auth: { outcome: p.auth, keysOffered: p.keys, keysAvailable: p.keys },
          ...(p.other
            ? {
                alternates: [
                  {
                    source: '10.20.0.6',
                    tcp: {
                      outcome: p.other === 'refused' || p.other === 'timeout' ? p.other : 'connected',
                      ms: 1,
                    },
                    ...(p.other === 'banner' || p.other === 'reset'
                      ? { banner: { outcome: p.other, ms: 3, banner: 'SSH-2.0-x' } }
                      : {}),
                  },
                ],
              }
            : {}),
        });
        const f = diagnose({
          port: 22,
          client: CLIENT,
          probe,
          ...(withServer ? { server: healthyServer() } : {}),
        });
        const causes = f.map((x) => x.cause);
        expect(new Set(causes).size).toBe(causes.length);
        for (const c of causes) expect(CAUSES).toContain(c);
        for (let i = 1; i < f.length; i++) expect(f[i - 1]!.score).toBeGreaterThanOrEqual(f[i]!.score);
        if (withServer) {
          // The healthy server contradicts every client-side guess except measured ones.
          const aboveLow = f.filter((x) => x.confidence !== 'low').map((x) => x.cause);
          for (const c of aboveLow) expect(['max_auth_tries', 'max_startups']).toContain(c);
        }
      }),
    );
  });
});

describe('invalidKeywords', () => {
  it('reads the keywords sshd -t rejects', () => {
    const output = [
      '/etc/ssh/sshd_config line 3: Bad configuration option: Foo',
      '/etc/ssh/sshd_config.d/x.conf: line 1: Bad configuration option: MaxStartupz',
      '/etc/ssh/sshd_config: terminating, 2 bad configuration options',
    ].join('\n');
    expect(invalidKeywords(output)).toEqual(['Foo', 'MaxStartupz']);
    expect(invalidKeywords('Missing privilege separation directory: /run/sshd')).toEqual([]);
  });

  it('reads the keyword of a line whose value sshd -t rejects, from the line itself', () => {
    const output = '/etc/ssh/sshd_config.d/10.conf line 1: unsupported option "maybe".';
    const lines = [{ file: '/etc/ssh/sshd_config.d/10.conf', line: 1, text: 'PermitRootLogin maybe' }];
    expect(invalidKeywords(output, lines)).toEqual(['PermitRootLogin']);
    const eq = [{ file: '/etc/ssh/sshd_config', line: 9, text: '  MaxAuthTries=many # typo' }];
    expect(invalidKeywords('/etc/ssh/sshd_config line 9: Bad number.', eq)).toEqual(['MaxAuthTries']);
  });
});

describe('diagnose: PerSourcePenalties (OpenSSH >= 9.8), source_penalty', () => {
  const WORKSTATION = '10.20.0.6';
  const OPENSSH_10 = 'SSH-2.0-OpenSSH_10.0p2 Debian-7+deb13u4';
  const PENALTIES = 'crash:90 authfail:5 noauth:1 grace-exceeded:10 refuseconnection:10 max:600 min:15';
  /** OpenSSH >= 9.8 writes "Not allowed at this time" to what its listener drops; older ones just close. */
  const dropped = (otherBanner: string, notice = true): ProbeEvidence =>
    healthyProbe({
      banner: { outcome: 'closed', ms: 2, ...(notice ? { preamble: 'Not allowed at this time' } : {}) },
      closedFirst: { outcome: 'closed', ms: 2, ...(notice ? { preamble: 'Not allowed at this time' } : {}) },
      kex: undefined,
      auth: undefined,
      burst: undefined,
      alternates: [
        {
          source: WORKSTATION,
          tcp: { outcome: 'connected', ms: 1, localAddress: WORKSTATION },
          banner: { outcome: 'banner', ms: 9, banner: otherBanner },
        },
      ],
    });
  const penaltyLine = (address: string, reason = 'failed authentication'): string =>
    `2026-12-03T08:26:19+00:00 h01 sshd[70]: drop connection #0 from [${address}]:34479 on [10.20.1.1]:22 penalty: ${reason}`;
  const effective = (exempt = 'none'): Map<string, string[]> =>
    new Map(STOCK_SSHD_T)
      .set('persourcepenalties', PENALTIES.split(' '))
      .set('persourcepenaltyexemptlist', [exempt]);
  const withServer = (server: ReturnType<typeof healthyServer>, probe?: ProbeEvidence): Finding[] =>
    diagnose({ port: 22, client: CLIENT, server, ...(probe ? { probe } : {}) });

  it('closed before the banner here, an OpenSSH >= 9.8 banner from the workstation: source_penalty first, not max_startups', () => {
    const f = probeOnly(dropped(OPENSSH_10));
    expect(first(f)).toBe('source_penalty');
    expect(f[0]!.confidence).toBe('high');
    expect(f[0]!.remedy).toEqual({ kind: 'source_penalty', client: CLIENT, exempt: [] });
    const evidence = f[0]!.evidence.join('\n');
    expect(evidence).toContain(`from ${WORKSTATION}: banner ${OPENSSH_10}`);
    expect(evidence).toContain('"Not allowed at this time"');
    expect(f.find((x) => x.cause === 'max_startups')!.score).toBeLessThan(f[0]!.score);
  });

  it('an OpenSSH before 9.8 has no penalties: the same drop is not source_penalty', () => {
    const f = probeOnly(dropped('SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3', false));
    expect(f.map((x) => x.cause)).not.toContain('source_penalty');
    expect(first(f)).toBe('max_startups');
  });

  it('a penalty drop line for the client in the journal is source_penalty, high, with the setting and a fix that lifts it', () => {
    const f = withServer(healthyServer({ effective: effective(), authLog: [penaltyLine(CLIENT)] }));
    expect(first(f)).toBe('source_penalty');
    expect(f[0]!.confidence).toBe('high');
    expect(f[0]!.evidence).toEqual(
      expect.arrayContaining([
        penaltyLine(CLIENT),
        `PerSourcePenalties ${PENALTIES}`,
        'PerSourcePenaltyExemptList none',
      ]),
    );
    expect(f[0]!.fix).toMatch(/PerSourcePenaltyExemptList/);
    expect(f[0]!.fix).toMatch(/systemctl reload ssh/);
    expect(f[0]!.fix).toMatch(/systemctl restart ssh/);
    expect(f.filter((x) => x.cause === 'max_startups' && x.confidence !== 'low')).toEqual([]);
  });

  it('under ssh.socket the fix lifts a live penalty with a restart of ssh.service only: a reload kills sshd there', () => {
    const f = withServer(
      healthyServer({ effective: effective(), authLog: [penaltyLine(CLIENT)], sshSocketActive: true }),
    );
    expect(first(f)).toBe('source_penalty');
    expect(f[0]!.fix).toMatch(/`systemctl restart ssh`/);
    expect(f[0]!.fix).not.toMatch(/`systemctl reload ssh`/);
    expect(f[0]!.fix).not.toMatch(/`systemctl restart ssh\.socket`/);
  });

  it('keeps the exempt list it finds, and a penalty line of another address or an exempt client is not ours', () => {
    const existing = withServer(
      healthyServer({ effective: effective('192.0.2.0/24'), authLog: [penaltyLine(CLIENT)] }),
    );
    expect(existing[0]!.remedy).toEqual({ kind: 'source_penalty', client: CLIENT, exempt: ['192.0.2.0/24'] });
    const other = withServer(healthyServer({ effective: effective(), authLog: [penaltyLine(`${CLIENT}0`)] }));
    expect(other.map((x) => x.cause)).not.toContain('source_penalty');
    const exempt = withServer(
      healthyServer({ effective: effective('10.20.0.0/16'), authLog: [penaltyLine(CLIENT)] }),
    );
    expect(exempt.map((x) => x.cause)).not.toContain('source_penalty');
  });

  it('a penalty drop logged longer ago than PerSourcePenalties max has expired: low confidence', () => {
    const logged = Date.parse('2026-12-03T08:26:19Z') / 1000;
    const recent = withServer(
      healthyServer({ effective: effective(), authLog: [penaltyLine(CLIENT)], now: logged + 30 }),
    );
    expect(recent[0]!.cause).toBe('source_penalty');
    expect(recent[0]!.confidence).toBe('high');
    const old = withServer(
      healthyServer({ effective: effective(), authLog: [penaltyLine(CLIENT)], now: logged + 601 }),
    );
    expect(old.find((x) => x.cause === 'source_penalty')?.confidence).toBe('low');
  });

  it('OpenSSH 10\'s MaxStartups drop line ("Maxstartups") is max_startups; a penalty drop line is not', () => {
    const maxStartups = `2026-12-03T08:26:00+00:00 h01 sshd[198]: drop connection #1 from [${WORKSTATION}]:34575 on [10.20.1.1]:22 Maxstartups`;
    expect(first(withServer(healthyServer({ authLog: [maxStartups] })))).toBe('max_startups');
    const f = withServer(healthyServer({ effective: effective(), authLog: [penaltyLine(WORKSTATION)] }));
    expect(f.filter((x) => x.confidence !== 'low')).toEqual([]);
  });
});
