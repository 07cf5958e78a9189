import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, formatDiagnostic } from '../../../src/config/diagnostics.js';
import { loadPlaybook, parsePlaybook } from '../../../src/config/playbook.js';
import { TEST_RESOURCE_SCHEMAS } from '../../support/resource_schemas.js';

const FILE = 'site.yml';

const resources = TEST_RESOURCE_SCHEMAS;

/** Joins lines so that line numbers in the expectations can be read off the array index + 1. */
function yaml(...lines: string[]): string {
  return `${lines.join('\n')}\n`;
}

/** The rendered diagnostics of a playbook that must fail to load. */
function errorsOf(text: string): string[] {
  try {
    parsePlaybook(text, FILE, resources);
  } catch (error) {
    if (error instanceof ConfigError) return error.diagnostics.map(formatDiagnostic);
    throw error;
  }
  throw new Error('expected the playbook to be rejected');
}

describe('parsePlaybook: the model', () => {
  const text = yaml(
    '- name: harden ssh', //                 1
    '  hosts: web:&prod', //                 2
    '  become: true', //                     3
    '  vars:', //                            4
    '    ssh_port: 2222', //                 5
    '  tasks:', //                           6
    '    - name: sshd settings', //          7
    '      sshd_config:', //                 8
    '        settings:', //                  9
    '          Port: "{{ ssh_port }}"', //   10
    '      notify: reload sshd', //          11
    '  handlers:', //                        12
    '    - name: reload sshd', //            13
    '      service: { name: ssh, state: reloaded }', // 14
    '- hosts: db', //                        15
    '  tasks:', //                           16
    '    - name: restart', //                17
    '      service:', //                     18
    '        name: ssh', //                  19
    '      notify: []', //                   20
  );
  const playbook = parsePlaybook(text, FILE, resources);

  it('keeps plays with their hosts, vars and become', () => {
    expect(playbook.path).toBe(FILE);
    expect(playbook.plays.map((p) => [p.name, p.hosts, p.become])).toEqual([
      ['harden ssh', 'web:&prod', true],
      ['db', 'db', undefined],
    ]);
    expect(playbook.plays[0]?.vars).toEqual({ ssh_port: 2222 });
    expect(playbook.plays[1]?.vars).toEqual({});
    expect(playbook.plays[1]?.position).toEqual({ file: FILE, line: 15, column: 3 });
  });

  it('keeps tasks with their one resource, raw args and notify as a list', () => {
    const [task] = playbook.plays[0]?.tasks ?? [];
    expect(task).toMatchObject({
      name: 'sshd settings',
      resource: 'sshd_config',
      args: { settings: { Port: '{{ ssh_port }}' } },
      notify: ['reload sshd'],
      position: { file: FILE, line: 7, column: 7 },
    });
    expect(playbook.plays[0]?.handlers.map((h) => [h.name, h.resource, h.args])).toEqual([
      ['reload sshd', 'service', { name: 'ssh', state: 'reloaded' }],
    ]);
    expect(playbook.plays[1]?.tasks[0]?.notify).toEqual([]);
    expect(playbook.plays[1]?.handlers).toEqual([]);
  });

  it('records the position of every node of the args, relative to the args', () => {
    const task = playbook.plays[0]?.tasks[0];
    expect(task?.argPositions.values.get('')).toEqual({ file: FILE, line: 9, column: 9 });
    expect(task?.argPositions.values.get('/settings/Port')).toEqual({ file: FILE, line: 10, column: 17 });
    expect(task?.argPositions.keys.get('/settings/Port')).toEqual({ file: FILE, line: 10, column: 11 });
    expect(playbook.plays[0]?.handlers[0]?.argPositions.values.get('/state')).toEqual({
      file: FILE,
      line: 14,
      column: 36,
    });
  });
});

describe('parsePlaybook: errors', () => {
  it('reports YAML syntax errors with their position', () => {
    expect(errorsOf(yaml('- hosts: web', '  tasks: [', '    - name: x'))).toEqual([
      'site.yml:3:5: error: Block collections are not allowed within flow collections',
      'site.yml:4:1: error: Flow sequence in block collection must be sufficiently indented and end with a ]',
    ]);
    expect(errorsOf(yaml('- hosts: web', '  hosts: db'))).toEqual([
      'site.yml:2:3: error: Map keys must be unique',
    ]);
  });

  it('reports an alias to an anchor that is never defined', () => {
    expect(errorsOf(yaml('- hosts: web', '  vars: *common'))).toEqual([
      expect.stringMatching(/^site\.yml:2:9: error: Unresolved alias.*common/),
    ]);
  });

  it('reports unknown play keys with the nearest valid key', () => {
    expect(errorsOf(yaml('- hosts: web', '  tsks: []', '  become_user: root'))).toEqual([
      "site.yml:2:3: error: unknown key 'tsks' (did you mean 'tasks'?)",
      "site.yml:3:3: error: unknown key 'become_user'",
    ]);
  });

  it('suggests the resource for an unknown task key close to a resource name, and only that', () => {
    expect(
      errorsOf(
        yaml('- hosts: web', '  tasks:', '    - name: t', '      sshd_confg:', '        settings: {}'),
      ),
    ).toEqual(["site.yml:4:7: error: unknown key 'sshd_confg' (did you mean 'sshd_config'?)"]);
  });

  it('reports a task without a resource key', () => {
    expect(errorsOf(yaml('- hosts: web', '  tasks:', '    - name: nothing to do'))).toEqual([
      "site.yml:3:7: error: task has no resource key (expected one of 'sshd_config', 'service')",
    ]);
  });

  it('reports a task with several resource keys at the second one', () => {
    expect(
      errorsOf(
        yaml(
          '- hosts: web',
          '  tasks:',
          '    - name: two',
          '      service: { name: ssh }',
          '      sshd_config: {}',
        ),
      ),
    ).toEqual([
      "site.yml:5:7: error: task has several resource keys: 'service', 'sshd_config' (a task runs exactly one resource)",
    ]);
  });

  it('reports unknown keys inside resource args at load time, with suggestions', () => {
    expect(
      errorsOf(
        yaml(
          '- hosts: web',
          '  tasks:',
          '    - name: t',
          '      sshd_config:',
          '        setings: { Port: 22 }',
          '  handlers:',
          '    - name: h',
          '      service: { name: ssh, stat: reloaded }',
        ),
      ),
    ).toEqual([
      "site.yml:5:9: error: unknown key 'setings' (did you mean 'settings'?)",
      "site.yml:8:29: error: unknown key 'stat' (did you mean 'state'?)",
    ]);
  });

  it('does not check arg values at load time: they may still be templates', () => {
    const text = yaml(
      '- hosts: web',
      '  tasks:',
      '    - name: t',
      '      service: { name: "{{ unit }}", state: "{{ how }}" }',
    );
    expect(parsePlaybook(text, FILE, resources).plays[0]?.tasks[0]?.args).toEqual({
      name: '{{ unit }}',
      state: '{{ how }}',
    });
  });

  it('reports wrong types at the value', () => {
    expect(
      errorsOf(
        yaml(
          '- hosts: [a]',
          '  become: yes please',
          '  vars: [x]',
          '  tasks:',
          '    - name: t',
          '      service: { name: s }',
          '      notify: 3',
        ),
      ),
    ).toEqual([
      "site.yml:1:10: error: 'hosts' must be a string, got a list",
      'site.yml:2:11: error: \'become\' must be a boolean (true or false), got the string "yes please"',
      "site.yml:3:9: error: 'vars' must be a mapping, got a list",
      "site.yml:7:15: error: 'notify' must be a string or a list, got the number 3",
    ]);
  });

  it('explains that yes/no are strings, not booleans', () => {
    expect(errorsOf(yaml('- hosts: web', '  become: yes'))).toEqual([
      'site.yml:2:11: error: \'become\' must be a boolean (true or false), got the string "yes" (write true or false: in YAML 1.2 this word is a string)',
    ]);
  });

  it('points at the key of an empty value', () => {
    expect(errorsOf(yaml('- hosts: web', '  tasks:'))).toEqual([
      "site.yml:2:3: error: 'tasks' must be a list, got nothing (null)",
    ]);
  });

  it('names plays and tasks that have the wrong type', () => {
    expect(errorsOf(yaml('- hosts: web', '  tasks:', '    - just a string', '- web'))).toEqual([
      'site.yml:3:7: error: task 1 of play 1 must be a mapping, got the string "just a string"',
      'site.yml:4:3: error: play 2 must be a mapping, got the string "web"',
    ]);
    expect(errorsOf(yaml('hosts: web'))).toEqual([
      'site.yml:1:1: error: the playbook must be a list, got a mapping',
    ]);
    expect(errorsOf('')).toEqual(['site.yml:1:1: error: the playbook must be a list, got nothing (null)']);
  });

  it('reports missing required keys at the mapping (a task needs no name, as in Ansible)', () => {
    expect(errorsOf(yaml('- name: no hosts', '  tasks:', '    - service: { name: ssh }'))).toEqual([
      "site.yml:1:3: error: missing required key 'hosts'",
    ]);
    expect(errorsOf(yaml('- hosts: ""'))).toEqual(["site.yml:1:10: error: 'hosts' must not be empty"]);
  });

  it('reports notify naming a handler the play does not define, with the nearest', () => {
    expect(
      errorsOf(
        yaml(
          '- hosts: web', //                                   1
          '  tasks:', //                                       2
          '    - name: a', //                                  3
          '      service: { name: ssh }', //                   4
          '      notify: reload ssh', //                       5
          '    - name: b', //                                  6
          '      service: { name: ssh }', //                   7
          '      notify: [reload sshd, restart the world]', // 8
          '  handlers:', //                                    9
          '    - name: reload sshd', //                        10
          '      service: { name: ssh, state: reloaded }', //  11
          '- hosts: db', //                                    12
          '  tasks:', //                                       13
          '    - name: c', //                                  14
          '      service: { name: ssh }', //                   15
          '      notify: reload sshd', //                      16
        ),
      ),
    ).toEqual([
      "site.yml:5:15: error: notify names handler 'reload ssh', which this play does not define (did you mean 'reload sshd'?)",
      "site.yml:8:29: error: notify names handler 'restart the world', which this play does not define",
      "site.yml:16:15: error: notify names handler 'reload sshd', which this play does not define",
    ]);
  });

  it('reports duplicate handler names', () => {
    expect(
      errorsOf(
        yaml(
          '- hosts: web',
          '  handlers:',
          '    - name: reload sshd',
          '      service: { name: ssh }',
          '    - name: reload sshd',
          '      service: { name: sshd }',
        ),
      ),
    ).toEqual(["site.yml:5:13: error: duplicate handler name 'reload sshd' (first defined on line 3)"]);
  });

  it('reports all errors at once, sorted by position', () => {
    const errors = errorsOf(
      yaml(
        '- hosts: web', //                      1
        '  tasks:', //                          2
        '    - name: t', //                     3
        '      servce: { name: ssh }', //       4
        '      notify: nope', //                5
        '  tsks: []', //                        6
        '- hosts: 3', //                        7
      ),
    );
    expect(errors).toEqual([
      "site.yml:4:7: error: unknown key 'servce' (did you mean 'service'?)",
      "site.yml:5:15: error: notify names handler 'nope', which this play does not define",
      "site.yml:6:3: error: unknown key 'tsks' (did you mean 'tasks'?)",
      "site.yml:7:10: error: 'hosts' must be a string, got the number 3",
    ]);
  });
});

describe('loadPlaybook', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'sshfix-playbook-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads and parses the file, naming it in positions', () => {
    const path = join(dir, 'ok.yml');
    writeFileSync(path, yaml('- hosts: all', '  tasks:', '    - name: t', '      service: { name: ssh }'));
    const playbook = loadPlaybook(path, resources);
    expect(playbook.path).toBe(path);
    expect(playbook.plays[0]?.tasks[0]?.position).toEqual({ file: path, line: 3, column: 7 });
  });

  it('names the file it cannot read', () => {
    const path = join(dir, 'missing.yml');
    expect(() => loadPlaybook(path, resources)).toThrow(`cannot read playbook '${path}'`);
  });
});
