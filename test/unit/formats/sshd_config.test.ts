import fc from 'fast-check';
import {
  parseSshdConfig,
  quoteArgument,
  renderSshdConfig,
  rewriteDirectiveValue,
  tokenizeArguments,
  type DirectiveLine,
} from '../../../src/formats/sshd_config.js';
import {
  canonicalKeyword,
  keywordInfo,
  parseTimeValue,
  SSHD_KEYWORDS,
  suggestKeyword,
  valueProblem,
  valuesEqual,
} from '../../../src/formats/sshd_keywords.js';

function directive(text: string): DirectiveLine {
  const line = parseSshdConfig(text).lines[0];
  if (line?.kind !== 'directive') throw new Error(`not a directive: ${JSON.stringify(text)}`);
  return line;
}

/**
 * misc.c strdelim() of OpenSSH 8.6 and older, as servconf.c called it for
 * each argument: whitespace or one `=` ends an argument; a `"` is removed and
 * quotes up to the next `"`; there are no escapes.
 */
function legacyArguments(text: string): string[] | undefined {
  const args: string[] = [];
  const skipSpace = (t: string) => t.replace(/^[ \t\r\n]*/, '');
  let rest = skipSpace(text);
  while (rest !== '') {
    const at = rest.search(/[ \t\r\n"=]/);
    if (at === -1) {
      args.push(rest);
      break;
    }
    if (rest[at] === '"') {
      const unquoted = rest.slice(0, at) + rest.slice(at + 1);
      const close = unquoted.indexOf('"', at);
      if (close === -1) return undefined;
      args.push(unquoted.slice(0, close));
      rest = skipSpace(unquoted.slice(close + 1));
      continue;
    }
    args.push(rest.slice(0, at));
    const afterEquals = rest[at] === '=';
    rest = skipSpace(rest.slice(at + 1));
    if (!afterEquals && rest.startsWith('=')) rest = skipSpace(rest.slice(1));
  }
  return args;
}

describe('parseSshdConfig / renderSshdConfig', () => {
  it.each([
    ['empty file', ''],
    ['LF with final newline', 'Port 22\nPermitRootLogin no\n'],
    ['no final newline', 'Port 22\nPermitRootLogin no'],
    ['CRLF', 'Port 22\r\n# comment\r\n\r\nMaxSessions 4\r\n'],
    ['mixed endings and lone CR', 'Port 22\r\nA b\rc\nX\n\r'],
    ['tabs and odd spacing', '\t  Port\t\t22   \n  =\n#x\n   \n'],
  ])('round-trips %s byte for byte', (_name, text) => {
    expect(renderSshdConfig(parseSshdConfig(text))).toBe(text);
  });

  it('round-trips arbitrary text byte for byte (property)', () => {
    const sshdish = fc.constantFrom(
      ' ',
      '\t',
      '\r',
      '\n',
      '\r\n',
      '#',
      '=',
      '"',
      "'",
      '\\',
      'Port',
      'Match',
      'a',
      'é',
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'grapheme-composite' }),
          fc.array(sshdish).map((a) => a.join('')),
        ),
        (t) => {
          expect(renderSshdConfig(parseSshdConfig(t))).toBe(t);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('numbers lines from 1 and classifies blank, comment and directive lines', () => {
    const file = parseSshdConfig('\n  # hello\nPort 22\n');
    expect(file.lines.map((l) => [l.line, l.kind])).toEqual([
      [1, 'blank'],
      [2, 'comment'],
      [3, 'directive'],
    ]);
  });

  it('keeps the keyword as written and exposes a lowercase key', () => {
    const d = directive('  pAsSwOrDaUtHeNtIcAtIoN yes');
    expect(d.keyword).toBe('pAsSwOrDaUtHeNtIcAtIoN');
    expect(d.key).toBe('passwordauthentication');
    expect(d.indent).toBe('  ');
  });

  it.each([
    ['Port 22', ' '],
    ['Port\t22', '\t'],
    ['Port=22', '='],
    ['Port = 22', ' = '],
    ['Port\t=  22', '\t=  '],
  ])('reads the separator of %j', (text, separator) => {
    const d = directive(text);
    expect(d.separator).toBe(separator);
    expect(d.args).toEqual(['22']);
  });

  it('treats # as a comment only at the start of an argument', () => {
    const withComment = directive('Port 22 # the usual port');
    expect(withComment.args).toEqual(['22']);
    expect(withComment.trailing).toBe(' # the usual port');
    const inside = directive('Banner /a#b');
    expect(inside.args).toEqual(['/a#b']);
    expect(inside.trailing).toBe('');
    expect(directive('Banner #/etc/issue').args).toEqual([]);
  });

  it('unquotes double- and single-quoted values and backslash escapes', () => {
    expect(directive('AuthorizedKeysFile "/a b/keys" .ssh/x').args).toEqual(['/a b/keys', '.ssh/x']);
    expect(directive(`ForceCommand 'echo hi' "say \\"x\\""`).args).toEqual(['echo hi', 'say "x"']);
    expect(directive('Banner a"b c"d').args).toEqual(['ab cd']);
  });

  it('flags unbalanced quotes the way sshd does', () => {
    expect(directive('Banner "/etc/issue').error).toBe('invalid quotes');
  });

  it('rewrites a value in place keeping indentation, spelling, separator and trailing comment', () => {
    const cases: [string, string, string][] = [
      ['  maxSTARTUPS\t10:30:100   # default', '30:30:100', '  maxSTARTUPS\t30:30:100   # default'],
      ['MaxStartups=10', '30:30:100', 'MaxStartups=30:30:100'],
      ['MaxStartups = 10 #x', '30', 'MaxStartups = 30 #x'],
      ['MaxStartups', '30', 'MaxStartups 30'],
    ];
    for (const [before, value, after] of cases) {
      expect(rewriteDirectiveValue(directive(before), value)).toBe(after);
    }
  });

  it('keeps the rest of a line byte-identical when the value is rewritten (property)', () => {
    const word = fc.stringMatching(/^[A-Za-z0-9:./_-]{1,12}$/);
    const gap = fc.constantFrom(' ', '\t', '=', ' = ', '  \t');
    const comment = fc.option(fc.stringMatching(/^#[ -~]{0,10}$/), { nil: undefined });
    fc.assert(
      fc.property(
        fc.constantFrom('', ' ', '\t'),
        word,
        gap,
        fc.array(word, { minLength: 1, maxLength: 3 }),
        comment,
        word,
        (indent, kw, sep, args, c, replacement) => {
          const raw = `${indent}${kw}${sep}${args.join(' ')}${c === undefined ? '' : ` ${c}`}`;
          const d = directive(raw);
          expect(d.indent + d.keyword + d.separator + d.valueText + d.trailing).toBe(raw);
          const rewritten = rewriteDirectiveValue(d, replacement);
          expect(directive(rewritten).args).toEqual([replacement]);
          expect(rewritten.endsWith(d.trailing)).toBe(true);
          expect(rewritten.startsWith(indent + kw + sep)).toBe(true);
        },
      ),
    );
  });

  it('quotes arguments that need it, and every OpenSSH reads them back unchanged (property)', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[ -~]{0,20}$/), (arg) => {
        const unrepresentable = arg.includes('"') || /\\(["'\\ ]|$)/.test(arg);
        if (unrepresentable) {
          expect(() => quoteArgument(arg)).toThrow(/double quote|backslash/);
          return;
        }
        const text = quoteArgument(arg);
        expect(tokenizeArguments(text).tokens.map((t) => t.value)).toEqual([arg]);
        expect(legacyArguments(text)).toEqual([arg]);
      }),
      { numRuns: 2000 },
    );
  });

  it('quotes spaces, single quotes and = with double quotes, and refuses a double quote', () => {
    expect(quoteArgument('/etc/my issue')).toBe('"/etc/my issue"');
    expect(quoteArgument("O'Brien")).toBe('"O\'Brien"');
    expect(quoteArgument('A=1')).toBe('"A=1"');
    expect(quoteArgument('C:\\tmp')).toBe('C:\\tmp');
    expect(() => quoteArgument('/etc/my "issue" file')).toThrow(
      '"/etc/my \\"issue\\" file" contains a double quote ("), which sshd_config cannot hold in an argument',
    );
  });

  it('refuses to quote values with newlines or control characters', () => {
    expect(() => quoteArgument('a\nPermitRootLogin yes')).toThrow(/control character/);
    expect(() => quoteArgument('a\u0000')).toThrow(/control character/);
  });
});

describe('sshd keywords', () => {
  it('knows canonical spellings case-insensitively, and aliases', () => {
    expect(canonicalKeyword('maxstartups')).toBe('MaxStartups');
    expect(canonicalKeyword('MACS')).toBe('MACs');
    expect(canonicalKeyword('ChallengeResponseAuthentication')).toBe('KbdInteractiveAuthentication');
    expect(canonicalKeyword('NoSuchThing')).toBeUndefined();
  });

  it('lists the OpenSSH 9.x keywords of sshd_config(5)', () => {
    for (const k of [
      'PerSourceMaxStartups',
      'ChannelTimeout',
      'UnusedConnectionTimeout',
      'RequiredRSASize',
      'LogVerbose',
    ]) {
      expect(SSHD_KEYWORDS).toContain(k);
    }
  });

  it('suggests the nearest keyword for typos and nothing for gibberish', () => {
    expect(suggestKeyword('PasswordAuthentification')).toBe('PasswordAuthentication');
    expect(suggestKeyword('maxstartup')).toBe('MaxStartups');
    expect(suggestKeyword('PermitRootLogon')).toBe('PermitRootLogin');
    expect(suggestKeyword('zzzzzzzzzzzzzzzz')).toBeUndefined();
  });

  it.each<[string, string[], string | undefined]>([
    ['MaxAuthTries', ['ten'], '"ten" is not a whole number'],
    ['MaxAuthTries', ['10'], undefined],
    ['MaxSessions', ['-1'], '"-1" is not a whole number'],
    ['MaxStartups', ['100:30:10'], '"100:30:10": start (100) is above full (10)'],
    ['MaxStartups', ['10:0:100'], '"10:0:100": rate (0) is not a percentage from 1 to 100'],
    ['MaxStartups', ['10:30'], '"10:30" is not start or start:rate:full'],
    ['MaxStartups', ['0'], '"0": start and full must be above 0'],
    ['MaxStartups', ['10:30:100'], undefined],
    ['MaxStartups', ['5'], undefined],
    ['PasswordAuthentication', ['maybe'], '"maybe" is not yes or no'],
    ['PasswordAuthentication', ['YES'], undefined],
    ['PermitRootLogin', ['without-password'], undefined],
    [
      'PermitRootLogin',
      ['root-only'],
      expect.stringMatching(/^"root-only" is not one of prohibit-password, /),
    ],
    ['LoginGraceTime', ['2', 'minutes'], 'takes one value, got 2'],
    ['LoginGraceTime', ['2min'], expect.stringMatching(/^"2min" is not a time/)],
    ['UnusedConnectionTimeout', ['none'], undefined],
    ['ClientAliveInterval', ['none'], expect.stringMatching(/^"none" is not a time/)],
    ['StreamLocalBindMask', ['0177'], undefined],
    ['StreamLocalBindMask', ['0999'], '"0999" is not an octal mode (0-0777)'],
    ['LogLevel', ['VERBOSE'], undefined],
    ['SyslogFacility', ['LOCAL7'], undefined],
    ['IPQoS', ['af21', 'cs1'], undefined],
    ['IPQoS', ['0x10'], undefined],
    ['IPQoS', ['256'], expect.stringMatching(/^"256" is not a traffic class/)],
    ['Ciphers', ['+aes128-cbc'], undefined],
    [
      'Ciphers',
      ['aes128-ctr,,aes256-ctr'],
      '"aes128-ctr,,aes256-ctr" is not a comma-separated list of algorithms',
    ],
    ['PubkeyAuthOptions', ['touch-required', 'verify-required'], undefined],
    ['PubkeyAuthOptions', ['touch'], expect.stringMatching(/^"touch" is not one of none, /)],
    ['Banner', ['anything at all'], undefined],
  ])('valueProblem(%s %j) is %j', (keyword, args, expected) => {
    expect(valueProblem(keywordInfo(keyword)!, args)).toEqual(expected);
  });

  it('parses time values as sshd convtime does', () => {
    expect(parseTimeValue('300')).toBe(300);
    expect(parseTimeValue('5m')).toBe(300);
    expect(parseTimeValue('1h30m')).toBe(5400);
    expect(parseTimeValue('1W')).toBe(604800);
    expect(parseTimeValue('5x')).toBeUndefined();
  });

  it.each([
    ['LoginGraceTime', ['5m'], ['300'], true],
    ['ClientAliveInterval', ['1h30m'], ['5400'], true],
    ['PermitRootLogin', ['prohibit-password'], ['without-password'], true],
    ['PermitRootLogin', ['Prohibit-Password'], ['no'], false],
    ['PasswordAuthentication', ['No'], ['no'], true],
    ['MaxStartups', ['10'], ['10:30:10'], true],
    ['MaxStartups', ['10:30:100'], ['10:30:60'], false],
    ['Compression', ['delayed'], ['yes'], true],
    ['AllowTcpForwarding', ['all'], ['yes'], true],
    ['Banner', ['/etc/Issue'], ['/etc/issue'], false],
    ['MaxSessions', ['010'], ['10'], true],
    ['StreamLocalBindMask', ['177'], ['0177'], true],
  ])('valuesEqual(%s, %j, %j) is %s', (keyword, a, b, expected) => {
    expect(valuesEqual(keyword, a, b)).toBe(expected);
    expect(valuesEqual(keyword.toUpperCase(), b, a)).toBe(expected);
  });
});
