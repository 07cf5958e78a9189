import type { Diagnostic } from '../../../src/config/diagnostics.js';
import { ConfigError } from '../../../src/config/diagnostics.js';
import type { Inventory, InventoryHost } from '../../../src/config/inventory.js';
import { parseInventory } from '../../../src/config/inventory.js';
import { parseIniScalar } from '../../../src/config/inventory_ini.js';

const FILE = 'hosts.ini';

function ini(text: string): Inventory {
  return parseInventory(text, FILE);
}

function host(inventory: Inventory, name: string): InventoryHost {
  const found = inventory.hosts.get(name);
  if (!found) throw new Error(`no host ${name}`);
  return found;
}

/** The own variables of the only host of a one-line inventory. */
function hostLineVars(line: string): Record<string, unknown> {
  const [only] = ini(`${line}\n`).hosts.values();
  if (!only) throw new Error('no host');
  return only.vars;
}

function groupVarsOf(lines: string): Record<string, unknown> {
  return ini(`[g]\n[g:vars]\n${lines}\n`).groups.get('g')?.vars ?? {};
}

function diagnosticsOf(action: () => unknown): Diagnostic[] {
  try {
    action();
  } catch (error) {
    if (error instanceof ConfigError) return error.diagnostics;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

function iniErrors(text: string): string[] {
  return diagnosticsOf(() => ini(text)).map(
    (d) => `${d.position?.file}:${d.position?.line}:${d.position?.column}: ${d.summary}`,
  );
}

describe('INI inventories', () => {
  test('sections, vars, children and hosts before any section', () => {
    const inventory = ini(`
# the fleet
bastion.lan ansible_host=203.0.113.10

[web]
web[01:03].lan http_port=8080
; another comment
[db]
db01.lan
db02.lan:2222

[prod:children]
web
db

[prod:vars]
env = production

[all:vars]
ansible_user=deploy
`);
    expect([...inventory.hosts.keys()]).toEqual([
      'bastion.lan',
      'web01.lan',
      'web02.lan',
      'web03.lan',
      'db01.lan',
      'db02.lan',
    ]);
    expect(host(inventory, 'bastion.lan')).toEqual({
      name: 'bastion.lan',
      vars: { ansible_user: 'deploy', ansible_host: '203.0.113.10' },
      groups: ['all', 'ungrouped'],
      position: { file: FILE, line: 3, column: 1 },
    });
    expect(host(inventory, 'web02.lan')).toEqual({
      name: 'web02.lan',
      vars: { ansible_user: 'deploy', env: 'production', http_port: 8080 },
      groups: ['all', 'prod', 'web'],
      position: { file: FILE, line: 6, column: 1 },
    });
    expect(host(inventory, 'db02.lan').vars).toEqual({
      ansible_user: 'deploy',
      env: 'production',
      ansible_port: 2222,
    });
    expect(inventory.groups.get('prod')).toEqual({
      name: 'prod',
      hosts: [],
      children: ['web', 'db'],
      vars: { env: 'production' },
    });
    expect(inventory.groups.get('all')?.children).toEqual(['ungrouped', 'prod']);
    expect(inventory.groups.get('ungrouped')?.hosts).toEqual(['bastion.lan']);
  });

  test('a host in several sections is one host; later variables win', () => {
    const inventory = ini('[web]\nshared a=1 b=1\n[db]\nshared b=2\ndb01\n');
    expect([...inventory.hosts.keys()]).toEqual(['shared', 'db01']);
    expect(host(inventory, 'shared')).toMatchObject({ vars: { a: 1, b: 2 }, groups: ['all', 'db', 'web'] });
    expect(host(inventory, 'shared').position).toEqual({ file: FILE, line: 2, column: 1 });
  });

  test('sections may repeat and merge, may be declared before use, and [g:hosts] is [g]', () => {
    const inventory = ini('[web:children]\nedge\n[edge]\n[web]\nw1\n[web:hosts]\nw2\n[edge]\ne1\n');
    expect(inventory.groups.get('web')).toMatchObject({ hosts: ['w1', 'w2'], children: ['edge'] });
    expect(host(inventory, 'e1').groups).toEqual(['all', 'web', 'edge']);
  });

  test('hosts in [all] or [ungrouped] are ungrouped', () => {
    const inventory = ini('[all]\na\n[ungrouped]\nb\n[web]\nc\n');
    expect(inventory.groups.get('ungrouped')?.hosts).toEqual(['a', 'b']);
    expect(inventory.groups.get('all')?.hosts).toEqual(['a', 'b', 'c']);
  });

  test('indentation, CRLF line endings, trailing comments and blank lines are fine', () => {
    const inventory = ini(
      '  [web]   # the web tier\r\n\r\n   web01  a=1   # comment\r\n\t; note\r\n[web:vars]\r\n  b = 2\r\n',
    );
    expect(host(inventory, 'web01').vars).toEqual({ a: 1, b: 2 });
    expect(host(inventory, 'web01').position).toEqual({ file: FILE, line: 3, column: 4 });
  });

  test('an empty file is an empty inventory', () => {
    const inventory = ini('');
    expect(inventory.hosts.size).toBe(0);
    expect([...inventory.groups.keys()]).toEqual(['all', 'ungrouped']);
  });

  test('precedence follows group depth like YAML', () => {
    const inventory = ini('[zzz]\nh\n[mmm:children]\naaa\n[aaa]\nh\n[zzz:vars]\nx=zzz\n[aaa:vars]\nx=aaa\n');
    expect(host(inventory, 'h').vars.x).toBe('aaa');
  });

  describe('values on host lines', () => {
    test.each([
      ['h a=22', { a: 22 }],
      ['h a=-3', { a: -3 }],
      ['h a="22"', { a: '22' }],
      ["h a='22'", { a: '22' }],
      ['h a=007', { a: '007' }],
      ['h a=1.5', { a: 1.5 }],
      ['h a=1.10', { a: 1.1 }],
      ['h a=2e3', { a: 2000 }],
      ['h a=True b=False c=None', { a: true, b: false, c: null }],
      ['h a=true b=yes', { a: 'true', b: 'yes' }],
      ['h a=10.20.0.0/16', { a: '10.20.0.0/16' }],
      ['h a="two words"', { a: 'two words' }],
      ["h a='it''s'", { a: 'its' }],
      ['h a=two\\ words', { a: 'two words' }],
      ['h a="say \\"hi\\" \\\\ ok"', { a: 'say "hi" \\ ok' }],
      ["h a='no \\escapes'", { a: 'no \\escapes' }],
      ['h a=b=c', { a: 'b=c' }],
      ['h a=', { a: '' }],
      ['h a=x#y', { a: 'x#y' }],
      ['h a=1 #b=2', { a: 1 }],
      ['h a="#not a comment"', { a: '#not a comment' }],
      ['h a=12345678901234567890', { a: '12345678901234567890' }],
      ['h "a"=1', { a: 1 }],
    ])('%s', (line, expected) => {
      expect(hostLineVars(line)).toEqual(expected);
    });
  });

  describe('values in [group:vars]', () => {
    test.each([
      ['a=1', { a: 1 }],
      ['a = 1', { a: 1 }],
      ['a = some words', { a: 'some words' }],
      ['a = "quoted # not a comment"', { a: 'quoted # not a comment' }],
      ["a = ' padded '", { a: ' padded ' }],
      ['a = "22"', { a: '22' }],
      ['a = value # comment', { a: 'value' }],
      ['a = a#b', { a: 'a#b' }],
      ['a = x=y', { a: 'x=y' }],
      ['a =', { a: '' }],
      ['a = True', { a: true }],
      ['a=1\na=2', { a: 2 }],
    ])('%j', (lines, expected) => {
      expect(groupVarsOf(lines)).toEqual(expected);
    });
  });

  test.each([
    ['0', 0],
    ['-0', -0],
    ['+5', 5],
    ['42', 42],
    ['042', '042'],
    ['3.', 3],
    ['.5', 0.5],
    ['1e-2', 0.01],
    ['-1.5E3', -1500],
    ['1.2.3', '1.2.3'],
    ['0x1f', '0x1f'],
    ['Infinity', 'Infinity'],
    ['NaN', 'NaN'],
    ['none', 'none'],
    ['None', null],
    ['', ''],
  ])('parseIniScalar(%j)', (text, expected) => {
    expect(parseIniScalar(text)).toEqual(expected);
  });
});

describe('INI inventory errors', () => {
  test.each([
    [
      'an unknown section type',
      '[web]\nweb01\n[web:var]\na=1\n',
      "hosts.ini:3:6: unknown section type 'var' in '[web:var]' (did you mean 'vars'?)",
    ],
    ['a section without ]', '[web\nweb01\n', "hosts.ini:1:1: section header '[web' is missing its ']'"],
    [
      'text after a section header',
      '[web] extra\n',
      "hosts.ini:1:7: unexpected text 'extra' after section header",
    ],
    ['a group name with a space', '[web servers]\n', "hosts.ini:1:2: invalid group name 'web servers'"],
    ['an empty group name', '[:vars]\n', "hosts.ini:1:2: invalid group name ''"],
    [
      'a word without =',
      '[web]\nweb01 ansible_port=22 become\n',
      "hosts.ini:2:23: expected key=value after the host name, found 'become'",
    ],
    [
      'an empty key',
      '[web]\n  web01 =x\n',
      "hosts.ini:2:9: expected key=value after the host name, found '=x'",
    ],
    ['an unterminated double quote', '[web]\nweb01 a="x y\n', 'hosts.ini:2:9: unterminated double quote'],
    ['an unterminated single quote', "[web]\nweb01 a=1 b='x\n", 'hosts.ini:2:13: unterminated single quote'],
    [
      'a vars line without =',
      '[web]\n[web:vars]\n  just_a_word\n',
      "hosts.ini:3:3: expected key=value in [web:vars], found 'just_a_word'",
    ],
    [
      'a vars line with an empty key',
      '[web]\n[web:vars]\n= 1\n',
      "hosts.ini:3:1: expected key=value in [web:vars], found '= 1'",
    ],
    [
      'a vars key with a space',
      '[web]\n[web:vars]\na b = 1\n',
      "hosts.ini:3:1: expected key=value in [web:vars], found 'a b = 1'",
    ],
    [
      'text after a quoted vars value',
      '[web]\n[web:vars]\na = "x" y\n',
      "hosts.ini:3:9: unexpected text after the quoted value of 'a'",
    ],
    [
      'an unterminated quote in a vars value',
      '[web]\n[web:vars]\na = "x\n',
      'hosts.ini:3:5: unterminated double quote',
    ],
    [
      'two names on a children line',
      '[a]\n[b]\n[p:children]\na b\n',
      "hosts.ini:4:3: expected one group name per line in [p:children], found 'a b'",
    ],
    [
      'vars for a group that is never defined',
      '[web]\nweb01\n[wbe:vars]\na=1\n',
      "hosts.ini:3:2: [wbe:vars] refers to group 'wbe', which no [wbe] or [wbe:children] section defines (did you mean 'web'?)",
    ],
    [
      'a child group that is never defined',
      '[web]\nweb01\n[prod:children]\nweb\n  dbs\n',
      "hosts.ini:5:3: [prod:children] refers to group 'dbs', which no [dbs] or [dbs:children] section defines",
    ],
    [
      'a group that contains itself',
      '[web:children]\nweb\n',
      "hosts.ini:2:1: making 'web' a child of 'web' creates a loop: web -> web",
    ],
    [
      'a loop through two groups',
      '[a:children]\nb\n[b:children]\na\n',
      "hosts.ini:4:1: making 'a' a child of 'b' creates a loop: a -> b -> a",
    ],
    ['all as a child', '[web:children]\nall\n', "hosts.ini:2:1: group 'all' cannot be a child of 'web'"],
    [
      'a bad host range',
      '[web]\n  web[01:100] a=1\n',
      "hosts.ini:2:6: invalid host range '[01:100]' in 'web[01:100]': zero-padded begin and end must have the same width",
    ],
    ['a host name starting with !', '[web]\n!web01\n', "hosts.ini:2:1: invalid host name '!web01'"],
    [
      'a non-integer group priority',
      '[web]\n[web:vars]\nansible_group_priority=1.5\n',
      "hosts.ini:1:2: group 'web': ansible_group_priority must be an integer, not 1.5",
    ],
  ])('%s', (_name, text, expected) => {
    expect(iniErrors(text)).toEqual([expected]);
  });

  test('lines under a broken section header are not reported again', () => {
    expect(iniErrors('[web:var]\nnot=a host line\n[db]\ndb01 oops\n')).toEqual([
      "hosts.ini:1:6: unknown section type 'var' in '[web:var]' (did you mean 'vars'?)",
      "hosts.ini:4:6: expected key=value after the host name, found 'oops'",
    ]);
  });

  test('every error of the file is reported at once, in line order', () => {
    const error = diagnosticsOf(() => ini('[ghost:vars]\na=1\n[web]\nweb[2:1]\n[web:children]\nx y\n'));
    expect(error.map((d) => d.position?.line)).toEqual([1, 4, 6]);
  });
});
