/**
 * Turns SIGINT and SIGTERM into an Interruption of a running apply (see
 * executor/interruption.ts for what each signal does), and tells the
 * operator, at each signal, what happens next. The third signal exits at
 * once, but never silently: every host whose rollback timer may still be
 * armed is named, with when it fires.
 */
import {
  hostState,
  unsettledWarning,
  type InterruptSignal,
  type Interruption,
} from '../executor/interruption.js';
import type { HostResult } from '../executor/results.js';
import { EXIT } from './exit_codes.js';
import type { RecapInterruption } from './render_text.js';

const SIGNALS: readonly InterruptSignal[] = ['SIGINT', 'SIGTERM'];

export function interruptedExitCode(signal: InterruptSignal): number {
  return signal === 'SIGINT' ? EXIT.sigint : EXIT.sigterm;
}

/** What the operator must not miss about hosts left unsettled; empty when there are none. */
export function unsettledReport(interruption: Interruption): string {
  return interruption
    .unsettled()
    .map(({ host, settlement }) => `sshfix: WARNING: ${unsettledWarning(host, settlement)}\n`)
    .join('');
}

/**
 * Handles SIGINT and SIGTERM until the returned function is called (Node's
 * default, exiting at once, is back after that). `say` prints a notice on
 * stderr (above the live progress line); `exit` ends the process at the
 * third signal.
 */
export function handleInterrupts(
  interruption: Interruption,
  say: (text: string) => void,
  exit: (code: number) => void,
): () => void {
  const onSignal = (received: NodeJS.Signals): void => {
    const signal: InterruptSignal = received === 'SIGTERM' ? 'SIGTERM' : 'SIGINT';
    const count = interruption.raise(signal);
    if (count === 1) {
      say(
        `\nsshfix: ${signal}: stopping. No host starts changing any more; hosts whose changes are being ` +
          'applied finish them and are confirmed or rolled back, then the recap follows. ' +
          `Send ${signal} again to roll back now every host not yet confirmed.\n`,
      );
    } else if (count === 2) {
      say(
        `sshfix: ${signal} again: rolling back now every host not yet confirmed; a change batch still ` +
          "running is abandoned and left to its host's rollback timer. " +
          `Send ${signal} once more to exit at once.\n`,
      );
    } else {
      const report = unsettledReport(interruption);
      say(
        `sshfix: ${signal} a third time: exiting now.\n` +
          (report || 'sshfix: no host had a change in progress.\n'),
      );
      exit(interruptedExitCode(interruption.signal ?? signal));
    }
  };
  for (const s of SIGNALS) process.on(s, onSignal);
  return () => {
    for (const s of SIGNALS) process.off(s, onSignal);
  };
}

/** The recap's view of an interrupted run, or undefined when the run was not interrupted. */
export function recapInterruption(interruption: Interruption | undefined): RecapInterruption | undefined {
  const signal = interruption?.signal;
  if (!interruption || signal === undefined) return undefined;
  return {
    signal,
    stateOf: (result: HostResult) => hostState(result, interruption.settlementsOf(result.host)),
  };
}
