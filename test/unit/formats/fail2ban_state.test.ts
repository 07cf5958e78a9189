import fc from 'fast-check';
import {
  ignoreEntryKey,
  isHostName,
  networkContains,
  parseAddress,
  parseClientBans,
  parseDuration,
  parseFirewallBans,
  parseNetwork,
  renderBans,
} from '../../../src/formats/fail2ban_state.js';

describe('addresses and networks', () => {
  test('strict parsing: addresses, prefixes, IPv4 masks; nothing else', () => {
    expect(parseNetwork('10.20.0.0/16')).toMatchObject({ family: 4, prefix: 16, text: '10.20.0.0' });
    expect(parseNetwork('127.0.0.1/255.0.0.0')).toMatchObject({ prefix: 8 });
    expect(parseNetwork('2001:DB8:0:0::1/64')).toMatchObject({ family: 6, prefix: 64, text: '2001:db8::1' });
    expect(parseNetwork('::ffff:10.0.0.1')?.text).toBe('::ffff:a00:1');
    for (const bad of [
      '10.0.0.256',
      '10.0.0.0/33',
      '10.0.0.0/255.0.255.0',
      '::1/129',
      '1.2.3.4/8/8',
      '',
      'fe80::1%eth0',
      '10.0.0.1; rm',
    ])
      expect(parseNetwork(bad)).toBeUndefined();
    expect(parseAddress('10.0.0.0/8')).toBeUndefined();
  });

  test('RFC 5952 canonical IPv6 text', () => {
    expect(parseAddress('2001:0db8:0000:0000:0001:0000:0000:0001')?.text).toBe('2001:db8::1:0:0:1');
    expect(parseAddress('0:0:0:0:0:0:0:0')?.text).toBe('::');
    expect(parseAddress('1:0:2:3:4:5:6:7')?.text).toBe('1:0:2:3:4:5:6:7');
  });

  test('property: canonical text parses back to the same value', () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), (text) => {
        const a = parseAddress(text)!;
        return a !== undefined && parseAddress(a.text)!.value === a.value;
      }),
    );
  });

  test('containment', () => {
    const net = parseNetwork('10.20.0.0/16')!;
    expect(networkContains(net, parseAddress('10.20.255.1')!)).toBe(true);
    expect(networkContains(net, parseAddress('10.21.0.1')!)).toBe(false);
    expect(networkContains(parseNetwork('10.20.0.5')!, parseAddress('10.20.0.5')!)).toBe(true);
    expect(networkContains(parseNetwork('::/0')!, parseAddress('10.0.0.1')!)).toBe(false);
  });

  test('host names and comparison keys', () => {
    expect(isHostName('admin.example.org')).toBe(true);
    expect(isHostName('1.2.3')).toBe(false);
    expect(isHostName('-bad.example')).toBe(false);
    expect(isHostName('a b')).toBe(false);
    expect(ignoreEntryKey('2001:DB8::0001')).toBe(ignoreEntryKey('2001:db8::1'));
    expect(ignoreEntryKey('Host.Example.')).toBe('host.example');
    expect(ignoreEntryKey('%(known/ignoreip)s')).toBe('%(known/ignoreip)s');
  });
});

describe('parseDuration (fail2ban MyTime.str2seconds)', () => {
  test.each([
    ['600', 600],
    ['-1', -1],
    ['10m', 600],
    ['1h', 3600],
    ['1d 12h', 129600],
    ['1.5h', 5400],
    ['2 weeks', 1209600],
    ['1mo', 2629800],
  ])('%s is %d seconds', (text, seconds) => expect(parseDuration(text)).toBe(seconds));

  test.each(['', '10x', 'h', '1h;', '-5m', 'ten minutes'])('%j is not a time', (text) =>
    expect(parseDuration(text)).toBeUndefined(),
  );
});

describe('current bans', () => {
  test("iptables chains f2b-<jail> (what fail2ban's iptables actions write)", () => {
    const dump = [
      ':f2b-sshd - [0:0]',
      ':f2b-recidive - [0:0]',
      '-A f2b-sshd -s 10.200.0.2/32 -j REJECT --reject-with icmp-port-unreachable',
      '-A f2b-sshd -s 10.200.0.3/32 -j DROP',
      '-A f2b-sshd -j RETURN',
      '-A f2b-recidive -s 2001:db8::5/128 -j REJECT --reject-with icmp6-port-unreachable',
    ].join('\n');
    const { bans, jailsSeen } = parseFirewallBans(dump);
    expect([...jailsSeen].sort()).toEqual(['recidive', 'sshd']);
    expect(renderBans(bans)).toBe('recidive 2001:db8::5\nsshd 10.200.0.2\nsshd 10.200.0.3\n');
  });

  test('ipsets f2b-<jail> and nftables sets addr-set-<jail>', () => {
    const dump = [
      'create f2b-sshd hash:ip family inet hashsize 1024 maxelem 65536 timeout 600',
      'add f2b-sshd 10.0.0.9 timeout 533',
      'table inet f2b-table {',
      '\tset addr-set-sshd {',
      '\t\ttype ipv4_addr',
      '\t\telements = { 10.0.0.1, 10.0.0.2,',
      '\t\t\t     10.0.0.3 }',
      '\t}',
      '\tset addr6-set-sshd {',
      '\t\ttype ipv6_addr',
      '\t}',
      '\tchain f2b-chain {',
      '\t}',
      '}',
    ].join('\n');
    const { bans, jailsSeen } = parseFirewallBans(dump);
    expect([...jailsSeen]).toEqual(['sshd']);
    expect([...bans.get('sshd')!].sort()).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.9']);
  });

  test('fail2ban-client banned and the per-jail fallback output', () => {
    expect(renderBans(parseClientBans("[{'sshd': ['10.200.0.2', '10.0.0.1']}, {'recidive': []}]\n"))).toBe(
      'sshd 10.0.0.1\nsshd 10.200.0.2\n',
    );
    const fallback = parseClientBans('jail sshd\n10.0.0.1 10.0.0.2\njail recidive\n\n');
    expect([...fallback.keys()]).toEqual(['sshd', 'recidive']);
    expect(renderBans(fallback)).toBe('sshd 10.0.0.1\nsshd 10.0.0.2\n');
  });
});
