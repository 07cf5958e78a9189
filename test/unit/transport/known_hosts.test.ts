import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  appendKnownHost,
  checkHostKey,
  fingerprintSha256,
  formatKnownHostsLine,
  globMatches,
  knownKeyTypes,
  KnownHostsIndex,
  parseKnownHosts,
  readKnownHostsFile,
} from '../../../src/transport/known_hosts.js';

interface PublicKey {
  type: string;
  base64: string;
  file: string;
}

let workDir: string;
let keyA: PublicKey;
let keyB: PublicKey;
let keyC: PublicKey;

function generateKey(name: string, type: 'ed25519' | 'ecdsa'): PublicKey {
  const file = join(workDir, name);
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', name, '-f', file]);
  const [keyType, base64] = readFileSync(`${file}.pub`, 'utf8').trim().split(' ');
  if (keyType === undefined || base64 === undefined) throw new Error(`unexpected public key in ${file}.pub`);
  return { type: keyType, base64, file: `${file}.pub` };
}

/** A known_hosts line for `hosts` with the given key. */
function line(hosts: string, key: PublicKey, marker = ''): string {
  return `${marker ? `${marker} ` : ''}${hosts} ${key.type} ${key.base64}`;
}

function check(text: string, host: string, port: number, key: PublicKey): string {
  return checkHostKey(parseKnownHosts(text), host, port, key.type, key.base64);
}

beforeAll(() => {
  workDir = mkdtempSync(join(tmpdir(), 'sshfix-known-hosts-'));
  keyA = generateKey('a', 'ed25519');
  keyB = generateKey('b', 'ed25519');
  keyC = generateKey('c', 'ecdsa');
});

afterAll(() => rmSync(workDir, { recursive: true, force: true }));

describe('parseKnownHosts', () => {
  it('skips comments, blank lines, unknown markers and malformed lines, and keeps line numbers', () => {
    const text = [
      '# a comment',
      '',
      '   ',
      line('web1', keyA),
      '@bogus web2 ' + `${keyA.type} ${keyA.base64}`,
      'web3 ssh-ed25519',
      'web4 ssh-ed25519 not*base64',
      // The blob says ssh-ed25519; a line claiming another type is invalid.
      `web5 ecdsa-sha2-nistp256 ${keyA.base64}`,
      'web6 1024 35 1234567',
      `  ${line('web7', keyB)}   trailing comment words`,
    ].join('\n');
    const entries = parseKnownHosts(text);
    expect(entries.map((entry) => entry.line)).toEqual([4, 10]);
    expect(entries[1]?.keyBase64).toBe(keyB.base64);
  });

  it('reads the @revoked and @cert-authority markers', () => {
    const entries = parseKnownHosts(
      [line('*', keyA, '@revoked'), line('*.lan', keyB, '@cert-authority')].join('\n'),
    );
    expect(entries.map((entry) => entry.marker)).toEqual(['revoked', 'cert-authority']);
  });
});

describe('checkHostKey', () => {
  it('matches any name of a comma-separated host list, case-insensitively', () => {
    const text = line('web1,Web1.Example.com,10.0.0.1', keyA);
    expect(check(text, 'web1', 22, keyA)).toBe('match');
    expect(check(text, 'WEB1.example.COM', 22, keyA)).toBe('match');
    expect(check(text, '10.0.0.1', 22, keyA)).toBe('match');
    expect(check(text, '10.0.0.2', 22, keyA)).toBe('unknown');
  });

  it('keeps port 22 and other ports apart, like OpenSSH', () => {
    const text = [line('web1', keyA), line('[web1]:2222', keyB)].join('\n');
    expect(check(text, 'web1', 22, keyA)).toBe('match');
    expect(check(text, 'web1', 2222, keyB)).toBe('match');
    expect(check(text, 'web1', 2222, keyA)).toBe('mismatch');
    expect(check(text, 'web1', 2200, keyA)).toBe('unknown');
    // `[host]:22` is not how OpenSSH writes port 22, and does not select it.
    expect(check(line('[web2]:22', keyA), 'web2', 22, keyA)).toBe('unknown');
  });

  it('matches hashed entries written by ssh-keygen -H, for port 22 and [host]:port', () => {
    const file = join(workDir, 'hashed_known_hosts');
    writeFileSync(file, [line('web1.example.com', keyA), line('[10.0.0.7]:2222', keyB), ''].join('\n'));
    execFileSync('ssh-keygen', ['-q', '-H', '-f', file], { stdio: 'pipe' });
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain('web1');
    expect(text).toMatch(/^\|1\|/);
    expect(check(text, 'web1.example.com', 22, keyA)).toBe('match');
    expect(check(text, 'WEB1.example.com', 22, keyA)).toBe('match');
    expect(check(text, 'web1.example.com', 22, keyB)).toBe('mismatch');
    expect(check(text, 'web1.example.com', 2222, keyA)).toBe('unknown');
    expect(check(text, '10.0.0.7', 2222, keyB)).toBe('match');
    expect(check(text, '10.0.0.7', 22, keyB)).toBe('unknown');
    expect(check(text, 'web2.example.com', 22, keyA)).toBe('unknown');
  });

  it('supports * and ? wildcards, also inside [host]:port', () => {
    const text = [line('*.example.com', keyA), line('10.0.0.?', keyB), line('[10.1.*]:2222', keyC)].join(
      '\n',
    );
    expect(check(text, 'web.example.com', 22, keyA)).toBe('match');
    expect(check(text, 'example.com', 22, keyA)).toBe('unknown');
    expect(check(text, '10.0.0.5', 22, keyB)).toBe('match');
    expect(check(text, '10.0.0.15', 22, keyB)).toBe('unknown');
    expect(check(text, '10.1.2.3', 2222, keyC)).toBe('match');
    expect(check(text, '10.1.2.3', 22, keyC)).toBe('unknown');
  });

  it('lets a negated pattern exclude a host whatever else on the line matches', () => {
    const text = line('*.example.com,!bastion.example.com', keyA);
    expect(check(text, 'web.example.com', 22, keyA)).toBe('match');
    expect(check(text, 'bastion.example.com', 22, keyA)).toBe('unknown');
  });

  it('reports a revoked key even when another line accepts it', () => {
    const text = [line('web1', keyA), line('*', keyA, '@revoked')].join('\n');
    expect(check(text, 'web1', 22, keyA)).toBe('revoked');
    expect(check(text, 'web1', 22, keyB)).toBe('mismatch');
  });

  it('applies @revoked to every host, not just those its pattern lists', () => {
    const text = [line('web1', keyA), line('some-other-host', keyA, '@revoked')].join('\n');
    expect(check(text, 'web1', 22, keyA)).toBe('revoked');
  });

  it('ignores @cert-authority lines for plain host keys', () => {
    const text = line('*.example.com', keyA, '@cert-authority');
    expect(check(text, 'web.example.com', 22, keyA)).toBe('unknown');
  });

  it('calls a different key of the same type a mismatch', () => {
    expect(check(line('web1', keyA), 'web1', 22, keyB)).toBe('mismatch');
  });

  it('calls a key of a type not recorded for a known host a mismatch (stricter than OpenSSH)', () => {
    expect(check(line('web1', keyA), 'web1', 22, keyC)).toBe('mismatch');
  });

  it('accepts any of several recorded keys of different types', () => {
    const text = [line('web1', keyA), line('web1', keyC)].join('\n');
    expect(check(text, 'web1', 22, keyA)).toBe('match');
    expect(check(text, 'web1', 22, keyC)).toBe('match');
  });

  it('compares the key itself, not just its type', () => {
    const text = line('web1', keyA);
    const sameTypeOtherKey = checkHostKey(parseKnownHosts(text), 'web1', 22, keyA.type, keyB.base64);
    expect(sameTypeOtherKey).toBe('mismatch');
  });
});

describe('KnownHostsIndex', () => {
  it('answers every check exactly as a scan of the whole file does', () => {
    const file = join(workDir, 'index_hashed');
    writeFileSync(file, `${line('10.0.0.3', keyB)}\n`);
    execFileSync('ssh-keygen', ['-q', '-H', '-f', file], { stdio: 'pipe' });
    const hashed = readFileSync(file, 'utf8').trim();
    const pool = [
      line('10.0.0.1', keyA),
      line('10.0.0.1,web1', keyB),
      line('[10.0.0.1]:2222', keyC),
      line('10.0.0.*', keyC),
      line('10.0.0.*,!10.0.0.2', keyA),
      line('WEB2', keyA),
      line('10.0.0.2', keyB, '@revoked'),
      line('*', keyB, '@cert-authority'),
      hashed,
    ];
    const keys = [keyA, keyB, keyC];
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...pool), { maxLength: 8 }),
        fc.constantFrom('10.0.0.1', '10.0.0.2', '10.0.0.3', 'web1', 'web2', 'other'),
        fc.constantFrom(22, 2222),
        fc.integer({ min: 0, max: 2 }),
        (lines, host, port, k) => {
          const entries = parseKnownHosts(lines.join('\n'));
          const key = keys[k]!;
          const candidates = new KnownHostsIndex(entries).candidatesFor(host, port);
          expect(checkHostKey(candidates, host, port, key.type, key.base64)).toBe(
            checkHostKey(entries, host, port, key.type, key.base64),
          );
          expect(knownKeyTypes(candidates, host, port)).toEqual(knownKeyTypes(entries, host, port));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('looks literal names up without scanning them', () => {
    const entries = parseKnownHosts(
      Array.from({ length: 1000 }, (_, i) => line(`10.1.${i >> 8}.${i & 255}`, keyA)).join('\n'),
    );
    const index = new KnownHostsIndex(entries);
    expect(index.candidatesFor('10.1.3.7', 22).map((e) => e.line)).toEqual([3 * 256 + 7 + 1]);
    expect(index.candidatesFor('10.1.3.7', 2222)).toEqual([]);
  });
});

describe('knownKeyTypes', () => {
  it('lists the key types recorded for the host in file order, without revoked or CA lines', () => {
    const text = [
      line('web1', keyC),
      line('web2', keyA),
      line('web*', keyA),
      line('web1', keyC),
      line('web1', keyB, '@revoked'),
      line('web1', keyB, '@cert-authority'),
    ].join('\n');
    expect(knownKeyTypes(parseKnownHosts(text), 'web1', 22)).toEqual([keyC.type, keyA.type]);
    expect(knownKeyTypes(parseKnownHosts(text), 'db1', 22)).toEqual([]);
  });
});

describe('formatKnownHostsLine', () => {
  it('writes port 22 as a bare lower-case host and other ports as [host]:port', () => {
    expect(formatKnownHostsLine('Web1', 22, keyA.type, keyA.base64)).toBe(`web1 ${keyA.type} ${keyA.base64}`);
    expect(formatKnownHostsLine('10.0.0.1', 2222, keyA.type, keyA.base64)).toBe(
      `[10.0.0.1]:2222 ${keyA.type} ${keyA.base64}`,
    );
  });

  it('writes lines that check as a match for the same host and port only', () => {
    const text = formatKnownHostsLine('10.0.0.1', 2222, keyB.type, keyB.base64);
    expect(check(text, '10.0.0.1', 2222, keyB)).toBe('match');
    expect(check(text, '10.0.0.1', 22, keyB)).toBe('unknown');
  });

  it.each(['', 'a b', 'a,b', '*.lan', '!web1', 'web1\n'])('refuses the host name %j', (host) => {
    expect(() => formatKnownHostsLine(host, 22, keyA.type, keyA.base64)).toThrow(/cannot record a host key/);
  });
});

describe('fingerprintSha256', () => {
  it('agrees with ssh-keygen -l', () => {
    const listed = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', keyA.file], { encoding: 'utf8' });
    expect(listed.split(' ')[1]).toBe(fingerprintSha256(keyA.base64));
  });
});

describe('globMatches', () => {
  const plain = fc.string({ unit: fc.constantFrom('a', 'b', '.', '[', ']', ':'), maxLength: 8 });

  it('treats a glob without wildcards as the literal string', () => {
    fc.assert(fc.property(plain, plain, (glob, text) => globMatches(glob, text) === (glob === text)));
  });

  it('matches prefix*suffix exactly when the text starts and ends with them', () => {
    fc.assert(
      fc.property(plain, plain, plain, (prefix, suffix, text) => {
        const expected =
          text.length >= prefix.length + suffix.length && text.startsWith(prefix) && text.endsWith(suffix);
        return globMatches(`${prefix}*${suffix}`, text) === expected;
      }),
    );
  });

  it('matches ? with exactly one character', () => {
    expect(globMatches('a?c', 'abc')).toBe(true);
    expect(globMatches('a?c', 'ac')).toBe(false);
    expect(globMatches('a?c', 'abbc')).toBe(false);
    expect(globMatches('*?', '')).toBe(false);
  });
});

describe('known_hosts files', () => {
  it('creates the directory (0700) and the file (0600) when missing', async () => {
    const dir = join(workDir, 'fresh', '.ssh');
    const file = join(dir, 'known_hosts');
    await appendKnownHost(file, formatKnownHostsLine('web1', 22, keyA.type, keyA.base64));
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toBe(`web1 ${keyA.type} ${keyA.base64}\n`);
  });

  it('starts a new line when the file does not end with one', async () => {
    const file = join(workDir, 'no_trailing_newline');
    writeFileSync(file, line('web1', keyA));
    await appendKnownHost(file, formatKnownHostsLine('web2', 22, keyB.type, keyB.base64));
    const entries = await readKnownHostsFile(file);
    expect(checkHostKey(entries, 'web1', 22, keyA.type, keyA.base64)).toBe('match');
    expect(checkHostKey(entries, 'web2', 22, keyB.type, keyB.base64)).toBe('match');
  });

  it('reads a missing file as no known hosts', async () => {
    await expect(readKnownHostsFile(join(workDir, 'does-not-exist'))).resolves.toEqual([]);
  });

  it('fails closed on a file it cannot read', async () => {
    const notAFile = join(workDir, 'a-directory');
    mkdirSync(notAFile);
    await expect(readKnownHostsFile(notAFile)).rejects.toThrow(`cannot read known_hosts file ${notAFile}`);
  });
});
