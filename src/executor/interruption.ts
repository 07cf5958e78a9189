/**
 * SIGINT (Ctrl-C) and SIGTERM during apply. A host's dead-man timer outlives
 * the process that armed it: a run that simply died would leave every host
 * in the middle of its transaction, and the timer would later revert the
 * change — also whatever a newer run changed meanwhile. So an interrupted run
 * settles each host before it exits, as Terraform's graceful stop does:
 *
 *  1. first signal: no host starts changing any more. A host whose changes
 *     are being applied finishes them and is confirmed by a new connection,
 *     or restored, exactly as in a run that was not interrupted.
 *  2. second signal: settling is cut short. A host waiting for its
 *     confirmation is restored now, through the session it still has; a
 *     change batch still running is abandoned (its connection closed), and
 *     that host's timer restores it, at a time the recap states.
 *  3. third signal: the CLI exits at once, naming each host whose timer may
 *     still be armed and when it fires.
 *
 * This module only keeps the count and each host's settlement; the executor
 * asks it what to do, the CLI turns signals into calls and renders the
 * states. No I/O.
 */
import { setMaxListeners } from 'node:events';
import { isFailure, type HostResult } from './results.js';

/** Where a host's change stands, as far as this run knows. */
export type Settlement =
  /** The change batch (backup and timer first) was sent; its result has not come back. */
  | { kind: 'applying'; runDir: string; deadline: string }
  /** Changes applied and the timer armed; not yet confirmed or restored. */
  | { kind: 'armed'; runDir: string; deadline: string }
  | { kind: 'confirmed'; runDir: string }
  | { kind: 'restored'; runDir: string }
  /** This run can no longer decide: the host's timer restores by itself at `deadline`. */
  | { kind: 'left-to-timer'; runDir: string; deadline: string }
  /** --no-rollback: the change batch ran (completely or up to a failure). */
  | { kind: 'applied-bare' }
  /** --no-rollback: the change batch was abandoned while running. */
  | { kind: 'abandoned-bare' };

export type InterruptSignal = 'SIGINT' | 'SIGTERM';

export class Interruption {
  private received = 0;
  private first: InterruptSignal | undefined;
  private readonly stopController = new AbortController();
  private readonly abortController = new AbortController();
  private readonly settlements = new Map<string, Settlement[]>();

  constructor() {
    // Every host at work listens (its sessions, its confirmation's handshake): past Node's
    // default of 10 listeners it would print a leak warning for what is no leak.
    setMaxListeners(0, this.stopController.signal, this.abortController.signal);
  }

  /** Counts a signal; returns how many have arrived, this one included. */
  raise(signal: InterruptSignal): number {
    this.received++;
    this.first ??= signal;
    if (this.received === 1) this.stopController.abort();
    if (this.received === 2) this.abortController.abort();
    return this.received;
  }

  /** The first signal received, if any. */
  get signal(): InterruptSignal | undefined {
    return this.first;
  }

  /** After the first signal: start no change. */
  get stopRequested(): boolean {
    return this.received >= 1;
  }

  /** After the second signal: stop waiting, restore what can be restored now. */
  get abortRequested(): boolean {
    return this.received >= 2;
  }

  /** Aborted at the first signal. */
  get stopSignal(): AbortSignal {
    return this.stopController.signal;
  }

  /** Aborted at the second signal. */
  get abortSignal(): AbortSignal {
    return this.abortController.signal;
  }

  /** Records the latest state of one transaction (or bare change) of `host`. */
  record(host: string, settlement: Settlement): void {
    const list = this.settlements.get(host) ?? [];
    const last = list.at(-1);
    // One entry per transaction: a later state of the same run directory replaces the earlier one.
    const sameRun =
      last !== undefined && 'runDir' in last && 'runDir' in settlement && last.runDir === settlement.runDir;
    if (sameRun || (last?.kind === 'applied-bare' && settlement.kind === 'abandoned-bare')) list.pop();
    list.push(settlement);
    this.settlements.set(host, list);
  }

  /** Forgets a transaction that ended before it changed anything (it was disarmed). */
  discard(host: string, runDir: string): void {
    const list = (this.settlements.get(host) ?? []).filter((s) => !('runDir' in s) || s.runDir !== runDir);
    this.settlements.set(host, list);
  }

  settlementsOf(host: string): readonly Settlement[] {
    return this.settlements.get(host) ?? [];
  }

  /** Hosts where a timer may still be armed, or a bare change was cut off: what the CLI must not keep quiet about. */
  unsettled(): Array<{ host: string; settlement: Settlement }> {
    return [...this.settlements].flatMap(([host, list]) =>
      list.filter(isUnsettled).map((settlement) => ({ host, settlement })),
    );
  }
}

function isUnsettled(s: Settlement): boolean {
  return (
    s.kind === 'applying' || s.kind === 'armed' || s.kind === 'left-to-timer' || s.kind === 'abandoned-bare'
  );
}

/** One line about an unsettled host, loud on purpose: nobody else will tell the operator. */
export function unsettledWarning(host: string, s: Settlement): string {
  switch (s.kind) {
    case 'applying':
    case 'armed':
    case 'left-to-timer':
      return (
        `${host}: its rollback timer is still armed: the host restores its previous state by itself ` +
        `at ${s.deadline} (backup in ${s.runDir}); until then, other sshfix runs refuse to change it`
      );
    case 'abandoned-bare':
      return (
        `${host}: the change was cut off while it was being applied without rollback (--no-rollback): ` +
        'files may be written without the service that reads them reloaded; run again to finish'
      );
    default:
      return `${host}: settled`;
  }
}

export type HostStateKind =
  | 'confirmed'
  | 'rolled-back'
  | 'timer-armed'
  | 'changed'
  | 'half-applied'
  | 'not-started'
  | 'stopped'
  | 'unreachable'
  | 'failed'
  | 'unchanged';

export interface HostState {
  kind: HostStateKind;
  /** For the recap: what the host was left with. */
  message: string;
  /** The operator must act or wait: a timer is armed, or a change was cut off. */
  alarming: boolean;
}

/** The tasks the run did not get to because it was interrupted carry this in their error. */
export const INTERRUPTED_MARK = 'the run was interrupted';

function settlementState(s: Settlement): HostState {
  switch (s.kind) {
    case 'confirmed':
      return {
        kind: 'confirmed',
        message: 'confirmed: changed, a new SSH connection proved it, no timer left armed',
        alarming: false,
      };
    case 'restored':
      return {
        kind: 'rolled-back',
        message: `rolled back: the previous state is restored (backup in ${s.runDir})`,
        alarming: false,
      };
    case 'applying':
    case 'armed':
    case 'left-to-timer':
      return {
        kind: 'timer-armed',
        message: `ROLLBACK TIMER STILL ARMED: restores the previous state at ${s.deadline} (backup in ${s.runDir})`,
        alarming: true,
      };
    case 'applied-bare':
      return { kind: 'changed', message: 'changed (--no-rollback: no backup, no timer)', alarming: false };
    case 'abandoned-bare':
      return {
        kind: 'half-applied',
        message: 'CUT OFF WHILE APPLYING (--no-rollback): may be half-changed; run again to finish',
        alarming: true,
      };
  }
}

/**
 * The state a host was left in, for the recap of an interrupted run: from
 * what this run did to its transactions, else from its result (a host that
 * has no settlement never had a change batch sent).
 */
export function hostState(result: HostResult, settlements: readonly Settlement[]): HostState {
  const last = settlements.at(-1);
  if (last) {
    const state = settlementState(last);
    const stoppedLater = result.tasks.some(
      (t) => t.status === 'skipped' && t.error?.includes(INTERRUPTED_MARK),
    );
    return stoppedLater && !state.alarming
      ? { ...state, message: `${state.message}; the rest was stopped before it changed anything` }
      : state;
  }
  if (result.tasks.some((t) => t.task === '(not run)'))
    return { kind: 'not-started', message: 'not started: nothing changed', alarming: false };
  if (result.tasks.some((t) => t.error?.includes(INTERRUPTED_MARK)))
    return { kind: 'stopped', message: 'stopped before changing anything: nothing changed', alarming: false };
  if (result.unreachable)
    return { kind: 'unreachable', message: 'unreachable: nothing changed', alarming: false };
  if (result.tasks.some(isFailure))
    return { kind: 'failed', message: 'failed before changing anything: nothing changed', alarming: false };
  return { kind: 'unchanged', message: 'nothing needed changing', alarming: false };
}
