import { renderHost, renderRecap } from '../../../src/cli/render_text.js';
import { renderJson } from '../../../src/cli/render_json.js';
import { exitCodeFor } from '../../../src/cli/exit_codes.js';
import type { HostResult, TaskResult } from '../../../src/executor/results.js';

const task = (status: TaskResult['status'], extra: Partial<TaskResult> = {}): TaskResult => ({
  play: 'p',
  task: `t-${status}`,
  resource: 'sshd_config',
  status,
  handler: false,
  messages: [],
  warnings: [],
  diff: '',
  commands: [],
  ...extra,
});

const diff =
  '--- /etc/ssh/sshd_config\tcurrent\n+++ /etc/ssh/sshd_config\tplanned\n@@ -1,1 +1,1 @@\n-MaxAuthTries 2\n+MaxAuthTries 4\n';
const host = (name: string, tasks: TaskResult[], unreachable = false): HostResult => ({
  host: name,
  address: `${name}.example`,
  unreachable,
  tasks,
  ...(unreachable ? { error: 'connection refused' } : {}),
});

describe('text output', () => {
  test('diffs are coloured only when asked to (a TTY)', () => {
    const result = host('web01', [
      task('changed', { diff, messages: ['MaxAuthTries 2 from /etc/ssh/sshd_config:1 → 4'] }),
    ]);
    const plain = renderHost(result, { color: false, diff: true, check: false });
    expect(plain).not.toContain('\x1b[');
    expect(plain).toContain('+MaxAuthTries 4');
    expect(plain).toContain('MaxAuthTries 2 from /etc/ssh/sshd_config:1 → 4');
    const coloured = renderHost(result, { color: true, diff: true, check: false });
    expect(coloured).toContain('\x1b[32m+MaxAuthTries 4\x1b[0m');
    expect(coloured).toContain('\x1b[31m-MaxAuthTries 2\x1b[0m');
    expect(renderHost(result, { color: false, diff: false, check: false })).not.toContain('+MaxAuthTries 4');
  });

  test('a skipped task says once which host skipped it and why', () => {
    const reason = 'sshd 9.2 does not know PerSourcePenaltyExemptList (OpenSSH ≥ 9.8)';
    const result = host('web01', [task('skipped', { messages: [reason], error: reason })]);
    const text = renderHost(result, { color: false, diff: true, check: false });
    expect(text).toBe(
      `web01 (web01.example)\n  skipped  t-skipped [sshd_config]\n           skipped: web01: ${reason}\n`,
    );
    const notApplied = host('web01', [
      task('skipped', { messages: ['MaxAuthTries 2 → 4'], error: 'not applied: other task failed' }),
    ]);
    expect(renderHost(notApplied, { color: false, diff: false, check: false })).toContain(
      '           MaxAuthTries 2 → 4\n           skipped: web01: not applied: other task failed\n',
    );
  });

  test('recap counts per host; check mode says nothing was changed', () => {
    const results = [host('a', [task('ok'), task('changed'), task('failed')]), host('bb', [], true)];
    const recap = renderRecap(results, { color: false, diff: false, check: true });
    expect(recap).toContain('PLAN RECAP (nothing was changed)');
    expect(recap).toMatch(/^a +ok=1\s+to_change=1\s+failed=1\s+skipped=0\s+unreachable=0$/m);
    expect(recap).toMatch(/^bb +ok=0\s+to_change=0\s+failed=0\s+skipped=0\s+unreachable=1$/m);
  });
});

describe('JSON output', () => {
  test('has the documented shape', () => {
    const doc = JSON.parse(
      renderJson([host('a', [task('changed', { diff })]), host('b', [], true)], 'apply'),
    ) as {
      hosts: Record<string, unknown>;
      summary: unknown;
    };
    expect(doc.hosts.a).toMatchObject({
      ok: 0,
      changed: 1,
      failed: 0,
      unreachable: false,
      tasks: [{ task: 't-changed', resource: 'sshd_config', status: 'changed', diff, message: '' }],
    });
    expect(doc.hosts.b).toMatchObject({ unreachable: true, error: 'connection refused' });
    expect(doc.summary).toEqual({
      ok: 0,
      changed: 1,
      failed: 0,
      unreachable: 1,
      hosts: 2,
      rolledBack: 0,
      retries: 0,
    });
  });

  test('says per host whether its change was rolled back and how often its confirmation was retried', () => {
    const confirmedLate = {
      ...host('a', [task('changed')]),
      transaction: { confirmAttempts: 3, rolledBack: false },
    };
    const restored = {
      ...host('b', [task('failed')]),
      transaction: { confirmAttempts: 1, rolledBack: true },
    };
    const doc = JSON.parse(renderJson([confirmedLate, restored, host('c', [task('ok')])], 'apply')) as {
      hosts: Record<string, Record<string, unknown>>;
      summary: Record<string, number>;
    };
    expect(doc.hosts.a).toMatchObject({ rolledBack: false, retries: 2 });
    expect(doc.hosts.b).toMatchObject({ rolledBack: true, retries: 0 });
    expect(doc.hosts.c).toMatchObject({ rolledBack: false, retries: 0 });
    expect(doc.summary).toMatchObject({ rolledBack: 1, retries: 2 });
    // A first connection retried after a late handshake counts too.
    const lateFirst = { ...host('d', [task('ok')]), connectRetries: 1 };
    const withLate = JSON.parse(renderJson([confirmedLate, lateFirst], 'apply')) as typeof doc;
    expect(withLate.hosts.d).toMatchObject({ retries: 1 });
    expect(withLate.summary).toMatchObject({ retries: 3 });
  });
});

describe('exit codes', () => {
  test.each([
    ['nothing to do', [host('a', [task('ok')])], false, 0],
    ['changes, not detailed', [host('a', [task('changed')])], false, 0],
    ['changes, detailed', [host('a', [task('changed')])], true, 2],
    ['a failure wins over everything', [host('a', [task('failed')]), host('b', [], true)], true, 1],
    ['unreachable when nothing failed', [host('a', [task('changed')]), host('b', [], true)], true, 4],
  ] as const)('%s', (_name, results, detailed, code) => {
    expect(exitCodeFor([...results], detailed)).toBe(code);
  });
});
