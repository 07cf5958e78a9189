import { debianMirrorOf, systemdRootName } from '../../../src/lab/systemd_root.js';

describe('the Debian mirror for the systemd lab root', () => {
  it('takes the archive of a deb822 list, not debian-security nor a third-party repository', () => {
    const deb822 = [
      'Types: deb',
      'URIs: http://deb.debian.org/debian-security',
      'Suites: bookworm-security',
      'Components: main',
      '',
      'Types: deb',
      '# http://snapshot.debian.org/archive/debian/20250520T000000Z',
      'URIs: http://deb.debian.org/debian',
      'Suites: bookworm bookworm-updates',
      'Components: main',
    ].join('\n');
    const thirdParty = 'Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\n';
    expect(debianMirrorOf([thirdParty, deb822])).toBe('http://deb.debian.org/debian');
  });

  it('reads one-line lists with options, and skips deb-src and comments', () => {
    const list = [
      '# deb http://commented.example/debian bookworm main',
      'deb-src http://src.example/debian bookworm main',
      'deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main',
      'deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian/ bookworm main',
    ].join('\n');
    expect(debianMirrorOf([list])).toBe('http://mirror.example/debian');
  });

  it('finds none where apt has no Debian archive', () => {
    expect(debianMirrorOf(['deb http://archive.ubuntu.com/ubuntu noble main\n'])).toBeUndefined();
  });

  it('names the root after its suite and recipe', () => {
    expect(systemdRootName()).toMatch(/^trixie-[0-9a-f]{12}$/);
  });
});
