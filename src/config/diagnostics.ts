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

/** Bad input: the run stops before touching any host. */
export class ConfigError extends Error {
  constructor(readonly diagnostics: Diagnostic[]) {
    super(diagnostics.map(formatDiagnostic).join('\n'));
    this.name = 'ConfigError';
  }
}
