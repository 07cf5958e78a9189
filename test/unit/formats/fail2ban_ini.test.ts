import fc from 'fast-check';
import {
  effectiveValue,
  findOption,
  interpolate,
  jailReadOrder,
  jailSections,
  parseIni,
  renderIni,
  setIgnoreIp,
  setOption,
  splitIgnoreIp,
  type JailConfigFile,
} from '../../../src/formats/fail2ban_ini.js';

const STOCK_LIKE = `# Fail2Ban configuration file
#
[INCLUDES]

before = paths-debian.conf

[DEFAULT]
#ignoreip = 127.0.0.1/8 ::1
ignoreip = 127.0.0.1/8 ::1
           192.168.0.0/16 ; the office
bantime  = 10m
maxretry: 5
action = %(action_)s

[sshd]
# To use more aggressive sshd modes set filter parameter "mode" in jail.local:
port    = ssh
logpath = %(sshd_log)s
backend = %(sshd_backend)s
`;

const file = (path: string, text: string): JailConfigFile => ({ path, doc: parseIni(text) });

describe('parseIni (configparser as fail2ban configures it)', () => {
  test('sections, both delimiters, lower-cased keys, comments', () => {
    const doc = parseIni(STOCK_LIKE);
    expect(doc.sections.map((s) => s.name)).toEqual(['INCLUDES', 'DEFAULT', 'sshd']);
    expect(findOption(doc, 'DEFAULT', 'MAXRETRY')?.value).toBe('5');
    expect(findOption(doc, 'DEFAULT', 'bantime')?.value).toBe('10m');
    expect(findOption(doc, 'INCLUDES', 'before')?.value).toBe('paths-debian.conf');
    expect(findOption(doc, 'sshd', 'logpath')?.value).toBe('%(sshd_log)s');
    expect(doc.problems).toEqual([]);
  });

  test('a multi-line value continues on deeper-indented lines; inline ";" comments are dropped', () => {
    const doc = parseIni(STOCK_LIKE);
    const option = findOption(doc, 'DEFAULT', 'ignoreip')!;
    expect(option.value).toBe('127.0.0.1/8 ::1\n192.168.0.0/16');
    expect(option.lastLine - option.line).toBe(1);
  });

  test('"#" after a value is part of it; ";" only after whitespace starts a comment', () => {
    const doc = parseIni('[a]\nx = 1 # not a comment\ny = a;b ;comment\n');
    expect(findOption(doc, 'a', 'x')?.value).toBe('1 # not a comment');
    expect(findOption(doc, 'a', 'y')?.value).toBe('a;b');
  });

  test('comment lines inside a multi-line value do not end it; blank lines are kept inside it', () => {
    const doc = parseIni('[a]\nk = one\n  # note\n\n  two\nnext = 1\n');
    expect(findOption(doc, 'a', 'k')?.value).toBe('one\n\ntwo');
    expect(findOption(doc, 'a', 'next')?.value).toBe('1');
  });

  test('an indented option line sets the indentation that continuation lines must exceed', () => {
    const doc = parseIni('[a]\n  k = 1\n  j = 2\n    more\n');
    expect(findOption(doc, 'a', 'k')?.value).toBe('1');
    expect(findOption(doc, 'a', 'j')?.value).toBe('2\nmore');
  });

  test('the key ends at the first "=" or ":" (configparser OPTCRE)', () => {
    const doc = parseIni('[a]\nurl: http://x = y\n');
    expect(findOption(doc, 'a', 'url')?.value).toBe('http://x = y');
  });

  test('what fail2ban would reject is reported with its line', () => {
    const doc = parseIni('k = 1\n[a]\njunk\nx = 1\nx = 2\n[a]\n');
    expect(doc.problems.map((p) => p.line)).toEqual([1, 3, 5, 6]);
    expect(findOption(doc, 'a', 'x')?.value).toBe('2');
  });

  test('round trip: unusual line endings and no final newline', () => {
    const text = '[DEFAULT]\r\nignoreip = 1.2.3.4\r\n\r\n[sshd]\renabled=true';
    expect(renderIni(parseIni(text))).toBe(text);
  });

  test('property: rendering a parsed text gives back the same bytes, for any text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => renderIni(parseIni(text)) === text),
      {
        numRuns: 500,
      },
    );
    const iniish = fc
      .array(
        fc.constantFrom(
          '[DEFAULT]',
          '[sshd]',
          'k = v',
          'k: v',
          '  cont',
          '# c',
          '; c',
          '',
          ' ',
          'x = a ;c',
          '\t[x]',
        ),
        { maxLength: 12 },
      )
      .chain((lines) =>
        fc.tuple(
          fc.constant(lines),
          fc.array(fc.constantFrom('\n', '\r\n', '\r'), { minLength: lines.length, maxLength: lines.length }),
        ),
      );
    fc.assert(
      fc.property(iniish, ([lines, eols]) => {
        const text = lines.map((l, i) => l + eols[i]!).join('');
        return renderIni(parseIni(text)) === text;
      }),
    );
  });
});

describe('setOption', () => {
  test('replaces a value in place and keeps the inline comment and everything else', () => {
    const text = '# head\n[sshd]\nmaxretry = 3 ; strict\nport = ssh\n\n[other]\nmaxretry = 9\n';
    expect(setOption(text, 'sshd', 'maxretry', ['5'])).toBe(
      '# head\n[sshd]\nmaxretry = 5 ; strict\nport = ssh\n\n[other]\nmaxretry = 9\n',
    );
  });

  test('replacing a multi-line value drops its continuation lines but keeps comments between them', () => {
    const text = '[a]\naction = one\n         two\n  # keep\n         three\nafter = 1\n';
    expect(setOption(text, 'a', 'action', ['x'])).toBe('[a]\naction = x\n  # keep\nafter = 1\n');
  });

  test("adds a missing key after the section's last option, in the file's delimiter style", () => {
    const text = '[sshd]\nenabled: true\n# maxretry: 3\n\n[b]\n';
    expect(setOption(text, 'sshd', 'maxretry', ['5'])).toBe(
      '[sshd]\nenabled: true\nmaxretry: 5\n# maxretry: 3\n\n[b]\n',
    );
  });

  test('a new key follows the style of its own section, not the first one of the file', () => {
    const text = '[DEFAULT]\nbackend = polling\n[sshd]\nmaxretry: 3\n';
    expect(setOption(text, 'sshd', 'findtime', ['20m'])).toBe(
      '[DEFAULT]\nbackend = polling\n[sshd]\nmaxretry: 3\nfindtime: 20m\n',
    );
  });

  test('a key added to a section whose next line is indented is indented like it (else it would swallow it)', () => {
    const text = '[DEFAULT]\n  [sshd]\n';
    const edited = setOption(text, 'DEFAULT', 'maxretry', ['5']);
    expect(edited).toBe('[DEFAULT]\n  maxretry = 5\n  [sshd]\n');
    expect(parseIni(edited).sections.map((s) => s.name)).toEqual(['DEFAULT', 'sshd']);
  });

  test('appends a missing section at the end, separated by a blank line, keeping CRLF', () => {
    expect(setOption('[DEFAULT]\r\nbantime = 1h', 'sshd', 'enabled', ['true'])).toBe(
      '[DEFAULT]\r\nbantime = 1h\r\n\r\n[sshd]\r\nenabled = true\r\n',
    );
    expect(setOption('', 'sshd', 'enabled', ['true'])).toBe('[sshd]\nenabled = true\n');
  });

  test('a key added at the end of a file without a final newline', () => {
    expect(setOption('[sshd]\nport = ssh', 'sshd', 'enabled', ['true'])).toBe(
      '[sshd]\nport = ssh\nenabled = true',
    );
  });

  test('property: idempotent, parses back to the value, and other sections stay byte-identical', () => {
    const sectionName = fc.constantFrom('DEFAULT', 'sshd', 'recidive', 'new');
    const value = fc.stringMatching(/^[a-z0-9%()./]{1,12}$/);
    const base = fc.array(
      fc.constantFrom(
        '[DEFAULT]',
        '[sshd]',
        '[recidive]',
        'maxretry = 3',
        'port: ssh',
        '  more',
        '# c',
        '',
        'bantime=1h ; x',
      ),
      { maxLength: 10 },
    );
    fc.assert(
      fc.property(
        base,
        sectionName,
        fc.constantFrom('maxretry', 'port', 'bantime', 'findtime'),
        value,
        (lines, section, key, v) => {
          const text = lines.map((l) => `${l}\n`).join('');
          const once = setOption(text, section, key, [v]);
          if (setOption(once, section, key, [v]) !== once) return false;
          if (findOption(parseIni(once), section, key)?.value !== v) return false;
          // Every other section's options are unchanged.
          const others = (t: string) =>
            parseIni(t)
              .sections.filter((s) => s.name !== section)
              .map((s) => s.options.map((o) => `${s.name}.${o.key}=${o.value}`).join('|'));
          return JSON.stringify(others(once)) === JSON.stringify(others(text));
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('ignoreip lists', () => {
  test('split like fail2ban splitwords: spaces, commas, newlines', () => {
    expect(splitIgnoreIp('127.0.0.1/8 ::1,10.0.0.1 ,\n 192.168.0.0/16')).toEqual([
      '127.0.0.1/8',
      '::1',
      '10.0.0.1',
      '192.168.0.0/16',
    ]);
    expect(splitIgnoreIp('')).toEqual([]);
  });

  test('appending to a one-line list keeps the separator and the comment', () => {
    const text = '[DEFAULT]\nignoreip = 127.0.0.1/8, ::1 ; loopback\n';
    expect(setIgnoreIp(text, 'DEFAULT', ['127.0.0.1/8', '::1', '10.20.0.0/16'])).toBe(
      '[DEFAULT]\nignoreip = 127.0.0.1/8, ::1, 10.20.0.0/16 ; loopback\n',
    );
  });

  test('appending to a one-per-line list adds lines with the same indentation', () => {
    const text = '[DEFAULT]\nignoreip =\n    127.0.0.1/8\n    ::1\nbantime = 1h\n';
    expect(setIgnoreIp(text, 'DEFAULT', ['127.0.0.1/8', '::1', '10.20.0.0/16', '10.30.0.1'])).toBe(
      '[DEFAULT]\nignoreip =\n    127.0.0.1/8\n    ::1\n    10.20.0.0/16\n    10.30.0.1\nbantime = 1h\n',
    );
  });

  test('a comma-terminated one-per-line list stays comma-terminated', () => {
    const text = '[DEFAULT]\nignoreip = a.example,\n           b.example\n';
    expect(setIgnoreIp(text, 'DEFAULT', ['a.example', 'b.example', 'c.example'])).toBe(
      '[DEFAULT]\nignoreip = a.example,\n           b.example,\n           c.example\n',
    );
  });

  test('appending to a list of several entries per line extends its last line', () => {
    const text = '[DEFAULT]\nignoreip = 1.1.1.1 2.2.2.2\n           3.3.3.3 4.4.4.4\n';
    expect(setIgnoreIp(text, 'DEFAULT', ['1.1.1.1', '2.2.2.2', '3.3.3.3', '4.4.4.4', '5.5.5.5'])).toBe(
      '[DEFAULT]\nignoreip = 1.1.1.1 2.2.2.2\n           3.3.3.3 4.4.4.4 5.5.5.5\n',
    );
  });

  test('replacing (exact) re-renders a multi-line list in its own style', () => {
    const text = '[DEFAULT]\nignoreip =\n    127.0.0.1/8\n    ::1\n';
    expect(setIgnoreIp(text, 'DEFAULT', ['10.0.0.1', '10.0.0.2'])).toBe(
      '[DEFAULT]\nignoreip =\n    10.0.0.1\n    10.0.0.2\n',
    );
  });

  test('a section without ignoreip gets a one-line list', () => {
    expect(setIgnoreIp('[sshd]\nenabled = true\n', 'sshd', ['10.0.0.1', '::1'])).toBe(
      '[sshd]\nenabled = true\nignoreip = 10.0.0.1 ::1\n',
    );
  });

  test('property: whatever the layout, the list reads back as set and a second edit changes nothing', () => {
    const entry = fc.constantFrom(
      '127.0.0.1/8',
      '::1',
      '10.0.0.1',
      '10.20.0.0/16',
      'host.example',
      '2001:db8::/32',
    );
    const layout = fc.record({
      existing: fc.uniqueArray(entry, { maxLength: 4 }),
      separator: fc.constantFrom(' ', ',', ', '),
      multiLine: fc.boolean(),
      onKeyLine: fc.boolean(),
    });
    fc.assert(
      fc.property(layout, fc.uniqueArray(entry, { maxLength: 5 }), (l, wanted) => {
        let body: string;
        if (!l.multiLine) body = `ignoreip = ${l.existing.join(l.separator)}\n`;
        else {
          const [head, ...rest] = l.onKeyLine ? l.existing : ['', ...l.existing];
          body = `ignoreip = ${head ?? ''}\n${rest.map((e) => `    ${e}\n`).join('')}`;
        }
        const text = `# top\n[DEFAULT]\n${body}bantime = 1h\n\n[sshd]\nenabled = true\n`;
        const once = setIgnoreIp(text, 'DEFAULT', wanted);
        const parsed = parseIni(once);
        const ok =
          JSON.stringify(splitIgnoreIp(findOption(parsed, 'DEFAULT', 'ignoreip')!.value)) ===
            JSON.stringify(wanted) &&
          findOption(parsed, 'DEFAULT', 'bantime')?.value === '1h' &&
          once.startsWith('# top\n[DEFAULT]\n') &&
          once.endsWith('bantime = 1h\n\n[sshd]\nenabled = true\n');
        return ok && setIgnoreIp(once, 'DEFAULT', wanted) === once;
      }),
      { numRuns: 400 },
    );
  });
});

describe('read order and effective values', () => {
  test('jail.conf, jail.d/*.conf sorted, jail.local, jail.d/*.local sorted (jail.conf(5))', () => {
    expect(
      jailReadOrder('/etc/fail2ban', [
        '/etc/fail2ban/jail.d/b.local',
        '/etc/fail2ban/jail.d/z.conf',
        '/etc/fail2ban/jail.d/a.local',
        '/etc/fail2ban/jail.d/defaults-debian.conf',
        '/etc/fail2ban/jail.d/sub/x.conf',
      ]),
    ).toEqual([
      '/etc/fail2ban/jail.conf',
      '/etc/fail2ban/jail.d/defaults-debian.conf',
      '/etc/fail2ban/jail.d/z.conf',
      '/etc/fail2ban/jail.local',
      '/etc/fail2ban/jail.d/a.local',
      '/etc/fail2ban/jail.d/b.local',
    ]);
  });

  const files = [
    file(
      '/f/jail.conf',
      '[DEFAULT]\nmaxretry = 5\nbantime = 10m\n[sshd]\nport = ssh\n[recidive]\nbantime = 1w\n',
    ),
    file('/f/jail.d/x.conf', '[DEFAULT]\nbantime = 1h\n'),
    file('/f/jail.local', '[DEFAULT]\nmaxretry = 3\n'),
  ];

  test("a later file wins key by key; the jail's own key beats [DEFAULT] of any later file", () => {
    expect(effectiveValue(files, 'sshd', 'maxretry')).toEqual({
      value: '3',
      path: '/f/jail.local',
      line: 2,
      section: 'DEFAULT',
    });
    expect(effectiveValue(files, 'sshd', 'bantime')?.path).toBe('/f/jail.d/x.conf');
    expect(effectiveValue(files, 'recidive', 'bantime')).toMatchObject({ value: '1w', section: 'recidive' });
    expect(effectiveValue(files, 'sshd', 'findtime')).toBeUndefined();
    expect(jailSections(files)).toEqual(['sshd', 'recidive']);
  });

  test("interpolation resolves %(name)s with the jail's values; known/ and unknown names do not resolve", () => {
    const f = [
      file(
        '/j',
        '[DEFAULT]\nbanaction = iptables-multiport\naction_ = %(banaction)s[port="%(port)s"]\naction = %(action_)s\n[sshd]\nport = ssh\n',
      ),
    ];
    expect(interpolate(f, 'sshd', '%(action)s')).toBe('iptables-multiport[port="ssh"]');
    expect(interpolate(f, 'sshd', '%(known/action)s')).toBeUndefined();
    expect(interpolate(f, 'sshd', '%(nothing)s')).toBeUndefined();
  });
});
