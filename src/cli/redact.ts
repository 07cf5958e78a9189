/**
 * Masking of secrets (config/secrets.ts) in what the CLI reports: host
 * results and diagnostics.
 */
import { ConfigError, type Diagnostic } from '../config/diagnostics.js';
import { redact } from '../config/secrets.js';
import type { HostResult, TaskResult } from '../executor/results.js';

function redactTask(task: TaskResult, secrets: string[]): TaskResult {
  const mask = (text: string) => redact(text, secrets);
  return {
    ...task,
    task: mask(task.task),
    messages: task.messages.map(mask),
    warnings: task.warnings.map(mask),
    diff: mask(task.diff),
    commands: task.commands.map(mask),
    ...(task.error !== undefined ? { error: mask(task.error) } : {}),
  };
}

/** A host's result as every report may show it: the secrets masked in every text. */
export function redactHostResult(result: HostResult, secrets: Iterable<string>): HostResult {
  const known = [...secrets];
  return {
    ...result,
    tasks: result.tasks.map((task) => redactTask(task, known)),
    ...(result.error !== undefined ? { error: redact(result.error, known) } : {}),
  };
}

/** Diagnostics with the secrets masked in their summary and detail (a message may quote a value). */
export function redactDiagnostics(
  diagnostics: readonly Diagnostic[],
  secrets: Iterable<string>,
): Diagnostic[] {
  const known = [...secrets];
  return diagnostics.map((d) => ({
    ...d,
    summary: redact(d.summary, known),
    ...(d.detail !== undefined ? { detail: redact(d.detail, known) } : {}),
  }));
}

/** `error` with the secrets masked in its diagnostics when it is a ConfigError; anything else unchanged. */
export function redactConfigError(error: unknown, secrets: Iterable<string>): unknown {
  if (!(error instanceof ConfigError)) return error;
  return new ConfigError(redactDiagnostics(error.diagnostics, secrets));
}
