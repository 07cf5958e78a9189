/**
 * `--format junit` is read by CI systems, so these tests read it back with a
 * strict XML parser (test/support/xml.ts): well-formedness errors throw instead of being
 * repaired, as a browser or a lenient parser would.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { CONNECTION_CASE_NAME, renderJunit } from '../../../src/cli/render_junit.js';
import type { HostResult, TaskResult } from '../../../src/executor/results.js';
import { runCli } from '../../support/cli.js';
import { childrenNamed, isXmlChar, parseXml } from '../../support/xml.js';

const task = (status: TaskResult['status'], extra: Partial<TaskResult> = {}): TaskResult => ({
  play: 'hardening',
  task: `task ${status}`,
  resource: 'sshd_config',
  status,
  handler: false,
  messages: [],
  warnings: [],
  diff: '',
  commands: [],
  ...extra,
});

const host = (name: string, tasks: TaskResult[], extra: Partial<HostResult> = {}): HostResult => ({
  host: name,
  address: `${name}.example`,
  unreachable: false,
  tasks,
  ...extra,
});

describe('renderJunit', () => {
  const results: HostResult[] = [
    host('web01', [
      task('ok'),
      task('changed', { messages: ['MaxStartups 10:30:100 → 30:30:100'], diff: '-a\n+b\n' }),
      task('changed', { task: 'reload sshd', resource: 'service', handler: true }),
    ]),
    host('web02', [
      task('ok'),
      task('failed', { error: 'sshd -t rejected the new configuration:\nline 3: Bad option' }),
    ]),
    host('web03', [task('skipped', { error: 'sshd is not linked with libwrap' })]),
    host('db01', [], { unreachable: true, error: 'connect ECONNREFUSED 10.0.0.1:22' }),
  ];

  test('one suite per host, one case per task, classname = host and name = task', () => {
    const root = parseXml(renderJunit(results, { mode: 'apply', check: false, diff: false }));
    expect(root.name).toBe('testsuites');
    expect(root.attributes).toMatchObject({
      name: 'sshfix apply',
      tests: '7',
      failures: '1',
      errors: '1',
      skipped: '1',
    });
    const suites = childrenNamed(root, 'testsuite');
    expect(suites.map((s) => s.attributes.name)).toEqual(['web01', 'web02', 'web03', 'db01']);
    const web01 = suites[0]!;
    expect(web01.attributes).toMatchObject({ hostname: 'web01.example', tests: '3', failures: '0' });
    expect(childrenNamed(web01, 'testcase').map((c) => [c.attributes.classname, c.attributes.name])).toEqual([
      ['web01', 'task ok'],
      ['web01', 'task changed'],
      ['web01', 'reload sshd (handler)'],
    ]);
  });

  test('a failed task has <failure> with its first line as message and the whole error as text', () => {
    const root = parseXml(renderJunit(results, { mode: 'apply', check: false, diff: false }));
    const web02 = childrenNamed(root, 'testsuite')[1]!;
    expect(web02.attributes).toMatchObject({ tests: '2', failures: '1', errors: '0' });
    const failed = childrenNamed(web02, 'testcase')[1]!;
    const [failure] = childrenNamed(failed, 'failure');
    expect(failure?.attributes.message).toBe('sshd -t rejected the new configuration:');
    expect(failure?.text).toBe('sshd -t rejected the new configuration:\nline 3: Bad option');
    expect(childrenNamed(childrenNamed(web02, 'testcase')[0]!, 'failure')).toEqual([]);
  });

  test('a failure ignore_errors let pass is no <failure>: it passes, and says why in <system-out>', () => {
    const ignored = task('failed', { error: '/etc/ssh/banner does not exist', ignored: true });
    const root = parseXml(
      renderJunit([host('web04', [ignored])], { mode: 'apply', check: false, diff: false }),
    );
    const [suite] = childrenNamed(root, 'testsuite');
    expect(suite?.attributes).toMatchObject({ tests: '1', failures: '0' });
    const [testcase] = childrenNamed(suite!, 'testcase');
    expect(childrenNamed(testcase!, 'failure')).toEqual([]);
    expect(childrenNamed(testcase!, 'system-out')[0]?.text).toBe(
      '...ignoring: /etc/ssh/banner does not exist',
    );
  });

  test('skipped tasks have <skipped>, unreachable hosts a "connection" case in <error>', () => {
    const root = parseXml(renderJunit(results, { mode: 'apply', check: false, diff: false }));
    const [, , web03, db01] = childrenNamed(root, 'testsuite');
    const skipped = childrenNamed(childrenNamed(web03!, 'testcase')[0]!, 'skipped');
    expect(skipped[0]?.attributes.message).toBe('sshd is not linked with libwrap');
    expect(db01?.attributes).toMatchObject({ tests: '1', errors: '1', failures: '0' });
    const [connection] = childrenNamed(db01!, 'testcase');
    expect(connection?.attributes.name).toBe(CONNECTION_CASE_NAME);
    expect(childrenNamed(connection!, 'error')[0]?.attributes).toEqual({
      message: 'connect ECONNREFUSED 10.0.0.1:22',
      type: 'unreachable',
    });
  });

  test('a plan reports pending changes and their diff in <system-out>', () => {
    const root = parseXml(renderJunit(results, { mode: 'plan', check: true, diff: true }));
    expect(root.attributes.name).toBe('sshfix plan');
    const changed = childrenNamed(childrenNamed(root, 'testsuite')[0]!, 'testcase')[1]!;
    expect(childrenNamed(changed, 'system-out')[0]?.text).toBe(
      'would change\nMaxStartups 10:30:100 → 30:30:100\n-a\n+b\n',
    );
  });

  test('diffs only when asked for, as in text output (file contents may hold secrets)', () => {
    const root = parseXml(renderJunit(results, { mode: 'apply', check: false, diff: false }));
    const changed = childrenNamed(childrenNamed(root, 'testsuite')[0]!, 'testcase')[1]!;
    expect(childrenNamed(changed, 'system-out')[0]?.text).toBe('changed\nMaxStartups 10:30:100 → 30:30:100');
  });

  test('no hosts is an empty, valid report', () => {
    const root = parseXml(renderJunit([], { mode: 'plan', check: true, diff: true }));
    expect(root.attributes.tests).toBe('0');
    expect(root.children).toEqual([]);
  });

  test('property: any text survives the round trip; characters XML cannot hold become U+FFFD', () => {
    // Any UTF-16 code unit, lone surrogates and C0 controls included.
    const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code));
    const text = fc.string({
      unit: fc.oneof(codeUnit, fc.constantFrom('<', '>', '&', '"', "'", '\r\n', ']]>')),
    });
    // What an XML document can carry of `s`, computed per code point.
    const representable = (s: string) =>
      Array.from(s, (char) => (isXmlChar(char.codePointAt(0)!) ? char : '\uFFFD')).join('');
    fc.assert(
      fc.property(text, text, text, (hostName, taskName, error) => {
        const xml = renderJunit([host(hostName, [task('failed', { task: taskName, error })])], {
          mode: 'apply',
          check: false,
          diff: false,
        });
        const suite = childrenNamed(parseXml(xml), 'testsuite')[0]!;
        const testcase = childrenNamed(suite, 'testcase')[0]!;
        expect(suite.attributes.name).toBe(representable(hostName));
        expect(testcase.attributes.classname).toBe(representable(hostName));
        expect(testcase.attributes.name).toBe(representable(taskName));
        expect(childrenNamed(testcase, 'failure')[0]?.text).toBe(representable(error));
      }),
    );
  });
});

describe('the reader itself refuses malformed XML', () => {
  test.each([
    ['<a>', 'unclosed'],
    ['<a></b>', 'mismatched'],
    ['<a x="1" x="2"/>', 'duplicate attribute'],
    ['<a>&nbsp;</a>', 'unknown entity'],
    ['<a>&#1;</a>', 'not allow'],
    ['<a x="<"/>', "'<' in an attribute"],
    ['<a/><b/>', 'content after'],
    ['<a>\u0001</a>', 'not allowed'],
  ])('%j', (xml, message) => {
    expect(() => parseXml(xml)).toThrow(message);
  });
});

describe('what a CI job sees: the JUnit report and the exit code', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-junit-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** Two local "hosts", each converging its own file in `dir`. */
  const localFleet = (content: string) => {
    const playbook = path.join(dir, 'files.yml');
    fs.writeFileSync(
      playbook,
      `- hosts: all
  tasks:
    - name: motd
      file:
        dest: ${dir}/{{ inventory_hostname }}.txt
        content: "${content}"
        validate: "grep -q sshfix %s"
`,
    );
    const inventory = path.join(dir, 'local.ini');
    fs.writeFileSync(inventory, 'one ansible_connection=local\ntwo ansible_connection=local\n');
    return { playbook, inventory };
  };

  test('--detailed-exitcode: 2 while changes are pending (plan) or were made (apply), then 0', async () => {
    const { playbook, inventory } = localFleet('managed by sshfix');
    const run = (command: string) => runCli([command, playbook, '-i', inventory, '--detailed-exitcode']);
    expect((await run('plan')).code).toBe(2);
    expect(fs.existsSync(path.join(dir, 'one.txt'))).toBe(false);
    expect((await run('apply')).code).toBe(2);
    expect(fs.readFileSync(path.join(dir, 'two.txt'), 'utf8')).toBe('managed by sshfix');
    expect((await run('plan')).code).toBe(0);
    expect((await run('apply')).code).toBe(0);
    // Without the flag, changes are success.
    fs.rmSync(path.join(dir, 'one.txt'));
    expect((await runCli(['apply', playbook, '-i', inventory])).code).toBe(0);
  });

  test('a failed task exits 1 even with --detailed-exitcode, and is a <failure> in the report', async () => {
    const { playbook, inventory } = localFleet('no marker');
    const run = await runCli([
      'apply',
      playbook,
      '-i',
      inventory,
      '--detailed-exitcode',
      '--format',
      'junit',
    ]);
    expect(run.code).toBe(1);
    const suites = childrenNamed(parseXml(run.stdout), 'testsuite');
    expect(suites.map((s) => [s.attributes.name, s.attributes.failures])).toEqual([
      ['one', '1'],
      ['two', '1'],
    ]);
    const failure = childrenNamed(childrenNamed(suites[0]!, 'testcase')[0]!, 'failure')[0];
    expect(failure?.text).toMatch(/^validate rejected the new content of .*one\.txt/);
    expect(fs.existsSync(path.join(dir, 'one.txt'))).toBe(false);
  });

  test('an unreachable host is an <error> case and the exit code stays 4', async () => {
    const playbook = path.join(dir, 'p.yml');
    fs.writeFileSync(
      playbook,
      '- hosts: all\n  tasks:\n    - name: limits\n      sshd_config: { settings: { MaxAuthTries: 3 } }\n',
    );
    const inventory = path.join(dir, 'hosts.ini');
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    fs.writeFileSync(inventory, 'gone&co ansible_host=127.0.0.1 ansible_port=1\n');
    const run = await runCli([
      'plan',
      playbook,
      '-i',
      inventory,
      '--format',
      'junit',
      '--known-hosts',
      path.join(dir, 'known_hosts'),
      '--connect-timeout',
      '3',
    ]);
    expect(run.code).toBe(4);
    const root = parseXml(run.stdout);
    const suite = childrenNamed(root, 'testsuite')[0]!;
    expect(suite.attributes).toMatchObject({ name: 'gone&co', hostname: '127.0.0.1', errors: '1' });
    expect(childrenNamed(childrenNamed(suite, 'testcase')[0]!, 'error')).toHaveLength(1);
  });
});
