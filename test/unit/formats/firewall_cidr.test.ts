import fc from 'fast-check';
import {
  cidrContains,
  cidrOverlaps,
  formatCidr,
  formatCidrShort,
  parseCidr,
  parseHostCidr,
  type Cidr,
} from '../../../src/formats/firewall_cidr.js';

const cidr = (text: string): Cidr => {
  const parsed = parseCidr(text);
  if (!parsed.cidr) throw new Error(parsed.error);
  return parsed.cidr;
};

describe('parseCidr', () => {
  test.each([
    ['10.20.0.0/16', '10.20.0.0/16'],
    ['10.0.0.5', '10.0.0.5/32'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['2001:db8::/32', '2001:db8::/32'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1/128'],
    ['::ffff:10.0.0.1', '::ffff:a00:1/128'],
    ['::', '::/128'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3/128'],
  ])('%s → %s', (input, expected) => {
    expect(formatCidr(cidr(input))).toBe(expected);
  });

  test.each([
    ['10.20.0.5/16', /host bits set \(did you mean 10\.20\.0\.0\/16\?\)/],
    ['010.0.0.1', /not an IPv4 or IPv6/],
    ['10.0.0.256', /not an IPv4 or IPv6/],
    ['10.0.0.0/33', /prefix length must be 0 to 32/],
    ['2001:db8::/129', /prefix length must be 0 to 128/],
    ['1::2::3', /not an IPv4 or IPv6/],
    ['example.com', /not an IPv4 or IPv6/],
    ['10.0.0.1; rm -rf /', /not an IPv4 or IPv6/],
    ['10.0.0.0/8\n', /prefix length/],
  ])('rejects %j', (input, message) => {
    expect(parseCidr(input).error).toMatch(message);
  });

  test('host data may carry host bits (normalised to the network)', () => {
    expect(formatCidr(parseHostCidr('10.20.0.5/16')!)).toBe('10.20.0.0/16');
  });

  test('short form drops the full-length prefix only', () => {
    expect(formatCidrShort(cidr('10.0.0.5'))).toBe('10.0.0.5');
    expect(formatCidrShort(cidr('2001:db8::/32'))).toBe('2001:db8::/32');
  });
});

describe('containment', () => {
  test('examples', () => {
    expect(cidrContains(cidr('10.0.0.0/8'), cidr('10.20.0.0/16'))).toBe(true);
    expect(cidrContains(cidr('10.20.0.0/16'), cidr('10.0.0.0/8'))).toBe(false);
    expect(cidrOverlaps(cidr('10.20.0.0/16'), cidr('10.0.0.0/8'))).toBe(true);
    expect(cidrOverlaps(cidr('10.20.0.0/16'), cidr('10.21.0.0/16'))).toBe(false);
    expect(cidrOverlaps(cidr('0.0.0.0/0'), cidr('::/0'))).toBe(false);
  });

  const v4 = fc
    .tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 32 }))
    .map(([n, p]) => {
      const address = [24, 16, 8, 0].map((s) => (n >>> s) & 0xff).join('.');
      return parseHostCidr(`${address}/${p}`)!;
    });
  const v6 = fc
    .tuple(
      fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }),
      fc.integer({ min: 0, max: 128 }),
    )
    .map(([groups, p]) => parseHostCidr(`${groups.map((g) => g.toString(16)).join(':')}/${p}`)!);

  test('formatting round-trips (property)', () => {
    fc.assert(
      fc.property(fc.oneof(v4, v6), (c) => {
        const again = cidr(formatCidr(c));
        expect(again).toEqual(c);
        expect(cidr(formatCidrShort(c))).toEqual(c);
      }),
    );
  });

  test('a network contains its sub-networks and overlap is symmetric (property)', () => {
    fc.assert(
      fc.property(v4, fc.integer({ min: 0, max: 32 }), v4, (c, extra, other) => {
        const longer = Math.min(32, c.prefix + (extra % 8));
        const sub = parseHostCidr(`${formatCidr(c).split('/')[0]}/${longer}`)!;
        expect(cidrContains(c, sub)).toBe(true);
        expect(cidrOverlaps(c, other)).toBe(cidrOverlaps(other, c));
      }),
    );
  });
});
