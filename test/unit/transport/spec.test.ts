/**
 * Where each connection setting comes from: flags > inventory variables >
 * sshfix.cfg/ansible.cfg (and their environment variables) > ssh_config >
 * defaults, and `--become` as the default that a play's `become:` and the
 * host's ansible_become beat, as Ansible ranks them.
 */
import { buildConnectionSpec, type SpecOptions } from '../../../src/transport/spec.js';
import { parseSshConfig } from '../../../src/transport/ssh_config.js';

const BASE: SpecOptions = { acceptNewHostKeys: false, connectTimeoutMs: 10_000, commandTimeoutMs: 60_000 };
const sshConfig = parseSshConfig('Host *\n  User from-ssh-config\n', '/nonexistent/ssh_config');

describe('remote_user and private_key_file of the config file', () => {
  const configured = { user: 'deploy', privateKeyFile: '/keys/deploy' };

  test('fill in what the inventory does not set, above ssh_config and below the inventory and the flags', () => {
    const filled = buildConnectionSpec('web1', {}, { ...BASE, sshConfig, configured });
    expect([filled.user, filled.privateKeyFile]).toEqual(['deploy', '/keys/deploy']);
    // Without them, ssh_config decides.
    expect(buildConnectionSpec('web1', {}, { ...BASE, sshConfig }).user).toBe('from-ssh-config');
    // Ansible: variables beat the configuration.
    const vars = { ansible_user: 'root', ansible_ssh_private_key_file: '/keys/root' };
    const inventory = buildConnectionSpec('web1', vars, { ...BASE, sshConfig, configured });
    expect([inventory.user, inventory.privateKeyFile]).toEqual(['root', '/keys/root']);
    const flags = buildConnectionSpec(
      'web1',
      {},
      { ...BASE, user: 'cli', privateKeyFile: '/keys/cli', configured },
    );
    expect([flags.user, flags.privateKeyFile]).toEqual(['cli', '/keys/cli']);
  });
});

describe('--become (becomeByDefault)', () => {
  test("makes a host with nothing said become root; the host's ansible_become and the play's become: beat it", () => {
    expect(buildConnectionSpec('web1', {}, BASE).become).toBe(false);
    expect(buildConnectionSpec('web1', {}, { ...BASE, becomeByDefault: true }).become).toBe(true);
    const host = buildConnectionSpec('web1', { ansible_become: 'no' }, { ...BASE, becomeByDefault: true });
    expect(host.become).toBe(false);
    const play = buildConnectionSpec('web1', {}, { ...BASE, become: false, becomeByDefault: true });
    expect(play.become).toBe(false);
  });
});
