import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  assertNoControlChars,
  SCRIPT_PID_MARKER,
  scriptShell,
  shellCommand,
  shellQuote,
  splitScriptPid,
} from '../../../src/transport/shell.js';

/** What /bin/sh makes of `printf %s QUOTED`: the value back, if the quoting is right. */
function echoThroughSh(value: string): string {
  return execFileSync('/bin/sh', ['-c', `printf %s ${shellQuote(value)}`], { encoding: 'utf8' });
}

describe('shellQuote', () => {
  it.each([
    ['empty', ''],
    ['single quote', "'"],
    ['two single quotes', "''"],
    ['quote inside word', "it's"],
    ['command substitution', '$(touch /tmp/sshfix-pwned)'],
    ['backticks', '`id`'],
    ['variables', '$HOME ${PATH}'],
    ['backslashes', '\\\\n \\'],
    ['newlines and tabs', 'a\nb\tc\n'],
    ['glob', '*'],
    ['leading dash', '-n'],
    ['semicolon and pipes', 'a; b | c && d'],
  ])('round-trips %s through /bin/sh', (_name, value) => {
    expect(echoThroughSh(value)).toBe(value);
  });

  it('round-trips random strings without NUL through /bin/sh', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 40 }).filter((value) => !value.includes('\0')),
        (value) => echoThroughSh(value) === value,
      ),
      { numRuns: 150 },
    );
  });

  it('round-trips strings made of shell metacharacters', () => {
    const metacharacters = fc.constantFrom(...'\'"\\$`!*?[]{}()<>|&;#~ \n\t=%^'.split(''));
    fc.assert(
      fc.property(
        fc.string({ unit: metacharacters, maxLength: 30 }),
        (value) => echoThroughSh(value) === value,
      ),
      { numRuns: 150 },
    );
  });

  it('refuses NUL, which no sh word can carry', () => {
    expect(() => shellQuote('a\0b')).toThrow(/NUL.*offset 1/);
  });
});

describe('shellCommand: what is shown is what runs', () => {
  /** The words /bin/sh makes of a command line, read back with printf. */
  function wordsOf(line: string): string[] {
    const out = execFileSync('/bin/sh', ['-c', `printf '%s\\0' ${line}`], { encoding: 'utf8' });
    return out.split('\0').slice(0, -1);
  }

  it('quotes only what sh needs in what it shows', () => {
    expect(shellCommand(['rm', '-f', '--', "/tmp/a'b $(touch x)"])).toEqual({
      description: `rm -f -- '/tmp/a'\\''b $(touch x)'`,
      script: `'rm' '-f' '--' '/tmp/a'\\''b $(touch x)'`,
    });
    expect(shellCommand(['chmod', '--', '0600', '/etc/app.conf']).description).toBe(
      'chmod -- 0600 /etc/app.conf',
    );
    // An empty word, and a first word sh would take for a variable assignment.
    expect(shellCommand(['A=1', '']).description).toBe(`'A=1' ''`);
  });

  it('sh reads the shown command and the script as the same words, for any words', () => {
    const word = fc.string({ unit: 'binary', maxLength: 12 }).filter((w) => !w.includes('\0'));
    fc.assert(
      fc.property(fc.array(word, { minLength: 1, maxLength: 4 }), (words) => {
        const { description, script } = shellCommand(words);
        expect(wordsOf(description)).toEqual(words);
        expect(wordsOf(script)).toEqual(words);
      }),
      { numRuns: 100 },
    );
  });
});

describe('assertNoControlChars', () => {
  it('accepts printable text, including non-ASCII', () => {
    expect(() => assertNoControlChars('AllowUsers ops@10.0.0.0/8 élodie', 'AllowUsers value')).not.toThrow();
  });

  it.each([
    ['\n', '000A'],
    ['\r', '000D'],
    ['\t', '0009'],
    ['\x7f', '007F'],
    ['\0', '0000'],
  ])('rejects %j and names the value and the character', (character, code) => {
    expect(() =>
      assertNoControlChars(`yes${character}PermitRootLogin yes`, 'PasswordAuthentication value'),
    ).toThrow(
      new RegExp(`^PasswordAuthentication value contains a control character \\(U\\+${code}\\) at offset 3`),
    );
  });
});

describe('scriptShell', () => {
  it('runs sh -s directly without become, or when the login is already root', () => {
    expect(scriptShell({ become: false, loginIsRoot: false })).toEqual({ command: 'sh -s', stdinPrefix: '' });
    expect(scriptShell({ become: true, becomePassword: 'pw', loginIsRoot: true })).toEqual({
      command: 'sh -s',
      stdinPrefix: '',
    });
  });

  it("reports the pid from the script's own shell: one shell per script, no sh -c before it", () => {
    for (const options of [
      { become: false, loginIsRoot: false },
      { become: true, loginIsRoot: false },
    ]) {
      const shell = scriptShell({ ...options, reportPid: true });
      expect(shell.command).toMatch(/^(sudo -n -- )?sh -s$/);
      expect(shell.stdinPrefix).toBe(`echo ${SCRIPT_PID_MARKER} $$ >&2\n`);
    }
    const shell = scriptShell({ become: false, loginIsRoot: false, reportPid: true });
    const result = spawnSync('/bin/sh', ['-c', `${shell.command}; echo "outer $$"`], {
      input: `${shell.stdinPrefix}echo "script $$"\n`,
      encoding: 'utf8',
    });
    const { pid, stderr } = splitScriptPid(result.stderr);
    expect(stderr).toBe('');
    expect(result.stdout).toBe(`script ${pid}\nouter ${result.pid}\n`);
  });

  it('uses sudo -n when no sudo password is configured, so sudo fails instead of prompting', () => {
    expect(scriptShell({ become: true, loginIsRoot: false }).command).toBe('sudo -n -- sh -s');
  });

  it('keeps the sudo password out of the command line', () => {
    const shell = scriptShell({ become: true, becomePassword: 'hunter2', loginIsRoot: false });
    expect(shell.command).not.toContain('hunter2');
    expect(shell.stdinPrefix.startsWith('hunter2\n')).toBe(true);
  });

  it('refuses a sudo password with a line break', () => {
    expect(() => scriptShell({ become: true, becomePassword: 'a\nb', loginIsRoot: false })).toThrow(
      /line break/,
    );
  });

  describe('with a sudo password, against a stand-in sudo', () => {
    let binDir: string;

    beforeAll(() => {
      binDir = mkdtempSync(join(tmpdir(), 'sshfix-fake-sudo-'));
      // Reads the password from stdin one byte at a time (as sudo -S does) only
      // when FAKE_SUDO_ASKS=1, then runs the command after `--`.
      writeFileSync(
        join(binDir, 'sudo'),
        [
          '#!/bin/sh',
          'if [ "$FAKE_SUDO_ASKS" = 1 ]; then',
          '  IFS= read -r password',
          '  [ "$password" = "$FAKE_SUDO_PASSWORD" ] || { echo "Sorry, try again." >&2; exit 1; }',
          'fi',
          'while [ "$1" != -- ]; do shift; done; shift',
          'exec "$@"',
          '',
        ].join('\n'),
      );
      chmodSync(join(binDir, 'sudo'), 0o755);
    });

    afterAll(() => rmSync(binDir, { recursive: true, force: true }));

    const password = "p@ss w'rd $(id)";
    const script = 'echo "first line of the script"\necho "second: $((20 + 22))"\n';

    it.each([
      ['asks for the password', '1'],
      ['does not ask (NOPASSWD or cached credentials)', '0'],
    ])('runs the whole script, and never the password, when sudo %s', (_case, asks) => {
      const shell = scriptShell({ become: true, becomePassword: password, loginIsRoot: false });
      const result = spawnSync('/bin/sh', ['-c', shell.command], {
        input: shell.stdinPrefix + script,
        encoding: 'utf8',
        env: {
          ...process.env,
          PATH: `${binDir}:${process.env.PATH ?? ''}`,
          FAKE_SUDO_ASKS: asks,
          FAKE_SUDO_PASSWORD: password,
        },
      });
      expect(result.stderr).toBe('');
      expect(result.stdout).toBe('first line of the script\nsecond: 42\n');
      expect(result.status).toBe(0);
    });

    it('reports the pid of the shell that runs the script first, and the script still gets all of stdin', () => {
      const shell = scriptShell({
        become: true,
        becomePassword: password,
        loginIsRoot: false,
        reportPid: true,
      });
      const result = spawnSync('/bin/sh', ['-c', shell.command], {
        input: `${shell.stdinPrefix}echo "my pid $$"\necho "to stderr" >&2\n`,
        encoding: 'utf8',
        env: {
          ...process.env,
          PATH: `${binDir}:${process.env.PATH ?? ''}`,
          FAKE_SUDO_ASKS: '1',
          FAKE_SUDO_PASSWORD: password,
        },
      });
      const { pid, stderr } = splitScriptPid(result.stderr);
      expect(result.stdout).toBe(`my pid ${pid}\n`);
      expect(stderr).toBe('to stderr\n');
    });
  });
});

describe('reporting the script pid', () => {
  it('runs the script in the shell whose pid it reported, without become', () => {
    const shell = scriptShell({ become: false, loginIsRoot: true, reportPid: true });
    const result = spawnSync('/bin/sh', ['-c', shell.command], {
      input: `${shell.stdinPrefix}echo "pid $$"\n`,
      encoding: 'utf8',
    });
    const { pid, stderr } = splitScriptPid(result.stderr);
    expect(pid).not.toBeNull();
    expect(result.stdout).toBe(`pid ${pid}\n`);
    expect(stderr).toBe('');
  });

  it('takes only the marker line out of stderr, even after lines sshd wrote first', () => {
    expect(splitScriptPid('debug1: from sshd\r\nsshfix-script-pid 42\nerror: x\n')).toEqual({
      pid: 42,
      stderr: 'debug1: from sshd\r\nerror: x\n',
    });
  });

  it('finds no pid when the shell never started', () => {
    expect(splitScriptPid('sudo: a password is required\n')).toEqual({
      pid: null,
      stderr: 'sudo: a password is required\n',
    });
  });
});
