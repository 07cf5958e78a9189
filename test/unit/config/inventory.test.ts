import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Diagnostic } from '../../../src/config/diagnostics.js';
import { ConfigError } from '../../../src/config/diagnostics.js';
import type { Inventory, InventoryHost } from '../../../src/config/inventory.js';
import {
  connectionVars,
  detectInventoryFormat,
  loadInventory,
  parseAnsibleBoolean,
  parseInventory,
} from '../../../src/config/inventory.js';

const FILE = 'hosts.yml';

function yaml(text: string): Inventory {
  return parseInventory(text, FILE);
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

/** The only diagnostic of a failed parse, as `file:line:column: summary`. */
function yamlError(text: string): string {
  const diagnostics = diagnosticsOf(() => yaml(text));
  expect(diagnostics).toHaveLength(1);
  const [diagnostic] = diagnostics;
  return `${diagnostic?.position?.file}:${diagnostic?.position?.line}:${diagnostic?.position?.column}: ${diagnostic?.summary}`;
}

function host(inventory: Inventory, name: string): InventoryHost {
  const found = inventory.hosts.get(name);
  if (!found) throw new Error(`no host ${name}`);
  return found;
}

describe('YAML inventories', () => {
  test('reads hosts with and without variables under all', () => {
    const inventory = yaml(`
all:
  hosts:
    web01:
    web02: ~
    web03:
      ansible_port: 2201
      tags: [a, b]
`);
    expect([...inventory.hosts.keys()]).toEqual(['web01', 'web02', 'web03']);
    expect(host(inventory, 'web01').vars).toEqual({});
    expect(host(inventory, 'web03').vars).toEqual({ ansible_port: 2201, tags: ['a', 'b'] });
    expect(host(inventory, 'web03').position).toEqual({ file: FILE, line: 6, column: 5 });
  });

  test('nests children to any depth and lists every group a host belongs to', () => {
    const inventory = yaml(`
all:
  children:
    europe:
      children:
        paris:
          children:
            paris_web:
              hosts:
                web01:
`);
    expect(host(inventory, 'web01').groups).toEqual(['all', 'europe', 'paris', 'paris_web']);
    expect(inventory.groups.get('all')?.children).toEqual(['ungrouped', 'europe']);
    expect(inventory.groups.get('europe')?.children).toEqual(['paris']);
    expect(inventory.groups.get('paris')?.children).toEqual(['paris_web']);
    expect(inventory.groups.get('paris_web')?.hosts).toEqual(['web01']);
    expect(inventory.groups.get('paris')?.hosts).toEqual([]);
  });

  test('top-level keys other than all are groups under all', () => {
    const inventory = yaml(`
web:
  hosts:
    web01:
all:
  vars:
    site: lab
db:
  hosts:
    db01:
`);
    expect(inventory.groups.get('all')?.children).toEqual(['ungrouped', 'web', 'db']);
    expect(host(inventory, 'db01').groups).toEqual(['all', 'db']);
    expect(host(inventory, 'web01').vars).toEqual({ site: 'lab' });
  });

  test('a host listed in several groups is one host with the variables of every listing', () => {
    const inventory = yaml(`
all:
  children:
    web:
      hosts:
        shared:
          role: web
          port_a: 1
    db:
      hosts:
        shared:
          role: db
        db01:
`);
    expect([...inventory.hosts.keys()]).toEqual(['shared', 'db01']);
    const shared = host(inventory, 'shared');
    expect(shared.groups).toEqual(['all', 'db', 'web']);
    expect(shared.vars).toEqual({ role: 'db', port_a: 1 });
    expect(shared.position).toEqual({ file: FILE, line: 6, column: 9 });
    expect(inventory.groups.get('web')?.hosts).toEqual(['shared']);
    expect(inventory.groups.get('db')?.hosts).toEqual(['shared', 'db01']);
  });

  test('a group defined in two places is merged', () => {
    const inventory = yaml(`
all:
  children:
    web:
      hosts: { web01: null }
      vars: { a: 1, b: 1 }
web:
  hosts: { web02: null }
  vars: { b: 2 }
`);
    expect(inventory.groups.get('web')).toEqual({
      name: 'web',
      hosts: ['web01', 'web02'],
      children: [],
      vars: { a: 1, b: 2 },
    });
  });

  test('expands host ranges and gives each host the listed variables', () => {
    const inventory = yaml(`
all:
  children:
    web:
      hosts:
        web[01:03].lan:
          http_port: 8080
        db[a:b]:
        node[1:7:3]:
`);
    expect([...inventory.hosts.keys()]).toEqual([
      'web01.lan',
      'web02.lan',
      'web03.lan',
      'dba',
      'dbb',
      'node1',
      'node4',
      'node7',
    ]);
    expect(host(inventory, 'web02.lan').vars).toEqual({ http_port: 8080 });
    expect(host(inventory, 'web03.lan').position).toEqual({ file: FILE, line: 6, column: 9 });
  });

  test('host:port sets ansible_port, and an explicit ansible_port wins', () => {
    const inventory = yaml(`
all:
  hosts:
    jump:2222:
    web[1:2]:2200:
    other:2201:
      ansible_port: 22
`);
    expect(host(inventory, 'jump').vars).toEqual({ ansible_port: 2222 });
    expect(host(inventory, 'web2').vars).toEqual({ ansible_port: 2200 });
    expect(host(inventory, 'other').vars).toEqual({ ansible_port: 22 });
  });

  test('hosts only in all go to ungrouped, and all.hosts lists every host', () => {
    const inventory = yaml(`
all:
  hosts:
    lonely:
    also_in_web:
  children:
    web:
      hosts:
        also_in_web:
        web01:
`);
    expect(inventory.groups.get('ungrouped')?.hosts).toEqual(['lonely']);
    expect(host(inventory, 'lonely').groups).toEqual(['all', 'ungrouped']);
    expect(host(inventory, 'also_in_web').groups).toEqual(['all', 'web']);
    expect(inventory.groups.get('all')?.hosts).toEqual(['lonely', 'also_in_web', 'web01']);
    expect([...inventory.groups.keys()]).toEqual(['all', 'ungrouped', 'web']);
  });

  test('an explicit ungrouped group is the implicit one', () => {
    const inventory = yaml('ungrouped:\n  hosts:\n    solo:\n');
    expect(inventory.groups.get('ungrouped')?.hosts).toEqual(['solo']);
    expect(inventory.groups.get('all')?.children).toEqual(['ungrouped']);
  });

  test('anchors, aliases and merge keys work in variables', () => {
    const inventory = yaml(`
all:
  vars:
    defaults: &defaults
      user: deploy
      port: 22
  hosts:
    web01:
      <<: *defaults
      port: 2222
    web02: *defaults
`);
    expect(host(inventory, 'web01').vars).toMatchObject({ user: 'deploy', port: 2222 });
    expect(host(inventory, 'web02').vars).toMatchObject({ user: 'deploy', port: 22 });
  });

  test('JSON is YAML', () => {
    const inventory = parseInventory('{"all": {"hosts": {"web01": {"x": 1}}}}', 'hosts.json');
    expect(host(inventory, 'web01').vars).toEqual({ x: 1 });
  });

  test('yes and no stay strings (YAML 1.2); 0644 is decimal', () => {
    const inventory = yaml('all:\n  vars:\n    a: yes\n    b: 0644\n    c: true\n  hosts:\n    h:\n');
    expect(host(inventory, 'h').vars).toEqual({ a: 'yes', b: 644, c: true });
  });

  test('numbers as names are read as text', () => {
    const inventory = yaml('all:\n  children:\n    2024:\n      hosts:\n        10.0.0.1:\n        42:\n');
    expect([...inventory.hosts.keys()]).toEqual(['10.0.0.1', '42']);
    expect(host(inventory, '42').groups).toEqual(['all', '2024']);
  });
});

describe('YAML inventory errors', () => {
  test.each([
    [
      'a misspelt key, with a suggestion',
      'all:\n  children:\n    web:\n      host:\n        web01:\n',
      "hosts.yml:4:7: unknown key 'host' in group 'web' (did you mean 'hosts'?)",
    ],
    [
      'vars misspelt',
      'all:\n  var:\n    a: 1\n',
      "hosts.yml:2:3: unknown key 'var' in group 'all' (did you mean 'vars'?)",
    ],
    [
      'children misspelt',
      'all:\n  child:\n    web:\n',
      "hosts.yml:2:3: unknown key 'child' in group 'all' (did you mean 'children'?)",
    ],
    [
      'a host written where a key belongs',
      'web:\n  web01.lan:\n',
      "hosts.yml:2:3: unknown key 'web01.lan' in group 'web'",
    ],
    [
      'bad indentation',
      'all:\n  hosts:\n    a:\n   b: 1\n',
      'hosts.yml:4:4: YAML syntax error: All mapping items must start at the same column',
    ],
    [
      'a duplicate key',
      'all:\n  hosts:\n    a:\n    a:\n',
      'hosts.yml:4:5: YAML syntax error: Map keys must be unique',
    ],
    [
      'a duplicate key after a value',
      'all:\n  hosts:\n    a: {}\n    a:\n',
      'hosts.yml:4:5: YAML syntax error: Map keys',
    ],
    ['tabs', 'all:\n\thosts:\n', 'hosts.yml:2:1: YAML syntax error: Tabs are not allowed as indentation'],
    ['an unclosed flow list', 'all:\n  hosts: [a,\n', 'hosts.yml:3:1: YAML syntax error: '],
    [
      'two documents',
      'all:\n---\nall:\n',
      'hosts.yml:2:1: YAML syntax error: Source contains multiple documents',
    ],
    ['an empty file', '', 'hosts.yml:1:1: the inventory is empty'],
    ['a file of comments', '# nothing yet\n', 'hosts.yml:1:1: the inventory is empty'],
    [
      'a list at the top',
      '\n- web01\n',
      'hosts.yml:2:1: the top level of a YAML inventory must be a mapping of group names (such as "all:"), not a list',
    ],
    [
      'a group that is a list',
      'all:\n  children:\n    web:\n      - web01\n',
      "hosts.yml:4:7: group 'web' must be a mapping with hosts, vars or children, not a list",
    ],
    [
      'a group that is a string',
      'web: web01\n',
      `hosts.yml:1:6: group 'web' must be a mapping with hosts, vars or children, not a string ("web01")`,
    ],
    [
      'hosts written as a list',
      'web:\n  hosts:\n    - web01\n',
      "hosts.yml:3:5: 'hosts' of group 'web' must be a mapping of host names, not a list (write 'web01:' on its own line, not '- web01')",
    ],
    [
      'hosts written as a string',
      'web:\n  hosts: web01\n',
      `hosts.yml:2:10: 'hosts' of group 'web' must be a mapping of host names, not a string ("web01")`,
    ],
    [
      'host variables that are not a mapping',
      'web:\n  hosts:\n    web01: 10.0.0.1\n',
      `hosts.yml:3:12: host 'web01' must map to a mapping of variables or to nothing, not a string ("10.0.0.1")`,
    ],
    [
      'group vars as a list',
      'web:\n  vars:\n    - a=1\n',
      "hosts.yml:3:5: 'vars' of group 'web' must map to a mapping of variables or to nothing, not a list",
    ],
    [
      'children as a list',
      'all:\n  children:\n    - web\n',
      "hosts.yml:3:5: 'children' of group 'all' must be a mapping of group names, not a list",
    ],
    [
      'a group name with a space',
      'all:\n  children:\n    web servers:\n',
      "hosts.yml:3:5: invalid group name 'web servers'",
    ],
    [
      'a group name with a colon',
      "'web:prod':\n  hosts: {}\n",
      "hosts.yml:1:1: invalid group name 'web:prod'",
    ],
    [
      'a host name with a space',
      'web:\n  hosts:\n    web 01:\n',
      "hosts.yml:3:5: invalid host name 'web 01'",
    ],
    [
      'a host name starting with !',
      "web:\n  hosts:\n    '!web01':\n",
      "hosts.yml:3:5: invalid host name '!web01'",
    ],
    [
      'a ranged host name with a space',
      "web:\n  hosts:\n    'w [1:3]':\n",
      "hosts.yml:3:5: invalid host name 'w [1:3]'",
    ],
    ['a null key', 'web:\n  hosts:\n    ? \n', 'hosts.yml:3:7: expected a host name here'],
    [
      'a reversed host range',
      'web:\n  hosts:\n    web[3:1]:\n',
      "hosts.yml:3:8: invalid host range '[3:1]' in 'web[3:1]': begin must not be greater than end",
    ],
    [
      'a range on the second bracket',
      'web:\n  hosts:\n    r[1:2]n[a:]:\n',
      "hosts.yml:3:12: invalid host range '[a:]' in 'r[1:2]n[a:]': the end value is missing",
    ],
    [
      'a group that contains itself',
      'web:\n  children:\n    web:\n',
      "hosts.yml:3:5: making 'web' a child of 'web' creates a loop: web -> web",
    ],
    [
      'a loop through two groups',
      'a:\n  children:\n    b:\n      children:\n        a:\n',
      "hosts.yml:5:9: making 'a' a child of 'b' creates a loop: a -> b -> a",
    ],
    [
      'all as a child',
      'web:\n  children:\n    all:\n',
      "hosts.yml:3:5: group 'all' cannot be a child of 'web'",
    ],
    [
      'a non-integer group priority',
      'all:\n  children:\n    web:\n      vars:\n        ansible_group_priority: high\n',
      `hosts.yml:3:5: group 'web': ansible_group_priority must be an integer, not "high"`,
    ],
  ])('%s', (_name, text, expected) => {
    expect(yamlError(text)).toContain(expected);
  });

  test('reports every error in the file at once, in file order', () => {
    const error = (() => {
      try {
        yaml('web:\n  hosts:\n    ok:\n    bad[2:1]:\n  host:\n    x:\ndb:\n  vars: [1]\n');
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toBe(
      [
        "hosts.yml:4:8: error: invalid host range '[2:1]' in 'bad[2:1]': begin must not be greater than end",
        "hosts.yml:5:3: error: unknown key 'host' in group 'web' (did you mean 'hosts'?)",
        "  a group may only contain hosts, vars and children; list hosts under 'hosts:'",
        "hosts.yml:8:9: error: 'vars' of group 'db' must map to a mapping of variables or to nothing, not a list",
      ].join('\n'),
    );
  });
});

describe('variable precedence', () => {
  test('all < parent group < child group < host', () => {
    const layers = (levels: string[]): unknown => {
      const value = (level: string): string => (levels.includes(level) ? `{ x: ${level} }` : '{}');
      return host(
        yaml(`
all:
  vars: ${value('all')}
  children:
    parent:
      vars: ${value('parent')}
      children:
        child:
          vars: ${value('child')}
          hosts:
            h: ${value('host')}
`),
        'h',
      ).vars.x;
    };
    expect(layers(['all', 'parent', 'child', 'host'])).toBe('host');
    expect(layers(['all', 'parent', 'child'])).toBe('child');
    expect(layers(['all', 'parent'])).toBe('parent');
    expect(layers(['all'])).toBe('all');
    expect(layers(['all', 'host'])).toBe('host');
  });

  test('groups at the same depth apply alphabetically, the later name winning, whatever the file order', () => {
    const inventory = yaml(`
beta:
  vars: { x: beta, only_beta: 1 }
  hosts: { h: null }
alpha:
  vars: { x: alpha, only_alpha: 1 }
  hosts: { h: null }
`);
    expect(host(inventory, 'h').vars).toEqual({ x: 'beta', only_alpha: 1, only_beta: 1 });
    expect(host(inventory, 'h').groups).toEqual(['all', 'alpha', 'beta']);
  });

  test('a deeper group wins over a shallower one whatever the names', () => {
    const inventory = yaml(`
zzz:
  vars: { x: zzz }
  hosts: { h: null }
mmm:
  children:
    aaa:
      vars: { x: aaa }
      hosts: { h: null }
`);
    expect(host(inventory, 'h').vars.x).toBe('aaa');
    expect(host(inventory, 'h').groups).toEqual(['all', 'mmm', 'zzz', 'aaa']);
  });

  test("a group's depth is its longest path from all", () => {
    // 'g' is both a top-level group (depth 1) and a child of 'p' (depth 2): it counts as depth 2,
    // so it beats 'z' (depth 1) although 'z' sorts after it.
    const inventory = yaml(`
g:
  vars: { x: g }
  hosts: { h: null }
z:
  vars: { x: z }
  hosts: { h: null }
p:
  children:
    g:
`);
    expect(host(inventory, 'h').vars.x).toBe('g');
  });

  test('ansible_group_priority orders groups of the same depth', () => {
    const inventory = yaml(`
alpha:
  vars: { x: alpha, ansible_group_priority: 10 }
  hosts: { h: null }
beta:
  vars: { x: beta }
  hosts: { h: null }
`);
    expect(host(inventory, 'h').vars.x).toBe('alpha');
    expect(host(inventory, 'h').groups).toEqual(['all', 'beta', 'alpha']);
  });

  test('dictionaries are replaced, not merged', () => {
    const inventory = yaml(`
all:
  vars: { opts: { a: 1, b: 2 } }
  children:
    web:
      vars: { opts: { a: 9 } }
      hosts: { h: null }
`);
    expect(host(inventory, 'h').vars.opts).toEqual({ a: 9 });
  });

  test("a group's vars are its own, not inherited", () => {
    const inventory = yaml('all:\n  vars: { a: 1 }\n  children:\n    web:\n      vars: { b: 2 }\n');
    expect(inventory.groups.get('web')?.vars).toEqual({ b: 2 });
    expect(inventory.groups.get('all')?.vars).toEqual({ a: 1 });
  });
});

describe('connectionVars', () => {
  const withVars = (vars: Record<string, unknown>): InventoryHost => ({
    name: 'web01',
    vars,
    groups: ['all'],
    position: { file: FILE, line: 7, column: 5 },
  });

  test('defaults: ssh to the host name on port 22, no user, no become', () => {
    expect(connectionVars(withVars({}))).toEqual({
      connection: 'ssh',
      address: 'web01',
      port: 22,
      become: false,
    });
  });

  test('reads every ansible_ variable', () => {
    expect(
      connectionVars(
        withVars({
          ansible_connection: 'ssh',
          ansible_host: '10.0.0.5',
          ansible_port: 2222,
          ansible_user: 'deploy',
          ansible_ssh_private_key_file: '~/.ssh/id_ed25519',
          ansible_password: 'secret',
          ansible_become: true,
          ansible_become_password: 'sudo-secret',
        }),
      ),
    ).toEqual({
      connection: 'ssh',
      address: '10.0.0.5',
      port: 2222,
      user: 'deploy',
      privateKeyFile: '~/.ssh/id_ed25519',
      password: 'secret',
      become: true,
      becomePassword: 'sudo-secret',
    });
  });

  test('reads the names without the ansible_ prefix', () => {
    expect(
      connectionVars(
        withVars({
          connection: 'local',
          host: '10.0.0.6',
          port: '2200',
          user: 'ops',
          ssh_private_key_file: 'key',
          password: 'pw',
          become: 'yes',
          become_password: 'bpw',
        }),
      ),
    ).toEqual({
      connection: 'local',
      address: '10.0.0.6',
      port: 2200,
      user: 'ops',
      privateKeyFile: 'key',
      password: 'pw',
      become: true,
      becomePassword: 'bpw',
    });
  });

  test('reads the older aliases', () => {
    expect(
      connectionVars(
        withVars({
          ansible_ssh_pass: 'pw',
          ansible_become_pass: 'bpw',
          ansible_ssh_host: 'a',
          ansible_ssh_port: 1,
        }),
      ),
    ).toMatchObject({ password: 'pw', becomePassword: 'bpw', address: 'a', port: 1 });
  });

  test('the ansible_ name wins over the short one', () => {
    expect(
      connectionVars(withVars({ port: 1, ansible_port: 2, user: 'a', ansible_user: 'b' })),
    ).toMatchObject({
      port: 2,
      user: 'b',
    });
  });

  test.each([
    ['smart', 'ssh'],
    ['paramiko', 'ssh'],
    ['paramiko_ssh', 'ssh'],
    ['ssh', 'ssh'],
    ['local', 'local'],
  ])('connection %s is %s', (plugin, expected) => {
    expect(connectionVars(withVars({ ansible_connection: plugin })).connection).toBe(expected);
  });

  test.each([
    [true, true],
    ['yes', true],
    ['True', true],
    ['on', true],
    [1, true],
    [false, false],
    ['no', false],
    ['off', false],
    ['0', false],
  ])('become %j is %j', (value, expected) => {
    expect(connectionVars(withVars({ ansible_become: value })).become).toBe(expected);
  });

  test('numbers in text settings become text', () => {
    expect(connectionVars(withVars({ ansible_user: 1000, ansible_password: 123456 }))).toMatchObject({
      user: '1000',
      password: '123456',
    });
  });

  test.each([
    [{ ansible_port: 'abc' }, `host 'web01': ansible_port "abc" is not a port number (1-65535)`],
    [{ port: 0 }, `host 'web01': port 0 is not a port number (1-65535)`],
    [{ ansible_port: 70000 }, `host 'web01': ansible_port 70000 is not a port number (1-65535)`],
    [{ ansible_port: 22.5 }, `host 'web01': ansible_port 22.5 is not a port number (1-65535)`],
    [
      { ansible_connection: 'docker' },
      `host 'web01': ansible_connection "docker" is not a supported connection (ssh, smart, paramiko, local)`,
    ],
    [
      { ansible_become: 'maybe' },
      `host 'web01': ansible_become "maybe" is not a boolean (yes/no/true/false)`,
    ],
    [{ ansible_user: '' }, `host 'web01': ansible_user "" is not a non-empty string`],
    [{ ansible_password: { a: 1 } }, `host 'web01': ansible_password {"a":1} is not a non-empty string`],
    [{ ansible_host: true }, `host 'web01': ansible_host true is not a non-empty string`],
  ])('rejects %j', (vars, summary) => {
    expect(diagnosticsOf(() => connectionVars(withVars(vars)))).toEqual([
      { severity: 'error', summary, position: { file: FILE, line: 7, column: 5 } },
    ]);
  });

  test('works on hosts from an inventory, with group variables', () => {
    const inventory = yaml(
      'all:\n  vars:\n    ansible_user: deploy\n  hosts:\n    db01:\n      ansible_port: 2222\n',
    );
    expect(connectionVars(host(inventory, 'db01'))).toEqual({
      connection: 'ssh',
      address: 'db01',
      port: 2222,
      user: 'deploy',
      become: false,
    });
  });
});

describe('parseAnsibleBoolean', () => {
  const cases: [unknown, boolean | undefined][] = [
    ...['y', 'Yes', 'ON', '1', 'true', 'T', ' yes '].map((word): [string, boolean] => [word, true]),
    ...['n', 'NO', 'off', '0', 'False', 'f'].map((word): [string, boolean] => [word, false]),
    [true, true],
    [false, false],
    [1, true],
    [0, false],
    [2, undefined],
    ['maybe', undefined],
    ['', undefined],
    [null, undefined],
  ];
  test.each(cases)('%j', (value, expected) => {
    expect(parseAnsibleBoolean(value)).toBe(expected);
  });
});

describe('format detection and loading', () => {
  test.each([
    ['hosts.yml', '[web]\n', 'yaml'],
    ['hosts.YAML', '', 'yaml'],
    ['hosts.json', '{}', 'yaml'],
    ['hosts.ini', 'all:\n', 'ini'],
    ['hosts.cfg', 'all:\n', 'ini'],
    ['hosts', '# fleet\nall:\n  hosts:\n', 'yaml'],
    ['hosts', '---\nall:\n', 'yaml'],
    ['hosts', '{"all": {}}', 'yaml'],
    ['hosts', 'web: { hosts: { a: null } }', 'yaml'],
    ['hosts', '; fleet\n[web]\nweb01\n', 'ini'],
    ['hosts', 'web01 ansible_port=22\n', 'ini'],
    ['hosts', 'web01\n', 'ini'],
    ['hosts', 'web01:2222\n', 'ini'],
    ['hosts', '', 'ini'],
  ])('%s containing %j is %s', (path, text, expected) => {
    expect(detectInventoryFormat(text, path)).toBe(expected);
  });

  describe('loadInventory', () => {
    let directory: string;
    beforeAll(() => {
      directory = mkdtempSync(join(tmpdir(), 'sshfix-inventory-'));
    });
    afterAll(() => {
      rmSync(directory, { recursive: true, force: true });
    });

    test('reads YAML and INI files and keeps the path', () => {
      const yamlPath = join(directory, 'fleet.yml');
      const iniPath = join(directory, 'fleet');
      writeFileSync(yamlPath, 'all:\n  hosts:\n    web01:\n');
      writeFileSync(iniPath, '[web]\nweb01 a=1\n');
      expect(loadInventory(yamlPath).path).toBe(yamlPath);
      expect([...loadInventory(yamlPath).hosts.keys()]).toEqual(['web01']);
      expect(loadInventory(iniPath).hosts.get('web01')?.vars).toEqual({ a: 1 });
    });

    test('errors name the file that was read', () => {
      const path = join(directory, 'broken.yml');
      writeFileSync(path, 'all:\n  hostz:\n');
      expect(diagnosticsOf(() => loadInventory(path))[0]?.position).toEqual({
        file: path,
        line: 2,
        column: 3,
      });
    });

    test('a missing file is a ConfigError naming it', () => {
      const path = join(directory, 'missing.yml');
      const [diagnostic] = diagnosticsOf(() => loadInventory(path));
      expect(diagnostic?.summary).toMatch(new RegExp(`^cannot read inventory ${path}: ENOENT`));
    });
  });
});
