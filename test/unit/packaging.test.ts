/**
 * The npm package as users get it: what `npm pack` puts in the tarball, and
 * that the tarball installs into an empty project and runs. Needs a fresh
 * `npm run build` (the test script builds first). The install uses the npm
 * cache (`--offline`) and falls back to the registry when the cache lacks a
 * dependency.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import requireFreshBuild from '../support/fresh_build.mjs';

const run = promisify(execFile);

beforeAll(requireFreshBuild);
const ROOT = path.resolve(import.meta.dirname, '../..');
const PACKAGE = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  bin: Record<string, string>;
};

/** Child processes without jest's NODE_OPTIONS (--experimental-vm-modules would only add warnings). */
function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  return env;
}

async function npm(args: string[], cwd: string) {
  return run('npm', args, { cwd, env: childEnv(), maxBuffer: 64 * 1024 * 1024 });
}

interface PackResult {
  filename: string;
  files: { path: string }[];
}

/** `--ignore-scripts`: the tests run on the build the test script just made; prepack would rebuild it. */
async function pack(extra: string[]): Promise<PackResult> {
  const { stdout } = await npm(['pack', '--json', '--ignore-scripts', ...extra], ROOT);
  return (JSON.parse(stdout) as PackResult[])[0]!;
}

test('the tarball holds the build, examples, schemas and docs, and nothing for development', async () => {
  const files = (await pack(['--dry-run'])).files.map((f) => f.path);
  const topLevel = new Set(files.map((f) => f.split('/')[0]));
  expect([...topLevel].sort()).toEqual(
    [
      'CHANGELOG.md',
      'README.md',
      'dist',
      'inventories',
      'package.json',
      'playbooks',
      'schemas',
      'templates',
    ].sort(),
  );
  expect(files).toContain(PACKAGE.bin.sshfix);
  expect(files).toEqual(
    expect.arrayContaining(['schemas/playbook.schema.json', 'schemas/inventory.schema.json']),
  );
  // Compiled JavaScript only: no tests, sources, maps or declarations.
  expect(files.filter((f) => f.startsWith('dist/') && !f.endsWith('.js'))).toEqual([]);
  // And no leftovers of sources that no longer exist (tsc does not clean dist/).
  const stale = files
    .filter((f) => f.startsWith('dist/'))
    .filter((f) => !fs.existsSync(path.join(ROOT, 'src', f.slice('dist/'.length).replace(/\.js$/, '.ts'))));
  expect(stale).toEqual([]);
});

test('installs from the tarball into an empty project, and `npx sshfix` runs there', async () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-pack-'));
  try {
    const tarball = path.join(work, (await pack(['--pack-destination', work])).filename);
    const project = path.join(work, 'project');
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, 'package.json'), '{ "name": "uses-sshfix", "private": true }\n');
    const install = (offline: boolean) =>
      npm(['install', ...(offline ? ['--offline'] : []), '--no-audit', '--no-fund', tarball], project);
    await install(true).catch(() => install(false));

    const sshfix = (args: string[]) =>
      run('npx', ['--no-install', 'sshfix', ...args], { cwd: project, env: childEnv() });
    const help = await sshfix(['--help']);
    expect(help.stdout).toContain('sshfix <command>');
    for (const command of ['apply', 'plan', 'validate', 'inventory'])
      expect(help.stdout).toContain(`sshfix ${command}`);
    expect((await sshfix(['--version'])).stdout.trim()).toBe(PACKAGE.version);

    // Run as a program, the command starts node with the young generation capped
    // (scripts/bundle-cli.mjs); a preload shows the flags node was started with.
    const preload = path.join(work, 'exec-argv.cjs');
    fs.writeFileSync(
      preload,
      'process.stderr.write("execArgv " + JSON.stringify(process.execArgv) + "\\n");\n',
    );
    const flagged = await run('npx', ['--no-install', 'sshfix', '--version'], {
      cwd: project,
      env: { ...childEnv(), NODE_OPTIONS: `--require ${preload}` },
    });
    expect(flagged.stderr).toContain('execArgv ["--max-semi-space-size=2"]');

    // The shipped examples validate with the installed package alone.
    const installed = path.join(project, 'node_modules', PACKAGE.name);
    const validate = await sshfix([
      'validate',
      path.join(installed, 'playbooks/sshd-limits.yml'),
      '-i',
      path.join(installed, 'inventories/example.yml'),
    ]);
    expect(validate.stdout).toContain('valid');
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}, 600_000);
