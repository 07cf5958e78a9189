import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  detectionScript,
  parseDetection,
  serviceCommand,
  serviceEffects,
  startScript,
} from '../../../src/resources/service.js';
import { localShell } from '../../support/local_sh.js';

describe('service commands per init system', () => {
  test.each([
    ['systemd', 'ssh', 'reloaded', "systemctl reload 'ssh'.service"],
    ['systemd', 'sshd', 'restarted', "systemctl restart 'sshd'.service"],
    ['sysvinit', 'ssh', 'reloaded', "service 'ssh' reload"],
    ['openrc', 'sshd', 'reloaded', "rc-service 'sshd' reload"],
    ['openrc', 'sshd', 'started', "rc-service 'sshd' start"],
  ] as const)('%s %s %s', (init, unit, state, expected) => {
    expect(serviceCommand(init, unit, state)).toBe(expected);
  });
});

describe('init system and unit detection (real sh)', () => {
  test('finds the Debian ssh init script under the name sshd, and reports a missing service', async () => {
    const run = (name: string) => localShell().runScript(detectionScript(name));
    const hasInitScript = fs.existsSync('/etc/init.d/ssh');
    const isSystemd = fs.existsSync('/run/systemd/system');
    const found = await run('sshd');
    const init = isSystemd ? 'systemd' : 'sysvinit';
    expect(found.stdout.trim()).toMatch(
      new RegExp(`^${init} ${hasInitScript || isSystemd ? 'ssh' : '-'} (-|socket) (-|enabled)$`),
    );
    const missing = await run(`no-such-service-${path.basename(os.tmpdir())}`);
    expect(missing.stdout.trim()).toBe(`${init} - - -`);
    expect(parseDetection(missing.stdout)).toEqual({
      init,
      unit: undefined,
      socketActivated: false,
      socketEnabled: false,
    });
  });
});

describe('what the detection says', () => {
  test('a socket-activated unit under systemd; never under another init system', () => {
    expect(parseDetection('systemd ssh socket enabled\n')).toEqual({
      init: 'systemd',
      unit: 'ssh',
      socketActivated: true,
      socketEnabled: true,
    });
    expect(parseDetection('systemd sshd - -\n')).toEqual({
      init: 'systemd',
      unit: 'sshd',
      socketActivated: false,
      socketEnabled: false,
    });
    // ssh.socket set up, but down: stopped, or failed with service-start-limit-hit.
    expect(parseDetection('systemd ssh - enabled\n')).toMatchObject({
      socketActivated: false,
      socketEnabled: true,
    });
    expect(parseDetection('sysvinit ssh socket enabled\n')).toMatchObject({
      socketActivated: false,
      socketEnabled: false,
    });
  });
});

describe('starting a service that does not run', () => {
  test('sshd set up for ssh.socket comes back through the socket, its start limit cleared first', () => {
    const detected = { init: 'systemd', unit: 'ssh', socketActivated: false, socketEnabled: true } as const;
    expect(startScript(detected, 'sshd')).toBe(
      "systemctl reset-failed 'ssh'.service 'ssh'.socket 2>/dev/null; systemctl start 'ssh'.socket",
    );
  });

  test('sshd without an enabled socket, and any other service, start their .service', () => {
    const detected = { init: 'systemd', unit: 'ssh', socketActivated: false, socketEnabled: false } as const;
    expect(startScript(detected, 'sshd')).toBe(
      "systemctl reset-failed 'ssh'.service 2>/dev/null; systemctl start 'ssh'.service",
    );
    expect(startScript({ ...detected, unit: 'fail2ban', socketEnabled: true }, 'fail2ban')).toBe(
      "systemctl reset-failed 'fail2ban'.service 2>/dev/null; systemctl start 'fail2ban'.service",
    );
  });

  test('other init systems: their own start command', () => {
    const detected = { init: 'sysvinit', unit: 'ssh', socketActivated: false, socketEnabled: false } as const;
    expect(startScript(detected, 'sshd')).toBe("service 'ssh' start");
  });
});

describe('what a service task declares it touches', () => {
  test("sshd's unit under either name makes the rollback reload sshd", () => {
    expect(serviceEffects('ssh', 'ssh')).toEqual({ sshd: true });
    expect(serviceEffects('sshd', 'ssh')).toEqual({ sshd: true });
    expect(serviceEffects('ssh-agent', 'ssh-agent')).toEqual({});
  });

  test('a firewall service makes the rollback restore the firewall', () => {
    expect(serviceEffects('ufw', 'ufw')).toEqual({ firewall: true });
    expect(serviceEffects('netfilter-persistent', 'netfilter-persistent')).toEqual({ firewall: true });
    expect(serviceEffects('nginx', 'nginx')).toEqual({});
  });
});
