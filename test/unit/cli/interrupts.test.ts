import { handleInterrupts, recapInterruption } from '../../../src/cli/interrupts.js';
import { renderRecap } from '../../../src/cli/render_text.js';
import { renderJson } from '../../../src/cli/render_json.js';
import { Interruption } from '../../../src/executor/interruption.js';
import { notRunResult } from '../../../src/executor/rollout.js';
import type { HostResult } from '../../../src/executor/results.js';

const runDir = '/var/backups/sshfix/20260101T000000Z-abcdef';
const deadline = '2026-01-01T00:01:00.000Z';
const changed: HostResult = {
  host: 'web1',
  address: '10.0.0.1',
  unreachable: false,
  tasks: [
    {
      play: 'p',
      task: 't',
      resource: 'file',
      status: 'changed',
      handler: false,
      messages: [],
      warnings: [],
      diff: '',
      commands: [],
    },
  ],
};
const cutOff: HostResult = {
  host: 'web2',
  address: '10.0.0.2',
  unreachable: true,
  tasks: [],
  error: 'interrupted',
};
const notStarted = notRunResult(
  'web3',
  '10.0.0.3',
  'the run was interrupted (SIGINT) before this host started',
);

function interrupted(): Interruption {
  const interruption = new Interruption();
  interruption.raise('SIGINT');
  interruption.record('web1', { kind: 'confirmed', runDir });
  interruption.record('web2', { kind: 'left-to-timer', runDir, deadline });
  return interruption;
}

describe('the recap of an interrupted run', () => {
  test('says which signal stopped it and what every host was left in', () => {
    const recap = renderRecap(
      [changed, cutOff, notStarted],
      { color: false, diff: false, check: false },
      recapInterruption(interrupted()),
    );
    expect(recap.split('\n')).toEqual([
      'RECAP (interrupted by SIGINT)',
      'web1  ok=0  changed=1  failed=0  skipped=0  unreachable=0  state: confirmed: changed, a new SSH connection proved it, no timer left armed',
      `web2  ok=0  changed=0  failed=0  skipped=0  unreachable=1  state: ROLLBACK TIMER STILL ARMED: restores the previous state at ${deadline} (backup in ${runDir})`,
      'web3  ok=0  changed=0  failed=1  skipped=0  unreachable=0  state: not started: nothing changed',
      '',
    ]);
  });

  test('is the usual recap when no signal came', () => {
    expect(recapInterruption(new Interruption())).toBeUndefined();
  });

  test('JSON carries the signal and each host state', () => {
    const doc = JSON.parse(renderJson([changed, cutOff], 'apply', recapInterruption(interrupted()))) as {
      interrupted: string;
      hosts: Record<string, { state: { kind: string } }>;
    };
    expect(doc.interrupted).toBe('SIGINT');
    expect(Object.values(doc.hosts).map((h) => h.state.kind)).toEqual(['confirmed', 'timer-armed']);
    expect(renderJson([changed], 'apply')).not.toContain('"state"');
  });
});

describe('signals', () => {
  test('each signal is told; the third exits at once, naming every host whose timer is still armed', () => {
    const interruption = new Interruption();
    const said: string[] = [];
    const exits: number[] = [];
    const listenersBefore = process.listenerCount('SIGINT');
    const stop = handleInterrupts(
      interruption,
      (t) => said.push(t),
      (code) => exits.push(code),
    );
    try {
      process.emit('SIGINT', 'SIGINT');
      expect(interruption.stopRequested).toBe(true);
      expect(said.join('')).toMatch(/SIGINT: stopping\. No host starts changing any more/);
      interruption.record('web2', { kind: 'armed', runDir, deadline });
      process.emit('SIGTERM', 'SIGTERM');
      expect(interruption.abortRequested).toBe(true);
      expect(exits).toEqual([]);
      process.emit('SIGINT', 'SIGINT');
      expect(exits).toEqual([130]);
      expect(said.at(-1)).toBe(
        'sshfix: SIGINT a third time: exiting now.\n' +
          `sshfix: WARNING: web2: its rollback timer is still armed: the host restores its previous state by itself at ${deadline} ` +
          `(backup in ${runDir}); until then, other sshfix runs refuse to change it\n`,
      );
    } finally {
      stop();
    }
    expect(process.listenerCount('SIGINT')).toBe(listenersBefore);
  });
});
