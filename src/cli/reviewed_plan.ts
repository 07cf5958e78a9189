/**
 * The CLI's side of reviewed plans: `plan --out` saves the run's host plans
 * as a plan file, `apply PLAN` checks a plan file before any host is
 * contacted and hands the executor the reviewed plays.
 *
 * The plan file is the reviewed record, masked: it is not the executor's data
 * (that holds secrets). So `apply PLAN` plans every host again and applies
 * the fresh plan only where it reads the same facts and makes the same
 * changes, by digest, as the reviewed one (reviewPlay).
 */
import fs from 'node:fs';
import { ConfigError, type Diagnostic } from '../config/diagnostics.js';
import { parseDuration } from '../formats/fail2ban_state.js';
import type { HostResult } from '../executor/results.js';
import type { HostPlan } from '../plan/types.js';
import {
  buildPlanDocument,
  checkPlanInputs,
  checkPlanUsable,
  planExtraVars,
  type PlanDocument,
  type PlanHostInput,
  type PlanPlay,
  type PlanRefusal,
} from '../plan/plan_file.js';
import { errorMessage } from '../errors.js';
import { readPlanFile } from './plan_file_io.js';
import { VERSION } from './version.js';

/**
 * A plan file, not a playbook: JSON whose top level is a mapping. A playbook
 * is a list of plays, so no playbook reads as one.
 */
export function isPlanFile(file: string): boolean {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return false; // loadPlaybook says why it cannot be read
  }
  return text.trimStart().startsWith('{');
}

/** `--max-age 24h` (also 90m, 2d, 1h30m, seconds): milliseconds, or a ConfigError. */
export function parseMaxAge(text: string): number {
  const seconds = parseDuration(text);
  if (seconds === undefined || seconds <= 0)
    throw new ConfigError([
      {
        severity: 'error',
        summary: `--max-age ${text}: give a duration such as 30m, 24h or 7d`,
      },
    ]);
  return seconds * 1000;
}

/** A plan file checked as a whole, with what apply runs it with. */
export interface ReviewedRun {
  doc: PlanDocument;
  playbookPath: string;
  inventoryPath: string;
  extraVars: Record<string, unknown>;
  /** Each host's reviewed plays: only these hosts are ever contacted. */
  plays: Map<string, PlanPlay[]>;
}

function readInput(label: string, file: string): string | PlanRefusal {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (error) {
    return {
      kind: 'other-inputs',
      message: `cannot read the ${label} ${file} the plan was made from: ${errorMessage(error)}`,
    };
  }
}

/**
 * Reads the plan file and refuses it whole (ConfigError: exit 1, no host
 * contacted) when its digest is broken, another sshfix version made it, it
 * is older than `maxAgeMs`, or the playbook, inventory or `-e` variables are
 * not those it was made from. The playbook is read from the path the plan
 * records (relative to the working directory, as `plan` was given it), the
 * inventory from `-i` when given, else from the recorded path.
 */
export async function loadReviewedRun(
  file: string,
  options: { inventory?: string; extraVars: Record<string, unknown>; maxAgeMs?: number; now: Date },
): Promise<ReviewedRun> {
  const doc = await readPlanFile(file);
  const refusals = checkPlanUsable(doc, {
    now: options.now,
    version: VERSION,
    ...(options.maxAgeMs !== undefined ? { maxAgeMs: options.maxAgeMs } : {}),
  });
  const playbookPath = doc.inputs.playbook.path ?? '';
  const inventoryPath = options.inventory ?? doc.inputs.inventory.path ?? '';
  const extraVars = planExtraVars(doc, options.extraVars);
  const playbook = readInput('playbook', playbookPath);
  const inventory = readInput('inventory', inventoryPath);
  if (typeof playbook !== 'string') refusals.push(playbook);
  if (typeof inventory !== 'string') refusals.push(inventory);
  if (typeof playbook === 'string' && typeof inventory === 'string')
    refusals.push(...checkPlanInputs(doc, { playbook, inventory, extraVars }));
  if (refusals.length > 0) {
    throw new ConfigError(
      refusals.map((r): Diagnostic => ({
        severity: 'error',
        summary: `plan file ${file} refused, no host contacted: ${r.message}`,
      })),
    );
  }
  return {
    doc,
    playbookPath,
    inventoryPath,
    extraVars,
    plays: new Map(doc.hosts.map((h) => [h.name, h.plays])),
  };
}

/** The document `plan --out` writes: every host's plans as the run made them, masked. */
export function savedPlanDocument(input: {
  results: readonly HostResult[];
  plans: ReadonlyMap<string, HostPlan[]>;
  playbookPath: string;
  inventoryPath: string;
  extraVars: Record<string, unknown>;
  secrets: readonly string[];
  now: Date;
}): PlanDocument {
  const hosts = input.results.map((r): PlanHostInput => {
    const plays = input.plans.get(r.host) ?? [];
    // A host that failed as a whole (before or outside planning) says why in its one pseudo-task.
    const whole = plays.length === 0 ? r.tasks.find((t) => t.status === 'failed')?.error : undefined;
    const error = r.error ?? whole;
    return {
      host: r.host,
      address: r.address,
      plays,
      ...(r.unreachable ? { unreachable: true } : {}),
      ...(error !== undefined ? { error } : {}),
    };
  });
  return buildPlanDocument({
    createdAt: input.now,
    sshfixVersion: VERSION,
    playbook: { path: input.playbookPath, text: fs.readFileSync(input.playbookPath, 'utf8') },
    inventory: { path: input.inventoryPath, text: fs.readFileSync(input.inventoryPath, 'utf8') },
    extraVars: input.extraVars,
    hosts,
    secrets: input.secrets,
  });
}
