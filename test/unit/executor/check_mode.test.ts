/**
 * `check_mode: true` on a task: planned and reported like any task, never
 * applied; a later task plans against the file as it is, and the would-be
 * change notifies no handler. Runs against this machine's own sh, in a
 * temporary directory.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  CHECK_MODE_MESSAGE,
  runPlayOnHost,
  type BoundPlay,
  type BoundTask,
} from '../../../src/executor/host_run.js';
import { fileResource } from '../../../src/resources/file.js';
import type { ResourceKind } from '../../../src/resources/types.js';
import { localShell } from '../../support/local_sh.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-checkmode-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function fileTask(name: string, dest: string, content: string, extra: Partial<BoundTask> = {}): BoundTask {
  return {
    play: 'p',
    name,
    resource: fileResource as ResourceKind,
    args: { dest, content },
    notify: [],
    ...extra,
  };
}

function play(): BoundPlay {
  return {
    name: 'p',
    playbookDir: dir,
    vars: {},
    tasks: [
      fileTask('only planned', `${dir}/banner`, 'planned\n', { checkMode: true, notify: ['marker'] }),
      fileTask('applied', `${dir}/banner`, 'applied\n'),
    ],
    handlers: [fileTask('marker', `${dir}/marker`, 'ran\n')],
  };
}

describe('check_mode on a task', () => {
  test('apply shows its change, never makes it, and runs no handler for it', async () => {
    const results = await runPlayOnHost(localShell(), play(), { check: false });
    expect(results.map((r) => [r.task, r.status])).toEqual([
      ['only planned', 'changed'],
      ['applied', 'changed'],
    ]);
    expect(results[0]!.messages).toContain(CHECK_MODE_MESSAGE);
    expect(results[0]!.diff).toContain('+planned');
    // The later task planned against the absent file, not against the check_mode task's content.
    expect(results[1]!.diff).toContain('--- ' + `${dir}/banner`);
    expect(results[1]!.diff).not.toContain('-planned');
    expect(fs.readFileSync(`${dir}/banner`, 'utf8')).toBe('applied\n');
    expect(fs.existsSync(`${dir}/marker`)).toBe(false);
  });

  test('plan shows the same as apply', async () => {
    const results = await runPlayOnHost(localShell(), play(), { check: true });
    expect(results.map((r) => [r.task, r.status])).toEqual([
      ['only planned', 'changed'],
      ['applied', 'changed'],
    ]);
    expect(fs.existsSync(`${dir}/banner`)).toBe(false);
  });
});
