import fc from 'fast-check';
import { ConfigError, formatDiagnostic } from '../../../src/config/diagnostics.js';
import type { SourcePosition } from '../../../src/config/diagnostics.js';
import { renderString } from '../../../src/config/template.js';

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
    expect(renderString('{{{ port }}}', vars)).toBe(2222);
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

  it('does not HTML-escape', () => {
    const text = `<a href="x">&'</a>`;
    expect(renderString('[{{ text }}]', { text })).toBe(`[${text}]`);
  });

  it('does not render what a variable contains', () => {
    expect(renderString('{{ a }}', { a: '{{ b }}', b: 'secret' })).toBe('{{ b }}');
    expect(renderString('x {{ a }}', { a: '{{ b }}', b: 'secret' })).toBe('x {{ b }}');
  });

  it('supports handlebars blocks', () => {
    expect(renderString('{{#each users}}{{this}} {{/each}}', vars)).toBe('alice bob ');
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
    expect(renderErrors('{{#if port}}{{ admin_net }}{{/if}}', vars, AT)).toEqual([
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
      'site.yml:12:17: error: invalid template: Parse error on line 1\n  a {{ x }\n  -------^',
    ]);
    // Cached templates report the same error each time.
    expect(renderErrors('a {{ x }', vars, AT)).toHaveLength(1);
  });

  it('renders any string without "{{" to itself', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme' }).filter((s) => !s.includes('{{')),
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
