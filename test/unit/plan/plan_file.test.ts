import { ConfigError, formatDiagnostic } from '../../../src/config/diagnostics.js';
import {
  buildPlanDocument,
  checkPlanInputs,
  checkPlanUsable,
  fileFact,
  parsePlanDocument,
  planExtraVars,
  reviewPlay,
  PLAN_FORMAT,
  serializePlanDocument,
  sha256Hex,
  type PlanDocument,
  type PlanDocumentInput,
} from '../../../src/plan/plan_file.js';
import type { TaskPlan } from '../../../src/plan/types.js';
import { onePlay } from '../../support/plan_documents.js';
import { planHostResult } from '../../../src/cli/render_plan_text.js';

const SECRET = 's3cr3t-Pa55';
const hostsAllowBefore = 'sshd: 10.0.0.0/8\n';
const hostsAllowAfter = `sshd: 10.0.0.0/8 192.168.0.0/16\n# token ${SECRET}\n`;

const changingTask = (extra: Partial<TaskPlan> = {}): TaskPlan => ({
  play: 'site',
  handler: false,
  task: 'allow the office',
  resource: 'tcp_wrappers',
  notify: ['reload sshd'],
  plan: {
    action: 'change',
    messages: [`sshd: add 192.168.0.0/16 (key ${SECRET})`],
    warnings: [],
    fileChanges: [
      {
        path: '/etc/hosts.allow',
        before: hostsAllowBefore,
        beforeSha256: sha256Hex(hostsAllowBefore),
        after: hostsAllowAfter,
      },
    ],
    commands: [{ description: `echo ${SECRET}`, script: `echo '${SECRET}'` }],
    stateDiffs: [{ label: 'iptables INPUT (IPv4)', before: '-P INPUT ACCEPT\n', after: '-P INPUT DROP\n' }],
  },
  ...extra,
});

const input = (overrides: Partial<PlanDocumentInput> = {}): PlanDocumentInput => ({
  createdAt: new Date('2026-12-03T10:00:00Z'),
  sshfixVersion: '0.1.0',
  playbook: { path: 'site.yml', text: '- hosts: all\n' },
  inventory: { path: 'hosts.ini', text: 'web1\n' },
  extraVars: { db_password: SECRET },
  secrets: [SECRET],
  hosts: [
    {
      host: 'web1',
      address: '10.0.0.1',
      plays: [
        onePlay(
          'web1',
          [
            fileFact('/etc/hosts.allow', sha256Hex(hostsAllowBefore)),
            fileFact('/etc/hosts.deny', null),
            { key: 'host:sshd-version', value: '9.2', description: 'sshd version' },
          ],
          [changingTask()],
        ),
      ],
    },
    {
      host: 'web2',
      address: 'web2',
      plays: [],
      unreachable: true,
      error: 'timed out',
    },
  ],
  ...overrides,
});

describe('plan file format', () => {
  test('round trip: serialise then parse gives the same document, digest intact', () => {
    const doc = buildPlanDocument(input());
    const text = serializePlanDocument(doc);
    const parsed = parsePlanDocument(text, 'plan.json');
    expect(parsed).toEqual(doc);
    expect(parsed.format).toBe(PLAN_FORMAT);
    expect(checkPlanUsable(parsed, { now: new Date('2026-12-03T10:05:00Z'), version: '0.1.0' })).toEqual([]);
  });

  test('records hosts, statuses, facts, changes with diffs, and input digests', () => {
    const doc = buildPlanDocument(input());
    const [web1, web2] = doc.hosts;
    expect(web1?.status).toBe('changed');
    expect(web2?.status).toBe('unreachable');
    expect(web1?.plays[0]?.facts).toContainEqual({
      key: 'file:/etc/hosts.deny',
      value: 'absent',
      description: '/etc/hosts.deny',
    });
    const file = web1?.plays[0]?.tasks[0]?.files[0];
    expect(file?.beforeSha256).toBe(sha256Hex(hostsAllowBefore));
    expect(file?.afterSha256).toBe(sha256Hex(hostsAllowAfter));
    expect(file?.text?.diff).toMatch(/^\+sshd: 10\.0\.0\.0\/8 192\.168\.0\.0\/16$/m);
    expect(web1?.plays[0]?.tasks[0]?.states[0]?.diff).toMatch(/^\+-P INPUT DROP$/m);
    expect(doc.inputs.playbook).toEqual({
      path: 'site.yml',
      sha256: `sha256:${sha256Hex('- hosts: all\n')}`,
    });
    // Variables are digested in a canonical form: key order does not matter.
    const reordered = buildPlanDocument(input({ extraVars: { b: 1, a: 2 } }));
    const ordered = buildPlanDocument(input({ extraVars: { a: 2, b: 1 } }));
    expect(reordered.inputs.variables).toEqual(ordered.inputs.variables);
  });

  test('secrets are masked everywhere in the file, diffs included', () => {
    const text = serializePlanDocument(buildPlanDocument(input()));
    expect(text).not.toContain(SECRET);
    expect(text).toContain('# token ********');
    expect(text).toContain('echo ********');
  });

  test("a no_log task's contents are not in the file at all", () => {
    const doc = buildPlanDocument(
      input({
        secrets: [],
        hosts: [
          {
            host: 'web1',
            address: 'web1',
            plays: [onePlay('web1', [], [changingTask({ noLog: true })])],
          },
        ],
      }),
    );
    const text = serializePlanDocument(doc);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain('192.168.0.0');
    expect(text).not.toContain(sha256Hex(hostsAllowAfter));
    expect(doc.hosts[0]?.plays[0]?.tasks[0]).toMatchObject({
      name: 'allow the office',
      action: 'change',
      noLog: true,
    });
  });

  test('a task whose planning failed makes the host failed, with the reason, masked', () => {
    const failed: TaskPlan = { ...changingTask(), error: `cannot read /etc/x (token ${SECRET})` };
    delete failed.plan;
    const doc = buildPlanDocument(
      input({ hosts: [{ host: 'h', address: 'h', plays: [onePlay('h', [], [failed])] }] }),
    );
    expect(doc.hosts[0]).toMatchObject({
      status: 'failed',
      error: 'task "allow the office": cannot read /etc/x (token ********)',
    });
    expect(doc.hosts[0]?.plays[0]?.tasks[0]).toMatchObject({
      action: 'none',
      error: 'cannot read /etc/x (token ********)',
    });
    expect(planHostResult(doc.hosts[0]!).tasks.map((t) => [t.status, t.error])).toEqual([
      ['failed', 'cannot read /etc/x (token ********)'],
    ]);
  });

  test('diff: false keeps the digests of a file but not its text', () => {
    const doc = buildPlanDocument(
      input({
        secrets: [],
        hosts: [{ host: 'h', address: 'h', plays: [onePlay('h', [], [changingTask({ diff: false })])] }],
      }),
    );
    const file = doc.hosts[0]?.plays[0]?.tasks[0]?.files[0];
    expect(file?.text).toBeUndefined();
    expect(file?.afterSha256).toBe(sha256Hex(hostsAllowAfter));
    expect(serializePlanDocument(doc)).not.toContain('# token');
  });
});

describe('the digest breaks on any edit', () => {
  const now = new Date('2026-12-03T10:05:00Z');
  const brokenBy = (edit: (doc: PlanDocument) => void) => {
    const doc = JSON.parse(serializePlanDocument(buildPlanDocument(input()))) as PlanDocument;
    edit(doc);
    const reparsed = parsePlanDocument(JSON.stringify(doc), 'plan.json');
    return checkPlanUsable(reparsed, { now, version: '0.1.0' }).map((r) => r.kind);
  };

  test.each<[string, (doc: PlanDocument) => void]>([
    ['a diff line', (d) => (d.hosts[0]!.plays[0]!.tasks[0]!.files[0]!.text!.after += 'ALL: ALL\n')],
    ['a fact', (d) => (d.hosts[0]!.plays[0]!.facts[0]!.value = 'absent')],
    ['a host status', (d) => (d.hosts[1]!.status = 'unchanged')],
    ['the creation time', (d) => (d.createdAt = '2026-12-04T10:00:00.000Z')],
    ['the sshfix version', (d) => (d.sshfixVersion = '0.1.0 ')],
    ['a removed host', (d) => d.hosts.pop()],
    ['a command', (d) => (d.hosts[0]!.plays[0]!.tasks[0]!.commands[0]!.script = 'rm -rf /')],
    ['the digest itself', (d) => (d.digest = `sha256:${'0'.repeat(64)}`)],
  ])('%s', (_what, edit) => {
    expect(brokenBy(edit)).toContain('broken-digest');
  });

  test('re-indenting the file is not an edit', () => {
    const doc = buildPlanDocument(input());
    const compact = parsePlanDocument(JSON.stringify(doc), 'plan.json');
    expect(checkPlanUsable(compact, { now, version: '0.1.0' })).toEqual([]);
  });
});

describe('checkPlanUsable refuses', () => {
  const doc = buildPlanDocument(input());
  test('a plan older than the maximum age, saying how old', () => {
    const refusals = checkPlanUsable(doc, {
      now: new Date('2026-12-03T13:00:00Z'),
      maxAgeMs: 60 * 60_000,
      version: '0.1.0',
    });
    expect(refusals).toEqual([
      { kind: 'too-old', message: expect.stringMatching(/3h00m ago.*--max-age 60m/) },
    ]);
  });

  test('a plan within the maximum age is accepted', () => {
    expect(
      checkPlanUsable(doc, {
        now: new Date('2026-12-03T10:59:00Z'),
        maxAgeMs: 60 * 60_000,
        version: '0.1.0',
      }),
    ).toEqual([]);
  });

  test('a plan from another sshfix version', () => {
    const refusals = checkPlanUsable(doc, { now: new Date('2026-12-03T10:00:00Z'), version: '0.2.0' });
    expect(refusals.map((r) => r.kind)).toEqual(['other-version']);
    expect(refusals[0]?.message).toMatch(/sshfix 0\.1\.0, this is sshfix 0\.2\.0/);
  });
});

describe('malformed plan files are errors naming the file, the JSON pointer and the line', () => {
  const messages = (text: string): string[] => {
    try {
      parsePlanDocument(text, 'plan.json');
    } catch (e) {
      if (e instanceof ConfigError) return e.diagnostics.map(formatDiagnostic);
      throw e;
    }
    throw new Error('parsed without error');
  };
  const valid = serializePlanDocument(buildPlanDocument(input()));

  test('invalid JSON', () => {
    expect(messages('{\n  "format": "sshfix-plan/1",\n  oops\n}\n')).toEqual([
      expect.stringMatching(/^plan\.json:3:\d+: error: not a plan file: invalid JSON: /),
    ]);
  });

  test('truncated file', () => {
    expect(messages(valid.slice(0, valid.length / 2))[0]).toMatch(
      /^plan\.json:\d+:\d+: error: not a plan file/,
    );
  });

  test('a wrong value deep inside, at its line', () => {
    const text = valid.replace('"action": "change"', '"action": "chnage"');
    const line = text.split('\n').findIndex((l) => l.includes('"chnage"')) + 1;
    expect(messages(text)).toEqual([
      `plan.json:${line}:25: error: '/hosts/0/plays/0/tasks/0/action' must be one of 'none', 'change', 'skip', got the string "chnage" (did you mean 'change'?)`,
    ]);
  });

  test('a missing key names the object it is missing from', () => {
    const doc = JSON.parse(valid) as { hosts: { plays: Record<string, unknown>[] }[] };
    delete doc.hosts[0]!.plays[0]!.facts;
    expect(messages(JSON.stringify(doc, null, 2))).toEqual([
      expect.stringMatching(
        /^plan\.json:\d+:\d+: error: missing required key 'facts' in '\/hosts\/0\/plays\/0'$/,
      ),
    ]);
  });

  test('another format version', () => {
    const text = valid.replace(`"format": "${PLAN_FORMAT}"`, '"format": "sshfix-plan/2"');
    expect(messages(text)).toEqual([
      "plan.json:2:13: error: plan file format 'sshfix-plan/2' is not one this sshfix reads ('sshfix-plan/1')",
    ]);
  });

  test('not an object at all', () => {
    expect(messages('[1, 2]\n')).toEqual(['plan.json:1:1: error: the plan must be a mapping, got a list']);
  });

  test('a creation time that is not a time', () => {
    const text = valid.replace('"createdAt": "2026-12-03T10:00:00.000Z"', '"createdAt": "yesterday"');
    expect(messages(text)).toEqual([
      `plan.json:3:16: error: '/createdAt' must be an ISO 8601 time, got "yesterday"`,
    ]);
  });
});

describe('checkPlanInputs: the plan was made from these files', () => {
  const doc = buildPlanDocument(input());
  const same = { playbook: '- hosts: all\n', inventory: 'web1\n', extraVars: { db_password: SECRET } };

  test('the same inputs pass', () => {
    expect(checkPlanInputs(doc, same)).toEqual([]);
  });

  test('an edited playbook, another inventory or other -e variables are each named', () => {
    expect(
      checkPlanInputs(doc, { playbook: '- hosts: web\n', inventory: 'web2\n', extraVars: {} }).map(
        (r) => r.message,
      ),
    ).toEqual([
      'the playbook site.yml is not the one the plan was made from (its sha256 differs)',
      'the inventory hosts.ini is not the one the plan was made from (its sha256 differs)',
      'the -e variables are not those the plan was made from; the plan does not store secret ones: pass -e db_password=… again (missing: db_password)',
    ]);
    expect(checkPlanInputs(doc, { ...same, playbook: '- hosts: web\n' })[0]?.kind).toBe('other-inputs');
  });

  test('non-secret -e values are kept for apply, secret ones only by name and digest', () => {
    const withVars = buildPlanDocument(input({ extraVars: { db_password: SECRET, port: 2222 } }));
    expect(withVars.inputs.variables).toMatchObject({ values: { port: 2222 }, secretNames: ['db_password'] });
    expect(serializePlanDocument(withVars)).not.toContain(SECRET);
    // Passing the secret again (and nothing else) gives back the variables the plan was made from.
    const again = planExtraVars(withVars, { db_password: SECRET });
    expect(checkPlanInputs(withVars, { ...same, extraVars: again })).toEqual([]);
    const wrong = planExtraVars(withVars, { db_password: 'guess' });
    expect(checkPlanInputs(withVars, { ...same, extraVars: wrong }).map((r) => r.message)).toEqual([
      'the -e variables are not those the plan was made from; the plan does not store secret ones: pass -e db_password=… again',
    ]);
  });
});

describe('reviewPlay: a reviewed play against a fresh plan of its host', () => {
  const facts = [
    fileFact('/etc/hosts.allow', sha256Hex(hostsAllowBefore)),
    { key: 'host:sshd-unit', value: 'service ssh', description: 'how sshd runs (systemd unit)' },
  ];
  const reviewedDoc = buildPlanDocument(
    input({ hosts: [{ host: 'web1', address: 'web1', plays: [onePlay('web1', facts, [changingTask()])] }] }),
  );
  const reviewed = reviewedDoc.hosts[0]!.plays[0]!;
  const noChange = changingTask({
    plan: { action: 'none', messages: [], warnings: [], fileChanges: [], commands: [] },
  });

  test('the same facts and the same changes (by digest): apply', () => {
    expect(reviewPlay(reviewed, onePlay('web1', [...facts].reverse(), [changingTask()]))).toEqual({
      kind: 'apply',
    });
  });

  test('the same facts, but the changes now differ (another file content, another script): stale', () => {
    const otherFile = changingTask();
    otherFile.plan!.fileChanges[0]!.after += 'sshd: 10.9.9.9\n';
    const otherScript = changingTask();
    otherScript.plan!.commands[0]!.script = 'echo other';
    for (const task of [otherFile, otherScript]) {
      expect(reviewPlay(reviewed, onePlay('web1', facts, [task]))).toEqual({
        kind: 'stale',
        reasons: ['the host is as planned, but planning it now gives other changes than the reviewed ones'],
      });
    }
  });

  test('facts changed, nothing left to change, files as the plan would leave them: already applied', () => {
    const after = [fileFact('/etc/hosts.allow', sha256Hex(hostsAllowAfter)), facts[1]!];
    expect(reviewPlay(reviewed, onePlay('web1', after, [noChange]))).toEqual({ kind: 'already-applied' });
  });

  test('facts changed and the file is not what the plan writes: stale, naming the fact', () => {
    const edited = `${hostsAllowBefore}ALL: 10.1.1.1\n`;
    const current = [fileFact('/etc/hosts.allow', sha256Hex(edited)), facts[1]!];
    // Whether planning now changes something or not: the host was not made what was reviewed.
    for (const task of [changingTask(), noChange]) {
      const decision = reviewPlay(reviewed, onePlay('web1', current, [task]));
      expect(decision).toEqual({
        kind: 'stale',
        reasons: [
          `/etc/hosts.allow: sha256:${sha256Hex(hostsAllowBefore).slice(0, 12)}… 0644 root:root → sha256:${sha256Hex(edited).slice(0, 12)}… 0644 root:root`,
        ],
      });
    }
  });

  test('sshd switched from its service to its socket: stale, naming the unit fact', () => {
    const current = [facts[0]!, { ...facts[1]!, value: 'socket ssh' }];
    expect(reviewPlay(reviewed, onePlay('web1', current, [changingTask()]))).toEqual({
      kind: 'stale',
      reasons: ['how sshd runs (systemd unit): service ssh → socket ssh'],
    });
  });
});
