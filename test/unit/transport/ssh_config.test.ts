/**
 * ssh_config(5) onto ConnectionSpec: which blocks apply to an inventory host,
 * first obtained value wins, tokens, Include, ProxyJump chains, and
 * precedence (CLI flags > inventory variables > ssh_config > defaults).
 */
import fc from 'fast-check';
import { ConfigError } from '../../../src/config/diagnostics.js';
import {
  applySshConfig,
  expandPath,
  loadSshConfig,
  parseJumpHop,
  parseProxyJump,
  parseSshConfig,
  type FixedSettings,
  type LocalEnvironment,
} from '../../../src/transport/ssh_config.js';
import type { ConnectionSpec } from '../../../src/transport/types.js';

const HOME = '/home/op';

/** A local machine made of the given files (paths absolute). */
function fakeEnv(files: Record<string, string> = {}): LocalEnvironment {
  return {
    home: HOME,
    localUser: 'op',
    readFile: (file) => {
      const text = files[file];
      if (text === undefined) throw new Error(`ENOENT: no such file, open '${file}'`);
      return text;
    },
    exists: (file) => file in files || Object.keys(files).some((f) => f.startsWith(`${file}/`)),
    listDirectory: (dir) => [
      ...new Set(
        Object.keys(files)
          .filter((f) => f.startsWith(`${dir}/`))
          .map((f) => f.slice(dir.length + 1).split('/')[0] ?? ''),
      ),
    ],
  };
}

/** What bindPlaybook builds for an inventory host before ssh_config: the defaults filled in. */
function baseSpec(hostName: string, overrides: Partial<ConnectionSpec> = {}): ConnectionSpec {
  return {
    hostName,
    connection: 'ssh',
    address: hostName,
    port: 22,
    user: 'op',
    agent: '/run/agent.sock',
    become: false,
    knownHostsFile: `${HOME}/.ssh/known_hosts`,
    acceptNewHostKeys: false,
    connectTimeoutMs: 10000,
    commandTimeoutMs: 120000,
    keepaliveIntervalMs: 5000,
    ...overrides,
  };
}

const NOTHING_FIXED: FixedSettings = {
  address: false,
  port: false,
  user: false,
  privateKeyFile: false,
  knownHostsFile: false,
  acceptNewHostKeys: false,
};

function resolve(
  configText: string,
  spec: ConnectionSpec,
  fixed: Partial<FixedSettings> = {},
  files: Record<string, string> = {},
): ConnectionSpec {
  const env = fakeEnv(files);
  const config = parseSshConfig(configText, `${HOME}/.ssh/config`, env);
  return applySshConfig(spec, config, { ...NOTHING_FIXED, ...fixed }, env);
}

describe('which blocks apply to an inventory host', () => {
  it('takes HostName, Port and User from the block naming the inventory alias', () => {
    const spec = resolve('Host web1\n  HostName 10.0.0.5\n  Port 2222\n  User deploy\n', baseSpec('web1'));
    expect(spec).toMatchObject({ hostName: 'web1', address: '10.0.0.5', port: 2222, user: 'deploy' });
  });

  it('matches wildcards and honours negated patterns', () => {
    const config = 'Host *.prod !db.prod\n  User app\nHost *\n  User fallback\n';
    expect(resolve(config, baseSpec('web.prod')).user).toBe('app');
    expect(resolve(config, baseSpec('db.prod')).user).toBe('fallback');
    expect(resolve(config, baseSpec('web.test')).user).toBe('fallback');
  });

  it('keeps the first value obtained, whichever block it came from', () => {
    const specificFirst = 'Host web1\n  User alice\nHost *\n  User bob\n  Port 2200\n';
    expect(resolve(specificFirst, baseSpec('web1'))).toMatchObject({ user: 'alice', port: 2200 });
    // OpenSSH's documented pitfall: a leading `Host *` beats every later block.
    const genericFirst = 'Host *\n  User bob\nHost web1\n  User alice\n  Port 2201\n';
    expect(resolve(genericFirst, baseSpec('web1'))).toMatchObject({ user: 'bob', port: 2201 });
  });

  it('reads keywords in any case and with `=`', () => {
    const spec = resolve('host web1\n  hostname=10.0.0.7\n  PORT = 2022\n', baseSpec('web1'));
    expect(spec).toMatchObject({ address: '10.0.0.7', port: 2022 });
  });

  it('applies Match originalhost blocks', () => {
    const spec = resolve('Match originalhost web*\n  User matched\n', baseSpec('web3'));
    expect(spec.user).toBe('matched');
  });

  it('falls back to the address when no block names the alias', () => {
    const config = 'Host 10.9.9.9\n  User byaddress\n  Port 2022\nHost *\n  IdentitiesOnly no\n';
    const spec = resolve(config, baseSpec('web1', { address: '10.9.9.9' }), { address: true });
    expect(spec).toMatchObject({ address: '10.9.9.9', user: 'byaddress', port: 2022 });
  });

  it('prefers the alias when a block names it, even if another names the address', () => {
    const config = 'Host 10.9.9.9\n  User byaddress\nHost web1\n  User byalias\n';
    const spec = resolve(config, baseSpec('web1', { address: '10.9.9.9' }), { address: true });
    expect(spec.user).toBe('byalias');
  });

  it('expands %h in HostName to the name given', () => {
    const spec = resolve('Host web*\n  HostName %h.example.net\n', baseSpec('web2'));
    expect(spec.address).toBe('web2.example.net');
  });

  it('changes nothing for `connection: local` hosts', () => {
    const local = baseSpec('here', { connection: 'local' });
    expect(resolve('Host *\n  User other\n  Port 2\n', local)).toEqual(local);
  });
});

describe('precedence: CLI flags > inventory variables > ssh_config > defaults', () => {
  const config = [
    'Host web1',
    '  HostName 10.0.0.5',
    '  Port 2222',
    '  User deploy',
    '  IdentityFile ~/.ssh/deploy_key',
    '  UserKnownHostsFile ~/.ssh/known_hosts.fleet',
    '',
  ].join('\n');
  const files = { [`${HOME}/.ssh/deploy_key`]: 'KEY' };

  it('ssh_config fills in what the inventory leaves out', () => {
    const spec = resolve(config, baseSpec('web1'), {}, files);
    expect(spec).toMatchObject({
      address: '10.0.0.5',
      port: 2222,
      user: 'deploy',
      privateKeyFile: `${HOME}/.ssh/deploy_key`,
      knownHostsFile: `${HOME}/.ssh/known_hosts.fleet`,
    });
  });

  it('inventory variables (and CLI flags) keep their values', () => {
    const fromInventory = baseSpec('web1', {
      address: '192.0.2.10',
      port: 2200,
      user: 'ops',
      privateKeyFile: '/keys/ops',
      knownHostsFile: '/cli/known_hosts',
    });
    const spec = resolve(
      config,
      fromInventory,
      { address: true, port: true, user: true, privateKeyFile: true, knownHostsFile: true },
      files,
    );
    expect(spec).toMatchObject({
      address: '192.0.2.10',
      port: 2200,
      user: 'ops',
      privateKeyFile: '/keys/ops',
      knownHostsFile: '/cli/known_hosts',
    });
  });
});

describe('IdentityFile and IdentitiesOnly', () => {
  it('takes the first identity file that exists, after ~ and token expansion', () => {
    const config = [
      'Host web1',
      '  HostName 10.0.0.5',
      '  User deploy',
      '  IdentityFile ~/.ssh/missing',
      '  IdentityFile ~/.ssh/%r@%h:%p',
      'Host *',
      '  IdentityFile ~/.ssh/id_ed25519',
      '',
    ].join('\n');
    const files = {
      [`${HOME}/.ssh/deploy@10.0.0.5:22`]: 'KEY',
      [`${HOME}/.ssh/id_ed25519`]: 'KEY',
    };
    expect(resolve(config, baseSpec('web1'), {}, files).privateKeyFile).toBe(
      `${HOME}/.ssh/deploy@10.0.0.5:22`,
    );
    // Without the specific key, the `Host *` one is next in line.
    const onlyDefault = { [`${HOME}/.ssh/id_ed25519`]: 'KEY' };
    expect(resolve(config, baseSpec('web1'), {}, onlyDefault).privateKeyFile).toBe(`${HOME}/.ssh/id_ed25519`);
  });

  it('leaves the key unset when no identity file exists (agent or password may still work)', () => {
    expect(resolve('Host *\n  IdentityFile ~/.ssh/nope\n', baseSpec('web1')).privateKeyFile).toBeUndefined();
  });

  it('drops the agent with IdentitiesOnly yes', () => {
    expect(resolve('Host web1\n  IdentitiesOnly yes\n', baseSpec('web1')).agent).toBeUndefined();
    expect(resolve('Host web1\n  IdentitiesOnly no\n', baseSpec('web1')).agent).toBe('/run/agent.sock');
  });

  it('refuses a token sshfix cannot expand, naming it', () => {
    expect(() => resolve('Host *\n  IdentityFile ~/.ssh/%C\n', baseSpec('web1'))).toThrow(/token %C/);
  });
});

describe('StrictHostKeyChecking and UserKnownHostsFile', () => {
  it.each([
    ['yes', false],
    ['ask', false],
    ['accept-new', true],
    ['no', true],
    ['off', true],
  ])('StrictHostKeyChecking %s records unknown keys: %s', (value, acceptNew) => {
    const spec = resolve(`Host *\n  StrictHostKeyChecking ${value}\n`, baseSpec('web1'));
    expect(spec.acceptNewHostKeys).toBe(acceptNew);
  });

  it('cannot take back --accept-new-host-keys', () => {
    const spec = resolve(
      'Host *\n  StrictHostKeyChecking yes\n',
      baseSpec('web1', { acceptNewHostKeys: true }),
      { acceptNewHostKeys: true },
    );
    expect(spec.acceptNewHostKeys).toBe(true);
  });

  it('uses the first of several UserKnownHostsFile values', () => {
    const spec = resolve('Host *\n  UserKnownHostsFile ~/.ssh/kh1 /etc/ssh/kh2\n', baseSpec('web1'));
    expect(spec.knownHostsFile).toBe(`${HOME}/.ssh/kh1`);
  });

  it('reports a bad value at its file and line', () => {
    let caught: unknown;
    try {
      resolve('Host web1\n  User x\n  StrictHostKeyChecking maybe\n', baseSpec('web1'));
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const diagnostic = (caught as ConfigError).diagnostics[0];
    expect(diagnostic?.summary).toMatch(/StrictHostKeyChecking "maybe" for host web1/);
    expect(diagnostic?.position).toEqual({ file: `${HOME}/.ssh/config`, line: 3, column: 3 });
  });

  it('reports a bad Port naming the host', () => {
    expect(() => resolve('Host web1\n  Port ssh\n', baseSpec('web1'))).toThrow(
      /Port "ssh" for host web1: not a port number/,
    );
  });
});

describe('ProxyJump parsing', () => {
  it('parses users, ports, ssh:// URIs and bracketed IPv6 addresses, outermost first', () => {
    expect(parseProxyJump('bastion, root@10.0.0.1:2222,ssh://u@[fd00::1]:22,[fd00::2]')).toEqual([
      { host: 'bastion' },
      { user: 'root', host: '10.0.0.1', port: 2222 },
      { user: 'u', host: 'fd00::1', port: 22 },
      { host: 'fd00::2' },
    ]);
  });

  it('reads `none` as no jump', () => {
    expect(parseProxyJump('none')).toBe('none');
  });

  it.each([
    ['root@', /empty host name/],
    ['@host', /empty user name/],
    ['host:99999', /not a port number/],
    ['a,,b', /empty jump host/],
  ])('refuses %s', (value, message) => {
    expect(() => parseProxyJump(value)).toThrow(message);
  });

  it('round-trips any user@host:port it formats (property)', () => {
    const name = fc.stringMatching(/^[a-z][a-z0-9.-]{0,20}$/);
    const hop = fc.record(
      {
        user: fc.stringMatching(/^[a-z_][a-z0-9_-]{0,15}$/),
        host: name,
        port: fc.integer({ min: 1, max: 65535 }),
      },
      { requiredKeys: ['host'] },
    );
    fc.assert(
      fc.property(fc.array(hop, { minLength: 1, maxLength: 4 }), (hops) => {
        const text = hops
          .map(
            (h) =>
              `${h.user !== undefined ? `${h.user}@` : ''}${h.host}${h.port !== undefined ? `:${h.port}` : ''}`,
          )
          .join(',');
        expect(parseProxyJump(text)).toEqual(hops);
        expect(parseJumpHop(`ssh://${text.split(',')[0] ?? ''}`)).toEqual(hops[0]);
      }),
    );
  });
});

describe('ProxyJump resolution', () => {
  it('gives each jump host its own settings, and the key and known_hosts of its target', () => {
    const config = [
      'Host c-alias',
      '  HostName 10.1.0.3',
      '  ProxyJump root@bastion:2200',
      '  IdentityFile ~/.ssh/lab',
      '  UserKnownHostsFile ~/.ssh/lab_known_hosts',
      'Host bastion',
      '  HostName 10.1.0.2',
      '  Port 22',
      '  User ignored-because-the-hop-names-root',
      '',
    ].join('\n');
    const spec = resolve(config, baseSpec('c-alias'), {}, { [`${HOME}/.ssh/lab`]: 'KEY' });
    expect(spec).toMatchObject({
      address: '10.1.0.3',
      port: 22,
      user: 'op',
      privateKeyFile: `${HOME}/.ssh/lab`,
    });
    expect(spec.jump).toHaveLength(1);
    // The hop's own port (2200) beats its block's Port, as on ssh's command line; it inherits key and known_hosts.
    expect(spec.jump?.[0]).toMatchObject({
      hostName: 'bastion',
      address: '10.1.0.2',
      port: 2200,
      user: 'root',
      privateKeyFile: `${HOME}/.ssh/lab`,
      knownHostsFile: `${HOME}/.ssh/lab_known_hosts`,
      become: false,
    });
    expect(spec.jump?.[0]?.password).toBeUndefined();
  });

  it('never hands the target password to a jump host', () => {
    const spec = resolve('Host t\n  ProxyJump j\n', baseSpec('t', { password: 'secret' }));
    expect(spec.jump?.[0]?.password).toBeUndefined();
    expect(spec.password).toBe('secret');
  });

  it("follows the first hop's own ProxyJump, outermost first", () => {
    const config =
      'Host target\n  ProxyJump inner,last\nHost inner\n  ProxyJump outer\nHost last\n  ProxyJump ignored\n';
    const spec = resolve(config, baseSpec('target'));
    expect(spec.jump?.map((hop) => hop.hostName)).toEqual(['outer', 'inner', 'last']);
    expect(spec.jump?.every((hop) => hop.jump === undefined)).toBe(true);
  });

  it('lets an earlier `ProxyJump none` switch off a later catch-all', () => {
    const config = 'Host bastion\n  ProxyJump none\nHost *\n  ProxyJump bastion\n';
    expect(resolve(config, baseSpec('web1')).jump?.map((hop) => hop.hostName)).toEqual(['bastion']);
    expect(resolve(config, baseSpec('bastion')).jump).toBeUndefined();
  });

  it('refuses a ProxyCommand rather than going around it', () => {
    expect(() => resolve('Host web1\n  ProxyCommand ssh -W %h:%p bastion\n', baseSpec('web1'))).toThrow(
      /ProxyCommand for host web1: sshfix does not run ProxyCommand; use ProxyJump/,
    );
    expect(resolve('Host web1\n  ProxyCommand none\n', baseSpec('web1')).jump).toBeUndefined();
  });

  it('refuses a jump loop instead of recursing forever', () => {
    expect(() => resolve('Host *\n  ProxyJump bastion\n', baseSpec('web1'))).toThrow(/ProxyJump loop/);
  });

  it('binds every hop to --known-hosts and --accept-new-host-keys', () => {
    const config = 'Host t\n  ProxyJump j\nHost j\n  UserKnownHostsFile /j/kh\n  StrictHostKeyChecking yes\n';
    const spec = resolve(config, baseSpec('t', { knownHostsFile: '/cli/kh', acceptNewHostKeys: true }), {
      knownHostsFile: true,
      acceptNewHostKeys: true,
    });
    expect(spec.jump?.[0]).toMatchObject({ knownHostsFile: '/cli/kh', acceptNewHostKeys: true });
    const withoutFlags = resolve(config, baseSpec('t'));
    expect(withoutFlags.jump?.[0]).toMatchObject({ knownHostsFile: '/j/kh', acceptNewHostKeys: false });
  });
});

describe('Include', () => {
  it('splices included files in place, relative to ~/.ssh, sorted, and nested', () => {
    const files = {
      [`${HOME}/.ssh/config`]: 'Include conf.d/*.conf\nHost *\n  User fallback\n',
      [`${HOME}/.ssh/conf.d/20-web.conf`]: 'Host web1\n  User second\n  Port 2020\n',
      [`${HOME}/.ssh/conf.d/10-web.conf`]: 'Host web1\n  User first\nInclude ~/.ssh/extra\n',
      [`${HOME}/.ssh/conf.d/ignored.txt`]: 'Host web1\n  Port 1\n',
      [`${HOME}/.ssh/extra`]: 'Host web1\n  HostName 10.0.0.9\n',
    };
    const config = loadSshConfig(undefined, fakeEnv(files));
    expect(config).toBeDefined();
    const spec = applySshConfig(baseSpec('web1'), config!, NOTHING_FIXED, fakeEnv(files));
    expect(spec).toMatchObject({ user: 'first', port: 2020, address: '10.0.0.9' });
  });

  it('applies an Include inside a Host block to that block only', () => {
    const files = {
      [`${HOME}/.ssh/config`]: 'Host web1\n  Include web-settings\nHost *\n  Port 2222\n',
      [`${HOME}/.ssh/web-settings`]: 'User fromincluded\n',
    };
    const env = fakeEnv(files);
    const config = loadSshConfig(undefined, env)!;
    expect(applySshConfig(baseSpec('web1'), config, NOTHING_FIXED, env).user).toBe('fromincluded');
    expect(applySshConfig(baseSpec('web2'), config, NOTHING_FIXED, env)).toMatchObject({
      user: 'op',
      port: 2222,
    });
  });

  it('refuses an Include loop', () => {
    const files = { [`${HOME}/.ssh/config`]: 'Include config\n' };
    expect(() => loadSshConfig(undefined, fakeEnv(files))).toThrow(/Include nested more than 16 deep/);
  });

  it('reads nothing when ~/.ssh/config is absent, but insists on an explicit -F file', () => {
    expect(loadSshConfig(undefined, fakeEnv({}))).toBeUndefined();
    expect(() => loadSshConfig('/nowhere/config', fakeEnv({}))).toThrow(
      /cannot read ssh_config \/nowhere\/config/,
    );
  });
});

describe('expandPath', () => {
  it('expands ~, %d, %u, %n and %% but leaves other text alone', () => {
    const tokens = {
      home: HOME,
      localUser: 'op',
      hostName: 'h',
      originalHost: 'alias',
      port: 22,
      remoteUser: 'r',
    };
    expect(expandPath('~/.ssh/%n-%u', tokens)).toBe(`${HOME}/.ssh/alias-op`);
    expect(expandPath('%d/100%%', tokens)).toBe(`${HOME}/100%`);
    expect(expandPath('/abs/~/x', tokens)).toBe('/abs/~/x');
  });
});
