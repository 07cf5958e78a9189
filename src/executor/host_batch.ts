/**
 * Several steps in one remote script, so that a host costs one round trip
 * (one channel, one shell) where it would cost one per step. Each step runs
 * in its own subshell with stdin closed; its stdout, stderr and exit code come
 * back separately, between record lines that carry a random nonce (no
 * step's output can forge one). A step marked `stopOnFailure` that fails
 * ends the batch: later steps do not run.
 */
import type { Connection, ExecResult } from '../transport/types.js';
import type { HostCheck } from '../resources/types.js';
import { batchRecords, newMarker } from '../transport/shell.js';

export { batchRecords, newMarker };

export interface BatchStep {
  script: string;
  /** A failure (non-zero exit) ends the batch here. */
  stopOnFailure: boolean;
}

/** One step's result; undefined for a step that did not run. */
export type StepOutcome = ExecResult | undefined;

/**
 * The section of one step: stdout straight out through fd 4 (opened by the
 * batch), stderr captured with the exit code after it ("x" keeps its
 * trailing newlines), so no temporary file is needed.
 */
export function stepSection(index: number, script: string, onFailure = ''): string {
  return [
    `echo "$m ${index} step"`,
    // fd 4 is closed inside the step: a daemon it starts (the rollback timer) must hold no copy of
    // the channel's stdout, or the channel would stay open until that daemon exits.
    `e=$( ( ${script}\n) </dev/null 2>&1 >&4 4>&-; printf 'x%s' "$?" )`,
    `printf '\\n%s ${index} rc\\n%s\\n' "$m" "$e"`,
    ...(onFailure ? [`case $e in *x0) ;; *) ${onFailure} ;; esac`] : []),
  ].join('\n');
}

/** The lines every batch starts with: the marker, and fd 4 for the steps' stdout. */
export function batchPrologue(marker: string): string[] {
  return [`m=${marker}`, 'exec 4>&1'];
}

export function buildBatchScript(steps: readonly BatchStep[], marker: string): string {
  return [
    ...batchPrologue(marker),
    ...steps.map((step, i) => stepSection(i, step.script, step.stopOnFailure ? 'exit 0' : '')),
    '',
  ].join('\n');
}

/** A step's `rc` record body: its stderr, then "x" and its exit code (and our newline, when last). */
export function parseRcBody(body: string): { stderr: string; exitCode: number } | undefined {
  const split = /x(\d+)\n?$/.exec(body);
  return split ? { stderr: body.slice(0, split.index), exitCode: Number(split[1]) } : undefined;
}

export function parseBatchOutput(stepCount: number, stdout: string, marker: string): StepOutcome[] {
  const outcomes: StepOutcome[] = Array.from({ length: stepCount }, () => undefined);
  const stdouts = new Map<number, string>();
  for (const [first, kind, body] of batchRecords(stdout, marker)) {
    if (!/^\d+$/.test(first)) continue;
    const index = Number(first);
    if (index >= stepCount) continue;
    if (kind === 'step') stdouts.set(index, body);
    else if (kind === 'rc') {
      const rc = parseRcBody(body);
      if (rc) outcomes[index] = { stdout: stdouts.get(index) ?? '', ...rc };
    }
  }
  return outcomes;
}

/** Runs the steps in one round trip. */
export async function runBatch(conn: Connection, steps: readonly BatchStep[]): Promise<StepOutcome[]> {
  if (steps.length === 0) return [];
  const marker = newMarker();
  const result = await conn.runScript(buildBatchScript(steps, marker));
  return parseBatchOutput(steps.length, result.stdout, marker);
}

/** Runs checks in one round trip; the failures, in order (empty: every check passed). */
export async function runChecks(conn: Connection, checks: readonly HostCheck[]): Promise<string[]> {
  const outcomes = await runBatch(
    conn,
    checks.map((c) => ({ script: c.script, stopOnFailure: false })),
  );
  return checks.flatMap((check, i) => {
    const result = outcomes[i];
    const failure = result ? check.failure(result) : 'the check did not run';
    return failure === undefined ? [] : [failure];
  });
}
