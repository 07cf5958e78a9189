import fc from 'fast-check';
import {
  describeVerdict,
  ensureAllowed,
  ensureNotDenied,
  evaluateAccess,
  parseClientSpec,
  parseHostsAccess,
  renderClientPattern,
  renderHostsAccess,
  type ClientSpec,
  type HostsAccessFile,
} from '../../../src/formats/hosts_access.js';

const ALLOW = '/etc/hosts.allow';
const DENY = '/etc/hosts.deny';

function client(text: string): ClientSpec {
  const range = parseClientSpec(text);
  if ('error' in range) throw new Error(range.error);
  return { text, range };
}

const file = (text: string, path = DENY): HostsAccessFile => parseHostsAccess(text, path);

function verdict(allow: string, deny: string, address: string, daemon = 'sshd') {
  return evaluateAccess({ allow: file(allow, ALLOW), deny: file(deny, DENY) }, daemon, client(address).range);
}

function narrowDeny(deny: string, clients: string[], daemon = 'sshd') {
  const result = ensureNotDenied(file(deny), daemon, clients.map(client));
  return { text: renderHostsAccess(result.file), edits: result.edits, warnings: result.warnings };
}

// Debian's stock /etc/hosts.deny header.
const STOCK_DENY = `# /etc/hosts.deny: list of hosts that are _not_ allowed to access the system.
#                  See the manual pages hosts_access(5) and hosts_options(5).
#
# Example:    ALL: some.host.name, .some.domain
#             ALL EXCEPT in.fingerd: other.host.name, .other.domain
#
`;

describe('parseHostsAccess / renderHostsAccess', () => {
  it.each([
    ['empty', ''],
    ['stock Debian header', STOCK_DENY],
    ['continued rule', 'sshd,\\\n  vsftpd: 10.0.0.1 \\\n  10.0.0.2 : severity auth.info : ALLOW\n'],
    ['no final newline', 'sshd: ALL'],
    ['CRLF and lone CR', 'sshd: 1.2.3.4\r\n# x\r\n\rfoo'],
    ['continuation at EOF', 'sshd: a \\\n'],
  ])('round-trips %s byte for byte', (_what, text) => {
    expect(renderHostsAccess(file(text))).toBe(text);
  });

  it('round-trips any text (property)', () => {
    const alphabet = fc.constantFrom(
      's',
      'd',
      ':',
      ' ',
      ',',
      '\\',
      '\n',
      '\r',
      '#',
      '[',
      ']',
      '1',
      '.',
      '/',
      '\t',
      'é',
    );
    fc.assert(
      fc.property(
        fc.array(alphabet, { maxLength: 80 }).map((a) => a.join('')),
        (text) => {
          expect(renderHostsAccess(file(text))).toBe(text);
        },
      ),
    );
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => expect(renderHostsAccess(file(text))).toBe(text)),
    );
  });

  it('joins continued lines and splits fields as libwrap does', () => {
    const [rule] = file('sshd,\\\n vsftpd: [2001:db8::]/32 10.0.0.1 : spawn echo a\\:b : ALLOW\n').lines;
    expect(rule?.kind).toBe('rule');
    expect(rule?.line).toBe(1);
    expect(rule?.rule?.daemons.map((t) => t.text)).toEqual(['sshd', 'vsftpd']);
    expect(rule?.rule?.clients.map((t) => t.text)).toEqual(['[2001:db8::]/32', '10.0.0.1']);
    expect(rule?.rule?.options).toBe(' spawn echo a\\:b : ALLOW');
  });

  it('numbers lines by their first physical line and flags what libwrap cannot read', () => {
    const parsed = file('# a \\\n still comment\nsshd 1.2.3.4\n\nsshd: 1.2.3.4');
    expect(parsed.lines.map((l) => [l.line, l.kind])).toEqual([
      [1, 'comment'],
      [3, 'malformed'],
      [4, 'blank'],
      [5, 'broken'],
    ]);
  });
});

describe('evaluateAccess', () => {
  it('reports the deciding rule with file and line', () => {
    const v = verdict('', `${STOCK_DENY}vsftpd: ALL\nsshd: 10.20.0.5\n`, '10.20.0.5');
    expect(v).toEqual({
      access: 'refused',
      by: { file: DENY, line: 8, text: 'sshd: 10.20.0.5' },
      reason: 'first match in hosts.deny',
    });
    expect(describeVerdict(v)).toBe('refused by /etc/hosts.deny:8 (sshd: 10.20.0.5)');
    expect(verdict('', 'vsftpd: ALL\n', '10.20.0.5').access).toBe('granted');
  });

  it.each([
    ['host names depend on DNS', 'sshd: server.example.com\n', /depends on DNS/],
    ['.domain depends on DNS', 'sshd: .example.com\n', /depends on DNS/],
    ['netgroups depend on NIS', 'sshd: @admins\n', /NIS/],
    ['LOCAL', 'sshd: LOCAL\n', /DNS/],
    ['PARANOID', 'sshd: PARANOID\n', /DNS/],
    ['file patterns are unsupported', 'sshd: /etc/sshd.deny-list\n', /unsupported/],
    ['ident lookups', 'sshd: joe@10.20.0.5\n', /ident/],
    ['daemon@host', 'sshd@192.0.2.1: ALL\n', /local address/],
  ])('%s: unknown, with the reason', (_what, deny, reason) => {
    const v = verdict('', deny, '10.20.0.5');
    expect(v.access).toBe('unknown');
    expect(v.reason).toMatch(reason);
    expect(v.by?.line).toBe(1);
  });

  it('an undecidable rule does not matter when everything after it decides the same', () => {
    expect(verdict('', 'sshd: .example.com\nALL: ALL\n', '10.20.0.5')).toMatchObject({
      access: 'refused',
      by: { line: 2 },
    });
  });

  it('a network client is granted only when every address of it is', () => {
    expect(verdict('', 'sshd: 10.20.0.0/24\n', '10.20.0.0/16')).toMatchObject({
      access: 'unknown',
      reason: '10.20.0.0/24 matches only part of 10.20.0.0/16',
    });
    expect(verdict('', 'sshd: 10.0.0.0/255.0.0.0\n', '10.20.0.0/16').access).toBe('refused');
    expect(verdict('', 'sshd: 10.21.0.0/16\n', '10.20.0.0/16').access).toBe('granted');
  });

  it('options: ALLOW in hosts.deny grants, DENY in hosts.allow refuses, twist is no SSH', () => {
    expect(verdict('', 'sshd: ALL : ALLOW\n', '10.20.0.5').access).toBe('granted');
    expect(verdict('sshd: ALL : DENY\n', '', '10.20.0.5').access).toBe('refused');
    expect(verdict('sshd: ALL : twist /bin/echo go away\n', '', '10.20.0.5').access).toBe('refused');
  });
});

describe('parseClientSpec / renderClientPattern', () => {
  it.each([
    ['10.20.0.5', '10.20.0.5'],
    ['10.20.0.0/16', '10.20.0.0/255.255.0.0'],
    ['10.20.0.0/255.255.0.0', '10.20.0.0/255.255.0.0'],
    ['10.20.0.', '10.20.0.0/255.255.255.0'],
    ['10.20.0.7/32', '10.20.0.7'],
    ['0.0.0.0/0', '0.0.0.0/0.0.0.0'],
    ['2001:DB8::1', '[2001:db8::1]'],
    ['[2001:db8::]/32', '[2001:db8::]/32'],
  ])('%s → %s', (input, pattern) => {
    const range = parseClientSpec(input);
    if ('error' in range) throw new Error(range.error);
    expect(renderClientPattern(range)).toBe(pattern);
  });

  it.each([
    ['10.20.0.5/16', /host bits set.*did you mean 10\.20\.0\.0\/16/],
    ['10.20.0.256', /not an IPv4\/IPv6 address/],
    ['ALL', /not an IPv4/],
    ['host.example.com', /not an IPv4/],
    ['10.0.0.0/255.0.255.0', /not contiguous/],
    ['10.0.0.0/33', /prefix length/],
    ['[10.0.0.1]', /brackets/],
    ['1.2.3.4/8/8', /more than one/],
  ])('rejects %s', (input, message) => {
    const range = parseClientSpec(input);
    expect('error' in range && range.error).toMatch(message);
  });
});

describe('ensureNotDenied', () => {
  it('removes only the exact client pattern; everything else stays byte-identical', () => {
    const before = `${STOCK_DENY}vsftpd: ALL\nsshd: 10.20.0.5, 10.9.9.9\n# tail\n`;
    const { text, edits } = narrowDeny(before, ['10.20.0.5']);
    expect(text).toBe(`${STOCK_DENY}vsftpd: ALL\nsshd: 10.9.9.9\n# tail\n`);
    expect(edits).toEqual(['/etc/hosts.deny:8: removed 10.20.0.5 from "sshd: 10.20.0.5, 10.9.9.9"']);
  });

  it('removes the last client of a list together with its separator', () => {
    expect(narrowDeny('sshd: 10.9.9.9 10.20.0.5 : severity auth.info\n', ['10.20.0.5']).text).toBe(
      'sshd: 10.9.9.9 : severity auth.info\n',
    );
  });

  it('comments out a rule left without clients, every physical line of it', () => {
    const { text, edits } = narrowDeny('sshd: \\\n  10.20.0.5\nvsftpd: ALL\n', ['10.20.0.5']);
    expect(text).toBe('# sshfix: sshd: \\\n# sshfix:   10.20.0.5\nvsftpd: ALL\n');
    expect(edits[0]).toMatch(/:1: commented out "sshd: +10.20.0.5"/);
  });

  it('adds EXCEPT where a broader pattern matches, and merges into an existing EXCEPT', () => {
    expect(narrowDeny('sshd: ALL\n', ['10.20.0.5']).text).toBe('sshd: ALL EXCEPT 10.20.0.5\n');
    expect(narrowDeny('sshd: 10.20.0.0/16 EXCEPT 10.20.0.9\n', ['10.20.0.5']).text).toBe(
      'sshd: 10.20.0.0/16 EXCEPT 10.20.0.9 10.20.0.5\n',
    );
    expect(narrowDeny('sshd: 10.20.0.0/255.255.0.0 : spawn echo %a\n', ['10.20.0.5']).text).toBe(
      'sshd: 10.20.0.0/255.255.0.0 EXCEPT 10.20.0.5 : spawn echo %a\n',
    );
  });

  it('treats 10.20.0.0/16 and 10.20.0.0/255.255.0.0 as the same client pattern', () => {
    expect(narrowDeny('sshd: 10.20.0.0/255.255.0.0 10.30.0.1\n', ['10.20.0.0/16']).text).toBe(
      'sshd: 10.30.0.1\n',
    );
  });

  it('never touches rules for other daemons, rules that grant, or rules after a grant', () => {
    const deny = 'vsftpd: 10.20.0.5\nsshd: 10.20.0.5 : ALLOW\nsshd: ALL\n';
    expect(narrowDeny(deny, ['10.20.0.5'])).toEqual({ text: deny, edits: [], warnings: [] });
  });

  it('warns when the narrowed rule serves other daemons too', () => {
    const { text, warnings } = narrowDeny('ALL: ALL\n', ['10.20.0.5']);
    expect(text).toBe('ALL: ALL EXCEPT 10.20.0.5\n');
    expect(warnings).toEqual(['/etc/hosts.deny:1 also serves ALL: the edit admits 10.20.0.5 there too']);
  });

  it('adds the missing final newline, without which libwrap refuses everyone', () => {
    const { text, edits } = narrowDeny('vsftpd: ALL', ['10.20.0.5']);
    expect(text).toBe('vsftpd: ALL\n');
    expect(edits[0]).toMatch(/missing final newline/);
  });

  it('refuses to guess with nested EXCEPT lists', () => {
    expect(() => narrowDeny('sshd: ALL EXCEPT 10.20.0.0/16 EXCEPT 10.20.0.5\n', ['10.20.0.5'])).toThrow(
      /nested EXCEPT.*edit it by hand/,
    );
  });

  it('in hosts.allow, narrows only rules whose options refuse', () => {
    const allow = 'sshd: 10.20.0.0/16 : DENY\nsshd: ALL\n';
    const result = ensureNotDenied(file(allow, ALLOW), 'sshd', [client('10.20.0.5')], { role: 'allow' });
    expect(renderHostsAccess(result.file)).toBe('sshd: 10.20.0.0/16 EXCEPT 10.20.0.5 : DENY\nsshd: ALL\n');
  });
});

describe('ensureAllowed', () => {
  const STOCK_ALLOW = '# /etc/hosts.allow: list of hosts that are allowed to access the system.\n#\n';

  it('inserts one rule after the leading comments, before any rule that could shadow it', () => {
    const allow = `${STOCK_ALLOW}\nsshd: ALL : DENY\n`;
    const result = ensureAllowed(file(allow, ALLOW), 'sshd', [client('10.20.0.0/16'), client('192.0.2.7')]);
    expect(renderHostsAccess(result.file)).toBe(
      `${STOCK_ALLOW}sshd: 10.20.0.0/255.255.0.0 192.0.2.7\n\nsshd: ALL : DENY\n`,
    );
    expect(result.edits).toEqual(['/etc/hosts.allow:3: inserted "sshd: 10.20.0.0/255.255.0.0 192.0.2.7"']);
  });

  it('adds only the clients hosts.allow does not already grant', () => {
    const allow = 'sshd: 10.20.0.0/16\n';
    const result = ensureAllowed(file(allow, ALLOW), 'sshd', [client('10.20.0.5'), client('192.0.2.7')]);
    expect(renderHostsAccess(result.file)).toBe('sshd: 192.0.2.7\nsshd: 10.20.0.0/16\n');
  });

  it('creates the rule in an empty or missing file', () => {
    expect(renderHostsAccess(ensureAllowed(file('', ALLOW), 'sshd', [client('2001:db8::/32')]).file)).toBe(
      'sshd: [2001:db8::]/32\n',
    );
  });
});

describe('editors are idempotent (property)', () => {
  const pattern = fc.constantFrom(
    'ALL',
    '10.20.0.5',
    '10.20.0.0/16',
    '10.20.',
    '10.9.9.9',
    'EXCEPT',
    '.example.com',
    '[2001:db8::1]',
  );
  const rule = fc
    .tuple(
      fc.constantFrom('sshd', 'ALL', 'vsftpd', 'sshd, vsftpd'),
      fc.array(pattern, { minLength: 1, maxLength: 4 }),
      fc.constantFrom('', ' : ALLOW', ' : DENY', ' : severity auth.info'),
      fc.constantFrom(' ', ', ', ' \\\n '),
    )
    .map(([d, c, o, sep]) => `${d}: ${c.join(sep)}${o}`);
  const text = fc
    .array(fc.oneof(rule, fc.constantFrom('# comment', '')), { maxLength: 6 })
    .map((lines) => lines.map((l) => `${l}\n`).join(''));
  const clients = fc
    .subarray(['10.20.0.5', '10.20.0.0/16', '2001:db8::1'], { minLength: 1 })
    .map((c) => c.map(client));

  it('a second run changes nothing, and only edited rules differ', () => {
    fc.assert(
      fc.property(text, clients, (deny, cs) => {
        let first;
        try {
          first = ensureNotDenied(file(deny), 'sshd', cs);
        } catch {
          return;
        }
        const second = ensureNotDenied(first.file, 'sshd', cs);
        expect(second.edits).toEqual([]);
        expect(renderHostsAccess(second.file)).toBe(renderHostsAccess(first.file));
        // Comments, blanks and rules that were not edited keep their bytes.
        const edited = new Set(first.edits.map((e) => Number(/:(\d+):/.exec(e)?.[1])));
        const kept = file(deny)
          .lines.filter((l) => !edited.has(l.line))
          .map((l) => l.raw);
        const after = renderHostsAccess(first.file);
        for (const raw of kept) expect(after).toContain(raw);
        for (const c of cs) {
          expect(evaluateAccess({ allow: file('', ALLOW), deny: first.file }, 'sshd', c.range).access).toBe(
            'granted',
          );
        }
      }),
    );
    fc.assert(
      fc.property(text, clients, (allow, cs) => {
        const first = ensureAllowed(file(allow, ALLOW), 'sshd', cs);
        const second = ensureAllowed(first.file, 'sshd', cs);
        expect(second.edits).toEqual([]);
        expect(renderHostsAccess(second.file)).toBe(renderHostsAccess(first.file));
        // Nothing but the one inserted line differs.
        const inserted = first.edits.map((e) => /inserted "(.*)"$/.exec(e)?.[1]);
        expect(inserted.length).toBeLessThanOrEqual(1);
        const after = renderHostsAccess(first.file);
        expect(inserted[0] === undefined ? after : after.replace(`${inserted[0]}\n`, '')).toBe(allow);
      }),
    );
  });
});
