/**
 * `sshfix show PLAN` through the real CLI entry point, on plan files written
 * by writePlanFile: each format, and bad files reported as bad input.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '../../../src/config/diagnostics.js';
import { EXIT } from '../../../src/cli/exit_codes.js';
import { writePlanFile } from '../../../src/cli/plan_file_io.js';
import { parsePlanDocument, type PlanDocument } from '../../../src/plan/plan_file.js';
import { runCli } from '../../support/cli.js';
import { allowTask, planDocument, planHostInput, unchangedTask } from '../../support/plan_documents.js';

let dir: string;
let planFile: string;
let doc: PlanDocument;

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-show-'));
  planFile = path.join(dir, 'plan.json');
  doc = planDocument([
    planHostInput('web1', [allowTask('192.168.0.0/16'), unchangedTask()]),
    planHostInput('web2', [unchangedTask()]),
    planHostInput('web3', [], { unreachable: true, error: 'connect timed out' }),
    planHostInput('web4', [], { error: 'sudo: a password is required' }),
  ]);
  await writePlanFile(planFile, doc);
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('sshfix show', () => {
  test('text: the host blocks and recap of `sshfix plan`, under what the plan was made from', async () => {
    const run = await runCli(['show', planFile]);
    expect(run.code).toBe(EXIT.ok);
    expect(run.stdout).toContain(
      `Plan ${planFile}: made 2026-12-03T10:00:00.000Z by sshfix 0.1.0, ${doc.digest}`,
    );
    expect(run.stdout).toContain('  playbook site.yml sha256:');
    expect(run.stdout).toContain(
      'web1 (web1)\n  changed  allow 192.168.0.0/16 [tcp_wrappers]\n           sshd: add 192.168.0.0/16\n',
    );
    expect(run.stdout).toMatch(/^ {11}\+sshd: 10\.0\.0\.0\/8 192\.168\.0\.0\/16$/m);
    expect(run.stdout).toContain('web3 (web3)\n  unreachable  connect timed out\n');
    expect(run.stdout).toContain(
      'web4 (web4)\n  failed   (plan) []\n           sudo: a password is required\n',
    );
    expect(run.stdout).toContain(
      'PLAN RECAP (nothing was changed)\nweb1  ok=1  to_change=1  failed=0  skipped=0  unreachable=0\n',
    );
  });

  test('json: the plan document itself', async () => {
    const run = await runCli(['show', planFile, '--format', 'json']);
    expect(run.code).toBe(EXIT.ok);
    expect(parsePlanDocument(run.stdout, 'stdout')).toEqual(doc);
  });

  test('markdown: the pull-request comment', async () => {
    const run = await runCli(['show', planFile, '--format', 'markdown']);
    expect(run.code).toBe(EXIT.ok);
    expect(run.stdout).toContain('| 4 | 1 | 1 | 1 | 1 | 0 | 1 |');
    expect(run.stdout).toContain('<details><summary><code>web1</code>: 1 task to change</summary>');
  });

  test('--help names the formats and the exit codes', async () => {
    const run = await runCli(['show', '--help']);
    expect(run.code).toBe(EXIT.ok);
    expect(run.stdout).toContain('sshfix show <plan>');
    expect(run.stdout).toMatch(/"text", "json", "markdown"/);
    expect(run.stdout.replace(/\s+/g, ' ')).toContain('3 apply PLAN refused some host as stale');
  });
});

describe('sshfix show refuses a bad plan file, naming it, as bad input', () => {
  test('a missing file', async () => {
    const run = await runCli(['show', path.join(dir, 'nope.json')]);
    expect(run.code).toBe(EXIT.failed);
    expect(run.stderr).toMatch(/^error: cannot read plan file .*nope\.json: ENOENT/);
    expect(run.stdout).toBe('');
  });

  test('a file that is not JSON', async () => {
    fs.writeFileSync(planFile, '<html>\n');
    const run = await runCli(['show', planFile, '--format', 'markdown']);
    expect(run.code).toBe(EXIT.failed);
    expect(run.stderr).toContain(`${planFile}:1:1: error: not a plan file: invalid JSON`);
    expect(run.stdout).toBe('');
  });

  test('a plan edited after it was made', async () => {
    const text = fs.readFileSync(planFile, 'utf8').replace('192.168.0.0/16', '0.0.0.0/0');
    fs.writeFileSync(planFile, text);
    const run = await runCli(['show', planFile]);
    expect(run.code).toBe(EXIT.failed);
    expect(run.stderr).toContain(
      `error: plan file ${planFile}: the plan's digest does not match its contents`,
    );
    expect(run.stdout).toBe('');
  });
});

describe('writePlanFile', () => {
  test('replaces the file whole and leaves no temporary file behind', async () => {
    fs.writeFileSync(planFile, 'old');
    await writePlanFile(planFile, doc);
    expect(parsePlanDocument(fs.readFileSync(planFile, 'utf8'), planFile)).toEqual(doc);
    expect(fs.readdirSync(dir)).toEqual(['plan.json']);
  });

  test('a directory that does not exist is a ConfigError naming the file', async () => {
    const target = path.join(dir, 'missing', 'plan.json');
    await expect(writePlanFile(target, doc)).rejects.toThrow(ConfigError);
    await expect(writePlanFile(target, doc)).rejects.toThrow(`cannot write plan file ${target}`);
  });
});
