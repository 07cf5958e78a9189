/**
 * Which hosts a run works on, as Ansible selects them: a warning for every
 * pattern term that matches nothing, an error when no host is left.
 */
import type { SourcePosition } from '../../../src/config/diagnostics.js';
import { parseInventory } from '../../../src/config/inventory.js';
import { selectLimitHosts, selectPlaybookHosts } from '../../../src/config/selection.js';

const inventory = parseInventory(
  `all:
  children:
    web:
      hosts: { web1: null, web2: null }
    db:
      hosts: { db1: null }
    empty: {}
`,
  'hosts.yml',
);
const at = (line: number): SourcePosition => ({ file: 'site.yml', line, column: 3 });
const play = (hosts: string, line = 1) => ({ name: `play ${line}`, hosts, position: at(line) });

describe('selectLimitHosts', () => {
  test('a typo in an exclusion selects the rest, with a warning naming the term', () => {
    expect(selectLimitHosts(inventory, 'web*:!wbe1')).toEqual({
      hosts: ['web1', 'web2'],
      warnings: [
        {
          severity: 'warning',
          summary: "--limit: host pattern '!wbe1' matched no host or group (did you mean 'web1'?)",
        },
      ],
      errors: [],
    });
  });

  test('nothing selected is an error', () => {
    const selection = selectLimitHosts(inventory, 'nomatch');
    expect(selection.hosts).toEqual([]);
    expect(selection.warnings.map((w) => w.summary)).toEqual([
      "--limit: host pattern 'nomatch' matched no host or group",
    ]);
    expect(selection.errors).toEqual([
      { severity: 'error', summary: "no hosts matched: --limit 'nomatch' selects no host of hosts.yml" },
    ]);
    expect(selectLimitHosts(inventory, 'empty').errors).toHaveLength(1);
    expect(selectLimitHosts(parseInventory('', 'none.ini'), undefined).errors).toEqual([
      { severity: 'error', summary: 'no hosts matched: none.ini has no hosts' },
    ]);
  });

  test('a malformed pattern is an error, not "no hosts"', () => {
    expect(selectLimitHosts(inventory, '~(').errors.map((e) => e.summary)).toEqual([
      expect.stringMatching(/^--limit: invalid regular expression in host pattern '~\('/),
    ]);
  });
});

describe('selectPlaybookHosts', () => {
  test('each play, limited, in inventory order; a warning per term that matches nothing', () => {
    const selection = selectPlaybookHosts([play('db:wbe', 1), play('web', 9)], inventory, 'all:!db2');
    expect(selection.playHosts).toEqual([['db1'], ['web1', 'web2']]);
    expect(selection.hosts).toEqual(['web1', 'web2', 'db1']);
    expect(selection.errors).toEqual([]);
    expect(selection.warnings).toEqual([
      {
        severity: 'warning',
        summary: "--limit: host pattern '!db2' matched no host or group (did you mean 'db'?)",
      },
      {
        severity: 'warning',
        summary: "host pattern 'wbe' matched no host or group (did you mean 'web'?)",
        position: at(1),
        detail: "in the hosts of play 'play 1'",
      },
    ]);
  });

  test('no host left for any play is an error, with or without --limit', () => {
    const limited = selectPlaybookHosts([play('web')], inventory, 'db');
    expect(limited.hosts).toEqual([]);
    expect(limited.errors.map((e) => e.summary)).toEqual([
      "no hosts matched: --limit 'db' leaves no host of the plays' host patterns in hosts.yml",
    ]);
    const unlimited = selectPlaybookHosts([play('wbe'), play('empty', 5)], inventory, undefined);
    expect(unlimited.errors.map((e) => e.summary)).toEqual([
      "no hosts matched: the plays' host patterns select no host of hosts.yml",
    ]);
    expect(unlimited.warnings.map((w) => w.summary)).toEqual([
      "host pattern 'wbe' matched no host or group (did you mean 'web'?)",
      "play 'play 5' selects no host",
    ]);
  });

  test('one play with hosts is enough', () => {
    const selection = selectPlaybookHosts([play('wbe'), play('db', 5)], inventory, undefined);
    expect(selection.errors).toEqual([]);
    expect(selection.hosts).toEqual(['db1']);
  });
});
