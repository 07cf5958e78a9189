import { buildBatchScript, parseBatchOutput, runBatch, runChecks } from '../../../src/executor/host_batch.js';
import { localShell } from '../../support/local_sh.js';

describe('host batch', () => {
  test('each step keeps its own stdout, stderr and exit code, trailing newlines included', async () => {
    const outcomes = await runBatch(localShell(), [
      { script: "printf 'one\\n\\n'; echo err >&2; exit 3", stopOnFailure: false },
      { script: 'cat; echo two', stopOnFailure: false },
      { script: "trap 'echo trapped' EXIT; exit 0", stopOnFailure: false },
    ]);
    expect(outcomes).toEqual([
      { stdout: 'one\n\n', stderr: 'err\n', exitCode: 3 },
      // stdin is closed for every step: `cat` reads nothing of the batch script.
      { stdout: 'two\n', stderr: '', exitCode: 0 },
      { stdout: 'trapped\n', stderr: '', exitCode: 0 },
    ]);
  });

  test('a failing step that stops the batch leaves the later steps unrun', async () => {
    const outcomes = await runBatch(localShell(), [
      { script: 'echo a', stopOnFailure: true },
      { script: 'exit 4', stopOnFailure: true },
      { script: 'echo never', stopOnFailure: false },
    ]);
    expect(outcomes.map((o) => o?.exitCode)).toEqual([0, 4, undefined]);
  });

  test('a step cannot forge another step’s record without the nonce', () => {
    const marker = '@@sshfix-abc';
    const script = buildBatchScript([{ script: 'true', stopOnFailure: false }], marker);
    expect(script).toContain(`m=${marker}`);
    const forged = `${marker} 0 step\n@@sshfix-zzz 1 rc\nx0\n${marker} 0 rc\nx5\n`;
    expect(parseBatchOutput(2, forged, marker)).toEqual([
      { stdout: '@@sshfix-zzz 1 rc\nx0', stderr: '', exitCode: 5 },
      undefined,
    ]);
  });

  test('runChecks reports the failures, in order', async () => {
    const failures = await runChecks(localShell(), [
      { script: 'exit 0', failure: (r) => (r.exitCode === 0 ? undefined : 'first') },
      {
        script: 'echo bad; exit 1',
        failure: (r) => (r.exitCode === 0 ? undefined : `second: ${r.stdout.trim()}`),
      },
    ]);
    expect(failures).toEqual(['second: bad']);
  });
});

test('a daemon started by a step does not keep the batch open', async () => {
  const outcomes = await runBatch(localShell(), [
    { script: 'sleep 300 </dev/null >/dev/null 2>&1 &\necho $!', stopOnFailure: false },
  ]);
  const daemon = Number(outcomes[0]?.stdout.trim());
  // The batch returned while its daemon still runs: it did not wait for the daemon's output to close.
  try {
    expect(processExists(daemon)).toBe(true);
  } finally {
    process.kill(daemon, 'SIGKILL');
  }
});

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
