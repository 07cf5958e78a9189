/**
 * What an operator reads: commands quoted exactly as they run, colour only
 * on a terminal and never with NO_COLOR (no-color.org), and host blocks in
 * inventory order whatever order hosts finish in. Real CLI, `-c local` hosts
 * converging files in a private directory.
 */
/* eslint-disable no-control-regex -- these tests look for the terminal's escape codes */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../../support/cli.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-text-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

/** The words /bin/sh makes of a shown command (its arguments, read back with printf). */
function wordsOf(line: string): string[] {
  const out = execFileSync('/bin/sh', ['-c', `printf '%s\\0' ${line}`], { encoding: 'utf8' });
  return out.split('\0').slice(0, -1);
}

test('commands are shown quoted exactly as they run: sh reads them back as the same words', async () => {
  const hostile = path.join(dir, "a'b $(touch pwned)");
  const spaced = path.join(dir, 'c d.conf');
  fs.writeFileSync(hostile, 'x\n');
  fs.writeFileSync(spaced, 'y\n', { mode: 0o644 });
  const playbook = write(
    'site.yml',
    `- hosts: all
  tasks:
    - name: remove
      file: { dest: ${JSON.stringify(hostile)}, state: absent }
    - name: mode
      file: { dest: ${JSON.stringify(spaced)}, mode: "0600" }
`,
  );
  const run = await runCli(['plan', playbook, '-i', write('hosts.ini', 'here ansible_connection=local\n')]);
  expect(run.code).toBe(0);
  const shown = [...run.stdout.matchAll(/^ +\$ (.*)$/gm)].map((m) => m[1]!);
  expect(shown).toEqual([`rm -f -- '${dir}/a'\\''b $(touch pwned)'`, `chmod -- 0600 '${spaced}'`]);
  expect(shown.map(wordsOf)).toEqual([
    ['rm', '-f', '--', hostile],
    ['chmod', '--', '0600', spaced],
  ]);
  expect(fs.existsSync(path.join(dir, 'pwned'))).toBe(false);
});

describe('colour', () => {
  const colourRun = async (noColor: string | undefined) => {
    const playbook = write(
      'site.yml',
      `- hosts: all\n  tasks:\n    - name: motd\n      file: { dest: ${dir}/motd, content: "hi\\n" }\n`,
    );
    const inventory = write('hosts.ini', 'here ansible_connection=local\n');
    const saved = process.env.NO_COLOR;
    if (noColor === undefined) delete process.env.NO_COLOR;
    else process.env.NO_COLOR = noColor;
    try {
      return await runCli(['plan', playbook, '-i', inventory], { isTTY: true });
    } finally {
      if (saved === undefined) delete process.env.NO_COLOR;
      else process.env.NO_COLOR = saved;
    }
  };
  const SGR = /\x1b\[[0-9;]*m/;

  test('on a terminal the diff is coloured', async () => {
    expect((await colourRun(undefined)).stdout).toMatch(SGR);
    // An empty NO_COLOR is as if unset (no-color.org).
    expect((await colourRun('')).stdout).toMatch(SGR);
  });

  test('NO_COLOR, whatever its value, turns colour off', async () => {
    const run = await colourRun('1');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('+hi');
    expect(run.stdout).not.toMatch(SGR);
  });
});

describe('host blocks in inventory order', () => {
  const inventory = () =>
    write(
      'hosts.ini',
      [
        'first ansible_connection=local pause=2',
        'second ansible_connection=local pause=0',
        'third ansible_connection=local pause=0',
        '',
      ].join('\n'),
    );
  const blocks = (stdout: string) => [...stdout.matchAll(/^(\S+) \(\S+\)$/gm)].map((m) => m[1]);
  const recap = (stdout: string) =>
    [...stdout.slice(stdout.indexOf('RECAP')).matchAll(/^(\S+) +ok=/gm)].map((m) => m[1]);

  test('a play naming the last host first does not move it up', async () => {
    const playbook = write(
      'site.yml',
      `- hosts: third
  tasks:
    - name: early
      file: { dest: "${dir}/early-{{ inventory_hostname }}", content: "x\\n" }
- hosts: all
  tasks:
    - name: late
      file: { dest: "${dir}/late-{{ inventory_hostname }}", content: "x\\n" }
`,
    );
    const run = await runCli(['plan', playbook, '-i', inventory()]);
    expect(run.code).toBe(0);
    expect(blocks(run.stdout)).toEqual(['first', 'second', 'third']);
    expect(recap(run.stdout)).toEqual(['first', 'second', 'third']);
    const json = await runCli(['plan', playbook, '-i', inventory(), '--format', 'json']);
    expect(Object.keys((JSON.parse(json.stdout) as { hosts: object }).hosts)).toEqual([
      'first',
      'second',
      'third',
    ]);
  });

  test('a host that finishes last is still printed first when it comes first', async () => {
    const playbook = write(
      'site.yml',
      `- hosts: all
  tasks:
    - name: slow on the first host
      file:
        dest: "${dir}/{{ inventory_hostname }}"
        content: "x\\n"
        validate: "sleep {{ pause }}; test -f %s"
`,
    );
    const run = await runCli(['apply', playbook, '-i', inventory(), '--forks', '3']);
    expect(run.code).toBe(0);
    expect(blocks(run.stdout)).toEqual(['first', 'second', 'third']);
  });
});
