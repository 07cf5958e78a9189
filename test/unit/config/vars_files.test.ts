/**
 * vars_files, -e @FILE and Ansible Vault in playbooks, inventories and vars
 * files: which variable wins, and where a problem is reported. Vaults are
 * the fixtures `ansible-vault` made (test/fixtures/vault).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, formatDiagnostic } from '../../../src/config/diagnostics.js';
import { parseExtraVars } from '../../../src/config/extra_vars.js';
import { loadInventory } from '../../../src/config/inventory.js';
import { loadPlaybook } from '../../../src/config/playbook.js';
import { Vault } from '../../../src/config/vault.js';
import { bindPlaybook, DEFAULT_FORKS, type RunOptions } from '../../../src/executor/run.js';
import { planVariables } from '../../../src/plan/plan_file.js';
import { RESOURCES, resourceSchemas } from '../../../src/resources/registry.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/vault');
const fixture = (name: string) => fs.readFileSync(path.join(FIXTURES, name), 'utf8');
const vault = (secret = 'correct horse battery staple') =>
  new Vault([{ id: 'default', secret: Buffer.from(secret) }]);

/** `encrypt_string`'s `name: !vault |` block, under `name`, indented by `indent` spaces. */
function vaultValue(name: string, indent: number, file = 'become_string.yml'): string {
  const [, ...body] = fixture(file).trimEnd().split('\n');
  const pad = ' '.repeat(indent);
  return [`${pad}${name}: !vault |`, ...body.map((line) => `${pad}  ${line.trim()}`)].join('\n');
}

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-vars-files-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = path.join(dir, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  return file;
}

/** Diagnostics of a ConfigError thrown by `load`, formatted as the CLI prints them. */
function errorsOf(load: () => unknown): string[] {
  try {
    load();
  } catch (error) {
    if (error instanceof ConfigError) return error.diagnostics.map(formatDiagnostic);
    throw error;
  }
  throw new Error('expected a ConfigError');
}

const TASK = `  tasks:
    - name: t
      file: { dest: /tmp/x, content: "{{ who }}" }
`;

function boundVars(playbookFile: string, extraVars: Record<string, unknown>, v = vault()) {
  const inventory = loadInventory(
    write(
      'hosts.yml',
      'all:\n  vars: { who: inventory, only_inventory: i }\n  hosts: { web1: { ansible_connection: local } }\n',
    ),
  );
  const options: RunOptions = {
    check: true,
    forks: DEFAULT_FORKS,
    acceptNewHostKeys: false,
    connectTimeoutMs: 1000,
    commandTimeoutMs: 1000,
    extraVars,
  };
  const jobs = bindPlaybook(loadPlaybook(playbookFile, resourceSchemas(), v), inventory, RESOURCES, options);
  return jobs[0]!.plays[0]!.vars;
}

describe('vars_files', () => {
  test("Ansible's precedence: inventory < play vars < vars_files (a later file over an earlier) < -e", () => {
    write('vars/common.yml', 'who: common\nfrom_common: c\nshared: common\n');
    write('vars/site.json', '{"shared": "site", "from_site": 2}');
    const playbook = write(
      'site.yml',
      `- hosts: all
  vars: { who: play, only_play: p, shared: play }
  vars_files: [vars/common.yml, vars/site.json]
${TASK}`,
    );
    const vars = boundVars(playbook, parseExtraVars(['shared=extra']));
    expect(vars).toMatchObject({
      only_inventory: 'i',
      only_play: 'p',
      who: 'common',
      from_common: 'c',
      from_site: 2,
      shared: 'extra',
    });
  });

  test('are read relative to the playbook, not the working directory', () => {
    write('play/vars.yml', 'who: next-to-the-playbook\n');
    const playbook = write('play/site.yml', `- hosts: all\n  vars_files: [vars.yml]\n${TASK}`);
    expect(boundVars(playbook, {}).who).toBe('next-to-the-playbook');
  });

  test('a missing file is reported at its entry; a template name is refused there too', () => {
    const playbook = write(
      'site.yml',
      `- hosts: all\n  vars_files:\n    - missing.yml\n    - "vars/{{ env }}.yml"\n${TASK}`,
    );
    const errors = errorsOf(() => loadPlaybook(playbook, resourceSchemas()));
    expect(errors).toEqual([
      expect.stringMatching(
        new RegExp(`^${playbook}:3:7: error: cannot read vars file .*missing\\.yml: ENOENT`),
      ),
      `${playbook}:4:7: error: vars_files: 'vars/{{ env }}.yml' is a template; sshfix reads vars files before any host variable is known: name the file`,
    ]);
  });

  test('a file that is not a mapping, and a vars_files that is not a list, are errors with positions', () => {
    write('list.yml', '- a\n- b\n');
    const bad = write('bad.yml', `- hosts: all\n  vars_files: [list.yml]\n${TASK}`);
    expect(errorsOf(() => loadPlaybook(bad, resourceSchemas()))).toEqual([
      `${path.join(dir, 'list.yml')}:1:1: error: a vars file must hold a mapping of variable names to values, not a list`,
    ]);
    const notList = write('notlist.yml', `- hosts: all\n  vars_files: vars.yml\n${TASK}`);
    expect(errorsOf(() => loadPlaybook(notList, resourceSchemas()))[0]).toMatch(
      new RegExp(`^${notList}:2:15: error: 'vars_files' must be a list`),
    );
  });

  test('an empty vars file sets nothing, as in Ansible', () => {
    write('empty.yml', '# nothing yet\n');
    const playbook = write('site.yml', `- hosts: all\n  vars_files: [empty.yml]\n${TASK}`);
    expect(boundVars(playbook, {}).who).toBe('inventory');
  });
});

describe('-e @FILE', () => {
  test('YAML and JSON files, in order with the other -e arguments (later wins)', () => {
    const yml = write('a.yml', 'port: 2222\nnets: [10.0.0.0/8]\n');
    const json = write('b.json', '{"port": 22, "name": "json"}');
    expect(parseExtraVars([`@${yml}`, 'name=pair', `@${json}`])).toEqual({
      port: 22,
      nets: ['10.0.0.0/8'],
      name: 'json',
    });
    expect(parseExtraVars([`@${json}`, `@${yml}`]).port).toBe(2222);
  });

  test('a missing file, a bare @ and a list are errors naming the file', () => {
    expect(errorsOf(() => parseExtraVars([`@${dir}/nope.yml`]))[0]).toMatch(
      /cannot read vars file .*nope\.yml/,
    );
    expect(errorsOf(() => parseExtraVars(['@']))[0]).toMatch(/@ must be followed by a file name/);
    const list = write('list.yml', '[1, 2]\n');
    expect(errorsOf(() => parseExtraVars([`@${list}`]))[0]).toMatch(
      /list\.yml:1:1: error: a vars file must hold a mapping/,
    );
  });
});

describe('Ansible Vault', () => {
  test('a vars file encrypted whole (-e @file and vars_files): decrypted, and every value is a secret', () => {
    const file = write('secrets.yml', fixture('vars.yml'));
    const v = vault();
    expect(parseExtraVars([`@${file}`], v)).toEqual({
      db_password: 's3cr3t-db-Quokka',
      admin_net: '192.0.2.0/24',
      note: 'pässwörd ünïcode',
    });
    expect(v.secrets().sort()).toEqual(['192.0.2.0/24', 'pässwörd ünïcode', 's3cr3t-db-Quokka']);
    const playbook = write('site.yml', `- hosts: all\n  vars_files: [secrets.yml]\n${TASK}`);
    expect(boundVars(playbook, {}).admin_net).toBe('192.0.2.0/24');
  });

  test('a 1.2 file with a vault id opens with the password given', () => {
    const file = write('id.yml', fixture('vars_id.yml'));
    expect(parseExtraVars([`@${file}`], vault())).toEqual({ api_token: 'tok-Wallaby-1234' });
  });

  test('!vault values in a playbook, a vars file and a YAML inventory; each plaintext is a secret', () => {
    write('vars.yml', `${vaultValue('from_file', 0, 'sixteen_string.yml')}\n`);
    const playbook = write(
      'site.yml',
      `- hosts: all\n  vars:\n${vaultValue('who', 4)}\n  vars_files: [vars.yml]\n${TASK}`,
    );
    const v = vault();
    const inventory = loadInventory(
      write('inv.yml', `all:\n  hosts:\n    web1:\n${vaultValue('ansible_become_password', 6)}\n`),
      v,
    );
    expect(inventory.hosts.get('web1')?.vars.ansible_become_password).toBe('hunter2-Numbat');
    const vars = boundVars(playbook, {}, v);
    expect(vars).toMatchObject({ who: 'hunter2-Numbat', from_file: 'Sixteen-bytes!!!' });
    expect(v.secrets().sort()).toEqual(['Sixteen-bytes!!!', 'hunter2-Numbat']);
  });

  test('a wrong password: an error at the !vault value (file:line:column of its text), nothing returned', () => {
    const playbook = write(
      'site.yml',
      `- hosts: all\n  vars:\n    plain: x\n${vaultValue('who', 4)}\n${TASK}`,
    );
    const v = vault('wrong password');
    expect(errorsOf(() => loadPlaybook(playbook, resourceSchemas(), v))).toEqual([
      `${playbook}:4:17: error: cannot decrypt this !vault value: wrong vault password (the one given does not open it), or the vault was altered: its HMAC does not match`,
    ]);
    expect(v.secrets()).toEqual([]);
  });

  test('a wrong password for a file encrypted whole names the file; in an inventory too', () => {
    const file = write('secrets.yml', fixture('vars.yml'));
    expect(errorsOf(() => parseExtraVars([`@${file}`], vault('nope')))).toEqual([
      `${file}:1:1: error: cannot decrypt this file: wrong vault password (the one given does not open it), or the vault was altered: its HMAC does not match`,
    ]);
    const inventory = write('inv.yml', `all:\n  hosts:\n    web1:\n${vaultValue('x', 6)}\n`);
    expect(errorsOf(() => loadInventory(inventory, vault('nope')))).toEqual([
      expect.stringMatching(
        new RegExp(`^${inventory}:4:17: error: cannot decrypt this !vault value: wrong vault password`),
      ),
    ]);
  });

  test('no password given: the error says how to give one', () => {
    const file = write('secrets.yml', fixture('vars_id.yml'));
    expect(errorsOf(() => parseExtraVars([`@${file}`]))).toEqual([
      `${file}:1:1: error: this file is encrypted with Ansible Vault: give its password with --vault-password-file FILE or --ask-vault-pass`,
    ]);
    const playbook = write('site.yml', `- hosts: all\n  vars:\n${vaultValue('who', 4)}\n${TASK}`);
    expect(errorsOf(() => loadPlaybook(playbook, resourceSchemas()))).toEqual([
      `${playbook}:3:17: error: this !vault value is encrypted with Ansible Vault: give its password with --vault-password-file FILE or --ask-vault-pass`,
    ]);
  });

  test('a playbook and an inventory encrypted whole are opened; their variable values are secrets', () => {
    const v = vault();
    const inventory = loadInventory(path.join(FIXTURES, 'inventory.yml'), v);
    expect(inventory.hosts.get('web1')?.vars).toEqual({
      ansible_connection: 'local',
      admin_net: '198.51.100.0/24',
    });
    const playbook = loadPlaybook(path.join(FIXTURES, 'playbook.yml'), resourceSchemas(), v);
    expect(playbook.plays[0]?.vars).toEqual({ greeting: 'hello-Bilby' });
    expect(playbook.plays[0]?.tasks[0]?.name).toBe('greeting');
    expect(v.secrets()).toEqual(expect.arrayContaining(['198.51.100.0/24', 'local', 'hello-Bilby']));
    expect(
      errorsOf(() => loadPlaybook(path.join(FIXTURES, 'playbook.yml'), resourceSchemas(), vault('x'))),
    ).toEqual([
      expect.stringMatching(/playbook\.yml:1:1: error: cannot decrypt this file: wrong vault password/),
    ]);
  });

  test('a plan file keeps no -e variable that holds a vault plaintext, whatever its name', () => {
    const extraVars = { admin_net: '192.0.2.0/24', note: 'net 192.0.2.0/24 here', port: 22 };
    expect(planVariables(extraVars, ['192.0.2.0/24'])).toMatchObject({
      values: { port: 22 },
      secretNames: ['admin_net', 'note'],
    });
  });
});
