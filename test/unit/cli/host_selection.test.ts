/**
 * --limit and the plays' host patterns on the command line: a term that
 * matches nothing is a warning, and a command left with no host exits 1
 * ("no hosts matched") instead of reporting an empty success.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../../support/cli.js';

let dir: string;
let inventory: string;
let playbook: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-limit-'));
  inventory = path.join(dir, 'hosts.ini');
  fs.writeFileSync(
    inventory,
    '[web]\nweb1 ansible_connection=local\nweb2 ansible_connection=local\n[db]\ndb1 ansible_connection=local\n',
  );
  playbook = path.join(dir, 'site.yml');
  fs.writeFileSync(
    playbook,
    `- hosts: all\n  tasks:\n    - name: marker\n      file: { dest: "${dir}/{{ inventory_hostname }}", content: "x\\n" }\n`,
  );
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const WARNING = "warning: --limit: host pattern '!wbe1' matched no host or group (did you mean 'web1'?)\n";

test("apply --limit 'web*:!wbe1' warns about the term that matched nothing", async () => {
  const run = await runCli(['apply', playbook, '-i', inventory, '--limit', 'web*:!wbe1']);
  expect(run.stderr).toBe(WARNING);
  expect(run.code).toBe(0);
  expect(fs.readdirSync(dir).sort()).toEqual(['hosts.ini', 'site.yml', 'web1', 'web2']);
});

test('a --limit that selects nothing exits 1, "no hosts matched", and changes nothing', async () => {
  const run = await runCli(['apply', playbook, '-i', inventory, '--limit', 'wbe1']);
  expect(run.code).toBe(1);
  expect(run.stderr).toBe(
    "warning: --limit: host pattern 'wbe1' matched no host or group (did you mean 'web1'?)\n" +
      `error: no hosts matched: --limit 'wbe1' leaves no host of the plays' host patterns in ${inventory}\n`,
  );
  expect(run.stdout).toBe('');
  expect(fs.readdirSync(dir).sort()).toEqual(['hosts.ini', 'site.yml']);
  const json = await runCli(['plan', playbook, '-i', inventory, '--limit', 'wbe1', '--format', 'json']);
  expect(json.code).toBe(1);
  expect((JSON.parse(json.stdout) as { errors: { summary: string }[] }).errors[0]?.summary).toMatch(
    /^no hosts matched: /,
  );
});

test('plays whose patterns select nothing exit 1 too', async () => {
  fs.writeFileSync(playbook, fs.readFileSync(playbook, 'utf8').replace('hosts: all', 'hosts: webservers'));
  const run = await runCli(['plan', playbook, '-i', inventory]);
  expect(run.code).toBe(1);
  expect(run.stderr).toContain(
    `${playbook}:1:3: warning: host pattern 'webservers' matched no host or group`,
  );
  expect(run.stderr).toContain("error: no hosts matched: the plays' host patterns select no host of");
});

test('sshfix inventory: the same warning, and exit 1 when nothing is selected', async () => {
  const some = await runCli(['inventory', '-i', inventory, '--limit', 'web*:!wbe1']);
  expect(some.code).toBe(0);
  expect(some.stderr).toBe(WARNING);
  expect(some.stdout).toMatch(/^web1 {2}groups: all, web\n(.*\n)*web2 {2}groups/);
  const none = await runCli(['inventory', '-i', inventory, '--limit', 'nomatch']);
  expect(none.code).toBe(1);
  expect(none.stderr).toContain(`error: no hosts matched: --limit 'nomatch' selects no host of ${inventory}`);
  expect(none.stdout).toBe('');
});

test('sshfix diagnose -i: the same warning before refusing to run on nothing', async () => {
  const run = await runCli(['diagnose', '-i', inventory, '--limit', 'web1:&wbe*']);
  expect(run.code).toBe(1);
  expect(run.stderr).toContain("warning: --limit: host pattern '&wbe*' matched no host or group\n");
  expect(run.stderr).toContain('error: no hosts matched');
});
