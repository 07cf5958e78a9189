/**
 * A fleet apply on a busy controller: every CPU of the machine is taken by a
 * busy loop the test starts (and stops on every path), and 20 broken hosts
 * are fixed at --forks 20. Each host must converge: no rollback, no host
 * unreachable. Under load a handshake takes many times its quiet time; when
 * every host's handshake (and every confirmation) runs at once, they share
 * the CPUs and all reach their time limit together.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeLab, LAB_START_TIMEOUT_MS, labInventory, startLab, type Lab } from './lab.js';
import { runCli } from '../support/cli.js';
import { breakFleet, expectFleetFixed, startBusyLoops } from './busy_fleet.js';

const HOSTS = 20;

describeLab('apply on a busy controller', () => {
  let lab: Lab;
  let work: string;
  let inventory: string;
  let stopHog: (() => void) | undefined;

  beforeAll(async () => {
    lab = await startLab({ id: 'load', hosts: HOSTS });
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-load-'));
    inventory = path.join(work, 'inventory.yml');
    fs.writeFileSync(inventory, labInventory(lab));
    await breakFleet(lab);
  }, LAB_START_TIMEOUT_MS);

  afterAll(async () => {
    stopHog?.();
    await lab?.destroy();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('20 hosts at --forks 20 converge with every CPU busy: no rollback, none unreachable', async () => {
    const args = [
      path.resolve('playbooks', 'fix-connection-reset.yml'),
      '-i',
      inventory,
      '--known-hosts',
      lab.knownHostsFile,
      '--forks',
      String(HOSTS),
      '--format',
      'json',
    ];
    stopHog = startBusyLoops(os.cpus().length);
    let apply;
    try {
      apply = await runCli(['apply', ...args]);
    } finally {
      stopHog();
    }
    await expectFleetFixed(lab, apply);
  }, 600_000);
});
