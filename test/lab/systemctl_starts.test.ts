/**
 * How many `systemctl` processes a run starts on a systemd host. Each one is
 * a process on the host and a D-Bus call that systemd (PID 1) answers: a
 * no-op and a first run ask what they need about sshd's and firewalld's units
 * in one `systemctl show` per round trip or script where they can
 * (src/formats/systemd_units.ts). What is left: a no-op's show and the
 * is-enabled of ssh.socket; a first run's guard (show, is-enabled under
 * ssh.service), the begin script's show, the reload, the firewall read
 * after the change, and the disarm.
 * The test counts them with a wrapper it puts over the host's systemctl (each
 * lab host writes to its own overlay); sshfix itself never does that.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  describeLabKinds,
  LAB_START_TIMEOUT_MS,
  labInventory,
  startLab,
  SYSTEMD_SERVICE,
  SYSTEMD_SOCKET,
  type Lab,
  type LabHost,
} from './lab.js';
import { runCli } from '../support/cli.js';

const PLAYBOOK = path.resolve('playbooks/fix-connection-reset.yml');
const LOG = '/run/sshfix-test-systemctl.log';

/** They were 15 (under ssh.service) and 11 (under ssh.socket) for a first run, 6 for a no-op. */
const MAX_FIRST_RUN = 8;
const MAX_NO_OP = 2;

describeLabKinds('systemctl processes a run starts', [SYSTEMD_SERVICE, SYSTEMD_SOCKET], (kind) => {
  let lab: Lab;
  let host: LabHost;
  let work: string;
  let inventory: string;

  beforeAll(async () => {
    lab = await startLab({
      id: `sct${kind.sshdUnit === 'socket' ? 'k' : 's'}${process.pid % 10_000}`,
      hosts: 1,
      fail2ban: true,
      ...kind,
    });
    host = lab.hosts[0]!;
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-sctl-'));
    inventory = path.join(work, 'inventory.yml');
    fs.writeFileSync(inventory, labInventory(lab));
    // The real systemctl moves aside; what takes its place logs its arguments, then runs it.
    const wrapper = `#!/bin/sh\nprintf '%s\\n' "$*" >> ${LOG}\nexec /usr/bin/systemctl.counted "$@"\n`;
    const placed = await host.exec(
      `mv /usr/bin/systemctl /usr/bin/systemctl.counted && cat > /usr/bin/systemctl && chmod 755 /usr/bin/systemctl`,
      { stdin: wrapper },
    );
    expect(placed.code).toBe(0);
  }, LAB_START_TIMEOUT_MS);

  afterAll(async () => {
    await lab?.destroy();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  /** Runs the shipped playbook and returns the systemctl command lines it started on the host. */
  async function applyCounting(): Promise<{ changed: number; calls: string[] }> {
    await host.exec(`: > ${LOG}`);
    const run = await runCli([
      'apply',
      PLAYBOOK,
      '-i',
      inventory,
      '--known-hosts',
      lab.knownHostsFile,
      '--format',
      'json',
      '-e',
      `admin_network=${lab.workstationAddress}/32`,
    ]);
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
    const hosts = (JSON.parse(run.stdout) as { hosts: Record<string, { changed: number }> }).hosts;
    const calls = (await host.readFile(LOG)).split('\n').filter((l) => l !== '');
    return { changed: hosts[host.name]!.changed, calls };
  }

  test('a first run and a no-op each start few systemctl processes', async () => {
    expect((await host.exec('systemctl --version')).code).toBe(0);
    expect((await host.readFile(LOG)).split('\n')[0]).toBe('--version');

    const first = await applyCounting();
    expect(first.changed).toBeGreaterThan(0);
    expect(first.calls.length).toBeGreaterThan(0);
    expect({ calls: first.calls, count: first.calls.length }).toEqual({
      calls: first.calls,
      count: Math.min(first.calls.length, MAX_FIRST_RUN),
    });

    const noOp = await applyCounting();
    expect(noOp.changed).toBe(0);
    expect({ calls: noOp.calls, count: noOp.calls.length }).toEqual({
      calls: noOp.calls,
      count: Math.min(noOp.calls.length, MAX_NO_OP),
    });
  });
});
