/**
 * A fleet apply on a busy controller: every CPU of the machine is taken by a
 * busy loop the test starts (and stops on every path), and 20 broken hosts
 * are fixed at --forks 20. Each host must converge: no rollback, no host
 * unreachable. Under load a handshake takes many times its quiet time; when
 * every host's handshake (and every confirmation) runs at once, they share
 * the CPUs and all reach their time limit together.
 */
import os from 'node:os';
import { describeLab, LAB_START_TIMEOUT_MS } from './lab.js';
import { runCli } from '../support/cli.js';
import { expectFleetFixed, startBrokenFleet, startBusyLoops, type BrokenFleet } from './busy_fleet.js';

const HOSTS = 20;

describeLab('apply on a busy controller', () => {
  let fleet: BrokenFleet | undefined;
  let stopHog: (() => void) | undefined;

  beforeAll(async () => {
    fleet = await startBrokenFleet('load', HOSTS);
  }, LAB_START_TIMEOUT_MS);

  afterAll(async () => {
    stopHog?.();
    await fleet?.destroy();
  });

  test('20 hosts at --forks 20 converge with every CPU busy: no rollback, none unreachable', async () => {
    const { lab, applyArgs } = fleet!;
    stopHog = startBusyLoops(os.cpus().length);
    let apply;
    try {
      apply = await runCli(['apply', ...applyArgs()]);
    } finally {
      stopHog();
    }
    await expectFleetFixed(lab, apply);
  }, 600_000);
});
