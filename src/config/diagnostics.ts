/**
 * Diagnostics are data: a summary, an optional detail and a source position.
 * They are rendered once, at the CLI edge, as `file:line:column: error: ...`.
 */

export interface SourcePosition {
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
}

export interface Diagnostic {
  severity: 'error' | 'warning';
  summary: string;
  detail?: string;
  position?: SourcePosition;
}

export function formatPosition(position: SourcePosition): string {
  return `${position.file}:${position.line}:${position.column}`;
}

export function formatDiagnostic(d: Diagnostic): string {
  const where = d.position ? `${formatPosition(d.position)}: ` : '';
  const detail = d.detail ? `\n  ${d.detail.split('\n').join('\n  ')}` : '';
  return `${where}${d.severity}: ${d.summary}${detail}`;
}

/** What makes two diagnostics the same report: their summary and where they point (not their detail). */
export function diagnosticIdentity(d: Diagnostic): string {
  const p = d.position;
  return [p?.file ?? '', p?.line ?? '', p?.column ?? '', d.summary].join('\u0000');
}

/** The first of each set of diagnostics with the same identity, in order. */
export function uniqueDiagnostics(diagnostics: readonly Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return diagnostics.filter((d) => {
    const identity = diagnosticIdentity(d);
    if (seen.has(identity)) return false;
    seen.add(identity);
    return true;
  });
}

/** Bad input: the run stops before touching any host. */
export class ConfigError extends Error {
  constructor(readonly diagnostics: Diagnostic[]) {
    super(diagnostics.map(formatDiagnostic).join('\n'));
    this.name = 'ConfigError';
  }
}
