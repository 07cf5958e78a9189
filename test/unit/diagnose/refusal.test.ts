/** ICMP or TCP reset: reading the kernel's counter, and what a few readings prove. */
import fc from 'fast-check';
import { classifyRefusal, parseInDestUnreachs } from '../../../src/diagnose/refusal.js';

// As Linux 6.x prints them (trimmed to the lines that matter, columns as they are).
const SNMP = [
  'Ip: Forwarding DefaultTTL InReceives InHdrErrors',
  'Ip: 2 64 44091 0',
  'Icmp: InMsgs InErrors InCsumErrors InDestUnreachs InTimeExcds OutMsgs OutDestUnreachs',
  'Icmp: 17 0 0 15 0 4 3',
  'IcmpMsg: InType3 OutType3',
  'IcmpMsg: 99 98',
  'Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens',
  'Tcp: 1 200 120000 -1 77',
  '',
].join('\n');
const SNMP6 = [
  'Ip6InReceives                   \t53',
  'Icmp6InMsgs                     \t4',
  'Icmp6InDestUnreachs             \t2',
  'Icmp6OutDestUnreachs            \t9',
  '',
].join('\n');

describe('parseInDestUnreachs', () => {
  it('reads the Icmp: value under its header, not IcmpMsg: or the Out counter', () => {
    expect(parseInDestUnreachs(SNMP, 4)).toBe(15);
  });

  it('reads Icmp6InDestUnreachs from /proc/net/snmp6', () => {
    expect(parseInDestUnreachs(SNMP6, 6)).toBe(2);
  });

  it('is null when the counter is missing or not a number', () => {
    expect(parseInDestUnreachs('', 4)).toBeNull();
    expect(parseInDestUnreachs(SNMP6, 4)).toBeNull();
    expect(parseInDestUnreachs(SNMP, 6)).toBeNull();
    expect(parseInDestUnreachs('Icmp: InMsgs InDestUnreachs\n', 4)).toBeNull();
    expect(parseInDestUnreachs('Icmp: InMsgs InDestUnreachs\nIcmp: 1 x\n', 4)).toBeNull();
    expect(parseInDestUnreachs('Icmp6InDestUnreachs\n', 6)).toBeNull();
  });
});

describe('classifyRefusal', () => {
  it('ICMP on every attempt; a reset on most; otherwise unknown', () => {
    expect(classifyRefusal([1, 1, 1])).toBe('icmp');
    expect(classifyRefusal([1, 3, 2])).toBe('icmp');
    expect(classifyRefusal([0, 0, 0])).toBe('rst');
    expect(classifyRefusal([0, 4, 0])).toBe('rst');
    expect(classifyRefusal([1, 0, 1])).toBe('unknown');
    expect(classifyRefusal([1, 1, 0])).toBe('unknown');
  });

  it('is unknown without a reading', () => {
    expect(classifyRefusal([])).toBe('unknown');
    expect(classifyRefusal([1, null, 1])).toBe('unknown');
    expect(classifyRefusal([0, 0, null])).toBe('unknown');
  });

  it('other traffic, which can only add to the counter, never turns ICMP into a reset', () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 5 }), { minLength: 1, maxLength: 5 }), (noise) => {
        expect(classifyRefusal(noise.map((n) => 1 + n))).toBe('icmp');
      }),
    );
  });

  it('a reset stays a reset when noise touches only a minority of the attempts', () => {
    fc.assert(
      fc.property(fc.integer({ min: 3, max: 7 }), fc.nat({ max: 9 }), (n, noise) => {
        const deltas = Array.from({ length: n }, (_, i) => (i < Math.floor((n - 1) / 2) ? 1 + noise : 0));
        expect(classifyRefusal(deltas)).toBe('rst');
      }),
    );
  });
});
