import { parseSshdActivation, socketListenRefusal } from '../../../src/resources/sshd_guard.js';

describe('where sshd listens under socket activation (Launchpad #2069041, willshersystems/ansible-sshd#307)', () => {
  const socket = { systemd: true, sshSocket: true };

  test('a Port or ListenAddress change under ssh.socket is refused: the socket decides where sshd listens', () => {
    expect(socketListenRefusal(socket, { port: true, listenAddress: false })).toMatch(
      /^sshd on this host is socket-activated \(ssh\.socket\).* Port in sshd_config would change nothing/,
    );
    expect(socketListenRefusal(socket, { port: true, listenAddress: true })).toMatch(
      /Port and ListenAddress in sshd_config would change nothing/,
    );
  });

  test('nothing to refuse without socket activation, or when neither Port nor ListenAddress changes', () => {
    expect(
      socketListenRefusal({ systemd: true, sshSocket: false }, { port: true, listenAddress: true }),
    ).toBe(undefined);
    expect(
      socketListenRefusal({ systemd: false, sshSocket: false }, { port: true, listenAddress: false }),
    ).toBe(undefined);
    expect(socketListenRefusal(socket, { port: false, listenAddress: false })).toBe(undefined);
  });
});

describe('which socket starts sshd', () => {
  test("Fedora's sshd.socket as well as Debian's and Ubuntu's ssh.socket", () => {
    expect(parseSshdActivation('systemd ssh.socket\n')).toEqual({
      systemd: true,
      sshSocket: true,
      socketUnit: 'ssh.socket',
    });
    const fedora = parseSshdActivation('systemd sshd.socket\n');
    expect(fedora).toEqual({ systemd: true, sshSocket: true, socketUnit: 'sshd.socket' });
    expect(socketListenRefusal(fedora, { port: true, listenAddress: false })).toMatch(
      /^sshd on this host is socket-activated \(sshd\.socket\), so sshd\.socket's ListenStream decides .*\/etc\/systemd\/system\/sshd\.socket\.d\/\*\.conf/,
    );
    expect(parseSshdActivation('systemd no\n')).toEqual({ systemd: true, sshSocket: false });
  });
});
