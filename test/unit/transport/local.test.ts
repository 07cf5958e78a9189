import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { openConnection } from '../../../src/transport/connect.js';
import { openLocal } from '../../../src/transport/local.js';
import { CommandTimeoutError, UnreachableError } from '../../../src/transport/types.js';
import type { ConnectionSpec } from '../../../src/transport/types.js';

function localSpec(overrides: Partial<ConnectionSpec> = {}): ConnectionSpec {
  return {
    hostName: 'console',
    connection: 'local',
    address: 'localhost',
    port: 22,
    user: 'root',
    become: false,
    knownHostsFile: '/nonexistent/known_hosts',
    acceptNewHostKeys: false,
    connectTimeoutMs: 5000,
    commandTimeoutMs: 10000,
    keepaliveIntervalMs: 0,
    ...overrides,
  };
}

describe('local connection', () => {
  it('runs a script from stdin and reports stdout, stderr and the exit code', async () => {
    const connection = await openConnection(localSpec());
    const result = await connection.runScript('printf "out\\n"\nprintf "err\\n" >&2\nprintf "é€"\nexit 3\n');
    expect(result).toEqual({ stdout: 'out\né€', stderr: 'err\n', exitCode: 3 });
    expect(connection.hostName).toBe('console');
    await connection.close();
  });

  it('reads a script of 1 MB from stdin', async () => {
    const connection = openLocal(localSpec());
    const filler = `: ${'x'.repeat(1000)}\n`.repeat(1100);
    const result = await connection.runScript(`${filler}echo done $((6 * 7))\n`);
    expect(result).toEqual({ stdout: 'done 42\n', stderr: '', exitCode: 0 });
  });

  it('survives a script that exits before reading all of its stdin', async () => {
    const connection = openLocal(localSpec());
    const result = await connection.runScript(`exit 0\n${': padding\n'.repeat(200000)}`);
    expect(result.exitCode).toBe(0);
  });

  it('stops a script at its time limit and keeps working afterwards', async () => {
    const connection = openLocal(localSpec());
    const dir = mkdtempSync(join(tmpdir(), 'sshfix-local-'));
    try {
      const outcome = connection.runScript(
        `echo $$ > ${dir}/pid\nsleep 60 &\necho $! > ${dir}/child\nwait\ntouch ${dir}/finished\n`,
        { timeoutMs: 300 },
      );
      await expect(outcome).rejects.toThrow(CommandTimeoutError);
      await expect(outcome).rejects.toThrow('console: remote command did not finish within 300 ms');
      // Stopped, not abandoned: the script and its children go away and never reach their last line.
      for (const file of ['pid', 'child']) {
        const pid = Number(readFileSync(join(dir, file), 'utf8'));
        await eventually(() => !processExists(pid));
      }
      expect(existsSync(join(dir, 'finished'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await expect(connection.runScript('echo still here\n')).resolves.toMatchObject({
      stdout: 'still here\n',
    });
  });

  it('uses the spec command timeout by default', async () => {
    const connection = openLocal(localSpec({ commandTimeoutMs: 200 }));
    await expect(connection.runScript('sleep 5\n')).rejects.toThrow(CommandTimeoutError);
  });

  it('refuses to run after close', async () => {
    const connection = openLocal(localSpec());
    await connection.close();
    await expect(connection.runScript('true\n')).rejects.toThrow(UnreachableError);
  });
});

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Polls until `condition` holds; the test's own time limit bounds it. */
async function eventually(condition: () => boolean): Promise<void> {
  while (!condition()) await sleep(50);
}
