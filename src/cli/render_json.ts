/** `--format json`: one document on stdout; its shape is part of the interface (README). */
import { formatDiagnostic, type Diagnostic } from '../config/diagnostics.js';
import type { HostResult } from '../executor/results.js';
import { countTasks, hostRetries, summarize } from '../executor/results.js';
import { STALE_MESSAGE, type RecapInterruption } from './render_text.js';

/** With `interruption`, the document says which signal stopped the run and each host's `state`. */
export function renderJson(
  results: HostResult[],
  mode: 'apply' | 'plan',
  interruption?: RecapInterruption,
): string {
  const hosts = Object.fromEntries(
    results.map((r) => {
      const c = countTasks(r);
      return [
        r.host,
        {
          address: r.address,
          ok: c.ok,
          changed: c.changed,
          failed: c.failed,
          skipped: c.skipped,
          ...(c.ignored > 0 ? { ignored: c.ignored } : {}),
          unreachable: r.unreachable,
          rolledBack: r.transaction?.rolledBack ?? false,
          retries: hostRetries(r),
          ...(r.error ? { error: r.error } : {}),
          ...(r.stale ? { stale: r.stale, error: `${STALE_MESSAGE}: ${r.stale.join('; ')}` } : {}),
          ...(interruption ? { state: stateJson(interruption, r) } : {}),
          tasks: r.tasks.map((t) => ({
            play: t.play,
            task: t.task,
            resource: t.resource,
            handler: t.handler,
            status: t.status,
            diff: t.diff,
            message: [...t.messages, ...(t.error ? [t.error] : [])].join('\n'),
            messages: t.messages,
            warnings: t.warnings,
            commands: t.commands,
            ...(t.error ? { error: t.error } : {}),
            ...(t.ignored ? { ignored: true } : {}),
          })),
        },
      ];
    }),
  );
  const interrupted = interruption ? { interrupted: interruption.signal } : {};
  return JSON.stringify({ mode, ...interrupted, hosts, summary: summarize(results) }, null, 2) + '\n';
}

function stateJson(interruption: RecapInterruption, result: HostResult): { kind: string; message: string } {
  const { kind, message } = interruption.stateOf(result);
  return { kind, message };
}

/**
 * The document for a run that bad input stopped before it started: the usual
 * shape for apply and plan (no hosts, zero counts), plus `errors`, each with
 * its position when it has one and the message as printed on stderr.
 */
export function renderJsonError(diagnostics: readonly Diagnostic[], mode?: 'apply' | 'plan'): string {
  const errors = diagnostics.map((d) => ({
    severity: d.severity,
    summary: d.summary,
    ...(d.detail !== undefined ? { detail: d.detail } : {}),
    ...(d.position ? { file: d.position.file, line: d.position.line, column: d.position.column } : {}),
    message: formatDiagnostic(d),
  }));
  const run = mode === undefined ? { hosts: {} } : { mode, hosts: {}, summary: summarize([]) };
  return JSON.stringify({ ...run, errors }, null, 2) + '\n';
}
