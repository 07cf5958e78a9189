/**
 * What a secret is, and masking it: for every output of the CLI (text, JSON
 * and JUnit reports, `--verbose` traces, `sshfix inventory`) and for saved
 * plans (plan/plan_file.ts). Pure.
 *
 * A secret is the value of a variable whose name says it is one
 * (`ansible_password`, `ansible_become_password`, `db_password`, `api_token`,
 * ...), at any depth of the inventory, play or `-e` variables. Its value is
 * masked wherever it appears: a template may have rendered it into a file's
 * content (a diff), a `validate:` command or an error message.
 */
export const REDACTED = '********';

/** Variable names whose values are secrets; `*_file` names hold paths (ansible_ssh_private_key_file). */
const SECRET_NAME = /(^|_)(pass|passwd|password|secret|token|api_?key|private_key|credentials?)(_|$)/i;

export function isSecretVariableName(name: string): boolean {
  return SECRET_NAME.test(name) && !/_file$/i.test(name);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Every string and number in `value`, at any depth. */
function scalars(value: unknown): string[] {
  if (typeof value === 'string' || typeof value === 'number') return [String(value)];
  if (Array.isArray(value)) return value.flatMap(scalars);
  if (isRecord(value)) return Object.values(value).flatMap(scalars);
  return [];
}

/**
 * Values of the secret-named variables among `vars`, also inside mappings
 * (`app: {db_password: …}`); everything under a secret name counts (`api_keys: [a, b]`).
 */
export function secretValues(vars: Record<string, unknown>): string[] {
  return Object.entries(vars).flatMap(([name, value]) => {
    if (isSecretVariableName(name)) return scalars(value);
    if (Array.isArray(value)) return value.filter(isRecord).flatMap(secretValues);
    return isRecord(value) ? secretValues(value) : [];
  });
}

/** Masks every occurrence of every secret; longer secrets first, so one that contains another is masked whole. */
export function redact(text: string, secrets: Iterable<string>): string {
  const ordered = [...new Set(secrets)].filter((s) => s !== '').sort((a, b) => b.length - a.length);
  return ordered.reduce((masked, secret) => masked.split(secret).join(REDACTED), text);
}

/**
 * Variables for display: a secret-named variable's value becomes REDACTED
 * (at any depth), and the secrets are masked inside every other string.
 */
export function redactVariables(
  vars: Record<string, unknown>,
  secrets: Iterable<string> = secretValues(vars),
): Record<string, unknown> {
  const known = [...secrets];
  const mask = (value: unknown): unknown => {
    if (typeof value === 'string') return redact(value, known);
    if (Array.isArray(value)) return value.map(mask);
    if (isRecord(value))
      return Object.fromEntries(
        Object.entries(value).map(([name, item]) => [
          name,
          isSecretVariableName(name) ? REDACTED : mask(item),
        ]),
      );
    return value;
  };
  return mask(vars) as Record<string, unknown>;
}
