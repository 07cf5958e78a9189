/**
 * Human output: one block per host (printed in inventory order: host_order.ts),
 * then a recap. Colour only on a TTY, and not with NO_COLOR (io.ts).
 */
import type { HostResult, TaskResult } from '../executor/results.js';
import { countTasks } from '../executor/results.js';
import type { HostState } from '../executor/interruption.js';

export interface TextStyle {
  color: boolean;
  diff: boolean;
  check: boolean;
}

const CODES = { red: 31, green: 32, yellow: 33, cyan: 36, dim: 2, bold: 1 } as const;
type Color = keyof typeof CODES;

function paint(style: TextStyle, color: Color, text: string): string {
  return style.color ? `\x1b[${CODES[color]}m${text}\x1b[0m` : text;
}

const STATUS_COLOR: Record<TaskResult['status'], Color> = {
  ok: 'green',
  changed: 'yellow',
  failed: 'red',
  skipped: 'cyan',
  unreachable: 'red',
};

function colorDiff(style: TextStyle, diff: string): string {
  return diff
    .replace(/^={60,}\n/gm, '')
    .split('\n')
    .filter((line) => !line.startsWith('Index: '))
    .map((line) => {
      if (line.startsWith('+') && !line.startsWith('+++')) return paint(style, 'green', line);
      if (line.startsWith('-') && !line.startsWith('---')) return paint(style, 'red', line);
      if (line.startsWith('@@')) return paint(style, 'cyan', line);
      return line;
    })
    .join('\n');
}

/** What a stale host's report says before the facts that changed. */
export const STALE_MESSAGE =
  'refused, nothing changed: the host changed since the plan was made (plan again and have it reviewed)';

export function renderHost(result: HostResult, style: TextStyle): string {
  const out: string[] = [paint(style, 'bold', `${result.host} (${result.address})`)];
  if (result.unreachable) {
    out.push(`  ${paint(style, 'red', 'unreachable')}  ${result.error ?? ''}`);
    return out.join('\n') + '\n';
  }
  if (result.stale !== undefined) {
    out.push(`  ${paint(style, 'yellow', 'stale')}     ${STALE_MESSAGE}:`);
    for (const reason of result.stale) out.push(`           ${reason}`);
  }
  for (const t of result.tasks) {
    // In check mode "changed" means "would change", as in Ansible.
    const label = t.status.padEnd(8);
    const kind = t.handler ? `${t.resource}, handler` : t.resource;
    out.push(`  ${paint(style, STATUS_COLOR[t.status], label)} ${t.task} [${kind}]`);
    // A skipped task's reason is its error; its messages, when they are that reason, are not repeated.
    const skipReason = t.status === 'skipped' ? t.error : undefined;
    const messages = skipReason !== undefined && t.messages.join('; ') === skipReason ? [] : t.messages;
    for (const m of messages) out.push(`           ${m}`);
    for (const w of t.warnings) out.push(`           ${paint(style, 'yellow', `warning: ${w}`)}`);
    if (skipReason !== undefined)
      out.push(`           ${paint(style, 'cyan', `skipped: ${result.host}: ${skipReason}`)}`);
    else if (t.error) out.push(`           ${paint(style, 'red', t.error)}`);
    if (t.ignored) out.push(`           ${paint(style, 'cyan', '...ignoring (ignore_errors)')}`);
    if (style.diff && t.diff && t.status !== 'ok') {
      out.push(
        colorDiff(style, t.diff)
          .trimEnd()
          .split('\n')
          .map((l) => `           ${l}`)
          .join('\n'),
      );
    }
    if (style.diff && t.commands.length > 0 && t.status !== 'ok') {
      for (const c of t.commands) out.push(`           ${paint(style, 'dim', `$ ${c}`)}`);
    }
  }
  return out.join('\n') + '\n';
}

/** An interrupted run's recap also says what each host was left in. */
export interface RecapInterruption {
  signal: string;
  stateOf(result: HostResult): HostState;
}

export function renderRecap(
  results: HostResult[],
  style: TextStyle,
  interruption?: RecapInterruption,
): string {
  const width = Math.max(4, ...results.map((r) => r.host.length));
  const title = style.check
    ? 'PLAN RECAP (nothing was changed)'
    : interruption
      ? `RECAP (interrupted by ${interruption.signal})`
      : 'RECAP';
  const lines = [paint(style, 'bold', title)];
  for (const r of results) {
    const c = countTasks(r);
    const changedWord = style.check ? 'to_change' : 'changed';
    const stale = `${c.ignored > 0 ? `  ignored=${c.ignored}` : ''}${r.stale !== undefined ? '  stale=1' : ''}`;
    const counts = `${r.host.padEnd(width)}  ok=${c.ok}  ${changedWord}=${c.changed}  failed=${c.failed}  skipped=${c.skipped}  unreachable=${c.unreachable ? 1 : 0}${stale}`;
    if (!interruption) {
      lines.push(counts);
      continue;
    }
    const state = interruption.stateOf(r);
    lines.push(`${counts}  ${paint(style, state.alarming ? 'red' : 'dim', `state: ${state.message}`)}`);
  }
  if (results.length === 0) lines.push('no hosts matched');
  return lines.join('\n') + '\n';
}
