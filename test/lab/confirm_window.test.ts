/**
 * The confirm window restarts at the reload, on both kinds of rollback timer:
 * a `setsid` process (plain hosts) and a transient systemd timer whose
 * service waits for the moved deadline. The change batch moves the deadline
 * the host keeps in its uptime; past the first deadline the host must still
 * be waiting, and a confirmation then still wins.
 */
import { openConnection } from '../../src/transport/connect.js';
import type { Connection } from '../../src/transport/types.js';
import {
  beginTransaction,
  buildRearmScript,
  disarmTransaction,
  newRunId,
  rearmedTransaction,
  type TransactionSpec,
} from '../../src/executor/transaction.js';
import {
  describeLabKinds,
  LAB_START_TIMEOUT_MS,
  labConnectionSpec,
  PLAIN,
  startLab,
  SYSTEMD_SERVICE,
  type Lab,
} from './lab.js';

const FIRST_TIMEOUT_S = 2;

describeLabKinds('the confirm window restarts at the reload', [PLAIN, SYSTEMD_SERVICE], (kind) => {
  let lab: Lab;
  let conn: Connection;

  beforeAll(async () => {
    lab = await startLab({ id: kind.kind === 'plain' ? 'cwin' : 'cwinsd', hosts: 1, ...kind });
    const host = lab.hosts[0]!;
    conn = await openConnection(labConnectionSpec(lab, host));
  }, LAB_START_TIMEOUT_MS);

  afterAll(async () => {
    await conn?.close();
    await lab?.destroy();
  });

  test('past the first deadline the timer still waits, and the confirmation wins', async () => {
    const file = '/etc/sshfix-window-test';
    await conn.runScript(`echo old > ${file}`);
    const spec: TransactionSpec = {
      runId: newRunId(),
      files: [file],
      firewall: false,
      reloadSshd: false,
      reloadFail2ban: false,
      confirmTimeoutS: FIRST_TIMEOUT_S,
    };
    const tx = await beginTransaction(conn, spec);
    expect(tx.timer.kind).toBe(kind.kind === 'plain' ? 'process' : 'systemd');
    await conn.runScript(`echo new > ${file}`);
    // As the change batch does after the reload, with a window long enough for this test.
    const moved = rearmedTransaction(
      tx,
      await conn.runScript(buildRearmScript({ ...spec, confirmTimeoutS: 120 })),
    );
    expect(moved.restoresAfterS).toBeGreaterThan(120);
    // Well past the first deadline: the timer fired its first wait, and waits on.
    await new Promise((resolve) => setTimeout(resolve, (FIRST_TIMEOUT_S + 4) * 1000));
    const state = await conn.runScript(`test -d ${tx.runDir}/decided && echo decided; cat ${file}`);
    expect(state.stdout).toBe('new\n');
    expect(await disarmTransaction(conn, moved)).toBe('confirmed');
    // Nothing of the timer is left waiting.
    const left =
      tx.timer.kind === 'systemd'
        ? await conn.runScript(`systemctl is-active ${tx.timer.unit}.timer ${tx.timer.unit}.service || true`)
        : await conn.runScript(`pgrep -f 'sshfix-rollback ${tx.runDir} ' || true`);
    expect(left.stdout).not.toMatch(/^active$/m);
    if (tx.timer.kind === 'process') expect(left.stdout.trim()).toBe('');
    expect((await conn.runScript(`cat ${file}`)).stdout).toBe('new\n');
  });
});
