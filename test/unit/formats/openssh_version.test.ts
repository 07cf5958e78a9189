import {
  formatVersion,
  openssh,
  parseOpenSshVersion,
  versionAtLeast,
} from '../../../src/formats/openssh_version.js';

describe('the OpenSSH release from sshd -V', () => {
  it.each<[string, string, string | undefined]>([
    ["Debian 12's sshd -V", 'OpenSSH_9.2, OpenSSL 3.0.19 27 Jan 2026\n', '9.2'],
    ["Debian 13's sshd -V", 'OpenSSH_10.0p2 Debian-7+deb13u4, OpenSSL 3.5.9 29 Sep 2026\n', '10.0'],
    ['a portable release without a vendor suffix', 'OpenSSH_9.8p1, OpenSSL 3.3.1 4 Jun 2024\n', '9.8'],
    [
      'a release whose sshd has no -V: the version line sits above the usage text',
      'sshd: illegal option -- V\nOpenSSH_7.4p1, OpenSSL 1.0.2k-fips  26 Jan 2017\nusage: sshd [-46DdeiqTt] [-C connection_spec]\n',
      '7.4',
    ],
    ['not OpenSSH', 'dropbear v2022.83\n', undefined],
    ['nothing at all', '', undefined],
    ['a name that only ends in OpenSSH_', 'NotOpenSSH_9.9\n', undefined],
  ])('%s', (_what, output, expected) => {
    const version = parseOpenSshVersion(output);
    expect(version === undefined ? undefined : formatVersion(version)).toBe(expected);
  });

  it('compares releases by number, not by text', () => {
    expect(versionAtLeast(openssh('10.0'), openssh('9.8'))).toBe(true);
    expect(versionAtLeast(openssh('9.8'), openssh('9.8'))).toBe(true);
    expect(versionAtLeast(openssh('9.2'), openssh('9.8'))).toBe(false);
    expect(versionAtLeast(openssh('9.10'), openssh('9.8'))).toBe(true);
    expect(versionAtLeast(openssh('8.9'), openssh('9.2'))).toBe(false);
  });
});
