import fc from 'fast-check';
import { ConfigError, formatDiagnostic } from '../../../src/config/diagnostics.js';
import type { SourcePosition } from '../../../src/config/diagnostics.js';
import {
  compareLooseVersions,
  evaluateCondition,
  referencedNames,
  renderString,
  templateProblem,
} from '../../../src/config/template.js';

const AT: SourcePosition = { file: 'site.yml', line: 12, column: 17 };

function renderErrors(template: string, vars: Record<string, unknown>, position?: SourcePosition): string[] {
  try {
    renderString(template, vars, position);
  } catch (error) {
    if (error instanceof ConfigError) return error.diagnostics.map(formatDiagnostic);
    throw error;
  }
  throw new Error(`expected ${JSON.stringify(template)} to fail`);
}

describe('renderString', () => {
  const vars = {
    admin_network: '10.0.0.0/8',
    port: 2222,
    users: ['alice', 'bob'],
    net: { cidr: '192.168.1.0/24', gateways: { v4: '192.168.1.1' } },
    enabled: false,
    nothing: null,
  };

  it('renders variables inside longer strings, with or without spaces in the braces', () => {
    expect(renderString('from {{ admin_network }} on port {{port}}', vars)).toBe(
      'from 10.0.0.0/8 on port 2222',
    );
  });

  it('yields the raw value when the string is exactly one expression', () => {
    expect(renderString('{{ port }}', vars)).toBe(2222);
    expect(renderString('{{ users }}', vars)).toEqual(['alice', 'bob']);
    expect(renderString('{{ enabled }}', vars)).toBe(false);
    expect(renderString('{{ nothing }}', vars)).toBeNull();
    expect(renderString('{{ net }}', vars)).toEqual(vars.net);
  });

  it('returns a copy of a raw value, so the variables cannot be changed through it', () => {
    const users = renderString('{{ users }}', vars) as string[];
    users.push('mallory');
    expect(vars.users).toEqual(['alice', 'bob']);
  });

  it('follows dotted paths', () => {
    expect(renderString('{{ net.cidr }}', vars)).toBe('192.168.1.0/24');
    expect(renderString('via {{ net.gateways.v4 }}', vars)).toBe('via 192.168.1.1');
  });

  it('keeps a trailing newline, as Ansible does', () => {
    expect(renderString('token={{ port }}\n', vars)).toBe('token=2222\n');
    expect(renderString('{{ port }}\n', vars)).toBe('2222\n');
    // trim_blocks, as Ansible: the newline after a block tag goes.
    expect(renderString('{% if port %}a{% endif %}\n', vars)).toBe('a');
    expect(renderString('{% if port %}\na\n{% endif %}\nb\n', vars)).toBe('a\nb\n');
  });

  it('does not HTML-escape', () => {
    const text = `<a href="x">&'</a>`;
    expect(renderString('[{{ text }}]', { text })).toBe(`[${text}]`);
  });

  it('does not render what a variable contains', () => {
    expect(renderString('{{ a }}', { a: '{{ b }}', b: 'secret' })).toBe('{{ b }}');
    expect(renderString('x {{ a }}', { a: '{{ b }}', b: 'secret' })).toBe('x {{ b }}');
  });

  it('supports Jinja blocks', () => {
    expect(renderString('{% for user in users %}{{ user }} {% endfor %}', vars)).toBe('alice bob ');
  });

  it('reports an undefined variable at the string, suggesting the nearest defined one', () => {
    expect(renderErrors('{{ admin_net }}', vars, AT)).toEqual([
      "site.yml:12:17: error: undefined variable 'admin_net' (did you mean 'admin_network'?)",
    ]);
    expect(renderErrors('allow {{ prot }}', vars, AT)).toEqual([
      "site.yml:12:17: error: undefined variable 'prot' (did you mean 'port'?)",
    ]);
    expect(renderErrors('{{ zzz }}', vars)).toEqual(["error: undefined variable 'zzz'"]);
  });

  it('reports an undefined part of a dotted path, suggesting a sibling', () => {
    expect(renderErrors('{{ net.cdir }}', vars, AT)).toEqual([
      "site.yml:12:17: error: undefined variable 'net.cdir' (did you mean 'net.cidr'?)",
    ]);
    expect(renderErrors('{{ port.number }}', vars, AT)).toEqual([
      "site.yml:12:17: error: undefined variable 'port.number'",
    ]);
  });

  it('does not see inherited properties as variables', () => {
    expect(renderErrors('{{ constructor }}', {}, AT)).toEqual([
      "site.yml:12:17: error: undefined variable 'constructor'",
    ]);
  });

  it('reports an undefined variable inside a block', () => {
    expect(renderErrors('{% if port %}{{ admin_net }}{% endif %}', vars, AT)).toEqual([
      "site.yml:12:17: error: undefined variable 'admin_net' (did you mean 'admin_network'?)",
    ]);
  });

  it('refuses to paste a list or mapping into a longer string', () => {
    expect(renderErrors('AllowUsers {{ users }}', vars, AT)).toEqual([
      "site.yml:12:17: error: variable 'users' is a list and cannot be part of a longer string\n" +
        '  Write "{{ users }}" alone to pass a list.',
    ]);
  });

  it('reports template syntax errors at the string', () => {
    expect(renderErrors('a {{ x }', vars, AT)).toEqual([
      'site.yml:12:17: error: invalid template: Expected closing expression token',
    ]);
    // Cached templates report the same error each time.
    expect(renderErrors('a {{ x }', vars, AT)).toHaveLength(1);
  });

  it('renders any string without "{{", "{%" or "{#" to itself', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme' }).filter((s) => !/\{[{%#]/.test(s)),
        (text) => renderString(text, vars) === text,
      ),
    );
  });

  it('renders text around a plain variable unchanged', () => {
    fc.assert(
      fc.property(
        fc.string().filter((s) => !s.includes('{') && !s.includes('}') && !s.includes('\\')),
        fc.string().filter((s) => !s.includes('{') && !s.includes('}') && !s.includes('\\')),
        (before, after) =>
          renderString(`${before}{{ admin_network }}${after}`, vars) === `${before}10.0.0.0/8${after}`,
      ),
    );
  });
});

describe('Jinja as Ansible users type it', () => {
  const vars = {
    port: 2222,
    nets: ['10.0.0.0/8', '192.168.0.0/16'],
    flag: 'yes',
    sshd_version: '9.2p1',
    probe: { changed: false, failed: true, skipped: false, msg: 'no such unit' },
  };

  it('applies default to undefined variables and paths only', () => {
    expect(renderString("{{ missing | default('x') }}", vars)).toBe('x');
    expect(renderString("{{ missing.deeper | default('x') }}", vars)).toBe('x');
    expect(renderString('{{ port | default(22) }}', vars)).toBe(2222);
    expect(renderString("{{ missing | d('y') }}", vars)).toBe('y');
  });

  it('knows bool, int, join and ternary', () => {
    expect(renderString('{{ flag | bool }}', vars)).toBe(true);
    expect(renderString("{{ 'off' | bool }}", vars)).toBe(false);
    expect(renderString("{{ '22' | int + 1 }}", vars)).toBe(23);
    expect(renderString("AllowFrom {{ nets | join(' ') }}", vars)).toBe(
      'AllowFrom 10.0.0.0/8 192.168.0.0/16',
    );
    expect(renderString("{{ (port > 1024) | ternary('high', 'low') }}", vars)).toBe('high');
  });

  it('evaluates conditions with and/or/not, in, tests and comparisons', () => {
    expect(evaluateCondition('port == 2222 and not (flag | bool) == false', vars)).toBe(true);
    expect(evaluateCondition("'10.0.0.0/8' in nets", vars)).toBe(true);
    expect(evaluateCondition('missing is defined', vars)).toBe(false);
    expect(evaluateCondition('missing is undefined or missing > 1', vars)).toBe(true);
    expect(evaluateCondition('nets', vars)).toBe(true);
    expect(evaluateCondition('[]', vars)).toBe(false);
  });

  it('reads registered results with succeeded/failed/changed/skipped', () => {
    expect(evaluateCondition('probe is failed', vars)).toBe(true);
    expect(evaluateCondition('probe is succeeded', vars)).toBe(false);
    expect(evaluateCondition('probe is not changed', vars)).toBe(true);
    expect(evaluateCondition('probe is skipped', vars)).toBe(false);
    expect(evaluateCondition("probe.msg == 'no such unit'", vars)).toBe(true);
  });

  it('compares versions loosely, as the version test does', () => {
    expect(evaluateCondition("sshd_version is version('9.8', '<')", vars)).toBe(true);
    expect(evaluateCondition("sshd_version is version('9.8', '>=')", vars)).toBe(false);
    expect(evaluateCondition("sshd_version is not version('9.2', '<')", vars)).toBe(true);
    expect(evaluateCondition("'10.0p1' is version('9.9', 'gt')", vars)).toBe(true);
    expect(compareLooseVersions('9.2p1', '9.2')).toBeGreaterThan(0);
    expect(compareLooseVersions('9.2p1', '9.8')).toBeLessThan(0);
  });

  it('reports an undefined variable in a condition with a suggestion', () => {
    expect(() => evaluateCondition('prot == 22', vars)).toThrow(
      "undefined variable 'prot' (did you mean 'port'?)",
    );
    expect(() => evaluateCondition('probe.fialed', vars)).toThrow(
      "undefined variable 'probe.fialed' (did you mean 'probe.failed'?)",
    );
  });

  it('finds syntax errors and unknown filters and tests before any variable is known', () => {
    expect(templateProblem('port ==', 'expression')).toMatch(/^invalid condition: /);
    expect(templateProblem("x | defualt('y')", 'expression')).toBe(
      "unknown filter 'defualt' (did you mean 'default'?)",
    );
    expect(templateProblem('{{ x | frobnicate }}', 'template')).toBe("unknown filter 'frobnicate'");
    expect(templateProblem('x is sucess', 'expression')).toBe(
      "unknown test 'sucess' (did you mean 'success'?)",
    );
    expect(templateProblem("x is versoin('1', '<')", 'expression')).toMatch(/^unknown test 'versoin'/);
    expect(templateProblem('{{ x }}', 'expression')).toMatch(/without \{\{ \}\}/);
    expect(templateProblem("x is version('1', '<') and y | default(1)", 'expression')).toBeUndefined();
  });

  it('tells which variables a string reads', () => {
    expect(
      referencedNames('{{ a.b | default(c) }} {% for n in nets %}{{ n }}{% endfor %}', 'template').sort(),
    ).toEqual(['a', 'c', 'nets']);
    expect(referencedNames('result is failed and x.y', 'expression').sort()).toEqual(['result', 'x']);
    // A name that is also a member or a filter elsewhere is still read.
    expect(referencedNames('x.allowed and allowed is changed', 'expression').sort()).toEqual([
      'allowed',
      'x',
    ]);
  });

  it('gives a template no way to JavaScript objects', () => {
    expect(() => renderString("{{ port.constructor.constructor('return 1')() }}", vars)).toThrow(ConfigError);
    expect(() => renderString('{{ nets.__proto__ }}', vars)).toThrow("undefined variable 'nets.__proto__'");
    expect(() => renderString("{{ range.constructor('return process')() }}", vars)).toThrow(ConfigError);
  });
});
