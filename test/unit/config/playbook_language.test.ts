import path from 'node:path';
import { ConfigError, formatDiagnostic } from '../../../src/config/diagnostics.js';
import { parsePlaybook, taskDisplayName, tagList } from '../../../src/config/playbook.js';
import { FQCN_ALIASES } from '../../../src/config/schema.js';
import { TEST_RESOURCE_SCHEMAS } from '../../support/resource_schemas.js';

const FILE = 'site.yml';
const resources = TEST_RESOURCE_SCHEMAS;

function yaml(...lines: string[]): string {
  return `${lines.join('\n')}\n`;
}

/** A playbook's files in memory, for import_playbook: keyed by the path the loader asks for. */
function filesReader(files: Record<string, string>): (file: string) => string {
  return (file) => {
    const text = files[path.normalize(file)];
    if (text === undefined) throw new Error(`ENOENT: no such file or directory, open '${file}'`);
    return text;
  };
}

function errorsOf(text: string, files: Record<string, string> = {}): string[] {
  try {
    parsePlaybook(text, FILE, resources, { readFile: filesReader(files) });
  } catch (error) {
    if (error instanceof ConfigError) return error.diagnostics.map(formatDiagnostic);
    throw error;
  }
  throw new Error('expected the playbook to be rejected');
}

describe('nameless tasks', () => {
  it('are named after their resource and arguments, as Ansible shows them', () => {
    const playbook = parsePlaybook(
      yaml(
        '- hosts: web',
        '  tasks:',
        '    - sshd_config: { settings: { PasswordAuthentication: "no" } }',
        '    - service: { name: ssh, state: reloaded }',
        '      no_log: true',
      ),
      FILE,
      resources,
    );
    expect(playbook.plays[0]!.tasks.map((t) => [t.name, t.resource])).toEqual([
      ['sshd_config: settings={PasswordAuthentication: no}', 'sshd_config'],
      ['service', 'service'],
    ]);
  });

  it('shorten a long argument summary', () => {
    const name = taskDisplayName('service', { name: 'x'.repeat(100) }, false);
    expect(name.length).toBeLessThan(80);
    expect(name.startsWith('service: name=xxx')).toBe(true);
    expect(name.endsWith('…')).toBe(true);
  });
});

describe('FQCN aliases', () => {
  it('name the resource whose arguments match the Ansible module', () => {
    expect(FQCN_ALIASES['ansible.builtin.service']).toBe('service');
    const playbook = parsePlaybook(
      yaml(
        '- hosts: web',
        '  tasks:',
        '    - ansible.builtin.service: { name: ssh, state: reloaded }',
        '    - name: named',
        '      ansible.builtin.service: { name: ssh }',
      ),
      FILE,
      resources,
    );
    expect(playbook.plays[0]!.tasks.map((t) => [t.name, t.resource, t.args])).toEqual([
      ['ansible.builtin.service: name=ssh state=reloaded', 'service', { name: 'ssh', state: 'reloaded' }],
      ['named', 'service', { name: 'ssh' }],
    ]);
  });

  it('have their arguments checked as the resource, and count as its resource key', () => {
    expect(
      errorsOf(
        yaml(
          '- hosts: web',
          '  tasks:',
          '    - ansible.builtin.service: { name: ssh, enabled: true }',
          '    - service: { name: ssh }',
          '      ansible.builtin.service: { name: ssh }',
        ),
      ),
    ).toEqual([
      "site.yml:3:45: error: unknown key 'enabled'",
      "site.yml:5:7: error: task has several resource keys: 'service', 'ansible.builtin.service' (a task runs exactly one resource)",
    ]);
  });

  it('are not made up for modules sshfix does not match', () => {
    expect(errorsOf(yaml('- hosts: web', '  tasks:', '    - ansible.builtin.copy: { dest: /x }'))).toEqual([
      "site.yml:3:7: error: unknown key 'ansible.builtin.copy': no resource of sshfix does what this Ansible module does (FQCN aliases: 'ansible.builtin.service', 'ansible.builtin.template')",
    ]);
  });
});

describe('tags, check_mode and become', () => {
  const playbook = parsePlaybook(
    yaml(
      '- hosts: web', //                                1
      '  tags: [ssh]', //                               2
      '  become: true', //                              3
      '  tasks:', //                                    4
      '    - name: a', //                               5
      '      service: { name: ssh }', //                6
      '      tags: reload, ssh , quick', //             7
      '      check_mode: true', //                      8
      '      become: false', //                         9
      '    - name: b', //                               10
      '      service: { name: ssh }', //                11
    ),
    FILE,
    resources,
  );

  it('give tasks their own tags and the play tags, each once', () => {
    expect(playbook.plays[0]!.tags).toEqual(['ssh']);
    expect(playbook.plays[0]!.tasks.map((t) => t.tags)).toEqual([['ssh', 'reload', 'quick'], ['ssh']]);
    expect(tagList('a,, b ')).toEqual(['a', 'b']);
  });

  it('keep check_mode and a task-level become', () => {
    expect(playbook.plays[0]!.tasks.map((t) => [t.checkMode, t.become])).toEqual([
      [true, false],
      [false, undefined],
    ]);
  });

  it('report wrong types at the value', () => {
    expect(
      errorsOf(
        yaml(
          '- hosts: web',
          '  tags: 7',
          '  tasks:',
          '    - service: { name: ssh }',
          '      tags: [ok, 3]',
          '      check_mode: yes',
          '      become: "true"',
        ),
      ),
    ).toEqual([
      "site.yml:2:9: error: 'tags' must be a string or a list, got the number 7",
      "site.yml:5:18: error: item 2 of 'tags' must be a string, got the number 3",
      'site.yml:6:19: error: \'check_mode\' must be a boolean (true or false), got the string "yes" (write true or false: in YAML 1.2 this word is a string)',
      'site.yml:7:15: error: \'become\' must be a boolean (true or false), got the string "true"',
    ]);
  });
});

describe('handlers listen', () => {
  it('notify reaches the handler of that name and every handler listening to it, each once', () => {
    const playbook = parsePlaybook(
      yaml(
        '- hosts: web',
        '  tasks:',
        '    - name: a',
        '      service: { name: ssh }',
        '      notify: [restart ssh stack, reload sshd]',
        '  handlers:',
        '    - name: reload sshd',
        '      service: { name: ssh, state: reloaded }',
        '      listen: restart ssh stack',
        '    - service: { name: fail2ban, state: restarted }',
        '      listen: [restart ssh stack]',
      ),
      FILE,
      resources,
    );
    const play = playbook.plays[0]!;
    expect(play.handlers.map((h) => [h.name, h.listen])).toEqual([
      ['reload sshd', ['restart ssh stack']],
      ['service: name=fail2ban state=restarted', ['restart ssh stack']],
    ]);
    expect(play.tasks[0]!.notify).toEqual(['reload sshd', 'service: name=fail2ban state=restarted']);
  });

  it('reports a notify matching no name or topic, listen on a task, and a handler nothing can notify', () => {
    expect(
      errorsOf(
        yaml(
          '- hosts: web', //                              1
          '  tasks:', //                                  2
          '    - name: a', //                             3
          '      service: { name: ssh }', //              4
          '      notify: restart ssh stak', //            5
          '      listen: x', //                           6
          '  handlers:', //                               7
          '    - service: { name: ssh }', //              8
          '      listen: restart ssh stack', //           9
          '    - service: { name: fail2ban }', //         10
        ),
      ),
    ).toEqual([
      "site.yml:5:15: error: notify names handler 'restart ssh stak', which this play does not define (did you mean 'restart ssh stack'?)",
      "site.yml:6:7: error: 'listen' applies to handlers only: a task is notified by nothing",
      "site.yml:10:7: error: handler has neither 'name' nor 'listen': nothing can notify it",
    ]);
  });
});

describe('import_playbook', () => {
  const base = yaml('- hosts: db', '  tasks:', '    - service: { name: ssh }');

  it('puts the imported plays in place, found relative to the importing file, with the import tags', () => {
    const files = {
      [path.normalize('plays/base.yml')]: yaml('- import_playbook: ../common/base.yml', '  tags: common'),
      [path.normalize('common/base.yml')]: base,
    };
    const playbook = parsePlaybook(
      yaml(
        '- hosts: web',
        '  tasks: []',
        '- import_playbook: plays/base.yml',
        '  tags: [imported]',
        '- hosts: all',
      ),
      FILE,
      resources,
      { readFile: filesReader(files) },
    );
    expect(playbook.plays.map((p) => [p.hosts, p.position.file, p.tags])).toEqual([
      ['web', FILE, []],
      ['db', path.normalize('common/base.yml'), ['imported', 'common']],
      ['all', FILE, []],
    ]);
    expect(playbook.plays[1]!.tasks[0]!.tags).toEqual(['imported', 'common']);
  });

  it('reports mistakes of the imported file at its own file:line:column, with those of the importer', () => {
    const files = {
      'bad.yml': yaml('- hosts: db', '  tasks:', '    - service: { name: ssh, stat: reloaded }'),
    };
    expect(errorsOf(yaml('- import_playbook: bad.yml', '  tagz: x', '- hosts: ""'), files)).toEqual([
      "bad.yml:3:29: error: unknown key 'stat' (did you mean 'state'?)",
      "site.yml:2:3: error: unknown key 'tagz' (did you mean 'tags'?)",
      "site.yml:3:10: error: 'hosts' must not be empty",
    ]);
  });

  it('names an unreadable imported file at the import', () => {
    expect(errorsOf(yaml('- import_playbook: missing.yml'))).toEqual([
      "site.yml:1:20: error: cannot read imported playbook 'missing.yml': ENOENT: no such file or directory, open 'missing.yml'",
    ]);
  });

  it('refuses a cycle, naming the files that make it', () => {
    const files = {
      'a.yml': yaml('- import_playbook: b.yml'),
      'b.yml': yaml('- hosts: web', '- import_playbook: site.yml'),
    };
    expect(errorsOf(yaml('- import_playbook: a.yml'), files)).toEqual([
      "b.yml:2:20: error: import_playbook 'site.yml' makes a cycle (site.yml → a.yml → b.yml → site.yml): a playbook cannot import itself",
    ]);
    expect(errorsOf(yaml('- import_playbook: site.yml'))).toEqual([
      "site.yml:1:20: error: import_playbook 'site.yml' makes a cycle (site.yml → site.yml): a playbook cannot import itself",
    ]);
  });

  it('reports YAML syntax errors of the imported file in that file', () => {
    const files = { 'broken.yml': '- hosts: [web\n' };
    const [first] = errorsOf(yaml('- import_playbook: broken.yml'), files);
    expect(first).toMatch(/^broken\.yml:\d+:\d+: error: /);
  });
});
