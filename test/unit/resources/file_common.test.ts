/**
 * The pure parts shared by `file` and `template`: modes (YAML 1.2 reads an
 * unquoted 0644 as the number 644), account names, validate commands and
 * their %s substitution, and the chown/chmod steps planned for attributes.
 */
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import {
  attributeSteps,
  buildValidateScript,
  checkFileTargetArgs,
  checkValidateCommand,
  parseMode,
  stagedPathFor,
  substituteValidate,
  fileEffects,
} from '../../../src/resources/file_common.js';

const sh = (script: string) => spawnSync('/bin/sh', ['-c', script], { encoding: 'utf8' });

describe('parseMode', () => {
  test.each([
    ['0644', '0644'],
    ['644', '0644'],
    ['0600', '0600'],
    ['4755', '4755'],
    ['0000', '0000'],
  ])('string %s → %s', (input, mode) => {
    expect(parseMode(input)).toEqual({ ok: true, mode });
  });

  test('a YAML number whose digits read as octal is taken as written, with a warning to quote it', () => {
    const parsed = parseMode(644);
    expect(parsed).toMatchObject({ ok: true, mode: '0644' });
    expect(parsed.ok && parsed.warning).toContain('quote it (mode: "0644")');
  });

  test.each([
    [384, 'what 0o600 becomes'],
    [800, 'an 8 is not octal'],
    [12345, 'too many digits'],
    [6.44, 'not an integer'],
    [-644, 'negative'],
  ])('the number %s is refused (%s) with advice to quote', (value) => {
    const parsed = parseMode(value);
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.message).toMatch(/write the mode quoted, e\.g\. mode: "0644"/);
    expect(!parsed.ok && parsed.message).toContain(`mode ${value} is a number`);
  });

  test('0o644 (the number 420) cannot be told from a written 420: it is read as "0420", and the warning shows it', () => {
    const parsed = parseMode(420);
    expect(parsed).toMatchObject({ ok: true, mode: '0420' });
    expect(parsed.ok && parsed.warning).toContain('read as "0420"');
  });

  test.each(['u=rw', '0o644', '0888', '06444', '', '64'])('string %j is refused', (value) => {
    expect(parseMode(value).ok).toBe(false);
  });

  test('property: every octal string of 3-4 digits normalises to 4 digits, idempotently', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[0-7]{3,4}$/), (text) => {
        const once = parseMode(text);
        expect(once.ok).toBe(true);
        if (!once.ok) return;
        expect(once.mode).toHaveLength(4);
        expect(parseInt(once.mode, 8)).toBe(parseInt(text, 8));
        expect(parseMode(once.mode)).toEqual(once);
      }),
    );
  });

  test('property: a number is accepted exactly when its decimal digits are 3-4 octal digits', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 20000 }), (n) => {
        expect(parseMode(n).ok).toBe(/^[0-7]{3,4}$/.test(String(n)));
      }),
    );
  });
});

describe('checkFileTargetArgs', () => {
  const pointers = (args: Parameters<typeof checkFileTargetArgs>[0]) =>
    checkFileTargetArgs(args).map((p) => p.pointer);

  test('a good set of arguments has no problems', () => {
    expect(
      checkFileTargetArgs({
        dest: '/etc/ssh/sshd_config.d/60-sshfix.conf',
        mode: '0600',
        owner: 'root',
        group: 'ssh_keys',
        validate: '/usr/sbin/sshd -t -f %s',
      }),
    ).toEqual([]);
  });

  test('each bad argument is reported at its own pointer', () => {
    expect(pointers({ dest: 'etc/issue', mode: 800, owner: '0', group: 'a b', validate: 'sshd -t' })).toEqual(
      ['/dest', '/mode', '/owner', '/group', '/validate'],
    );
  });

  test.each([
    ['relative', 'issue.net', 'absolute path'],
    ['a newline', '/etc/issue\n/etc/shadow', 'control character'],
    ['a directory', '/etc/ssh/', 'names a directory'],
  ])('dest that is %s is refused', (_what, dest, message) => {
    expect(checkFileTargetArgs({ dest })[0]?.message).toContain(message);
  });

  test('numeric owners are refused: the host reports names, so they would never compare equal', () => {
    expect(checkFileTargetArgs({ dest: '/x', owner: '0' })[0]?.message).toContain('give the user name');
  });
});

describe('validate commands', () => {
  test('must contain %s (as Ansible requires); %% alone does not count', () => {
    expect(checkValidateCommand('/usr/sbin/sshd -t -f %s')).toBeUndefined();
    expect(checkValidateCommand('/usr/sbin/sshd -t')).toContain('must contain %s');
    expect(checkValidateCommand('printf %%s x')).toContain('must contain %s');
  });

  test('"%s" in double quotes is refused: the path is quoted by sshfix', () => {
    expect(checkValidateCommand('visudo -cf "%s"')).toContain('without double quotes');
  });

  test('%s becomes the single-quoted path, %% a literal percent sign', () => {
    expect(substituteValidate("printf '%%s\\n' %s", "/etc/it's here")).toBe(
      `printf '%s\\n' '/etc/it'\\''s here'`,
    );
  });

  test('property: whatever the path, the command receives it as one intact argument', () => {
    const pathChars = fc.string({
      unit: fc.constantFrom('a', ' ', "'", '"', '$', '`', '\\', '*', ';', '%', '\n'),
    });
    fc.assert(
      fc.property(pathChars, (name) => {
        const staged = `/tmp/${name}`;
        const run = sh(substituteValidate("printf '<%%s>' %s", staged));
        expect(run.stdout).toBe(`<${staged}>`);
      }),
      { numRuns: 40 },
    );
  });

  test('the staged copy sits beside dest, hidden and without dest’s extension', () => {
    const staged = stagedPathFor('/etc/ssh/sshd_config.d/60-sshfix.conf', 'abc123');
    expect(staged).toBe('/etc/ssh/sshd_config.d/.60-sshfix.conf.sshfix-validate-abc123');
    // sshd's `Include /etc/ssh/sshd_config.d/*.conf` must never pick up a staged copy.
    expect(staged.endsWith('.conf')).toBe(false);
  });

  test('the validate script feeds the command /dev/null, not the rest of the script', () => {
    const script = buildValidateScript(
      {
        dest: '/tmp/x',
        command: 'cat; true %s',
        content: 'new\n',
        mode: '0600',
        owner: 'root',
        group: 'root',
      },
      '/tmp/.x.sshfix-validate-test',
    );
    expect(script).toMatch(/\n\) <\/dev\/null\n/);
  });
});

describe('attributeSteps', () => {
  const current = { mode: '644', owner: 'root', group: 'root' };

  test('nothing wanted, nothing to do', () => {
    expect(attributeSteps('/etc/x', current, {})).toEqual({ commands: [], messages: [] });
  });

  test('equal attributes plan nothing (stat prints 644 for 0644)', () => {
    expect(
      attributeSteps('/etc/x', current, { mode: '0644', owner: 'root', group: 'root' }).commands,
    ).toEqual([]);
  });

  test('owner and group in one chown, before chmod', () => {
    const steps = attributeSteps('/etc/x y', current, { mode: '0600', owner: 'nobody', group: 'nogroup' });
    expect(steps.commands.map((c) => c.script)).toEqual([
      "'chown' '--' 'nobody:nogroup' '/etc/x y'",
      "'chmod' '--' '0600' '/etc/x y'",
    ]);
    expect(steps.messages).toEqual([
      '/etc/x y owner root:root → nobody:nogroup',
      '/etc/x y mode 0644 → 0600',
    ]);
  });

  test('group alone is a chgrp', () => {
    const steps = attributeSteps('/etc/x', current, { group: 'adm' });
    expect(steps.commands.map((c) => c.description)).toEqual(['chgrp -- adm /etc/x']);
  });
});

describe('what a file change declares it touches', () => {
  test('sshd reads /etc/ssh and fail2ban /etc/fail2ban: a rollback makes each re-read it', () => {
    expect(fileEffects('/etc/ssh/sshd_config.d/50-x.conf')).toEqual({ effects: { sshd: true } });
    expect(fileEffects('/etc/fail2ban/jail.local')).toEqual({ effects: { fail2ban: true } });
    expect(fileEffects('/etc/sshd-banner')).toEqual({});
    expect(fileEffects('/etc/hosts.allow')).toEqual({});
  });
});
