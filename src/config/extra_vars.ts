/**
 * `-e/--extra-vars`, as in Ansible: `key=value` pairs (several per argument,
 * separated by spaces), a YAML/JSON mapping (`-e '{"nets": ["10.0.0.0/8"]}'`)
 * or `@FILE`, a YAML or JSON file of variables (relative to the working
 * directory; maybe encrypted with ansible-vault, opened with `vault`).
 * `key=value` values stay strings; a mapping keeps its types. Later
 * arguments beat earlier ones.
 */
import { parse } from 'yaml';
import { ConfigError } from './diagnostics.js';
import { loadVarsFile } from './playbook.js';
import { Vault } from './vault.js';

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function invalid(summary: string): ConfigError {
  return new ConfigError([{ severity: 'error', summary: `--extra-vars: ${summary}` }]);
}

export function parseExtraVars(args: readonly string[], vault: Vault = new Vault()): Record<string, unknown> {
  const vars: Record<string, unknown> = {};
  for (const arg of args) {
    const text = arg.trim();
    if (text.startsWith('@')) {
      const file = text.slice(1);
      if (file === '') throw invalid('@ must be followed by a file name (-e @vars.yml)');
      Object.assign(vars, loadVarsFile(file, vault));
      continue;
    }
    if (text.startsWith('{')) {
      let value: unknown;
      try {
        value = parse(text);
      } catch (error) {
        throw invalid(`not a valid mapping: ${error instanceof Error ? error.message : String(error)}`);
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value))
        throw invalid('expected a mapping');
      Object.assign(vars, value);
      continue;
    }
    for (const pair of text.split(/\s+/).filter(Boolean)) {
      const eq = pair.indexOf('=');
      const name = eq === -1 ? pair : pair.slice(0, eq);
      if (eq === -1 || !NAME.test(name)) throw invalid(`expected key=value, got ${JSON.stringify(pair)}`);
      vars[name] = pair.slice(eq + 1);
    }
  }
  return vars;
}
