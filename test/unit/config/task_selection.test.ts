import { ConfigError, formatDiagnostic } from '../../../src/config/diagnostics.js';
import { parsePlaybook } from '../../../src/config/playbook.js';
import { parseTagOption, selectTasks, tagsSelectTask } from '../../../src/config/task_selection.js';
import { TEST_RESOURCE_SCHEMAS } from '../../support/resource_schemas.js';

function yaml(...lines: string[]): string {
  return `${lines.join('\n')}\n`;
}

const playbook = parsePlaybook(
  yaml(
    '- name: one',
    '  hosts: web',
    '  tags: ssh',
    '  tasks:',
    '    - name: settings',
    '      sshd_config: { settings: {} }',
    '      tags: config',
    '    - name: always reload',
    '      service: { name: ssh }',
    '      tags: always',
    '    - name: debug only',
    '      service: { name: ssh }',
    '      tags: [never, debug]',
    '  handlers:',
    '    - name: h',
    '      service: { name: ssh }',
    '      tags: never',
    '- name: two',
    '  hosts: db',
    '  tasks:',
    '    - name: plain',
    '      service: { name: ssh }',
  ),
  'site.yml',
  TEST_RESOURCE_SCHEMAS,
);

function selected(options: Parameters<typeof selectTasks>[1]): string[][] {
  return selectTasks(playbook, options).playbook.plays.map((p) => p.tasks.map((t) => t.name));
}

describe('tagsSelectTask (Ansible semantics)', () => {
  it('runs every task but never ones by default', () => {
    expect(tagsSelectTask([], [], [])).toBe(true);
    expect(tagsSelectTask(['x'], [], [])).toBe(true);
    expect(tagsSelectTask(['never'], [], [])).toBe(false);
    expect(tagsSelectTask(['never', 'debug'], ['debug'], [])).toBe(true);
    expect(tagsSelectTask(['never', 'debug'], ['never'], [])).toBe(true);
    expect(tagsSelectTask(['never', 'debug'], ['all'], [])).toBe(false);
  });

  it('runs always tasks unless they are skipped by one of their tags', () => {
    expect(tagsSelectTask(['always'], ['other'], [])).toBe(true);
    expect(tagsSelectTask(['always'], [], ['other'])).toBe(true);
    expect(tagsSelectTask(['always'], [], ['always'])).toBe(false);
    expect(tagsSelectTask(['always'], [], ['all'])).toBe(true);
    expect(tagsSelectTask(['always'], [], ['all', 'always'])).toBe(false);
  });

  it('knows tagged and untagged', () => {
    expect(tagsSelectTask([], ['untagged'], [])).toBe(true);
    expect(tagsSelectTask(['x'], ['untagged'], [])).toBe(false);
    expect(tagsSelectTask(['x'], ['tagged'], [])).toBe(true);
    expect(tagsSelectTask([], ['tagged'], [])).toBe(false);
    expect(tagsSelectTask(['x'], [], ['tagged'])).toBe(false);
    expect(tagsSelectTask([], [], ['tagged'])).toBe(true);
  });

  it('splits tag options at commas', () => {
    expect(parseTagOption(['a,b', ' c ', 'a'])).toEqual(['a', 'b', 'c']);
  });
});

describe('selectTasks', () => {
  it('selects by tags, the play tags included, and leaves handlers alone', () => {
    expect(selected({})).toEqual([['settings', 'always reload'], ['plain']]);
    expect(selected({ tags: ['config'] })).toEqual([['settings', 'always reload'], []]);
    expect(selected({ tags: ['ssh'] })).toEqual([['settings', 'always reload', 'debug only'], []]);
    expect(selected({ tags: ['debug'] })).toEqual([['always reload', 'debug only'], []]);
    expect(selected({ skipTags: ['ssh'] })).toEqual([[], ['plain']]);
    expect(selected({ tags: ['untagged'] })).toEqual([['always reload'], ['plain']]);
    expect(
      selectTasks(playbook, { tags: ['config'] }).playbook.plays[0]!.handlers.map((h) => h.name),
    ).toEqual(['h']);
  });

  it('starts at the named task, across plays', () => {
    expect(selected({ startAtTask: 'always reload' })).toEqual([['always reload'], ['plain']]);
    expect(selected({ startAtTask: 'plain' })).toEqual([[], ['plain']]);
    expect(selected({ startAtTask: 'plain', skipTags: ['always'] })).toEqual([[], ['plain']]);
  });

  it('refuses a start task no task is named, with the nearest name', () => {
    try {
      selectTasks(playbook, { startAtTask: 'setings' });
      throw new Error('expected a refusal');
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      expect(error.diagnostics.map(formatDiagnostic)).toEqual([
        "error: --start-at-task 'setings': no task of site.yml has this name (did you mean 'settings'?)",
      ]);
    }
  });

  it('warns about a tag no task has', () => {
    expect(selectTasks(playbook, { tags: ['confg', 'all'] }).warnings.map(formatDiagnostic)).toEqual([
      "warning: no task of site.yml has tag 'confg' (did you mean 'config'?)",
    ]);
  });
});
