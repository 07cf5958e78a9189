import { parseExtraVars } from '../../../src/config/extra_vars.js';
import { ConfigError } from '../../../src/config/diagnostics.js';

describe('--extra-vars', () => {
  test('key=value pairs, several per argument, later wins', () => {
    expect(parseExtraVars(['admin_network=10.20.0.0/16 port=22', 'port=2222'])).toEqual({
      admin_network: '10.20.0.0/16',
      port: '2222',
    });
  });

  test('a YAML/JSON mapping keeps its types', () => {
    expect(parseExtraVars(['{"nets": ["10.0.0.0/8"], "n": 3}', '{x: true}'])).toEqual({
      nets: ['10.0.0.0/8'],
      n: 3,
      x: true,
    });
  });

  test.each([['novalue'], ['1bad=x'], ['{[1]: 2'], ['[1, 2]']])('rejects %s', (arg) => {
    expect(() => parseExtraVars([arg])).toThrow(ConfigError);
  });
});
