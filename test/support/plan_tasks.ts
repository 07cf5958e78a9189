/** Tasks and scratch directories shared by the executor's unit tests. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BoundTask } from '../../src/executor/host_run.js';
import { sshdConfigResource } from '../../src/resources/sshd_config.js';
import type { ResourceKind } from '../../src/resources/types.js';

/** An sshd_config task of play `p` that sets `settings` in `file`, notifying nothing. */
export function sshdTask(file: string, name: string, settings: Record<string, string | number>): BoundTask {
  return {
    play: 'p',
    name,
    resource: sshdConfigResource as ResourceKind,
    args: { path: file, settings },
    notify: [],
  };
}

/** Runs `body` with a fresh temporary directory, removed afterwards. */
export async function inTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-exec-'));
  try {
    await body(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
