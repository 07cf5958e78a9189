/**
 * Which hosts `sshfix diagnose` looks at and how it reaches them: the one
 * connection builder of plan/apply (flags > inventory > ssh_config), hosts
 * named by address selected through the inventory, and jump hosts that log in
 * with their target's credentials, and the remote_user, private_key_file
 * and timeout of the config file below the inventory and the flags.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { diagnoseTargets, jumpSpec } from '../../../src/cli/commands/diagnose.js';
import type { ParsedArgs } from '../../../src/cli/io.js';
import { withCommandLine } from '../../../src/cli/settings.js';
import { resolveSettings } from '../../../src/config/settings.js';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-diag-targets-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  return p;
}

const args = (more: Record<string, unknown>): ParsedArgs => ({
  _: [],
  $0: 'sshfix',
  'connect-timeout': 3,
  'known-hosts': '/kh',
  'ssh-config': '/dev/null',
  ...more,
});

describe('diagnose targets', () => {
  it('follows ssh_config for a host named on the command line', () => {
    const config = file(
      'config',
      'Host web1\n  HostName 10.9.0.7\n  User deploy\n  Port 2222\n  IdentityFile /keys/web\n',
    );
    const [target] = diagnoseTargets(args({ hosts: ['web1'], 'ssh-config': config }));
    expect(target?.name).toBe('web1');
    expect(target?.spec).toMatchObject({ address: '10.9.0.7', user: 'deploy', port: 2222 });
  });

  it('lets the inventory and the flags beat ssh_config, as plan and apply do', () => {
    const config = file('config2', 'Host web1\n  HostName 10.9.0.7\n  User deploy\n');
    const inventory = file('inv.yml', 'all:\n  hosts:\n    web1: { ansible_host: 10.9.0.8 }\n');
    const [target] = diagnoseTargets(args({ hosts: ['web1'], inventory, 'ssh-config': config, user: 'ops' }));
    expect(target?.spec).toMatchObject({ address: '10.9.0.8', user: 'ops' });
  });

  it('selects an inventory host by its address, and names it as the inventory does', () => {
    const inventory = file(
      'inv2.yml',
      'all:\n  hosts:\n    web1: { ansible_host: 10.9.0.8 }\n    web2: { ansible_host: 10.9.0.9 }\n',
    );
    const targets = diagnoseTargets(args({ hosts: ['10.9.0.9'], inventory }));
    expect(targets.map((t) => [t.name, t.spec.address])).toEqual([['web2', '10.9.0.9']]);
  });

  it('with -c local and no host, diagnoses this machine', () => {
    const targets = diagnoseTargets(args({ connection: 'local' }));
    expect(targets.map((t) => [t.name, t.spec.connection])).toEqual([[os.hostname(), 'local']]);
  });
});

describe('--via', () => {
  const target = diagnoseTargets(
    args({ hosts: ['10.9.0.9'], user: undefined, 'private-key': '/keys/fleet' }),
  )[0]!.spec;

  it('a jump host outside the inventory logs in with the target’s user and key', () => {
    const jump = jumpSpec('10.9.0.1', { ...target, user: 'ops' }, args({}));
    expect(jump).toMatchObject({ address: '10.9.0.1', user: 'ops', privateKeyFile: '/keys/fleet', port: 22 });
    expect(jumpSpec('admin@10.9.0.1:2200', target, args({}))).toMatchObject({ user: 'admin', port: 2200 });
  });

  it('a jump host in the inventory keeps its own key, and takes the target’s where it has none', () => {
    const inventory = file(
      'inv3.yml',
      'all:\n  hosts:\n    bastion: { ansible_host: 10.9.0.1, ansible_ssh_private_key_file: /keys/bastion }\n    inner: { ansible_host: 10.9.0.2 }\n',
    );
    expect(jumpSpec('bastion', target, args({ inventory }))).toMatchObject({
      address: '10.9.0.1',
      privateKeyFile: '/keys/bastion',
    });
    expect(jumpSpec('inner', target, args({ inventory }))).toMatchObject({ privateKeyFile: '/keys/fleet' });
  });
});

describe('the config file (sshfix.cfg / ansible.cfg)', () => {
  it('gives remote_user, private_key_file and timeout where the inventory and the flags do not', () => {
    const key = file('id_cfg', 'not a real key\n');
    const settings = resolveSettings({
      file: {
        path: path.join(dir, 'ansible.cfg'),
        text: '[defaults]\nremote_user = deploy\nprivate_key_file = id_cfg\ntimeout = 42\n',
      },
      env: {},
      cwd: dir,
      home: dir,
    });
    const inventory = file(
      'inv-cfg.yml',
      'all:\n  hosts:\n    web1: { ansible_host: 10.9.0.8 }\n    web2: { ansible_host: 10.9.0.9, ansible_user: root }\n',
    );
    const targets = diagnoseTargets(args({ inventory, 'connect-timeout': undefined }), undefined, settings);
    expect(targets.map((t) => [t.name, t.spec.user, t.spec.privateKeyFile, t.spec.connectTimeoutMs])).toEqual(
      [
        ['web1', 'deploy', key, 42_000],
        ['web2', 'root', key, 42_000],
      ],
    );
    const flagged = diagnoseTargets(
      args({ inventory, user: 'ops', 'connect-timeout': 5 }),
      undefined,
      withCommandLine(settings, args({ user: 'ops', 'connect-timeout': 5 })),
    );
    expect(flagged.map((t) => [t.spec.user, t.spec.connectTimeoutMs])).toEqual([
      ['ops', 5_000],
      ['ops', 5_000],
    ]);
  });
});
