import { ConfigError } from '../../../src/config/diagnostics.js';
import {
  evaluatePattern,
  expandHostRange,
  globToRegexSource,
  HostRangeError,
  matchPattern,
  MAX_RANGE_EXPANSION,
  parsePattern,
  splitHostPort,
} from '../../../src/config/host_pattern.js';
import { parseInventory, selectHosts } from '../../../src/config/inventory.js';

describe('expandHostRange', () => {
  test.each([
    ['web01', ['web01']],
    ['web[01:03]', ['web01', 'web02', 'web03']],
    ['web[1:3]', ['web1', 'web2', 'web3']],
    ['web[8:11]', ['web8', 'web9', 'web10', 'web11']],
    ['web[08:11]', ['web08', 'web09', 'web10', 'web11']],
    ['db[a:c]', ['dba', 'dbb', 'dbc']],
    ['db[y:B]', ['dby', 'dbz', 'dbA', 'dbB']],
    ['node[1:10:2]', ['node1', 'node3', 'node5', 'node7', 'node9']],
    ['node[01:10:3]', ['node01', 'node04', 'node07', 'node10']],
    ['db[a:e:2]', ['dba', 'dbc', 'dbe']],
    ['[:2].lan', ['0.lan', '1.lan', '2.lan']],
    ['r[1:2]-n[a:b].lan', ['r1-na.lan', 'r1-nb.lan', 'r2-na.lan', 'r2-nb.lan']],
    ['web[5:5]', ['web5']],
  ])('%s', (name, expected) => {
    expect(expandHostRange(name)).toEqual(expected);
  });

  test('keeps the width of zero-padded ranges across the whole range', () => {
    const hosts = expandHostRange('web[001:120]');
    expect(hosts).toHaveLength(120);
    expect(hosts[0]).toBe('web001');
    expect(hosts[119]).toBe('web120');
  });

  test.each([
    ['web[1:3', 3, "host range in 'web[1:3' is missing its ']'"],
    ['web]1', 3, "unexpected ']' in host name 'web]1'"],
    ['web[1]', 3, 'expected [begin:end] or [begin:end:step]'],
    ['web[1:2:3:4]', 3, 'expected [begin:end] or [begin:end:step]'],
    ['web[1:]', 3, 'the end value is missing'],
    ['web[3:1]', 3, 'begin must not be greater than end'],
    ['web[c:a]', 3, 'begin must not come after end'],
    ['web[01:100]', 3, 'zero-padded begin and end must have the same width'],
    ['web[a:3]', 3, 'begin and end must both be numbers or both letters'],
    ['web[1:3:0]', 3, "the step '0' is not a positive integer"],
    ['web[1:3:x]', 3, "the step 'x' is not a positive integer"],
    ['x[1:2]y[3', 7, "host range in 'x[1:2]y[3' is missing its ']'"],
    ['x[1:2]y[4:3]', 7, 'begin must not be greater than end'],
  ])('rejects %s at offset %i', (name, offset, message) => {
    let caught: unknown;
    try {
      expandHostRange(name);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(HostRangeError);
    expect((caught as HostRangeError).offset).toBe(offset);
    expect((caught as HostRangeError).message).toContain(message);
  });

  test('refuses ranges that would expand to too many hosts', () => {
    expect(() => expandHostRange(`h[0:${MAX_RANGE_EXPANSION}]`)).toThrow(/more than 65536 hosts/);
    expect(() => expandHostRange('h[0:300]-[0:300]')).toThrow(/more than 65536 hosts/);
    expect(expandHostRange(`h[1:${MAX_RANGE_EXPANSION}]`)).toHaveLength(MAX_RANGE_EXPANSION);
  });
});

describe('splitHostPort', () => {
  test.each([
    ['web01:2222', { name: 'web01', port: 2222 }],
    ['web[01:03]:2222', { name: 'web[01:03]', port: 2222 }],
    ['web[01:03]', { name: 'web[01:03]' }],
    ['web01', { name: 'web01' }],
    ['fe80::1', { name: 'fe80::1' }],
    ['2001:db8::22', { name: '2001:db8::22' }],
    ['web:ssh', { name: 'web:ssh' }],
  ])('%s', (text, expected) => {
    expect(splitHostPort(text)).toEqual(expected);
  });
});

describe('globToRegexSource', () => {
  test.each([
    ['web*', 'web01', true],
    ['web*', 'aweb', false],
    ['db?', 'db1', true],
    ['db?', 'db12', false],
    ['d[a-c]01', 'db01', true],
    ['d[!a-c]01', 'db01', false],
    ['d[!a-c]01', 'dx01', true],
    ['web.lan', 'webxlan', false],
    ['a[b', 'a[b', true],
    ['(x)+', '(x)+', true],
  ])('%s against %s', (glob, name, matches) => {
    expect(new RegExp(`^${globToRegexSource(glob)}$`).test(name)).toBe(matches);
  });
});

describe('parsePattern', () => {
  test('splits on , and : and reads operators, matchers and subscripts', () => {
    expect(parsePattern('web:&prod,!web03:db*:~db\\d+:web[1:]:db[-1]')).toEqual([
      { operator: 'union', source: 'web', expression: 'web', matcher: 'name' },
      { operator: 'intersection', source: '&prod', expression: 'prod', matcher: 'name' },
      { operator: 'exclusion', source: '!web03', expression: 'web03', matcher: 'name' },
      { operator: 'union', source: 'db*', expression: 'db*', matcher: 'glob' },
      {
        operator: 'union',
        source: '~db\\d+:web[1:]:db[-1]',
        expression: 'db\\d+:web[1:]:db[-1]',
        matcher: 'regex',
      },
    ]);
  });

  test('a regex term runs to the next comma only', () => {
    expect(parsePattern('~(?:web)0[12],db').map((term) => term.source)).toEqual(['~(?:web)0[12]', 'db']);
  });

  test('subscripts', () => {
    expect(parsePattern('web[0]')[0]).toMatchObject({ expression: 'web', subscript: { index: 0 } });
    expect(parsePattern('web[-2]')[0]).toMatchObject({ subscript: { index: -2 } });
    expect(parsePattern('web[1:3]')[0]).toMatchObject({ subscript: { start: 1, end: 3 } });
    expect(parsePattern('web[1-3]')[0]).toMatchObject({ subscript: { start: 1, end: 3 } });
    expect(parsePattern('web[2:]')[0]).toMatchObject({ subscript: { start: 2, end: undefined } });
    expect(parsePattern('db[ab]')[0]).toEqual({
      operator: 'union',
      source: 'db[ab]',
      expression: 'db[ab]',
      matcher: 'glob',
    });
  });

  test('skips empty terms and surrounding whitespace', () => {
    expect(parsePattern(' web , db: ').map((term) => term.expression)).toEqual(['web', 'db']);
  });

  test.each([
    ['', "host pattern '' is empty"],
    [' , : ', "host pattern ' , : ' is empty"],
    ['web db', "host pattern term 'web db' contains whitespace"],
    ['!', "host pattern term '!' names nothing"],
    ['&~', "host pattern term '&~' names nothing"],
    ['~(web', "invalid regular expression in host pattern '~(web'"],
  ])('rejects %j', (pattern, message) => {
    expect(() => parsePattern(pattern)).toThrow(ConfigError);
    expect(() => parsePattern(pattern)).toThrow(message);
  });
});

describe('matchPattern', () => {
  // Hosts in file order: lonely, web01, web02, web03, db01, db02.
  const inventory = parseInventory(
    `
all:
  hosts:
    lonely:
  children:
    web:
      hosts: { web01: null, web02: null, web03: null }
    db:
      hosts: { db01: null, db02: null }
    prod:
      hosts: { web01: null, web02: null, db01: null }
    staging:
      hosts: { web03: null, db02: null }
    datacenter:
      children: { prod: null, staging: null }
    empty: {}
`,
    'patterns.yml',
  );
  const everyHost = ['lonely', 'web01', 'web02', 'web03', 'db01', 'db02'];

  test.each([
    ['all', everyHost],
    ['*', everyHost],
    ['web', ['web01', 'web02', 'web03']],
    ['datacenter', ['web01', 'web02', 'web03', 'db01', 'db02']],
    ['ungrouped', ['lonely']],
    ['db02', ['db02']],
    ['web*', ['web01', 'web02', 'web03']],
    ['*0?', ['web01', 'web02', 'web03', 'db01', 'db02']],
    ['d[a-c]01', ['db01']],
    ['st*', ['web03', 'db02']],
    ['~web0[12]', ['web01', 'web02']],
    ['~eb', []],
    ['~.*b0[13]', ['web01', 'web03', 'db01']],
    ['~st', ['web03', 'db02']],
  ])('one term: %s', (pattern, expected) => {
    expect(matchPattern(inventory, pattern)).toEqual(expected);
  });

  test.each([
    ['db:web', ['web01', 'web02', 'web03', 'db01', 'db02']],
    ['db,web', ['web01', 'web02', 'web03', 'db01', 'db02']],
    ['db02,lonely,db02,db', ['lonely', 'db01', 'db02']],
    ['web:&prod', ['web01', 'web02']],
    ['all:&web:&staging', ['web03']],
    ['all:!web', ['lonely', 'db01', 'db02']],
    ['web,db:!prod:!db02', ['web03']],
    ['prod:&web:!web02', ['web01']],
    ['~(?:web|db)0[12],lonely:!web02', ['lonely', 'web01', 'db01', 'db02']],
    ['web*:&st*', ['web03']],
  ])('combined: %s', (pattern, expected) => {
    expect(matchPattern(inventory, pattern)).toEqual(expected);
  });

  test('unions come first, then intersections, then exclusions, whatever the written order', () => {
    const expected = ['web01', 'web02'];
    expect(matchPattern(inventory, 'prod:&web:!db')).toEqual(expected);
    expect(matchPattern(inventory, '!db:prod:&web')).toEqual(expected);
    expect(matchPattern(inventory, '&web:!db:prod')).toEqual(expected);
    // A union written after an exclusion does not bring the excluded hosts back.
    expect(matchPattern(inventory, 'web:!web01:web01')).toEqual(['web02', 'web03']);
  });

  test('a pattern with only intersections or exclusions starts from all hosts', () => {
    expect(matchPattern(inventory, '!web')).toEqual(['lonely', 'db01', 'db02']);
    expect(matchPattern(inventory, '&staging')).toEqual(['web03', 'db02']);
    expect(matchPattern(inventory, '!web:!db')).toEqual(['lonely']);
  });

  test.each([
    ['web[0]', ['web01']],
    ['web[-1]', ['web03']],
    ['web[0:1]', ['web01', 'web02']],
    ['web[1:]', ['web02', 'web03']],
    ['all[1:2]', ['web01', 'web02']],
    ['web[7]', []],
    ['all:!web[0]', ['lonely', 'web02', 'web03', 'db01', 'db02']],
  ])('subscripts apply to the hosts a term matched, in inventory order: %s', (pattern, expected) => {
    expect(matchPattern(inventory, pattern)).toEqual(expected);
  });

  test('a name that matches nothing selects nothing and warns, suggesting a close name', () => {
    expect(evaluatePattern(inventory, 'wbe')).toEqual({
      hosts: [],
      warnings: [
        { severity: 'warning', summary: "host pattern 'wbe' matched no host or group (did you mean 'web'?)" },
      ],
    });
    const selection = evaluatePattern(inventory, 'db:!nosuchthing:&qqq*');
    expect(selection.hosts).toEqual([]);
    expect(selection.warnings.map((warning) => warning.summary)).toEqual([
      "host pattern '&qqq*' matched no host or group",
      "host pattern '!nosuchthing' matched no host or group",
    ]);
  });

  test('an existing group without hosts selects nothing without a warning', () => {
    expect(evaluatePattern(inventory, 'empty')).toEqual({ hosts: [], warnings: [] });
  });

  test('selectHosts is matchPattern', () => {
    expect(selectHosts(inventory, 'db:&staging')).toEqual(['db02']);
  });

  test('a name that is both a host and a group selects both', () => {
    const shared = parseInventory(
      'all:\n  hosts: { web: null, db01: null }\n  children:\n    web:\n      hosts: { web01: null }\n',
      'x.yml',
    );
    expect(matchPattern(shared, 'web')).toEqual(['web', 'web01']);
    expect(matchPattern(shared, '!web')).toEqual(['db01']);
  });
});
