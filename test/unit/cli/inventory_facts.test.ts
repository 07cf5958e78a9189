/**
 * `sshfix inventory --facts` on this machine (`ansible_connection=local`):
 * the facts are this machine's, in a table or as JSON beside the variables;
 * bad option values are bad input. The lab test reads real SSH hosts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../../support/cli.js';

let dir: string;
let inventory: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-facts-'));
  inventory = path.join(dir, 'hosts.ini');
  fs.writeFileSync(inventory, 'here ansible_connection=local\nother ansible_connection=local\n');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** VERSION_ID of this machine's os-release, unquoted. */
const versionId = (): string | undefined =>
  /^VERSION_ID="?([^"\n]*)"?$/m.exec(fs.readFileSync('/etc/os-release', 'utf8'))?.[1];

describe('inventory --facts', () => {
  test('json: each selected host gets ansible_facts beside its variables', async () => {
    const run = await runCli(['inventory', '-i', inventory, '--facts', '--format', 'json', '-l', 'here']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const doc = JSON.parse(run.stdout) as {
      hosts: Record<string, { vars: object; ansible_facts: Record<string, unknown> }>;
    };
    expect(Object.keys(doc.hosts)).toEqual(['here']);
    const facts = doc.hosts.here!.ansible_facts;
    expect(facts.distribution_major_version).toBe(versionId()?.split('.')[0]);
    // Neither systemd nor OpenRC runs the machines this is tested on, or systemd does.
    expect(facts.service_mgr).toBe(fs.existsSync('/run/systemd/system') ? 'systemd' : 'sysvinit');
    expect(doc.hosts.here!.vars).toEqual({ ansible_connection: 'local' });
    // Without --facts no host is contacted: the variables only.
    const plain = await runCli(['inventory', '-i', inventory, '--format', 'json', '-l', 'here']);
    expect(JSON.parse(plain.stdout)).toEqual({
      hosts: { here: { groups: ['all', 'ungrouped'], vars: { ansible_connection: 'local' } } },
    });
  });

  test('text: one row a host under a header', async () => {
    const run = await runCli(['inventory', '-i', inventory, '--facts', '--forks', '1']);
    expect(run.code).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^HOST +DISTRIBUTION +INIT +SSHD +LISTENER +LIBWRAP +FIREWALL +FAIL2BAN$/);
    expect(lines.slice(1).map((l) => l.split(/ +/)[0])).toEqual(['here', 'other']);
  });

  test('a bad --forks is bad input', async () => {
    const run = await runCli(['inventory', '-i', inventory, '--facts', '--forks', '0']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^error: --forks 0: give how many hosts to work on at once, 1 or more$/m);
    expect(run.stdout).toBe('');
  });

  test('--help documents --facts', async () => {
    const run = await runCli(['inventory', '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/--facts +Connect to the hosts \(read-only/);
  });
});
