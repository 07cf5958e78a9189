import { sshdUnitRecordLines } from '../../../src/executor/sshd_unit.js';
import {
  parseSshdActivation,
  socketListenRefusal,
  SSHD_ACTIVATION_PROBE,
} from '../../../src/resources/sshd_guard.js';
import { runWithSystemctl, type StandinUnit } from '../../support/systemctl_standin.js';

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

describe('which socket starts sshd, against a stand-in systemctl that logs each start', () => {
  const activation = (units: Record<string, StandinUnit>) => {
    const run = runWithSystemctl(SSHD_ACTIVATION_PROBE.replace('[ -d /run/systemd/system ]', 'true'), units);
    return { answer: run.stdout.trim(), started: run.started };
  };
  const SHOW = 'show -p LoadState,ActiveState ssh.socket sshd.socket';

  test("Debian's ssh.service: one show and one is-enabled, was four; no is-enabled of a socket systemd did not find", () => {
    expect(
      activation({ 'ssh.socket': { LoadState: 'loaded', ActiveState: 'inactive', enabled: 'disabled' } }),
    ).toEqual({
      answer: 'systemd no',
      started: [SHOW, 'is-enabled --quiet ssh.socket'],
    });
  });

  test('an active socket needs no is-enabled', () => {
    expect(
      activation({ 'ssh.socket': { LoadState: 'loaded', ActiveState: 'active', enabled: 'disabled' } }),
    ).toEqual({
      answer: 'systemd ssh.socket',
      started: [SHOW],
    });
  });

  test('enabled as is-enabled has it (enabled-runtime, static, ...), active or not; ssh.socket first', () => {
    expect(activation({ 'ssh.socket': { LoadState: 'loaded', enabled: 'enabled-runtime' } }).answer).toBe(
      'systemd ssh.socket',
    );
    expect(
      activation({
        'ssh.socket': { LoadState: 'loaded', enabled: 'linked' },
        'sshd.socket': { LoadState: 'loaded', enabled: 'static' },
      }).answer,
    ).toBe('systemd sshd.socket');
    expect(
      activation({
        'ssh.socket': { LoadState: 'masked', enabled: 'masked' },
        'sshd.socket': { LoadState: 'loaded', ActiveState: 'reloading' },
      }).answer,
    ).toBe('systemd sshd.socket');
    expect(
      activation({
        'ssh.socket': { LoadState: 'loaded', enabled: 'enabled' },
        'sshd.socket': { LoadState: 'loaded', ActiveState: 'active' },
      }).answer,
    ).toBe('systemd ssh.socket');
  });
});

describe('what the begin script records of how sshd runs', () => {
  const record = (units: Record<string, StandinUnit>) => {
    const script = ['dir=$SCRATCH', ...sshdUnitRecordLines()]
      .join('\n')
      .replace('[ -d /run/systemd/system ]', 'true');
    return runWithSystemctl(script, units);
  };

  test('one systemctl, was up to four: a socket before its service, ssh before sshd', () => {
    const service = record({ 'ssh.service': { LoadState: 'loaded', ActiveState: 'active' } });
    expect(service.scratch).toBe('manifest: sshd ssh.service\nsshd-unit: ssh service\n');
    expect(service.started).toEqual(['show -p ActiveState ssh.socket ssh.service sshd.socket sshd.service']);
    expect(
      record({ 'ssh.service': { ActiveState: 'active' }, 'ssh.socket': { ActiveState: 'active' } }).scratch,
    ).toBe('manifest: sshd ssh.socket\nsshd-unit: ssh socket\n');
    expect(
      record({ 'ssh.service': { ActiveState: 'failed' }, 'sshd.service': { ActiveState: 'reloading' } })
        .scratch,
    ).toBe('manifest: sshd sshd.service\nsshd-unit: sshd service\n');
    expect(record({}).scratch).toBe('');
  });
});
