/**
 * Live progress of a run. On a terminal, one status line at the bottom —
 * "12/100 hosts, 1 failed — web07: validating limits" — redrawn in place as
 * hosts move on, with everything else printed above it, and erased at the
 * end so that what stays on screen is the same as without it. Anywhere else
 * (CI logs, pipes) nothing is redrawn: output is the plain lines the
 * renderers print as each host finishes.
 */
import { isFailure, type HostResult } from '../executor/results.js';
import type { CliIO } from './io.js';

/** Counts and the latest step of each running host; no I/O. */
export class ProgressState {
  private finished = 0;
  private failedHosts = 0;
  private unreachableHosts = 0;
  /** Running hosts and their current step; Map order = order of their latest update. */
  private readonly running = new Map<string, string>();

  constructor(private readonly total: number) {}

  step(host: string, step: string): void {
    this.running.delete(host);
    this.running.set(host, step);
  }

  hostDone(result: HostResult): void {
    this.running.delete(result.host);
    this.finished++;
    if (result.unreachable) this.unreachableHosts++;
    else if (result.tasks.some(isFailure)) this.failedHosts++;
  }

  /** The status line, cut to `columns` so the terminal never wraps it (a wrapped line cannot be redrawn). */
  line(columns: number): string {
    const counts = [`${this.finished}/${this.total} hosts`];
    if (this.failedHosts > 0) counts.push(`${this.failedHosts} failed`);
    if (this.unreachableHosts > 0) counts.push(`${this.unreachableHosts} unreachable`);
    let text = counts.join(', ');
    const latest = [...this.running].at(-1);
    if (latest) {
      const [host, step] = latest;
      const others = this.running.size - 1;
      text += ` — ${host}: ${step}${others > 0 ? ` (+${others} running)` : ''}`;
    }
    return fitToWidth(singleLine(text), columns);
  }
}

/** Control characters (a newline in a task name, an escape code) would break the in-place redraw. */
function singleLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ');
}

function fitToWidth(text: string, columns: number): string {
  // One column spare: writing into the last column makes some terminals wrap.
  const width = Math.max(1, columns - 1);
  const chars = Array.from(text);
  return chars.length <= width ? text : `${chars.slice(0, width - 1).join('')}…`;
}

/** Where a run's output goes while it runs: through the live line when there is one. */
export interface LiveOutput {
  /** Prints on stdout, above the status line. */
  print(text: string): void;
  /** Prints on stderr, above the status line. */
  printError(text: string): void;
  /** A host started a step ("connecting", "planning limits", ...). */
  step(host: string, step: string): void;
  hostDone(result: HostResult): void;
  /** Erases the status line; call before printing the final report. */
  finish(): void;
}

export interface LiveOutputOptions {
  /** Draw the status line (only on a terminal). */
  live: boolean;
  /** Hosts in the run. */
  total: number;
  /** Terminal width. */
  columns: number;
}

/** Carriage return, then "erase the whole line". */
const CLEAR_LINE = '\r\x1b[2K';

export function createLiveOutput(io: CliIO, options: LiveOutputOptions): LiveOutput {
  if (!options.live) {
    return {
      print: (text) => io.stdout(text),
      printError: (text) => io.stderr(text),
      step: () => undefined,
      hostDone: () => undefined,
      finish: () => undefined,
    };
  }
  const state = new ProgressState(options.total);
  let shown = '';
  let finished = false;
  const clear = () => {
    if (shown !== '') io.stdout(CLEAR_LINE);
    shown = '';
  };
  const draw = () => {
    if (finished) return;
    const next = state.line(options.columns);
    if (next === shown) return;
    io.stdout(`${CLEAR_LINE}${next}`);
    shown = next;
  };
  const above = (write: () => void) => {
    clear();
    write();
    draw();
  };
  draw();
  return {
    print: (text) => above(() => io.stdout(text)),
    printError: (text) => above(() => io.stderr(text)),
    step: (host, step) => {
      state.step(host, step);
      draw();
    },
    hostDone: (result) => {
      state.hostDone(result);
      draw();
    },
    finish: () => {
      clear();
      finished = true;
    },
  };
}
