/**
 * Differential test: parseIni must read what Python's configparser reads when
 * configured as fail2ban configures it (configparserinc.py:
 * `inline_comment_prefixes=";"`, interpolation left alone here). Skipped where
 * python3 is missing.
 */
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { parseIni } from '../../../src/formats/fail2ban_ini.js';

const PYTHON_READER = `
import configparser, json, sys
texts = json.load(sys.stdin)
out = []
for text in texts:
    cp = configparser.ConfigParser(inline_comment_prefixes=';', strict=False, interpolation=None, default_section='\\x00none')
    try:
        cp.read_string(text)
        out.append({s: dict(cp.items(s, raw=True)) for s in cp.sections()})
    except configparser.Error:
        out.append(None)
print(json.dumps(out))
`;

const python = spawnSync('python3', ['-c', 'import configparser'], { encoding: 'utf8' });
const describeIfPython = python.status === 0 ? describe : describe.skip;

/** What parseIni makes of a text, in the shape the Python side prints (last assignment wins, sections merged). */
function ours(text: string): Record<string, Record<string, string>> | null {
  const doc = parseIni(text);
  if (doc.problems.some((p) => !/twice/.test(p.message))) return null;
  const result: Record<string, Record<string, string>> = {};
  for (const section of doc.sections) {
    const target = (result[section.name] ??= {});
    for (const option of section.options) target[option.key] = option.value;
  }
  return result;
}

describeIfPython('parseIni reads what configparser reads', () => {
  test('property: same sections, keys and values for generated configuration texts', () => {
    const line = fc.constantFrom(
      '[DEFAULT]',
      '[sshd]',
      ' [indented]',
      '[a]b]',
      'Key = v',
      'k: v : w',
      'k=',
      'ignoreip = 1.1.1.1 ;c',
      'x = a;b',
      'x = a #b',
      '  cont',
      '      deeper ; c',
      '\tcont',
      '# c',
      '   ; c',
      '',
      '   ',
      'junk',
      '  k2 = v2',
    );
    const texts = fc.array(
      fc.array(line, { maxLength: 10 }).map((ls) => ls.map((l) => `${l}\n`).join('')),
      {
        minLength: 200,
        maxLength: 200,
      },
    );
    const sample = fc.sample(texts, { numRuns: 1, seed: 42 })[0]!;
    const run = spawnSync('python3', ['-c', PYTHON_READER], {
      input: JSON.stringify(sample),
      encoding: 'utf8',
    });
    expect(run.stderr).toBe('');
    const theirs = JSON.parse(run.stdout) as Array<Record<string, Record<string, string>> | null>;
    // The sample must exercise accepted files with multi-line values, not only rejected ones.
    const accepted = theirs.filter((t) => t !== null);
    expect(accepted.length).toBeGreaterThan(20);
    expect(
      accepted.some((t) => Object.values(t).some((s) => Object.values(s).some((v) => v.includes('\n')))),
    ).toBe(true);
    sample.forEach((text, i) => {
      const expected = theirs[i] ?? null;
      // configparser with a section-less first line raises; so does a key line without "=".
      expect({ text, parsed: ours(text) }).toEqual({ text, parsed: expected });
    });
  });
});
