import fc from 'fast-check';
import { ConfigError } from '../../../src/config/diagnostics.js';
import {
  batchFailure,
  batchSize,
  notRunResult,
  parseMaxFailPercentage,
  parseSerial,
  runInBatches,
  splitIntoBatches,
} from '../../../src/executor/rollout.js';
import type { HostResult } from '../../../src/executor/results.js';
import { exitCodeFor } from '../../../src/cli/exit_codes.js';

const ok = (host: string): HostResult => ({ host, address: host, unreachable: false, tasks: [] });
const unreachable = (host: string): HostResult => ({ ...ok(host), unreachable: true, error: 'refused' });

describe('--serial', () => {
  test('counts and percentages', () => {
    expect(parseSerial('3')).toEqual({ kind: 'count', count: 3 });
    expect(parseSerial('25%')).toEqual({ kind: 'percent', percent: 25 });
    for (const bad of ['0', '-1', 'x', '0%', '101%', '']) expect(() => parseSerial(bad)).toThrow(ConfigError);
    expect(() => parseMaxFailPercentage(101)).toThrow(/0 to 100/);
  });

  test('a percentage rounds down but never below one host (as Ansible)', () => {
    expect(batchSize({ kind: 'percent', percent: 25 }, 10)).toBe(2);
    expect(batchSize({ kind: 'percent', percent: 1 }, 10)).toBe(1);
    expect(batchSize({ kind: 'count', count: 50 }, 10)).toBe(10);
    expect(batchSize(undefined, 7)).toBe(7);
  });

  test('property: batches keep every host once, in order', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 40 }), fc.integer({ min: 1, max: 50 }), (items, size) => {
        const batches = splitIntoBatches(items, size);
        expect(batches.flat()).toEqual(items);
        expect(batches.every((b) => b.length >= 1 && b.length <= size)).toBe(true);
      }),
    );
  });
});

describe('runInBatches', () => {
  const jobs = ['a', 'b', 'c', 'd', 'e'].map((host) => ({ host, address: `${host}.lab` }));

  test('stops after a batch that fails more than allowed; later hosts are reported as not run, with the reason', async () => {
    const ran: string[][] = [];
    const notRun: string[] = [];
    const results = await runInBatches(
      jobs,
      { serial: { kind: 'count', count: 2 }, maxFailPercentage: 40 },
      async (batch) => {
        ran.push(batch.map((j) => j.host));
        return batch.map((j) => (j.host === 'c' ? unreachable(j.host) : ok(j.host)));
      },
      (r) => notRun.push(r.host),
    );
    expect(ran).toEqual([
      ['a', 'b'],
      ['c', 'd'],
    ]);
    expect(results.map((r) => r.host)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(notRun).toEqual(['e']);
    expect(results[4]!.tasks[0]!.error).toMatch(
      /^not run: the rollout stopped after batch 2 of 3: 1 of 2 hosts failed \(50%, more than --max-fail-percentage 40\)/,
    );
    expect(exitCodeFor(results, false)).toBe(1);
  });

  test('a failure at or below the percentage lets the rollout go on; without the option it never stops', async () => {
    const failing = async (batch: typeof jobs) => batch.map((j) => unreachable(j.host));
    const all = await runInBatches(jobs, { serial: { kind: 'count', count: 2 } }, failing);
    expect(all.every((r) => r.unreachable)).toBe(true);
    expect(batchFailure([ok('a'), unreachable('b')], 50).exceeded).toBe(false);
    expect(batchFailure([ok('a'), unreachable('b')], 49).exceeded).toBe(true);
    expect(notRunResult('x', 'y', 'why').tasks[0]!.status).toBe('failed');
  });
});
