/**
 * Lockout guards (TRAPS.md: "`sshd -t` accepts configs that lock you out").
 * Facts are written as `sshd -T` prints them.
 */
import fc from 'fast-check';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  buildLockoutFactsScript,
  findLockouts,
  firewallVerdict,
  listeningChanged,
  matchPattern,
  matchPatternList,
  matchUserEntry,
  nextPort,
  parseListenAddress,
  parseLockoutFacts,
  plannedRejection,
  type LockoutFacts,
  type LoginFacts,
  type StagedSshdTree,
} from '../../../src/resources/sshd_guard.js';
import {
  loadSshdTree,
  parseSshdT,
  planSshdSettings,
  stageTreeForValidation,
  unmatchedConnectionSpec,
  type SettingValue,
} from '../../../src/formats/sshd_effective.js';
import type { FileState } from '../../../src/plan/types.js';
import { newMarker } from '../../../src/transport/shell.js';
import { localShell } from '../../support/local_sh.js';

const BASE = `port 22
addressfamily any
listenaddress 0.0.0.0:22
listenaddress [::]:22
permitrootlogin without-password
passwordauthentication yes
pubkeyauthentication yes
usedns no
authenticationmethods any
`;

const ROOT_BY_KEY: LoginFacts = {
  user: 'root',
  groups: ['root'],
  authMethod: 'publickey',
  clientAddress: '10.200.0.1',
  localAddress: '10.200.1.1',
  localPort: 22,
};

function facts(planned: string, overrides: Partial<LockoutFacts> = {}, current = BASE): LockoutFacts {
  return {
    login: ROOT_BY_KEY,
    current: parseSshdT(current),
    planned: parseSshdT(planned),
    hostAddresses: ['127.0.0.1', '10.200.1.1', '::1'],
    iptables: [],
    ...overrides,
  };
}

const messages = (f: LockoutFacts): string[] => findLockouts(f).map((x) => x.message);

describe('OpenSSH patterns (match.c)', () => {
  test('wildcards match the whole text', () => {
    expect(matchPattern('root', 'r*')).toBe(true);
    expect(matchPattern('root', 'r??t')).toBe(true);
    expect(matchPattern('root', 'ro')).toBe(false);
    expect(matchPattern('a.b', 'a?b')).toBe(true);
    expect(matchPattern('axb', 'a.b')).toBe(false);
  });

  test('a negated entry in a list wins', () => {
    expect(matchPatternList('wheel', 'adm,wheel')).toBe('match');
    expect(matchPatternList('wheel', '*,!wheel')).toBe('negated');
    expect(matchPatternList('staff', 'adm,!wheel')).toBe('none');
  });

  test('user@host entries check the client address, CIDRs included', () => {
    expect(matchUserEntry('root@10.200.0.0/16', ROOT_BY_KEY, false)).toBe('yes');
    expect(matchUserEntry('root@10.201.0.0/16', ROOT_BY_KEY, false)).toBe('no');
    expect(matchUserEntry('root@10.200.0.*', ROOT_BY_KEY, false)).toBe('yes');
    expect(matchUserEntry('alice@10.200.0.1', ROOT_BY_KEY, false)).toBe('no');
    // With UseDNS yes sshd compares names we cannot resolve here: unsure.
    expect(matchUserEntry('root@*.example.com', ROOT_BY_KEY, true)).toBe('unknown');
    expect(matchUserEntry('root@*.example.com', ROOT_BY_KEY, false)).toBe('no');
  });

  test('property: a pattern made of the text itself always matches, one with an extra character never', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z0-9._-]{1,12}$/), (user) => {
        expect(matchPattern(user, user)).toBe(true);
        expect(matchPattern(user, `${user}x`)).toBe(false);
        expect(matchPattern(user, '*')).toBe(true);
      }),
    );
  });
});

describe('findLockouts', () => {
  test('the current configuration raises nothing', () => {
    expect(findLockouts(facts(BASE))).toEqual([]);
  });

  test('AllowUsers of another user locks the operator out', () => {
    expect(messages(facts(`${BASE}allowusers alice\n`))).toEqual([
      expect.stringMatching(/^AllowUsers alice does not admit root from 10\.200\.0\.1/),
    ]);
    expect(findLockouts(facts(`${BASE}allowusers alice\nallowusers root@10.200.0.0/16\n`))).toEqual([]);
  });

  test('AllowUsers with a host name under UseDNS yes is refused as unsure', () => {
    const planned = BASE.replace('usedns no', 'usedns yes') + 'allowusers root@admin.example.com\n';
    expect(messages(facts(planned))).toEqual([expect.stringMatching(/may not admit root/)]);
  });

  test('DenyUsers, DenyGroups and AllowGroups are checked against the login and its groups', () => {
    expect(messages(facts(`${BASE}denyusers r*\n`))).toEqual([
      expect.stringMatching(/^DenyUsers r\* matches root/),
    ]);
    expect(messages(facts(`${BASE}denygroups root\n`))).toEqual([
      expect.stringMatching(/^DenyGroups root matches/),
    ]);
    expect(messages(facts(`${BASE}allowgroups sshusers\n`))).toEqual([
      expect.stringMatching(/^AllowGroups sshusers admits none of the groups of root/),
    ]);
    expect(findLockouts(facts(`${BASE}allowgroups sshusers\nallowgroups root\n`))).toEqual([]);
  });

  test('PermitRootLogin no as root; prohibit-password only with a password', () => {
    expect(messages(facts(BASE.replace('without-password', 'no')))).toEqual([
      'PermitRootLogin no while sshfix logs in as root',
    ]);
    const byPassword = { ...ROOT_BY_KEY, authMethod: 'password' as const };
    const planned = BASE.replace('without-password', 'prohibit-password');
    expect(findLockouts(facts(planned))).toEqual([]);
    expect(messages(facts(planned, { login: byPassword }, BASE.replace('without-password', 'yes')))).toEqual([
      'PermitRootLogin prohibit-password while sshfix logs in as root with a password',
    ]);
    // Not root: PermitRootLogin is someone else's business.
    expect(
      findLockouts(
        facts(BASE.replace('without-password', 'no'), { login: { ...ROOT_BY_KEY, user: 'deploy' } }),
      ),
    ).toEqual([]);
  });

  test('PasswordAuthentication no only matters to a password login', () => {
    const planned = BASE.replace('passwordauthentication yes', 'passwordauthentication no');
    expect(findLockouts(facts(planned))).toEqual([]);
    const login = { ...ROOT_BY_KEY, user: 'deploy', authMethod: 'password' as const };
    expect(messages(facts(planned, { login }))).toEqual([
      'PasswordAuthentication no while sshfix is authenticated by password',
    ]);
  });

  test('AuthenticationMethods that need more than the login method', () => {
    expect(
      messages(facts(BASE.replace('authenticationmethods any', 'authenticationmethods publickey,password'))),
    ).toEqual([
      expect.stringMatching(/^AuthenticationMethods publickey,password does not accept publickey alone/),
    ]);
    expect(
      findLockouts(
        facts(BASE.replace('authenticationmethods any', 'authenticationmethods publickey password')),
      ),
    ).toEqual([]);
  });

  test('a ListenAddress that is not on the host, or that leaves the connected address', () => {
    const planned = BASE.replace(/listenaddress .*\n/g, '') + 'listenaddress 192.0.2.7:22\n';
    expect(messages(facts(planned))).toEqual([
      expect.stringMatching(/^ListenAddress 192\.0\.2\.7 is not an address of this host/),
      'sshd would no longer listen on 10.200.1.1, the address sshfix is connected to',
    ]);
  });

  test('a new Port that the firewall drops is refused; one it admits is not', () => {
    const planned = BASE.replace(/22/g, '2222');
    const iptables = [
      {
        family: 4 as const,
        variant: 'iptables',
        text: [
          '*filter',
          ':INPUT DROP [0:0]',
          ':FORWARD ACCEPT [0:0]',
          ':OUTPUT ACCEPT [0:0]',
          '-A INPUT -i lo -j ACCEPT',
          '-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
          '-A INPUT -m conntrack --ctstate INVALID -j DROP',
          '-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT',
          'COMMIT',
          '',
        ].join('\n'),
      },
    ];
    expect(messages(facts(planned, { iptables }))).toEqual([
      expect.stringMatching(
        /^sshd would move to port 2222, which the firewall does not admit from 10\.200\.0\.1 \(iptables: INPUT policy DROP/,
      ),
    ]);
    const admitted = [{ ...iptables[0]!, text: iptables[0]!.text.replace('--dport 22 ', '--dport 2222 ') }];
    expect(findLockouts(facts(planned, { iptables: admitted }))).toEqual([]);
    expect(findLockouts(facts(planned))).toEqual([]);
  });

  test('a finding the live configuration already has is not blamed on the change', () => {
    const withDnsPattern = BASE.replace('usedns no', 'usedns yes') + 'allowusers root@admin.example.com\n';
    expect(findLockouts(facts(`${withDnsPattern}maxstartups 30:30:100\n`, {}, withDnsPattern))).toEqual([]);
  });
});

describe('firewallVerdict', () => {
  const dump = (rules: string[], policy = 'DROP') => [
    {
      family: 4 as const,
      variant: 'iptables',
      text: ['*filter', `:INPUT ${policy} [0:0]`, ':f2b-sshd - [0:0]', ...rules, 'COMMIT', ''].join('\n'),
    },
  ];

  test('jumps are followed: a ban in a fail2ban chain blocks', () => {
    const rules = [
      '-A INPUT -p tcp -m multiport --dports 2222 -j f2b-sshd',
      '-A INPUT -p tcp --dport 2222 -j ACCEPT',
      '-A f2b-sshd -s 10.200.0.1/32 -j REJECT --reject-with icmp-port-unreachable',
      '-A f2b-sshd -j RETURN',
    ];
    expect(firewallVerdict(dump(rules), '10.200.0.1', 2222).verdict).toBe('block');
    expect(firewallVerdict(dump(rules), '10.200.0.9', 2222).verdict).toBe('admit');
  });

  test('an ACCEPT we cannot evaluate makes a DROP policy "unknown", not "block"', () => {
    expect(
      firewallVerdict(dump(['-A INPUT -i eth0 -p tcp --dport 2222 -j ACCEPT']), '10.200.0.1', 2222).verdict,
    ).toBe('unknown');
    expect(firewallVerdict(dump([], 'ACCEPT'), '10.200.0.1', 2222).verdict).toBe('admit');
    expect(
      firewallVerdict(dump(['-A INPUT -s 10.200.0.0/16 -j DROP'], 'ACCEPT'), '10.200.0.1', 2222).verdict,
    ).toBe('block');
  });
});

describe('ports and listen addresses', () => {
  test('sshd -T listenaddress forms', () => {
    expect(parseListenAddress('0.0.0.0:22')).toEqual({ address: '0.0.0.0', port: 22 });
    expect(parseListenAddress('[::]:2222')).toEqual({ address: '::', port: 2222 });
    expect(parseListenAddress('10.0.0.1:22 rdomain x')).toEqual({ address: '10.0.0.1', port: 22 });
  });

  test('the port to confirm on: the current one while sshd keeps it, else the new one', () => {
    expect(
      nextPort(parseSshdT('listenaddress 0.0.0.0:22\nlistenaddress 0.0.0.0:2222\n'), '10.0.0.1', 22),
    ).toBe(22);
    expect(nextPort(parseSshdT('listenaddress 0.0.0.0:2222\n'), '10.0.0.1', 22)).toBe(2222);
    expect(nextPort(parseSshdT('listenaddress [::]:2222\n'), '10.0.0.1', 22)).toBeUndefined();
    expect(nextPort(parseSshdT('port 2222\n'), undefined, 22)).toBe(2222);
  });

  test('listeningChanged compares Port and ListenAddress only', () => {
    const f = facts(BASE.replace(/22/g, '2222'));
    expect(listeningChanged(f)).toEqual({ port: true, listenAddress: true });
    expect(listeningChanged(facts(`${BASE}maxauthtries 3\n`))).toEqual({ port: false, listenAddress: false });
  });
});

describe('parseLockoutFacts', () => {
  test('reads every section of the facts script output', () => {
    const m = '@@sshfix-0123';
    const section = (name: string, rc: number, text: string) =>
      `${m} ${name}\n${text}\n${m} ${name} rc ${rc}\n`;
    const out = [
      section('connection', 0, '10.200.0.1 40000 10.200.1.1 22\n'),
      section('groups', 0, 'root adm\n'),
      section('current', 0, BASE),
      section('planned', 0, `${BASE}allowusers alice\n`),
      section(
        'addresses',
        0,
        [
          '1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever',
          '1: lo    inet6 ::1/128 scope host \\       valid_lft forever preferred_lft forever',
          '2: eth0    inet 10.200.1.1/16 brd 10.200.255.255 scope global eth0\\       valid_lft forever',
          '2: eth0    inet6 fe80::1/64 scope link \\       valid_lft forever preferred_lft forever',
          '',
        ].join('\n'),
      ),
      section('iptables', 0, '*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n'),
      section('ip6tables', 1, ''),
      section('activation', 0, 'none no\n'),
    ].join('');
    const parsed = parseLockoutFacts(out, { user: 'root', authMethod: 'publickey' }, m);
    expect(parsed.login).toEqual({ ...ROOT_BY_KEY, groups: ['root', 'adm'] });
    expect(parsed.hostAddresses).toEqual(['127.0.0.1', '::1', '10.200.1.1', 'fe80::1']);
    expect(parsed.iptables.map((d) => d.variant)).toEqual(['iptables']);
    expect(parsed.activation).toEqual({ systemd: false, sshSocket: false });
    expect(findLockouts(parsed).map((f) => f.key)).toEqual(['allowusers:alice']);
  });
});

describe('the staged tree refused by sshd -T -C', () => {
  test("parseLockoutFacts keeps sshd's message, without the stage directory", () => {
    const m = '@@sshfix-0123';
    const section = (name: string, rc: number, text: string) =>
      `${m} ${name}\n${text}\n${m} ${name} rc ${rc}\n`;
    const out = [
      section('connection', 0, '10.200.0.1 40000 10.200.1.1 22\n'),
      section('current', 0, BASE),
      section('planned', 255, ''),
      section('planned-error', 0, '/run/sshfix/stage-1/etc/ssh/x.conf line 2: Bad configuration option\n'),
    ].join('');
    const parsed = parseLockoutFacts(out, { user: 'root', authMethod: 'publickey' }, m);
    expect(plannedRejection(parsed, '/run/sshfix/stage-1')).toBe(
      '/etc/ssh/x.conf line 2: Bad configuration option',
    );
    const accepted = parseLockoutFacts(
      [section('current', 0, BASE), section('planned', 0, BASE)].join(''),
      { user: 'root' },
      m,
    );
    expect(plannedRejection(accepted, '/run/sshfix/stage-1')).toBeUndefined();
    // Refused like the live configuration: about sshd or the facts, not about the change.
    const both = parseLockoutFacts(
      [section('current', 255, ''), section('planned', 255, ''), section('planned-error', 0, 'x\n')].join(''),
      { user: 'root' },
      m,
    );
    expect(plannedRejection(both, '/run/sshfix/stage-1')).toBeUndefined();
  });

  const realSshd = fs.existsSync('/usr/sbin/sshd') && process.getuid?.() === 0;
  (realSshd ? test : test.skip)(
    'AuthenticationMethods any after a Match User root that sets methods: only sshd -T -C for root tells',
    async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-guard-'));
      try {
        fs.mkdirSync('/run/sshd', { recursive: true });
        const main = path.join(dir, 'sshd_config');
        const files: Record<string, string> = {
          [main]: `HostKey /etc/ssh/ssh_host_ed25519_key\nInclude ${dir}/d/*.conf\n`,
          [path.join(dir, 'd/10-root.conf')]: 'Match User root\n  AuthenticationMethods publickey\n',
        };
        for (const [file, text] of Object.entries(files)) {
          fs.mkdirSync(path.dirname(file), { recursive: true });
          fs.writeFileSync(file, text);
        }
        const reader = {
          async readFiles(paths: string[]) {
            return new Map(
              paths.map((p): [string, FileState] => [
                p,
                { path: p, exists: p in files, content: files[p] ?? '' },
              ]),
            );
          },
          async glob() {
            return [path.join(dir, 'd/10-root.conf')];
          },
        };
        const tree = await loadSshdTree(main, reader);
        const guardFacts = async (settings: Record<string, SettingValue>) => {
          const stageRoot = path.join(dir, 'stage');
          const staged = stageTreeForValidation(tree, planSshdSettings(tree, settings).files, stageRoot);
          const data: StagedSshdTree = {
            sshd: '/usr/sbin/sshd',
            mainPath: main,
            stageRoot,
            stagedMain: staged.mainPath,
            staged: Object.fromEntries(staged.files),
            unmatchedSpec: unmatchedConnectionSpec(tree),
          };
          const marker = newMarker();
          // As sshfix's own root login over SSH would see it.
          const script = `SSH_CONNECTION='10.9.9.9 40000 10.9.9.8 22'\n${buildLockoutFactsScript(data, 'root', marker)}`;
          const result = await localShell().runScript(script);
          const gathered = parseLockoutFacts(
            result.stdout,
            { user: 'root', authMethod: 'publickey' },
            marker,
          );
          return { gathered, rejection: plannedRejection(gathered, stageRoot) };
        };
        const any = await guardFacts({ AuthenticationMethods: 'any' });
        expect(any.gathered.current.get('authenticationmethods')).toEqual(['publickey']);
        expect(any.rejection).toMatch(/line \d+: "any" must appear alone in AuthenticationMethods$/);
        expect((await guardFacts({ MaxAuthTries: 3 })).rejection).toBeUndefined();
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
