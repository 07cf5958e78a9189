import type { ExecResult } from '../../../src/transport/types.js';
import type { FileState } from '../../../src/plan/types.js';
import type { HostView } from '../../../src/resources/types.js';
import { globToRegExp } from '../../../src/executor/host_view.js';
import { sha256 } from '../../../src/executor/remote_read.js';
import { firewallProbeScript } from '../../../src/formats/firewall_probe.js';
import { checkFail2banArgs, fail2banResource, type Fail2banArgs } from '../../../src/resources/fail2ban.js';

const JAIL_CONF = `[INCLUDES]
before = paths-debian.conf

[DEFAULT]
#ignoreip = 127.0.0.1/8 ::1
bantime  = 10m
findtime  = 10m
maxretry = 5
banaction = iptables-multiport
action_ = %(banaction)s[port="%(port)s", protocol="%(protocol)s", chain="%(chain)s"]
action = %(action_)s
protocol = tcp
chain = <known/chain>
port = 0:65535

[sshd]
port    = ssh

[recidive]
banaction = %(banaction_allports)s
bantime  = 1w
`;

interface FakeHost {
  files: Record<string, string>;
  running?: boolean;
  client?: boolean;
  firewall?: string;
  clientBans?: string;
}

class FakeView implements HostView {
  readonly hostName = 'web1';
  probes: string[] = [];
  constructor(private readonly host: FakeHost) {}
  readFiles(paths: string[]): Promise<Map<string, FileState>> {
    return Promise.resolve(
      new Map(
        paths.map((path) => {
          const content = this.host.files[path];
          const state: FileState =
            content === undefined
              ? { path, exists: false, content: '' }
              : { path, exists: true, content, sha256: sha256(content), mode: '0644' };
          return [path, state];
        }),
      ),
    );
  }
  glob(pattern: string): Promise<string[]> {
    const re = globToRegExp(pattern);
    return Promise.resolve(
      Object.keys(this.host.files)
        .filter((p) => re.test(p))
        .sort(),
    );
  }
  async globFiles(pattern: string): Promise<FileState[]> {
    const paths = await this.glob(pattern);
    return [...(await this.readFiles(paths)).values()];
  }
  sshdRelease(): Promise<undefined> {
    return Promise.resolve(undefined);
  }
  probe(script: string): Promise<ExecResult> {
    this.probes.push(script);
    if (script.includes('@@fail2ban-status')) {
      const stdout = [
        '@@fail2ban-status',
        `client=${this.host.client === false ? '' : '/usr/bin/fail2ban-client'}`,
        `running=${this.host.running === false ? 'no' : 'yes'}`,
        'basedir=yes',
        '@@fail2ban-firewall',
        '',
      ].join('\n');
      return Promise.resolve({ exitCode: 0, stdout, stderr: '' });
    }
    if (script === firewallProbeScript()) {
      // The bans are in the loaded rules the firewall probe dumps (here: iptables-nft's IPv4 table).
      const stdout = `\n@@sshfix-fw v4-nft\n*filter\n${this.host.firewall ?? ''}\nCOMMIT\n`;
      return Promise.resolve({ exitCode: 0, stdout, stderr: '' });
    }
    if (script.includes(' banned'))
      return Promise.resolve({ exitCode: 0, stdout: this.host.clientBans ?? '[]', stderr: '' });
    return Promise.reject(new Error(`unexpected probe ${script}`));
  }
}

const ctx = { vars: {}, playbookDir: '/tmp' };

async function plan(args: Fail2banArgs, host: FakeHost) {
  const view = new FakeView(host);
  return { plan: await fail2banResource.plan(args, view, ctx), view };
}

const BANNED =
  ':f2b-sshd - [0:0]\n-A f2b-sshd -s 10.20.0.5/32 -j REJECT --reject-with icmp-port-unreachable\n-A f2b-sshd -j RETURN';

describe('fail2ban plan', () => {
  test('ignoreip goes to [DEFAULT] of jail.local; jail.conf is never written; reload because it runs', async () => {
    const local = '# managed by hand\n[sshd]\nenabled = true\n';
    const { plan: p } = await plan(
      { ignoreip: ['10.20.0.0/16'] },
      { files: { '/etc/fail2ban/jail.conf': JAIL_CONF, '/etc/fail2ban/jail.local': local } },
    );
    expect(p.action).toBe('change');
    expect(p.fileChanges.map((c) => c.path)).toEqual(['/etc/fail2ban/jail.local']);
    expect(p.fileChanges[0]!.after).toBe(`${local}\n[DEFAULT]\nignoreip = 10.20.0.0/16\n`);
    expect(p.commands.map((c) => c.description)).toEqual(['/usr/bin/fail2ban-client reload']);
    expect(p.messages[0]).toContain('ignoreip in [DEFAULT] (from nowhere');
  });

  test('merge keeps the existing entries, from whichever file they come', async () => {
    const conf = JAIL_CONF.replace('#ignoreip', 'ignoreip');
    const { plan: p } = await plan(
      { ignoreip: ['10.20.0.0/16', '::1'] },
      { files: { '/etc/fail2ban/jail.conf': conf, '/etc/fail2ban/jail.local': '' } },
    );
    expect(p.fileChanges[0]!.after).toBe('[DEFAULT]\nignoreip = 127.0.0.1/8 ::1 10.20.0.0/16\n');
    expect(p.messages[0]).toContain('/etc/fail2ban/jail.conf:5');
  });

  test('exact replaces; no change when the set is already equal', async () => {
    const local = '[DEFAULT]\nignoreip = 10.0.0.1, 10.0.0.2\n';
    const files = { '/etc/fail2ban/jail.conf': JAIL_CONF, '/etc/fail2ban/jail.local': local };
    const exact = await plan({ ignoreip: ['10.0.0.2'], mode: 'exact' }, { files });
    expect(exact.plan.fileChanges[0]!.after).toBe('[DEFAULT]\nignoreip = 10.0.0.2\n');
    const same = await plan({ ignoreip: ['10.0.0.2', '10.0.0.1'], mode: 'exact' }, { files });
    expect(same.plan.action).toBe('none');
  });

  test('a jail that overrides ignoreip (in a jail.d drop-in) gets the addresses in its own section', async () => {
    const { plan: p } = await plan(
      { ignoreip: ['10.20.0.0/16'] },
      {
        files: {
          '/etc/fail2ban/jail.conf': JAIL_CONF,
          '/etc/fail2ban/jail.d/sshd.conf': '[sshd]\nenabled = true\nignoreip = 192.0.2.1\n',
          '/etc/fail2ban/jail.local': '[DEFAULT]\nignoreip = 127.0.0.1/8\n',
        },
      },
    );
    expect(p.fileChanges[0]!.after).toBe(
      '[DEFAULT]\nignoreip = 127.0.0.1/8 10.20.0.0/16\n\n[sshd]\nignoreip = 192.0.2.1 10.20.0.0/16\n',
    );
    expect(p.messages[1]).toContain('[sshd] overrides ignoreip at /etc/fail2ban/jail.d/sshd.conf:3');
  });

  test('jail settings: minimal edits, durations compared by value, a later override is an error', async () => {
    const files = {
      '/etc/fail2ban/jail.conf': JAIL_CONF,
      '/etc/fail2ban/jail.local': '[sshd]\nenabled = true\nmaxretry = 3\n',
    };
    const { plan: p } = await plan(
      { jails: { sshd: { enabled: true, maxretry: 5, findtime: '600', bantime: '1h' } } },
      { files },
    );
    expect(p.fileChanges[0]!.after).toBe('[sshd]\nenabled = true\nmaxretry = 5\nbantime = 1h\n');
    expect(p.messages).toContain(
      'bantime of [sshd]: 10m from /etc/fail2ban/jail.conf:6 ([DEFAULT]) → 1h in /etc/fail2ban/jail.local',
    );
    await expect(
      plan(
        { jails: { sshd: { maxretry: 5 } } },
        { files: { ...files, '/etc/fail2ban/jail.d/zz.local': '[sshd]\nmaxretry = 2\n' } },
      ),
    ).rejects.toThrow('maxretry of [sshd] is set again at /etc/fail2ban/jail.d/zz.local:2');
  });

  test('not running: files only, no reload', async () => {
    const { plan: p } = await plan(
      { ignoreip: ['10.20.0.0/16'] },
      { running: false, files: { '/etc/fail2ban/jail.conf': JAIL_CONF } },
    );
    expect(p.fileChanges[0]!.before).toBeNull();
    expect(p.commands).toEqual([]);
  });

  test('unban lifts only the bans that exist, read from the firewall without fail2ban-client', async () => {
    const { plan: p, view } = await plan(
      { ignoreip: ['10.20.0.0/16'], unban: ['10.20.0.5', '10.20.0.6'] },
      {
        files: {
          '/etc/fail2ban/jail.conf': JAIL_CONF,
          '/etc/fail2ban/jail.local': '[sshd]\nenabled = true\n',
        },
        firewall: BANNED,
      },
    );
    expect(p.commands.map((c) => c.description)).toEqual([
      '/usr/bin/fail2ban-client reload',
      '/usr/bin/fail2ban-client set sshd unbanip 10.20.0.5',
    ]);
    expect(p.commands[1]!.script).toBe("'/usr/bin/fail2ban-client' 'set' 'sshd' 'unbanip' '10.20.0.5'");
    expect(p.stateDiffs).toEqual([
      { label: 'fail2ban bans (firewall f2b-* rules)', before: 'sshd 10.20.0.5\n', after: '' },
    ]);
    expect(p.messages).toContain('10.20.0.6 is not banned in any jail (firewall f2b-* rules)');
    // No Python: the status probe and the shared firewall probe only.
    expect(view.probes).toHaveLength(2);
  });

  test('a network in unban lifts every ban inside it; nothing to do is action none', async () => {
    const files = {
      '/etc/fail2ban/jail.conf': JAIL_CONF,
      '/etc/fail2ban/jail.local': '[sshd]\nenabled = true\n',
    };
    const { plan: p } = await plan({ unban: ['10.20.0.0/24'] }, { files, firewall: BANNED });
    expect(p.commands.map((c) => c.description)).toEqual([
      '/usr/bin/fail2ban-client set sshd unbanip 10.20.0.5',
    ]);
    const none = await plan({ unban: ['10.30.0.0/24'] }, { files, firewall: BANNED });
    expect(none.plan.action).toBe('none');
  });

  test('a jail whose action the firewall does not show makes it ask fail2ban-client', async () => {
    const { plan: p, view } = await plan(
      { unban: ['10.20.0.5'] },
      {
        files: {
          '/etc/fail2ban/jail.conf': JAIL_CONF,
          '/etc/fail2ban/jail.local': '[sshd]\nenabled = true\naction = hostsdeny\n',
        },
        clientBans: "[{'sshd': ['10.20.0.5']}]",
      },
    );
    expect(view.probes).toHaveLength(3);
    expect(p.commands.map((c) => c.description)).toEqual([
      '/usr/bin/fail2ban-client set sshd unbanip 10.20.0.5',
    ]);
  });

  test('fail2ban-client -t checks a change that goes live or touches jail settings, not an ignoreip list with fail2ban stopped', async () => {
    const files = { '/etc/fail2ban/jail.conf': JAIL_CONF };
    const stopped = await plan({ ignoreip: ['10.20.0.0/16'] }, { files, running: false });
    expect(stopped.plan.fileChanges).toHaveLength(1);
    expect(fail2banResource.validate!(stopped.plan)).toEqual([]);
    expect(stopped.plan.messages).toContain(
      'only ignoreip changes and fail2ban is not running: checked by sshfix, not by fail2ban-client -t',
    );
    const running = await plan({ ignoreip: ['10.20.0.0/16'] }, { files, running: true });
    expect(fail2banResource.validate!(running.plan).map((c) => c.script)).toEqual([
      expect.stringContaining('\'/usr/bin/fail2ban-client\' -c "$stage" -t'),
    ]);
    const settings = await plan({ jails: { sshd: { maxretry: 3 } } }, { files, running: false });
    expect(fail2banResource.validate!(settings.plan)).toHaveLength(1);
  });

  test('ignoreip alone does not lift a ban (fail2ban#1152): the plan warns', async () => {
    const { plan: p } = await plan(
      { ignoreip: ['10.20.0.0/16'] },
      { files: { '/etc/fail2ban/jail.conf': JAIL_CONF }, firewall: BANNED },
    );
    expect(p.commands.map((c) => c.description)).toEqual(['/usr/bin/fail2ban-client reload']);
    expect(p.warnings).toEqual([
      '10.20.0.5 is in ignoreip but stays banned in jail sshd: ignoreip does not lift an existing ban (add it to unban)',
    ]);
  });

  test('fail2ban absent: skipped with the reason, or failed when required', async () => {
    const host = { client: false, files: {} };
    const { plan: p } = await plan({ ignoreip: ['10.0.0.1'] }, host);
    expect(p).toMatchObject({
      action: 'skip',
      messages: ['fail2ban is not installed (no fail2ban-client found)'],
    });
    await expect(plan({ ignoreip: ['10.0.0.1'], required: true }, host)).rejects.toThrow('required: true');
  });
});

describe('checkFail2banArgs', () => {
  test('accepts the documented forms', () => {
    expect(
      checkFail2banArgs({
        ignoreip: ['10.20.0.0/16', '127.0.0.1/8', '::1', 'admin.example.org', '10.0.0.0/255.0.0.0'],
        unban: ['10.20.0.5', '2001:db8::/64'],
        jails: {
          sshd: { enabled: true, maxretry: 5, findtime: '10m', bantime: -1 },
          'nginx-http-auth': { bantime: '1d 12h' },
        },
      }),
    ).toEqual([]);
  });

  test('names each bad argument by its pointer', () => {
    const problems = checkFail2banArgs({
      ignoreip: ['10.0.0.0/33', 'ok.example', '$(reboot)'],
      unban: ['host.example'],
      jails: {
        DEFAULT: { enabled: true },
        'bad name': {},
        sshd: {
          bantime: '10x',
          maxretry: 'five',
          enabled: 'maybe',
          'bad key': 1,
          ignoreip: '1.2.3.4',
          logpath: 'a\nb',
        },
      },
      config_file: '/etc/fail2ban/jail.conf',
    });
    expect(problems.map((p) => p.pointer)).toEqual([
      '/ignoreip/0',
      '/ignoreip/2',
      '/unban/0',
      '/config_file',
      '/jails/DEFAULT',
      '/jails/bad name',
      '/jails/sshd/bantime',
      '/jails/sshd/maxretry',
      '/jails/sshd/enabled',
      '/jails/sshd/bad key',
      '/jails/sshd/ignoreip',
      '/jails/sshd/logpath',
    ]);
  });
});
