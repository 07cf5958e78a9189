import { hostState, Interruption, unsettledWarning } from '../../../src/executor/interruption.js';
import { notRunResult } from '../../../src/executor/rollout.js';
import type { HostResult, TaskResult } from '../../../src/executor/results.js';

const task = (status: TaskResult['status'], error?: string): TaskResult => ({
  play: 'p',
  task: `t-${status}`,
  resource: 'file',
  status,
  handler: false,
  messages: [],
  warnings: [],
  diff: '',
  commands: [],
  ...(error !== undefined ? { error } : {}),
});
const result = (tasks: TaskResult[], unreachable = false): HostResult => ({
  host: 'h',
  address: '10.0.0.1',
  unreachable,
  tasks,
});
const runDir = '/var/backups/sshfix/20260101T000000Z-abcdef';
const deadline = '2026-01-01T00:01:00.000Z';

describe('signals', () => {
  test('the first stops new changes, the second aborts settling; the first signal names the interruption', () => {
    const interruption = new Interruption();
    expect([interruption.stopRequested, interruption.abortRequested, interruption.signal]).toEqual([
      false,
      false,
      undefined,
    ]);
    expect(interruption.raise('SIGTERM')).toBe(1);
    expect([interruption.stopRequested, interruption.abortSignal.aborted]).toEqual([true, false]);
    expect(interruption.raise('SIGINT')).toBe(2);
    expect([interruption.abortRequested, interruption.abortSignal.aborted]).toEqual([true, true]);
    expect(interruption.signal).toBe('SIGTERM');
  });
});

describe('settlements', () => {
  test('a later state of the same transaction replaces the earlier one; only open ones are unsettled', () => {
    const interruption = new Interruption();
    interruption.record('a', { kind: 'applying', runDir, deadline });
    interruption.record('a', { kind: 'armed', runDir, deadline });
    interruption.record('b', { kind: 'applying', runDir, deadline });
    interruption.record('b', { kind: 'armed', runDir, deadline });
    interruption.record('b', { kind: 'confirmed', runDir });
    expect(interruption.settlementsOf('a')).toEqual([{ kind: 'armed', runDir, deadline }]);
    expect(interruption.unsettled()).toEqual([
      { host: 'a', settlement: { kind: 'armed', runDir, deadline } },
    ]);
    interruption.discard('a', runDir);
    expect(interruption.unsettled()).toEqual([]);
  });

  test('an armed timer is reported with the host, when it fires and where the backup is', () => {
    expect(unsettledWarning('web1', { kind: 'left-to-timer', runDir, deadline })).toBe(
      `web1: its rollback timer is still armed: the host restores its previous state by itself at ${deadline} ` +
        `(backup in ${runDir}); until then, other sshfix runs refuse to change it`,
    );
  });
});

describe('host states for the recap', () => {
  test('from the transaction when there was one', () => {
    expect(hostState(result([task('changed')]), [{ kind: 'confirmed', runDir }]).kind).toBe('confirmed');
    expect(hostState(result([task('failed')]), [{ kind: 'restored', runDir }]).kind).toBe('rolled-back');
    const armed = hostState(result([], true), [{ kind: 'left-to-timer', runDir, deadline }]);
    expect(armed).toMatchObject({ kind: 'timer-armed', alarming: true });
    expect(armed.message).toContain(deadline);
    expect(hostState(result([], true), [{ kind: 'abandoned-bare' }])).toMatchObject({
      kind: 'half-applied',
      alarming: true,
    });
    // A later play stopped by the signal is mentioned after a settled one.
    const later = hostState(
      result([task('changed'), task('skipped', 'not run: the run was interrupted (SIGINT) before play "b"')]),
      [{ kind: 'confirmed', runDir }],
    );
    expect(later.message).toMatch(/^confirmed: .*; the rest was stopped before it changed anything$/);
  });

  test('from the result when no change was sent', () => {
    const notStarted = notRunResult(
      'h',
      '10.0.0.1',
      'the run was interrupted (SIGINT) before this host started',
    );
    expect(hostState(notStarted, []).kind).toBe('not-started');
    const stopped = result([
      task('ok'),
      task('skipped', 'not applied: the run was interrupted (SIGINT) before this host was changed'),
    ]);
    expect(hostState(stopped, []).kind).toBe('stopped');
    expect(hostState(result([], true), []).kind).toBe('unreachable');
    expect(hostState(result([task('failed', 'refused: lockout')]), []).kind).toBe('failed');
    expect(hostState(result([task('ok')]), [])).toEqual({
      kind: 'unchanged',
      message: 'nothing needed changing',
      alarming: false,
    });
  });
});

/**
 * The listener limit Node keeps on an EventTarget (what events.getMaxListeners
 * reads; that function refuses a signal made in another realm, as jest's are).
 */
function maxListeners(target: EventTarget): unknown {
  const symbol = Object.getOwnPropertySymbols(target).find(
    (s) => s.description === 'events.maxEventTargetListeners',
  );
  return symbol === undefined ? undefined : (target as unknown as Record<symbol, unknown>)[symbol];
}

describe('listeners', () => {
  test('every host may listen for the signals: no leak warning past 10 listeners', () => {
    const interruption = new Interruption();
    // 0 lifts the limit; Node's default of 10 draws MaxListenersExceededWarning on stderr.
    expect(maxListeners(interruption.abortSignal)).toBe(0);
    expect(maxListeners(interruption.stopSignal)).toBe(0);
  });
});
