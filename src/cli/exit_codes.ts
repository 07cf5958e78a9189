/** Exit codes are an interface: CI pipelines branch on them. Documented in README. */
export const EXIT = {
  /** Everything converged (or, for plan, computed). */
  ok: 0,
  /** A task failed on some host, or the input was bad. */
  failed: 1,
  /** plan/apply --detailed-exitcode: changes are pending (plan) or were made (apply). */
  changes: 2,
  /**
   * `apply PLAN`: some host was refused as stale (a fact its plan rests on,
   * e.g. a file's sha256, changed since the plan was made); the other hosts
   * were applied, and nothing failed. Its own code, so that a pipeline can
   * tell "plan again and have it reviewed" from a failure.
   */
  stale: 3,
  /** Some host was unreachable, and nothing failed. */
  unreachable: 4,
  /** apply was interrupted by SIGINT (128 + 2, as shells report it); the recap gives each host's state. */
  sigint: 130,
  /** …by SIGTERM (128 + 15). */
  sigterm: 143,
} as const;

import type { HostResult } from '../executor/results.js';
import { summarize } from '../executor/results.js';

/**
 * One code for a whole run, the worst thing that happened first: a failure
 * (1), then a host refused as stale (3: the rest of the plan was applied,
 * nothing failed), then an unreachable host (4), then changes (2, asked for).
 */
export function exitCodeFor(results: HostResult[], detailed: boolean): number {
  const s = summarize(results);
  if (s.failed > 0) return EXIT.failed;
  if ((s.stale ?? 0) > 0) return EXIT.stale;
  if (s.unreachable > 0) return EXIT.unreachable;
  if (detailed && s.changed > 0) return EXIT.changes;
  return EXIT.ok;
}
