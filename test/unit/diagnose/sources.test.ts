/** Which of our other addresses a failed connect is repeated from. */
import type os from 'node:os';
import { alternateSources, MAX_ALTERNATE_SOURCES } from '../../../src/diagnose/sources.js';

const v4 = (address: string, cidr: string, internal = false): os.NetworkInterfaceInfo => ({
  address,
  netmask: '255.255.0.0',
  family: 'IPv4',
  mac: '02:00:00:00:00:01',
  internal,
  cidr,
});
const v6 = (address: string, cidr: string, scopeid = 0): os.NetworkInterfaceInfo => ({
  address,
  netmask: 'ffff:ffff:ffff:ffff::',
  family: 'IPv6',
  mac: '02:00:00:00:00:01',
  internal: false,
  cidr,
  scopeid,
});

// A controller as in the lab: two addresses on one bridge (a /16), one on another network, loopback.
const INTERFACES: NodeJS.Dict<os.NetworkInterfaceInfo[]> = {
  lo: [v4('127.0.0.1', '127.0.0.1/8', true)],
  eth0: [v4('192.0.2.2', '192.0.2.2/24'), v6('fd00::2', 'fd00::2/64'), v6('fe80::1', 'fe80::1/64', 4)],
  'diag-br': [v4('10.201.0.1', '10.201.0.1/16'), v4('10.201.0.2', '10.201.0.2/16')],
};

describe('alternateSources', () => {
  it('picks our other addresses in the target’s subnet, not the primary one', () => {
    expect(alternateSources('10.201.1.7', '10.201.0.1', INTERFACES)).toEqual(['10.201.0.2']);
    expect(alternateSources('10.201.1.7', null, INTERFACES)).toEqual(['10.201.0.1', '10.201.0.2']);
  });

  it('respects the netmask: an address just outside the subnet is not matched', () => {
    expect(alternateSources('10.202.0.9', null, INTERFACES)).toEqual([]);
    expect(alternateSources('192.0.3.1', null, INTERFACES)).toEqual([]);
    expect(alternateSources('192.0.2.200', '192.0.2.2', INTERFACES)).toEqual([]);
  });

  it('keeps to the target’s family and skips loopback and link-local addresses', () => {
    expect(alternateSources('fd00::9', null, INTERFACES)).toEqual(['fd00::2']);
    expect(alternateSources('fe80::9', null, INTERFACES)).toEqual([]);
    expect(alternateSources('127.0.0.1', null, INTERFACES)).toEqual([]);
  });

  it('tries explicit addresses first and unfiltered, then fills up to the bound', () => {
    expect(alternateSources('10.201.1.7', '10.201.0.1', INTERFACES, ['192.0.2.2'])).toEqual([
      '192.0.2.2',
      '10.201.0.2',
    ]);
    const many: NodeJS.Dict<os.NetworkInterfaceInfo[]> = {
      br: Array.from({ length: 10 }, (_, i) => v4(`10.201.0.${i + 10}`, `10.201.0.${i + 10}/16`)),
    };
    expect(alternateSources('10.201.1.7', null, many)).toHaveLength(MAX_ALTERNATE_SOURCES);
    expect(alternateSources('10.201.1.7', null, many, ['192.0.2.2', '192.0.2.2'])).toEqual([
      '192.0.2.2',
      '10.201.0.10',
      '10.201.0.11',
    ]);
  });

  it('is only the explicit ones for a target that is not an address', () => {
    expect(alternateSources('not-an-address', null, INTERFACES, ['10.201.0.2'])).toEqual(['10.201.0.2']);
  });
});
