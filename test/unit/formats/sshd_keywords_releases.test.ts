/**
 * Keywords newer than some fleets' sshd: the release that introduced each
 * (servconf.c history) and the values sshd takes for the OpenSSH ≥ 9.8
 * per-source keywords.
 */
import { effectiveMatches, parseSshdT, settingNeeds } from '../../../src/formats/sshd_effective.js';
import {
  describeNeed,
  keywordInfo,
  valueProblem,
  valuesEqual,
  withIpv4MappedEntries,
} from '../../../src/formats/sshd_keywords.js';
import { settingsAsWritten } from '../../../src/resources/sshd_config.js';
import { formatVersion } from '../../../src/formats/openssh_version.js';

const since = (keyword: string): string | undefined => {
  const version = keywordInfo(keyword)?.since;
  return version === undefined ? undefined : formatVersion(version);
};

describe('the release that introduced a keyword', () => {
  it.each([
    ['PerSourcePenalties', '9.8'],
    ['PerSourcePenaltyExemptList', '9.8'],
    // Not 9.8: both came with per-source MaxStartups accounting in OpenSSH 8.5.
    ['PerSourceMaxStartups', '8.5'],
    ['PerSourceNetBlockSize', '8.5'],
    ['RefuseConnection', '9.9'],
    ['ChannelTimeout', '9.2'],
    ['SshdSessionPath', '9.8'],
    ['SshdAuthPath', '10.0'],
  ])('%s: OpenSSH %s', (keyword, version) => {
    expect(since(keyword)).toBe(version);
  });

  it('is not set for keywords every release knows, nor for distribution patches', () => {
    expect(since('MaxStartups')).toBeUndefined();
    expect(since('PasswordAuthentication')).toBeUndefined();
    expect(since('DebianBanner')).toBeUndefined();
  });

  it.each<[string, string | string[], string | undefined]>([
    ['PerSourcePenaltyExemptList', '10.20.0.0/16', 'PerSourcePenaltyExemptList (OpenSSH ≥ 9.8)'],
    ['PerSourcePenalties', 'authfail:5 noauth:1', 'PerSourcePenalties (OpenSSH ≥ 9.8)'],
    // A value can need a newer release than its keyword.
    [
      'PerSourcePenalties',
      ['authfail:5', 'refuseconnection:5'],
      'PerSourcePenalties refuseconnection: (OpenSSH ≥ 9.9)',
    ],
    [
      'PerSourcePenalties',
      ['invaliduser:2', 'refuseconnection:5'],
      'PerSourcePenalties invaliduser: (OpenSSH ≥ 10.3)',
    ],
    ['MaxAuthTries', '6', undefined],
  ])('setting %s %j needs %s', (keyword, value, expected) => {
    const need = settingNeeds(keyword, value);
    expect(need === undefined ? undefined : describeNeed(need)).toBe(expected);
  });
});

describe('values of the per-source keywords, as servconf.c checks them', () => {
  it.each<[string, string[], string | undefined | ReturnType<typeof expect.stringMatching>]>([
    ['PerSourcePenalties', ['authfail:5', 'noauth:1', 'max:10m', 'min:15'], undefined],
    ['PerSourcePenalties', ['no'], undefined],
    ['PerSourcePenalties', ['YES'], undefined],
    ['PerSourcePenalties', ['max-sources4:65536', 'overflow:deny-all', 'overflow6:permissive'], undefined],
    // sshd_config(5) says "off"; servconf.c takes only yes and no.
    ['PerSourcePenalties', ['off'], '"off" is not a value sshd takes: use no'],
    ['PerSourcePenalties', ['no', 'authfail:5'], '"no" must appear alone'],
    [
      'PerSourcePenalties',
      ['authfail'],
      expect.stringMatching(/^"authfail" is not a penalty item \(crash:, /),
    ],
    ['PerSourcePenalties', ['Crash:90'], expect.stringMatching(/^"Crash:90" is not a penalty item/)],
    ['PerSourcePenalties', ['authfail:5x'], expect.stringMatching(/^"authfail:5x": "5x" is not a time/)],
    ['PerSourcePenalties', ['max-sources4:lots'], '"max-sources4:lots": "lots" is not a whole number'],
    ['PerSourcePenalties', ['overflow:deny'], '"overflow:deny": "deny" is not deny-all or permissive'],
    ['PerSourcePenaltyExemptList', ['10.20.0.0/16,192.0.2.7,2001:db8::/32'], undefined],
    ['PerSourcePenaltyExemptList', ['!10.20.0.9,10.20.*'], undefined],
    ['PerSourcePenaltyExemptList', ['none'], undefined],
    // addr_pton_cidr(): host bits set is an error sshd refuses to start with.
    [
      'PerSourcePenaltyExemptList',
      ['10.20.0.5/16'],
      expect.stringMatching(/^"10\.20\.0\.5\/16": '10\.20\.0\.5\/16' has host bits set/),
    ],
    ['PerSourcePenaltyExemptList', ['10.0.0.0/33'], expect.stringMatching(/prefix length must be 0 to 32/)],
    ['PerSourcePenaltyExemptList', ['10.0.0.0/8,'], '"10.0.0.0/8," has an empty entry'],
    // sshd would take it as a pattern that matches no address: nothing would be exempt.
    [
      'PerSourcePenaltyExemptList',
      ['admin.example.org'],
      expect.stringMatching(/is not an IPv4 or IPv6 address/),
    ],
    ['PerSourcePenaltyExemptList', ['10.0.0.0/8', '10.1.0.0/16'], 'takes one value, got 2'],
    ['PerSourceNetBlockSize', ['24'], undefined],
    ['PerSourceNetBlockSize', ['24:56'], undefined],
    ['PerSourceNetBlockSize', ['33'], '"33": IPv4 bits (33) is above 32'],
    ['PerSourceNetBlockSize', ['24:129'], '"24:129": IPv6 bits (129) is above 128'],
    ['PerSourceNetBlockSize', ['/24'], expect.stringMatching(/^"\/24" is not ipv4bits or ipv4bits:ipv6bits/)],
    ['PerSourceMaxStartups', ['10'], undefined],
    ['PerSourceMaxStartups', ['none'], undefined],
    ['PerSourceMaxStartups', ['ten'], '"ten" is not a whole number'],
  ])('valueProblem(%s %j) is %j', (keyword, args, expected) => {
    expect(valueProblem(keywordInfo(keyword)!, args)).toEqual(expected);
  });

  it('compares penalties by seconds and net blocks with the IPv6 default', () => {
    expect(valuesEqual('PerSourcePenalties', ['authfail:1m'], ['authfail:60'])).toBe(true);
    expect(valuesEqual('PerSourcePenalties', ['authfail:1m'], ['authfail:30'])).toBe(false);
    expect(valuesEqual('PerSourceNetBlockSize', ['24'], ['24:128'])).toBe(true);
    expect(valuesEqual('PerSourceNetBlockSize', ['24'], ['24:64'])).toBe(false);
  });
});

describe('sshd -T shows the per-source settings', () => {
  // OpenSSH 10.0p2's sshd -T with `PerSourcePenaltyExemptList 10.20.0.0/16` and `PerSourcePenalties authfail:30`.
  const OPENSSH_10_0 = parseSshdT(
    [
      'persourcepenaltyexemptlist 10.20.0.0/16',
      'persourcemaxstartups none',
      'persourcenetblocksize 32:128',
      'persourcepenalties crash:90 authfail:30 noauth:1 grace-exceeded:10 refuseconnection:10 max:600 min:15 max-sources4:65536 max-sources6:65536 overflow:permissive overflow6:permissive',
    ].join('\n'),
  );
  // OpenSSH 10.3 prints times with fractions.
  const OPENSSH_10_3 = parseSshdT(
    'persourcepenalties crash:90.000000 authfail:30.000000 noauth:1.000000 invaliduser:5.000000 max:600.000000 min:15.000000 max-sources4:65536 max-sources6:65536 overflow:permissive overflow6:permissive\n',
  );
  const OFF = parseSshdT('persourcepenalties no\n');

  it.each<[string, string, ReadonlyMap<string, readonly string[]>, boolean]>([
    ['PerSourcePenaltyExemptList', '10.20.0.0/16', OPENSSH_10_0, true],
    ['PerSourcePenaltyExemptList', '10.30.0.0/16', OPENSSH_10_0, false],
    ['PerSourcePenalties', 'authfail:30s', OPENSSH_10_0, true],
    ['PerSourcePenalties', 'authfail:30 max:10m', OPENSSH_10_0, true],
    ['PerSourcePenalties', 'authfail:5', OPENSSH_10_0, false],
    ['PerSourcePenalties', 'authfail:30 min:15', OPENSSH_10_3, true],
    ['PerSourcePenalties', 'yes', OPENSSH_10_0, true],
    ['PerSourcePenalties', 'yes', OFF, false],
    ['PerSourcePenalties', 'no', OFF, true],
    ['PerSourcePenalties', 'no', OPENSSH_10_0, false],
    ['PerSourceMaxStartups', 'none', OPENSSH_10_0, true],
    ['PerSourceNetBlockSize', '32', OPENSSH_10_0, true],
  ])('%s %s: %#', (keyword, value, sshdT, expected) => {
    expect(effectiveMatches(keyword, value, sshdT)).toBe(expected);
  });
});

describe('withIpv4MappedEntries (PerSourcePenaltyExemptList on a listener bound to [::])', () => {
  it('adds the IPv4-mapped form after each IPv4 address, network and pattern', () => {
    expect(withIpv4MappedEntries('10.0.0.0/24,192.0.2.7,10.1.*')).toBe(
      '10.0.0.0/24,::ffff:10.0.0.0/120,192.0.2.7,::ffff:192.0.2.7/128,10.1.*,::ffff:10.1.*',
    );
  });

  it('keeps negation, leaves IPv6 entries and none alone, and adds nothing already there', () => {
    expect(withIpv4MappedEntries('!10.0.0.5,2001:db8::/32')).toBe(
      '!10.0.0.5,!::ffff:10.0.0.5/128,2001:db8::/32',
    );
    expect(withIpv4MappedEntries('none')).toBe('none');
    expect(withIpv4MappedEntries('10.0.0.5,::ffff:10.0.0.5/128')).toBe('10.0.0.5,::ffff:10.0.0.5/128');
  });

  it('writes only entries sshd accepts', () => {
    const info = keywordInfo('PerSourcePenaltyExemptList')!;
    expect(valueProblem(info, [withIpv4MappedEntries('10.0.0.0/24,192.0.2.7,10.1.*')])).toBeUndefined();
  });

  it('is what the sshd_config resource writes, whatever the keyword spelling', () => {
    expect(settingsAsWritten({ persourcepenaltyexemptlist: '10.0.0.0/8', MaxStartups: '10:30:100' })).toEqual(
      {
        persourcepenaltyexemptlist: '10.0.0.0/8,::ffff:10.0.0.0/104',
        MaxStartups: '10:30:100',
      },
    );
  });
});
