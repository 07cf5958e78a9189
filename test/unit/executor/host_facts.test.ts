import { HOST_FACTS_PROBE, hostFactList, parseHostFacts } from '../../../src/executor/host_facts.js';
import { localShell } from '../../support/local_sh.js';

const MARK = '@@sshfix-sshd-version\n';

describe('host facts', () => {
  test('socket activation, a service, or no unit; the release as sshd -V prints it', () => {
    expect(parseHostFacts(`socket ssh\n${MARK}OpenSSH_9.6p1 Ubuntu-3ubuntu13, OpenSSL 3.0.13\n`)).toEqual({
      sshdVersion: '9.6',
      sshdUnit: { mode: 'socket', unit: 'ssh' },
    });
    expect(
      parseHostFacts(
        `service sshd\n${MARK}unknown option -- V\nOpenSSH_7.4p1, OpenSSL 1.0.2k\nusage: sshd\n`,
      ),
    ).toEqual({
      sshdVersion: '7.4',
      sshdUnit: { mode: 'service', unit: 'sshd' },
    });
    expect(parseHostFacts(`none\n${MARK}`)).toEqual({ sshdUnit: { mode: 'none' } });
  });

  test('as plan facts', () => {
    expect(hostFactList({ sshdVersion: '10.0', sshdUnit: { mode: 'service', unit: 'ssh' } })).toEqual([
      { key: 'host:sshd-unit', value: 'service ssh', description: 'how sshd runs (systemd unit)' },
      { key: 'host:sshd-version', value: '10.0', description: 'sshd version' },
    ]);
    expect(hostFactList({ sshdUnit: { mode: 'none' } }).map((f) => f.value)).toEqual(['none', 'none']);
  });

  test('the probe runs in sh and its answer parses', async () => {
    const result = await localShell().runScript(HOST_FACTS_PROBE);
    expect(result.exitCode).toBe(0);
    expect(['none', 'service', 'socket']).toContain(parseHostFacts(result.stdout).sshdUnit.mode);
  });
});
