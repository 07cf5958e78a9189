/* eslint-disable no-control-regex -- these tests look for the terminal's escape codes */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLiveOutput, ProgressState } from '../../../src/cli/progress.js';
import { main, type CliIO } from '../../../src/cli/main.js';
import type { HostResult, TaskResult } from '../../../src/executor/results.js';
import { elideBase64Bodies, tracingConnect } from '../../../src/cli/verbose.js';
import { FILE_CONTENT_MARK, fileContent } from '../../../src/transport/shell.js';
import { redact, REDACTED, secretValues } from '../../../src/config/secrets.js';
import type { Connection, ConnectionSpec } from '../../../src/transport/types.js';

const task = (status: TaskResult['status']): TaskResult => ({
  play: 'p',
  task: 't',
  resource: 'file',
  status,
  handler: false,
  messages: [],
  warnings: [],
  diff: '',
  commands: [],
});

const result = (host: string, status: TaskResult['status'] | 'unreachable'): HostResult =>
  status === 'unreachable'
    ? { host, address: host, unreachable: true, error: 'refused', tasks: [] }
    : { host, address: host, unreachable: false, tasks: [task(status)] };

/**
 * What a terminal shows after receiving `output` (colours dropped): enough of
 * one to honour the carriage return and "erase line" (ESC [2K) of the live line.
 */
function screen(output: string): string {
  const lines: string[] = [''];
  let column = 0;
  for (let i = 0; i < output.length; i++) {
    const char = output[i]!;
    const last = lines.length - 1;
    const colour = /^\x1b\[[0-9;]*m/.exec(output.slice(i, i + 10));
    if (output.startsWith('\x1b[2K', i)) {
      lines[last] = '';
      i += 3;
    } else if (colour) {
      i += colour[0].length - 1; // Colours do not move the cursor.
    } else if (char === '\x1b') {
      throw new Error(`unexpected escape sequence ${JSON.stringify(output.slice(i, i + 6))}`);
    } else if (char === '\r') {
      column = 0;
    } else if (char === '\n') {
      lines.push('');
      column = 0;
    } else {
      const line = lines[last]!.padEnd(column);
      lines[last] = line.slice(0, column) + char + line.slice(column + 1);
      column++;
    }
  }
  return lines.join('\n');
}

function capture(isTTY: boolean) {
  const out = { stdout: '', stderr: '', both: '' };
  const io: CliIO = {
    stdout: (t) => {
      out.stdout += t;
      out.both += t;
    },
    stderr: (t) => {
      out.stderr += t;
      out.both += t;
    },
    isTTY,
  };
  return { io, out };
}

describe('ProgressState.line', () => {
  test('hosts done/total, failures so far and the latest step of a running host', () => {
    const state = new ProgressState(100);
    expect(state.line(80)).toBe('0/100 hosts');
    state.step('web01', 'connecting');
    state.step('web07', 'connecting');
    state.step('web07', 'validating limits');
    expect(state.line(80)).toBe('0/100 hosts — web07: validating limits (+1 running)');
    state.hostDone(result('web01', 'failed'));
    state.hostDone(result('db01', 'unreachable'));
    state.hostDone(result('db02', 'changed'));
    expect(state.line(80)).toBe('3/100 hosts, 1 failed, 1 unreachable — web07: validating limits');
    state.step('web09', 'planning hardening');
    state.step('web07', 'writing limits');
    expect(state.line(80)).toBe('3/100 hosts, 1 failed, 1 unreachable — web07: writing limits (+1 running)');
    state.hostDone(result('web07', 'ok'));
    expect(state.line(80)).toBe('4/100 hosts, 1 failed, 1 unreachable — web09: planning hardening');
  });

  test('never wider than the terminal, never more than one line', () => {
    const state = new ProgressState(3);
    state.step('a-very-long-host-name.example.net', 'validating a task\nwith a newline \x1b[31min it');
    const line = state.line(30);
    expect(Array.from(line).length).toBe(29);
    expect(line.endsWith('…')).toBe(true);
    expect(line).not.toMatch(/[\n\x1b]/);
    expect(state.line(200)).toBe(
      '0/3 hosts — a-very-long-host-name.example.net: validating a task with a newline  [31min it',
    );
  });
});

describe('createLiveOutput', () => {
  const drive = (isTTY: boolean) => {
    const { io, out } = capture(isTTY);
    const live = createLiveOutput(io, { live: isTTY, total: 2, columns: 80 });
    live.step('web01', 'connecting');
    live.step('web02', 'planning hardening');
    live.print('web01 block\n');
    live.hostDone(result('web01', 'failed'));
    live.printError('[web02] script:\n    true\n');
    live.print('web02 block\n');
    live.hostDone(result('web02', 'ok'));
    live.finish();
    io.stdout('RECAP\n');
    return out;
  };

  test('on a TTY the status line is redrawn in place and gone at the end', () => {
    const out = drive(true);
    expect(out.stdout).toContain('0/2 hosts — web02: planning hardening (+1 running)');
    expect(out.stdout).toContain('1/2 hosts, 1 failed — web02: planning hardening');
    // What stays on screen is exactly what was printed, with no status line left over.
    expect(screen(out.both)).toBe(drive(false).both);
    expect(screen(out.both)).toBe('web01 block\n[web02] script:\n    true\nweb02 block\nRECAP\n');
  });

  test('elsewhere nothing but the plain lines, and no escape codes', () => {
    const out = drive(false);
    expect(out.stdout).toBe('web01 block\nweb02 block\nRECAP\n');
    expect(out.both).not.toMatch(/[\r\x1b]/);
  });
});

describe('--verbose', () => {
  test('secret-named variables and the host passwords are masked, longest first', () => {
    expect(
      secretValues({ db_password: 'pw', api_token: 42, ansible_ssh_private_key_file: '/k', user: 'u' }),
    ).toEqual(['pw', '42']);
    expect(redact('a hunter2 b hunter22', ['hunter2', 'hunter22', ''])).toBe(`a ${REDACTED} b ${REDACTED}`);
  });

  test('file contents in base64 here-documents are not shown', () => {
    const body = Buffer.from('token=s3cret\n').toString('base64');
    const script = `{ base64 -d <<'SSHFIX_EOF_0'\n${body}\nSSHFIX_EOF_0\n} > "$t0"\n`;
    expect(elideBase64Bodies(script)).toBe(
      `{ base64 -d <<'SSHFIX_EOF_0'\n[13 bytes of file content, not shown]\nSSHFIX_EOF_0\n} > "$t0"\n`,
    );
  });

  test("file contents written by the shell's printf are not shown either", () => {
    const script = `{ ${fileContent("token=s3cret\nit's\n", 'SSHFIX_EOF_0')}} > "$t0"\n`;
    expect(script).toContain('s3cret');
    expect(elideBase64Bodies(script)).toBe(
      `{ printf '%s' [18 bytes of file content, not shown] ${FILE_CONTENT_MARK}\n} > "$t0"\n`,
    );
  });

  test('each script and its exit status are logged with the secrets masked', async () => {
    const spec = { hostName: 'web01', become: true, password: 'login-pw', becomePassword: 'sudo-pw' };
    const sent: string[] = [];
    const fake: Connection = {
      hostName: 'web01',
      runScript: async (script) => {
        sent.push(script);
        return { stdout: '', stderr: 'sudo-pw rejected', exitCode: 3 };
      },
      close: async () => undefined,
    };
    const log: string[] = [];
    const connect = tracingConnect(
      async () => fake,
      (t) => log.push(t),
      ['vault-token'],
    );
    const conn = await connect(spec as ConnectionSpec);
    const script = "echo 'sudo-pw' login-pw vault-token\n";
    expect((await conn.runScript(script)).exitCode).toBe(3);
    expect(sent).toEqual([script]);
    const text = log.join('');
    expect(text).toMatch(/^\[web01\] script as root:\n {4}echo '\*{8}' \*{8} \*{8}\n/);
    expect(text).toMatch(/\[web01\] exit 3 after \d+\.\d\d s\n {4}\*{8} rejected\n$/);
    expect(text).not.toMatch(/sudo-pw|login-pw|vault-token/);
  });
});

test('the traced connection forwards every other member to the real one', async () => {
  let closed = 0;
  class FakeConnection implements Connection {
    readonly hostName = 'web01';
    readonly authMethod = 'publickey' as const;
    private open = true;
    async runScript() {
      return { stdout: this.open ? 'open' : 'closed', stderr: '', exitCode: 0 };
    }
    async close() {
      this.open = false;
      closed++;
    }
  }
  const connect = tracingConnect(
    async () => new FakeConnection(),
    () => undefined,
    [],
  );
  const conn = await connect({ hostName: 'web01', become: false } as ConnectionSpec);
  expect(conn.authMethod).toBe('publickey');
  expect((await conn.runScript('true')).stdout).toBe('open');
  await conn.close();
  expect(closed).toBe(1);
  expect((await conn.runScript('true')).stdout).toBe('closed');
});

describe('the CLI', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-progress-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const setUp = () => {
    const dest = path.join(dir, 'app.conf');
    const playbook = path.join(dir, 'p.yml');
    fs.writeFileSync(
      playbook,
      `- hosts: all
  tasks:
    - name: app config
      file:
        dest: ${dest}
        mode: "0600"
        content: "token={{ api_token }}\\n"
        validate: "grep -q '{{ api_token }}' %s"
`,
    );
    const inventory = path.join(dir, 'hosts.ini');
    fs.writeFileSync(
      inventory,
      'here ansible_connection=local api_token=T0k-3n ansible_become_password=sudo-S3cret\n',
    );
    return { dest, playbook, inventory };
  };

  test('-v prints the scripts on stderr and never a secret; on a TTY the progress line is cleared', async () => {
    const { dest, playbook, inventory } = setUp();
    const { io, out } = capture(true);
    const code = await main(['apply', playbook, '-i', inventory, '-v'], io);
    expect(code).toBe(0);
    expect(fs.readFileSync(dest, 'utf8')).toBe('token=T0k-3n\n');
    expect(out.stderr).toMatch(/\[here\] script:\n/);
    expect(out.stderr).toContain(`grep -q '${REDACTED}'`);
    expect(out.stderr).toMatch(/\[here\] exit 0 after/);
    expect(out.both).not.toContain('T0k-3n');
    expect(out.both).not.toContain('sudo-S3cret');
    expect(out.stdout).toContain('0/1 hosts — here: ');
    const shown = screen(out.both);
    expect(shown).not.toContain('hosts —');
    expect(shown).toMatch(/RECAP\nhere\s+ok=0\s+changed=1/);
  });

  test('without -v and without a TTY: no scripts, no progress line', async () => {
    const { playbook, inventory } = setUp();
    const { io, out } = capture(false);
    expect(await main(['apply', playbook, '-i', inventory], io)).toBe(0);
    expect(out.stderr).toBe('');
    expect(out.stdout).not.toMatch(/[\r\x1b]|hosts —/);
    expect(out.stdout).toMatch(/^here \(here\)\n\s+changed\s+app config \[file\]/);
  });
});
