/**
 * A host with another run's undecided transaction (its dead-man timer
 * outlives it), applied to with this machine's /bin/sh and a temporary
 * backup root: the run waits for a run that is still at work, and never for
 * its own transactions.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runPlayOnHost, type BoundTask } from '../../../src/executor/host_run.js';
import {
  beginTransaction,
  disarmTransaction,
  newRunId,
  type SafetyOptions,
  type Transaction,
  type TransactionSpec,
} from '../../../src/executor/transaction.js';
import { fileResource } from '../../../src/resources/file.js';
import type { ResourceKind } from '../../../src/resources/types.js';
import type { ConnectionSpec } from '../../../src/transport/types.js';
import { localShell } from '../../support/local_sh.js';

let dir: string;
let root: string;
const open: Transaction[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-undecided-'));
  root = path.join(dir, 'backups');
});

afterEach(async () => {
  for (const tx of open.splice(0)) await disarmTransaction(localShell(), tx).catch(() => undefined);
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Another run's transaction on this "host", armed and not decided. */
async function otherRun(owner: string): Promise<Transaction> {
  const spec: TransactionSpec = {
    runId: newRunId(),
    files: [],
    firewall: false,
    reloadSshd: false,
    reloadFail2ban: false,
    confirmTimeoutS: 120,
    backupRoot: root,
    owner,
  };
  const tx = await beginTransaction(localShell(), spec);
  open.push(tx);
  return tx;
}

function apply(runToken: string) {
  const file = path.join(dir, 'motd');
  const task: BoundTask = {
    play: 'p',
    name: 'motd',
    resource: fileResource as ResourceKind,
    args: { dest: file, content: 'hello\n' },
    notify: [],
  };
  const safety: SafetyOptions = {
    spec: { hostName: 'local', port: 22, connectTimeoutMs: 5000, commandTimeoutMs: 30_000 } as ConnectionSpec,
    connect: () => Promise.resolve(localShell()),
    rollback: true,
    confirmTimeoutS: 30,
    force: false,
    backupRoot: root,
    runToken,
  };
  const steps: string[] = [];
  const run = runPlayOnHost(
    localShell(),
    { name: 'p', playbookDir: dir, vars: {}, tasks: [task], handlers: [] },
    { check: false, safety, onStep: (s) => steps.push(s) },
  );
  return { run, steps, file };
}

test('a run that is still at work is waited for, and the host is changed once it has decided', async () => {
  const other = await otherRun('their-run');
  const { run, steps, file } = apply('our-run');
  // The other run confirms a moment later, as a run that is alive does.
  setTimeout(() => void disarmTransaction(localShell(), other), 1500);
  const results = await run;
  expect(results.map((r) => [r.status, r.error])).toEqual([['changed', undefined]]);
  expect(fs.readFileSync(file, 'utf8')).toBe('hello\n');
  expect(steps).toContain(`waiting for run ${other.spec.runId} to confirm or restore its change`);
});

test('the run never waits for its own transactions (one machine under two inventory names)', async () => {
  await otherRun('our-run');
  const { run, steps } = apply('our-run');
  expect((await run).map((r) => r.status)).toEqual(['changed']);
  expect(steps.filter((s) => s.startsWith('waiting'))).toEqual([]);
});
