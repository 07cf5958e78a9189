import { Ajv } from 'ajv';
import { playbookJsonSchema, sortByPosition } from '../../../src/config/schema.js';
import type { Diagnostic } from '../../../src/config/diagnostics.js';

const resources = {
  service: {
    type: 'object',
    required: ['name'],
    additionalProperties: false,
    properties: { name: { type: 'string' }, state: { enum: ['reloaded', 'restarted', 'started'] } },
  },
};

describe('playbookJsonSchema', () => {
  const validate = new Ajv({ allErrors: true, allowUnionTypes: true }).compile(playbookJsonSchema(resources));

  it('is a draft-07 schema an editor can use on its own', () => {
    expect(playbookJsonSchema(resources).$schema).toBe('http://json-schema.org/draft-07/schema#');
    expect(
      validate([{ hosts: 'web', tasks: [{ name: 't', service: { name: 'ssh', state: 'reloaded' } }] }]),
    ).toBe(true);
  });

  it('embeds the resource argument schemas', () => {
    expect(validate([{ hosts: 'web', tasks: [{ name: 't', service: { state: 'reloaded' } }] }])).toBe(false);
    expect(
      validate([{ hosts: 'web', tasks: [{ name: 't', service: { name: 'ssh', state: 'stopped' } }] }]),
    ).toBe(false);
  });

  it('requires exactly one resource per task', () => {
    expect(validate([{ hosts: 'web', tasks: [{ name: 't' }] }])).toBe(false);
  });

  it('accepts any arguments in the "any" form used before rendering', () => {
    const loose = new Ajv({ allowUnionTypes: true }).compile(
      playbookJsonSchema(resources, { resourceArgs: 'any' }),
    );
    expect(loose([{ hosts: 'web', tasks: [{ name: 't', service: '{{ unit }}' }] }])).toBe(true);
    expect(loose([{ hosts: 'web', tasks: [{ name: 't', servce: {} }] }])).toBe(false);
  });
});

describe('sortByPosition', () => {
  it('orders by file, line and column, and puts unplaced diagnostics last', () => {
    const at = (file: string, line: number, column: number): Diagnostic => ({
      severity: 'error',
      summary: `${file}:${line}:${column}`,
      position: { file, line, column },
    });
    const unplaced: Diagnostic = { severity: 'error', summary: 'nowhere' };
    const sorted = sortByPosition([
      unplaced,
      at('b.yml', 1, 1),
      at('a.yml', 2, 5),
      at('a.yml', 2, 3),
      at('a.yml', 10, 1),
    ]);
    expect(sorted.map((d) => d.summary)).toEqual([
      'a.yml:2:3',
      'a.yml:2:5',
      'a.yml:10:1',
      'b.yml:1:1',
      'nowhere',
    ]);
  });
});
