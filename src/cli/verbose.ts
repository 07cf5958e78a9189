/**
 * `--verbose`: shows every script sent to a host and how it ended, for
 * debugging a run. Secrets are masked (redact.ts) before anything is printed:
 * the login and sudo passwords of the host, and the values of variables whose
 * names say they are secrets (`db_password`, `api_token`, ...), wherever they
 * appear in a script (a template may have rendered them into a command).
 *
 * The sudo password never appears in a script anyway — the transport writes
 * it to sudo's stdin ahead of the script — but a playbook may still render it
 * into a command (a `validate:` line). File contents travel base64-encoded,
 * where masking cannot see them, so they are not shown at all.
 */
import type { Connection, ConnectionSpec, ExecResult, RunOptions } from '../transport/types.js';
import { redact } from '../config/secrets.js';
import { FILE_CONTENT_MARK } from '../transport/shell.js';

/**
 * Replaces file contents on their way to the host (the bodies of `base64 -d
 * <<'EOF'` here-documents, and the words of fileContent's printf) with their
 * size: base64 is unreadable, masking cannot find a secret inside it, and
 * `--diff` shows what the content is.
 */
export function elideBase64Bodies(script: string): string {
  return script
    .replace(
      /(base64 -d <<'([A-Za-z0-9_]+)'\n)([A-Za-z0-9+/=\n]*?)(\2\n)/g,
      (_match, opener: string, _marker: string, body: string, closer: string) => {
        const bytes = Buffer.from(body.replace(/\n/g, ''), 'base64').length;
        return `${opener}[${bytes} bytes of file content, not shown]\n${closer}`;
      },
    )
    .replace(FILE_CONTENT_PRINTF, (_match, quoted: string) => {
      // shellQuote's form: '...' pieces joined by \' (an escaped quote).
      const bytes = Buffer.byteLength(quoted.slice(1, -1).replaceAll("'\\''", "'"), 'utf8');
      return `printf '%s' [${bytes} bytes of file content, not shown] ${FILE_CONTENT_MARK}`;
    });
}

/** fileContent's printf of a shellQuote'd content, up to its mark. */
const FILE_CONTENT_PRINTF = new RegExp(`printf '%s' ('[^']*'(?:\\\\''[^']*')*) ${FILE_CONTENT_MARK}`, 'g');

function indent(text: string): string {
  return text
    .replace(/\n$/, '')
    .split('\n')
    .map((line) => `    ${line}`)
    .join('\n');
}

type Connect = (spec: ConnectionSpec) => Promise<Connection>;

/**
 * Wraps `connect` so that each connection reports its scripts to `log`, with
 * `secrets` and the host's own passwords masked.
 */
export function tracingConnect(
  connect: Connect,
  log: (text: string) => void,
  secrets: Iterable<string>,
): Connect {
  const shared = [...secrets];
  return async (spec) => {
    const hostSecrets = [...shared, spec.password ?? '', spec.becomePassword ?? ''];
    const say = (text: string) => log(redact(text, hostSecrets));
    const conn = await connect(spec);
    const as = spec.become ? ' as root' : '';
    const runScript = async (script: string, options?: RunOptions): Promise<ExecResult> => {
      say(`[${spec.hostName}] script${as}:\n${indent(elideBase64Bodies(script))}\n`);
      const started = Date.now();
      try {
        const result = await conn.runScript(script, options);
        const seconds = ((Date.now() - started) / 1000).toFixed(2);
        const status = result.exitCode === null ? 'killed by a signal' : `exit ${result.exitCode}`;
        const stderr = result.stderr.trim() === '' ? '' : `\n${indent(result.stderr)}`;
        say(`[${spec.hostName}] ${status} after ${seconds} s${stderr}\n`);
        return result;
      } catch (error) {
        say(`[${spec.hostName}] failed: ${error instanceof Error ? error.message : String(error)}\n`);
        throw error;
      }
    };
    // Everything but runScript goes to the real connection, members added
    // to Connection later included (authMethod, which lockout guards read).
    return new Proxy(conn, {
      get(target, property) {
        if (property === 'runScript') return runScript;
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
  };
}
