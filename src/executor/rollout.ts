/**
 * Fleet safety: roll a change out in batches (`--serial N|N%`) and stop when
 * a batch fails too much (`--max-fail-percentage P`), as Ansible's `serial`
 * and `max_fail_percentage` do. A failure on one host never changes what
 * happens on another host of the same batch; it can only keep later batches
 * from starting, and those hosts are reported as not run, with the reason.
 */
import { ConfigError } from '../config/diagnostics.js';
import { hostFailure, isFailure, type HostResult } from './results.js';

const invalid = (summary: string): ConfigError => new ConfigError([{ severity: 'error', summary }]);

export type Serial = { kind: 'count'; count: number } | { kind: 'percent'; percent: number };

/** Parses `--serial` (throws ConfigError): a positive host count ("5") or a percentage of the hosts ("25%"). */
export function parseSerial(text: string): Serial {
  const trimmed = text.trim();
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(trimmed);
  if (percent) {
    const value = Number(percent[1]);
    if (value <= 0 || value > 100)
      throw invalid(`--serial ${text}: a percentage must be above 0 and at most 100`);
    return { kind: 'percent', percent: value };
  }
  if (/^\d+$/.test(trimmed) && Number(trimmed) > 0) return { kind: 'count', count: Number(trimmed) };
  throw invalid(`--serial ${text}: give a number of hosts (e.g. 5) or a percentage of them (e.g. 25%)`);
}

/** Checks `--max-fail-percentage`: 0 to 100. */
export function parseMaxFailPercentage(value: number): number {
  if (!Number.isFinite(value) || value < 0 || value > 100)
    throw invalid(`--max-fail-percentage ${value}: give a percentage from 0 to 100`);
  return value;
}

/** Hosts per batch: a percentage rounds down, but a batch always holds at least one host. */
export function batchSize(serial: Serial | undefined, hostCount: number): number {
  if (hostCount === 0) return 0;
  if (!serial) return hostCount;
  const size = serial.kind === 'count' ? serial.count : Math.floor((hostCount * serial.percent) / 100);
  return Math.min(hostCount, Math.max(1, size));
}

export function splitIntoBatches<T>(items: readonly T[], size: number): T[][] {
  const batches: T[][] = [];
  for (let i = 0; i < items.length; i += Math.max(1, size))
    batches.push(items.slice(i, i + Math.max(1, size)));
  return batches;
}

/** A host failed when it was unreachable or any of its tasks failed. */
export function hostFailed(result: HostResult): boolean {
  return result.unreachable || result.tasks.some(isFailure);
}

/** Failed hosts of a batch as a percentage, and whether that exceeds `maxFailPercentage`. */
export function batchFailure(
  results: readonly HostResult[],
  maxFailPercentage: number | undefined,
): { failed: number; percent: number; exceeded: boolean } {
  const failed = results.filter(hostFailed).length;
  const percent = results.length === 0 ? 0 : (failed / results.length) * 100;
  return { failed, percent, exceeded: maxFailPercentage !== undefined && percent > maxFailPercentage };
}

/** The result of a host that was never contacted because the rollout stopped. */
export function notRunResult(host: string, address: string, reason: string): HostResult {
  return hostFailure(host, address, '(not run)', `not run: ${reason}`);
}

export interface RolloutOptions {
  serial?: Serial;
  maxFailPercentage?: number;
}

/**
 * Runs `jobs` batch after batch (all at once without `serial`); once a batch
 * exceeds the allowed failure percentage, the remaining hosts are not run.
 * Results come back in job order.
 */
export async function runInBatches<J extends { host: string; address: string }>(
  jobs: readonly J[],
  options: RolloutOptions,
  runBatch: (batch: J[]) => Promise<HostResult[]>,
  onNotRun: (result: HostResult) => void = () => undefined,
): Promise<HostResult[]> {
  const batches = splitIntoBatches(jobs, batchSize(options.serial, jobs.length));
  const results: HostResult[] = [];
  for (const [index, batch] of batches.entries()) {
    const batchResults = await runBatch(batch);
    results.push(...batchResults);
    const failure = batchFailure(batchResults, options.maxFailPercentage);
    const rest = batches.slice(index + 1).flat();
    if (failure.exceeded && rest.length > 0) {
      const reason =
        `the rollout stopped after batch ${index + 1} of ${batches.length}: ${failure.failed} of ${batchResults.length} ` +
        `hosts failed (${Math.round(failure.percent)}%, more than --max-fail-percentage ${options.maxFailPercentage})`;
      for (const job of rest) {
        const result = notRunResult(job.host, job.address, reason);
        onNotRun(result);
        results.push(result);
      }
      break;
    }
  }
  return results;
}
