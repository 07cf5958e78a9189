/**
 * `plan --out` then `apply PLAN` through the CLI, with `-c local` on private
 * copies of hosts.allow/hosts.deny: what is applied is the reviewed plan,
 * a host that changed since is refused as stale, a plan that cannot be
 * trusted is refused whole before anything is touched.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EXIT } from '../../../src/cli/exit_codes.js';
import { readPlanFile } from '../../../src/cli/plan_file_io.js';
import { runCli } from '../../support/cli.js';

let dir: string;
let allow: string;
let playbook: string;
let inventory: string;
let planFile: string;
const BEFORE = 'sshd: 10.0.0.0/8\n';

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-apply-plan-'));
  allow = path.join(dir, 'hosts.allow');
  fs.writeFileSync(allow, BEFORE);
  fs.writeFileSync(path.join(dir, 'hosts.deny'), '');
  playbook = path.join(dir, 'site.yml');
  fs.writeFileSync(
    playbook,
    `- name: wrappers
  hosts: all
  tasks:
    - name: allow {{ office }}
      tcp_wrappers:
        allow_file: ${allow}
        deny_file: ${path.join(dir, 'hosts.deny')}
        allow:
          - clients: ["{{ office }}"]
`,
  );
  inventory = path.join(dir, 'hosts.ini');
  fs.writeFileSync(inventory, 'here ansible_connection=local\n');
  planFile = path.join(dir, 'plan.json');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const plan = (...extra: string[]) =>
  runCli(['plan', playbook, '-i', inventory, '-e', 'office=192.168.0.0/16', '--out', planFile, ...extra]);
const apply = (...extra: string[]) => runCli(['apply', planFile, '--no-rollback', ...extra]);

describe('apply PLAN', () => {
  test('applies the reviewed change, then a second apply is "already applied" and changes nothing', async () => {
    const planned = await plan();
    expect(planned.code).toBe(EXIT.ok);
    expect(planned.stdout).toContain('to_change=1');
    expect(planned.stderr).toContain(`Plan saved to ${planFile}`);
    // The -e value holds no secret: the plan keeps it, apply needs no -e again.
    expect((await readPlanFile(planFile)).inputs.variables.values).toEqual({ office: '192.168.0.0/16' });
    expect(fs.readFileSync(allow, 'utf8')).toBe(BEFORE);
    const first = await apply();
    expect(first.code).toBe(EXIT.ok);
    expect(first.stdout).toContain('changed=1');
    const applied = fs.readFileSync(allow, 'utf8');
    expect(applied).toContain('192.168.0.0/255.255.0.0');
    const second = await apply('--format', 'json');
    expect(second.code).toBe(EXIT.ok);
    const report = JSON.parse(second.stdout) as {
      hosts: { here: { changed: number; tasks: { message: string }[] } };
    };
    expect(report.hosts.here.changed).toBe(0);
    expect(report.hosts.here.tasks[0]?.message).toMatch(/^already applied/);
    expect(fs.readFileSync(allow, 'utf8')).toBe(applied);
  });

  test('a host whose file was edited since the plan is refused as stale (exit 3), naming the file', async () => {
    await plan();
    const edited = `${BEFORE}sshd: 10.9.9.9\n`;
    fs.writeFileSync(allow, edited);
    const run = await apply();
    expect(run.code).toBe(EXIT.stale);
    expect(run.stdout).toContain('stale     refused, nothing changed');
    expect(run.stdout).toMatch(new RegExp(`^ +${allow}: sha256:[0-9a-f]{12}… 0644 \\S+ → sha256:`, 'm'));
    expect(run.stdout).toContain('stale=1');
    expect(fs.readFileSync(allow, 'utf8')).toBe(edited);
    const junit = await apply('--format', 'junit');
    expect(junit.code).toBe(EXIT.stale);
    expect(junit.stdout).toMatch(/<error message="stale: [^"]*hosts\.allow[^"]*" type="stale">/);
  });

  test('a plan edited after it was made, or older than --max-age, is refused whole: exit 1, nothing changed', async () => {
    await plan();
    const text = fs.readFileSync(planFile, 'utf8');
    fs.writeFileSync(planFile, text.replace('192.168.0.0/255.255.0.0', '0.0.0.0/0.0.0.0'));
    const tampered = await apply();
    expect(tampered.code).toBe(EXIT.failed);
    expect(tampered.stderr).toContain(`plan file ${planFile} refused, no host contacted: the plan's digest`);
    fs.writeFileSync(planFile, text);
    const doc = JSON.parse(text) as { createdAt: string };
    const old = new Date(Date.parse(doc.createdAt) - 3 * 3600_000).toISOString();
    // Rewritten with the digest recomputed, as a plan made three hours ago would be.
    const { planDigest } = await import('../../../src/plan/plan_file.js');
    const aged = { ...(JSON.parse(text) as Record<string, unknown>), createdAt: old };
    fs.writeFileSync(planFile, JSON.stringify({ ...aged, digest: planDigest(aged as never) }, null, 2));
    const tooOld = await apply('--max-age', '1h');
    expect(tooOld.code).toBe(EXIT.failed);
    expect(tooOld.stderr).toMatch(
      /refused, no host contacted: the plan was made at .*3h00m ago.*--max-age 60m/,
    );
    expect((await apply('--max-age', '24h')).code).toBe(EXIT.ok);
    expect(fs.readFileSync(allow, 'utf8')).toContain('192.168.0.0/255.255.0.0');
  });

  test('--check with a plan file, or --max-age with a playbook, is bad input', async () => {
    await plan();
    const check = await runCli(['apply', planFile, '--check']);
    expect(check.code).toBe(EXIT.failed);
    expect(check.stderr).toContain(`${planFile} is a plan file: apply --check does not take one`);
    const maxAge = await runCli(['apply', playbook, '-i', inventory, '--max-age', '1h']);
    expect(maxAge.code).toBe(EXIT.failed);
    expect(maxAge.stderr).toContain('--max-age applies to apply PLAN (a plan file) only');
    expect(fs.readFileSync(allow, 'utf8')).toBe(BEFORE);
  });

  test('an edited playbook, or a secret -e not passed again, refuses the plan whole', async () => {
    const planned = await plan('-e', 'api_token=hunter22');
    expect(planned.code).toBe(EXIT.ok);
    expect(fs.readFileSync(planFile, 'utf8')).not.toContain('hunter22');
    const without = await apply();
    expect(without.code).toBe(EXIT.failed);
    expect(without.stderr).toContain('pass -e api_token=… again (missing: api_token)');
    fs.appendFileSync(playbook, '\n');
    const edited = await apply('-e', 'api_token=hunter22');
    expect(edited.code).toBe(EXIT.failed);
    expect(edited.stderr).toContain(`the playbook ${playbook} is not the one the plan was made from`);
    expect(fs.readFileSync(allow, 'utf8')).toBe(BEFORE);
  });
});
