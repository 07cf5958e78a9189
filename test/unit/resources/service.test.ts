import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  detectionScript,
  parseDetection,
  serviceCommand,
  serviceEffects,
  serviceResource,
  startScript,
} from '../../../src/resources/service.js';
import type { HostView } from '../../../src/resources/types.js';
import { runWithSystemctl, type StandinUnit } from '../../support/systemctl_standin.js';
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
      new RegExp(`^${init} ${hasInitScript || isSystemd ? 'ssh' : '-'} \\S+ (-|[0-9]+) (-|enabled)$`),
    );
    const missing = await run(`no-such-service-${path.basename(os.tmpdir())}`);
    expect(missing.stdout.trim()).toBe(`${init} - - - -`);
    expect(parseDetection(missing.stdout)).toEqual({
      init,
      unit: undefined,
      socketActivated: false,
      socketEnabled: false,
    });
  });
});

describe('detection under systemd, against a stand-in systemctl that logs each start', () => {
  /** The units the stand-in knows; every other one systemd does not find. */
  const detectWith = (units: Record<string, StandinUnit>, name = 'sshd') => {
    const script = detectionScript(name).replace('[ -d /run/systemd/system ]', 'true');
    const { stdout, started } = runWithSystemctl(script, units);
    return { line: stdout.trim(), detected: parseDetection(stdout), started };
  };
  const FOUR = 'ssh.service ssh.socket sshd.service sshd.socket';
  // sshd's units are shared with the round trip's other probes (SHARED_UNITS): one show for all.
  const SHOW = `show -p LoadState,ActiveState,CanReload,Accept,FragmentPath,DropInPaths ${FOUR} firewalld.service`;
  const DEBIAN_SOCKET: StandinUnit = { LoadState: 'loaded', ActiveState: 'inactive', enabled: 'disabled' };

  test("ssh.service active and reloadable (Debian): two systemctl starts, was three (each ~4 ms of the host's CPU)", () => {
    const { detected, line, started } = detectWith({
      'ssh.service': { LoadState: 'loaded', ActiveState: 'active', CanReload: 'yes', enabled: 'enabled' },
      'ssh.socket': DEBIAN_SOCKET,
    });
    expect(line).toBe('systemd ssh reload - -');
    expect(detected).toMatchObject({
      init: 'systemd',
      unit: 'ssh',
      unitState: 'active',
      socketActivated: false,
    });
    expect(started).toEqual([SHOW, 'is-enabled --quiet ssh.socket']);
  });

  test('ssh.socket active, Accept=no: socket activation', () => {
    const { detected, started } = detectWith({
      'ssh.service': { LoadState: 'loaded', ActiveState: 'inactive' },
      'ssh.socket': { LoadState: 'loaded', ActiveState: 'active', Accept: 'no', enabled: 'enabled' },
    });
    expect(detected).toMatchObject({
      unit: 'ssh',
      unitState: 'socket',
      socketActivated: true,
      socketEnabled: true,
    });
    expect(started).toEqual([SHOW, 'is-enabled --quiet ssh.socket']);
  });

  test('Accept=yes; a socket enabled at runtime, or static, counts as enabled as is-enabled has it', () => {
    for (const enabled of ['enabled-runtime', 'static', 'indirect', 'alias', 'generated'])
      expect(
        detectWith({ 'ssh.socket': { LoadState: 'loaded', ActiveState: 'active', Accept: 'yes', enabled } })
          .line,
      ).toBe('systemd ssh accept - enabled');
    for (const enabled of ['disabled', 'masked', 'linked', 'transient'])
      expect(
        detectWith({ 'ssh.socket': { LoadState: 'loaded', ActiveState: 'active', Accept: 'no', enabled } })
          .line,
      ).toBe('systemd ssh socket - -');
  });

  test('a reloading service is not taken for an active one (is-active printed "reloading")', () => {
    const { line } = detectWith({
      'ssh.service': { LoadState: 'loaded', ActiveState: 'reloading', CanReload: 'yes' },
      'sshd.service': { LoadState: 'loaded', ActiveState: 'active', CanReload: 'yes' },
    });
    expect(line).toBe('systemd sshd reload - -');
  });

  test('sshd.service (Red Hat) active, ssh not installed; no sshd.socket: no is-enabled', () => {
    const { detected, started } = detectWith({
      'sshd.service': { LoadState: 'loaded', ActiveState: 'active', CanReload: 'no' },
    });
    expect(detected).toMatchObject({ unit: 'sshd', unitState: 'no-reload', socketEnabled: false });
    expect(started).toEqual([SHOW]);
  });

  test('installed but inactive; a masked ssh.service is not installed, and sshd.service is', () => {
    expect(detectWith({ 'ssh.service': { LoadState: 'loaded' }, 'ssh.socket': DEBIAN_SOCKET }).line).toBe(
      'systemd ssh inactive - -',
    );
    expect(
      detectWith({ 'ssh.service': { LoadState: 'masked' }, 'sshd.service': { LoadState: 'loaded' } }).line,
    ).toBe('systemd sshd inactive - -');
    expect(detectWith({}).line).toBe('systemd - - - -');
  });

  test('another service: its own two units, quoted', () => {
    const { line, started } = detectWith(
      { 'fail2ban.service': { LoadState: 'loaded', ActiveState: 'active', CanReload: 'yes' } },
      'fail2ban',
    );
    expect(line).toBe('systemd fail2ban reload - -');
    expect(started).toEqual([
      'show -p LoadState,ActiveState,CanReload,Accept fail2ban.service fail2ban.socket',
    ]);
  });
});

describe('what the detection says', () => {
  test('a socket-activated unit under systemd; never under another init system', () => {
    expect(parseDetection('systemd ssh socket - enabled\n')).toEqual({
      init: 'systemd',
      unit: 'ssh',
      socketActivated: true,
      socketEnabled: true,
      unitState: 'socket',
    });
    expect(parseDetection('systemd sshd reload 412 -\n')).toEqual({
      init: 'systemd',
      unit: 'sshd',
      socketActivated: false,
      socketEnabled: false,
      unitState: 'active',
      sshdPid: 412,
    });
    // ssh.socket set up, but down: stopped, or failed with service-start-limit-hit.
    expect(parseDetection('systemd ssh inactive - enabled\n')).toMatchObject({
      socketActivated: false,
      socketEnabled: true,
    });
    expect(parseDetection('sysvinit ssh socket - enabled\n')).toMatchObject({
      socketActivated: false,
      socketEnabled: false,
    });
    expect(parseDetection('sysvinit ssh - - -\n').unitState).toBe(undefined);
  });

  test('Accept=yes, no ExecReload=, an inactive unit, and sshd outside any unit', () => {
    expect(parseDetection('systemd ssh accept - enabled\n')).toMatchObject({
      socketActivated: true,
      unitState: 'per-connection',
    });
    expect(parseDetection('systemd ssh hup 73 -\n')).toMatchObject({ unitState: 'no-reload', sshdPid: 73 });
    expect(parseDetection('systemd ssh inactive 950 -\n')).toMatchObject({
      unitState: 'inactive',
      sshdPid: 950,
    });
    expect(parseDetection('systemd - - 950 -\n')).toEqual({
      init: 'systemd',
      unit: undefined,
      socketActivated: false,
      socketEnabled: false,
      sshdPid: 950,
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

describe('reloading sshd under systemd, per how the host runs it', () => {
  /** A host whose detection probe answers `answer`, as a host in that state prints it. */
  const hostAnswering = (answer: string): HostView => ({
    hostName: 'h1',
    readFiles: () => Promise.reject(new Error('not read')),
    glob: () => Promise.reject(new Error('not read')),
    globFiles: () => Promise.reject(new Error('not read')),
    sshdRelease: () => Promise.reject(new Error('not read')),
    probe: () => Promise.resolve({ stdout: `${answer}\n`, stderr: '', exitCode: 0 }),
  });
  const plan = (answer: string, state: 'reloaded' | 'restarted' = 'reloaded') =>
    serviceResource.plan({ name: 'sshd', state }, hostAnswering(answer), { vars: {}, playbookDir: '/' });

  test.each([
    ['systemd ssh reload 73 -', 'change', /^reload ssh \(systemd\)$/, ["systemctl reload 'ssh'.service"]],
    ['systemd sshd reload 73 -', 'change', /^reload sshd \(systemd\)$/, ["systemctl reload 'sshd'.service"]],
    [
      'systemd ssh socket - -',
      'change',
      /^restart ssh .*started by ssh\.socket/,
      ["systemctl restart 'ssh'.service"],
    ],
    [
      'systemd ssh accept - -',
      'none',
      /^nothing to reload: ssh\.socket starts sshd per connection \(Accept=yes\)/,
      [],
    ],
    [
      'systemd ssh hup 73 -',
      'change',
      /^send SIGHUP to sshd \(ssh\.service runs it but cannot be reloaded: no ExecReload=, or masked\)$/,
      ['kill -HUP "$(systemctl show -p MainPID --value \'ssh\'.service)"'],
    ],
    [
      'systemd ssh inactive 950 -',
      'change',
      /^send SIGHUP to sshd \(pid 950 in \/run\/sshd\.pid\), which runs outside systemd: ssh\.service is not active$/,
      ['kill -HUP "$(cat /run/sshd.pid)"'],
    ],
    [
      'systemd - - 950 -',
      'change',
      /runs outside systemd: no ssh or sshd unit is installed$/,
      ['kill -HUP "$(cat /run/sshd.pid)"'],
    ],
    [
      'systemd ssh inactive - -',
      'change',
      /^start ssh \(systemd; ssh\.service is not running\)$/,
      ["systemctl reset-failed 'ssh'.service 2>/dev/null; systemctl start 'ssh'.service"],
    ],
    [
      'systemd ssh inactive - enabled',
      'change',
      /^start ssh \(systemd; ssh\.service is not running\)$/,
      ["systemctl reset-failed 'ssh'.service 'ssh'.socket 2>/dev/null; systemctl start 'ssh'.socket"],
    ],
    ['systemd - - - -', 'skip', /^no systemd service named sshd on this host$/, []],
    ['sysvinit ssh - 950 -', 'change', /^reload ssh \(sysvinit\)$/, ["service 'ssh' reload"]],
  ] as const)('%s', async (answer, action, message, scripts) => {
    const planned = await plan(answer);
    expect(planned.action).toBe(action);
    expect(planned.messages).toEqual([expect.stringMatching(message)]);
    expect(planned.commands.map((c) => c.script)).toEqual(scripts);
  });

  test('restarted is a restart however the unit runs', async () => {
    const planned = await plan('systemd ssh hup 73 -', 'restarted');
    expect(planned.commands.map((c) => c.script)).toEqual(["systemctl restart 'ssh'.service"]);
  });
});

describe('starting a service declares what the start touches', () => {
  /** A host that detects `answer` and says the unit is not running. */
  const stoppedHost = (answer: string): HostView => ({
    hostName: 'h1',
    readFiles: () => Promise.reject(new Error('not read')),
    glob: () => Promise.reject(new Error('not read')),
    globFiles: () => Promise.reject(new Error('not read')),
    sshdRelease: () => Promise.reject(new Error('not read')),
    probe: (script) =>
      Promise.resolve(
        script.startsWith('systemctl is-active')
          ? { stdout: '', stderr: '', exitCode: 3 }
          : { stdout: `${answer}\n`, stderr: '', exitCode: 0 },
      ),
  });

  test.each([
    ['ufw', 'systemd ufw - - -', { firewall: true }],
    ['sshd', 'systemd ssh inactive - enabled', { sshd: true }],
    ['nginx', 'systemd nginx - - -', {}],
  ] as const)('%s', async (name, answer, effects) => {
    const planned = await serviceResource.plan({ name, state: 'started' }, stoppedHost(answer), {
      vars: {},
      playbookDir: '/',
    });
    expect(planned.action).toBe('change');
    expect(planned.effects).toEqual(effects);
  });
});
