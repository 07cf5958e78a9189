/**
 * Reading and writing plan files (src/plan/plan_file.ts holds the format).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { ConfigError } from '../config/diagnostics.js';
import { parsePlanDocument, serializePlanDocument, type PlanDocument } from '../plan/plan_file.js';
import { errorMessage } from '../errors.js';

/**
 * Writes the plan all or nothing: to a temporary file beside the target,
 * fsynced, then renamed over it, so a reader (a CI step uploading the
 * artifact, a concurrent `show`) sees the old file or the whole new one,
 * never a truncated plan.
 */
export async function writePlanFile(file: string, doc: PlanDocument): Promise<void> {
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    const handle = await fs.open(temporary, 'w', 0o644);
    try {
      await handle.writeFile(serializePlanDocument(doc), 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(temporary, file);
  } catch (error) {
    await fs.rm(temporary, { force: true });
    throw new ConfigError([
      { severity: 'error', summary: `cannot write plan file ${file}: ${errorMessage(error)}` },
    ]);
  }
}

/** Reads and validates a plan file; every problem is a ConfigError naming the file. */
export async function readPlanFile(file: string): Promise<PlanDocument> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    throw new ConfigError([
      { severity: 'error', summary: `cannot read plan file ${file}: ${errorMessage(error)}` },
    ]);
  }
  return parsePlanDocument(text, file);
}
