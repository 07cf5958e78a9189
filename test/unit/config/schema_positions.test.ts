/**
 * Positions of task arguments: each task sees the positions of its own
 * arguments, re-rooted at them, and nothing of its neighbours'. How long it
 * takes is measured by bench/validate.mjs, not here.
 */
import { ConfigError, formatDiagnostic, type SourcePosition } from '../../../src/config/diagnostics.js';
import { parsePlaybook } from '../../../src/config/playbook.js';
import { positionAt, subPositionMap, type SourcePositionMap } from '../../../src/config/schema.js';
import { TEST_RESOURCE_SCHEMAS } from '../../support/resource_schemas.js';

const FILE = 'many.yml';
const TASKS = 12;

/** Task i (0-based) starts on line 4 + 5 * i; task 10 alone sets Port, task 11 has an unknown key on line 63. */
function manyTasks(): string {
  const lines = ['- name: many', '  hosts: all', '  tasks:'];
  for (let i = 0; i < TASKS; i++) {
    lines.push(
      `    - name: task ${i}`,
      '      sshd_config:',
      '        settings:',
      i === 10 ? '          Port: 2222' : `          MaxAuthTries: ${i + 1}`,
      i === 11 ? '        setings: {}' : '          MaxSessions: 5',
    );
  }
  return `${lines.join('\n')}\n`;
}

const at = (line: number, column: number): SourcePosition => ({ file: FILE, line, column });

describe('argument positions of many tasks', () => {
  const text = manyTasks();

  test('each task finds its own arguments, task 1 nothing of task 10 or 11', () => {
    const valid = text.replace('        setings: {}', '          MaxSessions: 5');
    const tasks = parsePlaybook(valid, FILE, TEST_RESOURCE_SCHEMAS).plays[0]!.tasks;
    expect(tasks).toHaveLength(TASKS);
    tasks.forEach((task, i) => {
      const first = 4 + 5 * i;
      const key = i === 10 ? '/settings/Port' : '/settings/MaxAuthTries';
      expect(task.argPositions.values.get('')).toEqual(at(first + 2, 9));
      expect(task.argPositions.keys.get('/settings')).toEqual(at(first + 2, 9));
      expect(task.argPositions.keys.get(key)).toEqual(at(first + 3, 11));
      expect(task.argPositions.values.get(key)).toEqual(at(first + 3, i === 10 ? 17 : 25));
      expect(task.argPositions.values.get('/settings/MaxSessions')).toEqual(at(first + 4, 24));
      // A value made by a template has no node: it falls back to its nearest ancestor.
      expect(positionAt(task.argPositions, '/settings/Rendered/0')).toEqual(at(first + 3, 11));
    });
    // "/0/tasks/1/sshd_config" is a prefix of "/0/tasks/10/sshd_config" as a string, not as a pointer.
    expect(tasks[1]!.argPositions.values.get('/settings/Port')).toBeUndefined();
    expect(tasks[1]!.argPositions.values.get('0/sshd_config/settings/Port')).toBeUndefined();
    expect(tasks[10]!.argPositions.values.get('/settings/MaxAuthTries')).toBeUndefined();
  });

  test('an unknown argument key in the last task is reported at its own line', () => {
    let messages: string[] = [];
    try {
      parsePlaybook(text, FILE, TEST_RESOURCE_SCHEMAS);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      messages = error.diagnostics.map(formatDiagnostic);
    }
    expect(messages).toEqual([`${FILE}:63:9: error: unknown key 'setings' (did you mean 'settings'?)`]);
  });
});

describe('subPositionMap', () => {
  /** A document's map that refuses to be walked: re-rooting must look up, not scan. */
  function unwalkable(entries: [string, SourcePosition][]): Map<string, SourcePosition> {
    const map = new Map(entries);
    const refuse = () => {
      throw new Error('the whole document was scanned');
    };
    return Object.assign(map, { [Symbol.iterator]: refuse, entries: refuse, forEach: refuse, keys: refuse });
  }

  test('reads only the pointers asked for, so re-rooting every task of a playbook stays linear', () => {
    const map: SourcePositionMap = {
      values: unwalkable([
        ['/0/tasks/1/file', at(5, 9)],
        ['/0/tasks/1/file/dest', at(6, 15)],
        ['/0/tasks/10/file/dest', at(60, 15)],
      ]),
      keys: unwalkable([['/0/tasks/1/file/dest', at(6, 9)]]),
    };
    const sub = subPositionMap(map, '/0/tasks/1/file');
    expect(sub.values.get('')).toEqual(at(5, 9));
    expect(sub.values.get('/dest')).toEqual(at(6, 15));
    expect(sub.keys.get('/dest')).toEqual(at(6, 9));
    expect(sub.keys.has('/dest')).toBe(true);
    expect(sub.values.has('/mode')).toBe(false);
    expect(positionAt(sub, '/mode', 'key')).toEqual(at(5, 9));
    expect(subPositionMap(sub, '/dest').values.get('')).toEqual(at(6, 15));
  });
});
