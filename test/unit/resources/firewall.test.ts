import { execFileSync } from 'node:child_process';
import type { FileState } from '../../../src/plan/types.js';
import type { ExecResult } from '../../../src/transport/types.js';
import type { HostView } from '../../../src/resources/types.js';
import { commandScript, firewallResource } from '../../../src/resources/firewall.js';
import { shellCommand } from '../../../src/transport/shell.js';
import { firewallProbeScript } from '../../../src/formats/firewall_probe.js';

/** A HostView that answers from fixed data and counts batches the way RemoteHostView does (same tick = one). */
class FakeHost implements HostView {
  readonly hostName = 'h1';
  batches = 0;
  private pendingTick = false;
  constructor(
    private readonly probeStdout: string,
    private readonly files: Record<string, string> = { '/etc/ssh/sshd_config': '# Port 22\n' },
  ) {}
  private touch(): void {
    if (!this.pendingTick) {
      this.batches++;
      this.pendingTick = true;
      setImmediate(() => (this.pendingTick = false));
    }
  }
  readFiles(paths: string[]): Promise<Map<string, FileState>> {
    this.touch();
    return Promise.resolve(
      new Map(
        paths.map((path) => {
          const content = this.files[path];
          return [
            path,
            content === undefined
              ? { path, exists: false, content: '' }
              : { path, exists: true, content, sha256: 'abc' },
          ];
        }),
      ),
    );
  }
  async globFiles(pattern: string): Promise<FileState[]> {
    const paths = await this.glob(pattern);
    return [...(await this.readFiles(paths)).values()];
  }
  glob(_pattern?: string): Promise<string[]> {
    return Promise.resolve([]);
  }
  sshdRelease(): Promise<undefined> {
    return Promise.resolve(undefined);
  }
  probe(script: string): Promise<ExecResult> {
    this.touch();
    expect(script).toBe(firewallProbeScript());
    return Promise.resolve({ stdout: this.probeStdout, stderr: '', exitCode: 0 } as ExecResult);
  }
}

const probe = (sections: Record<string, string>): string =>
  Object.entries({
    'iptables-version': 'iptables v1.8.9 (nf_tables)\n',
    'have-variants': 'yes\n',
    ...sections,
  })
    .map(([k, v]) => `\n@@sshfix-fw ${k}\n${v}`)
    .join('');
const DROP_WS =
  '*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 10.200.0.2/32 -p tcp -m tcp --dport 22 -m comment --comment "ban it" -j DROP\nCOMMIT\n';
const ctx = { vars: {}, playbookDir: '/tmp' };

describe('firewall resource', () => {
  test('one round trip; commands are literal and quoted; persistence file planned with its check', async () => {
    const host = new FakeHost(probe({ 'v4-nft': DROP_WS, 'iptables-dir': 'yes\n' }));
    const plan = await firewallResource.plan({ allow_ssh_from: ['10.200.0.2'] }, host, ctx);
    expect(host.batches).toBe(1);
    expect(plan.action).toBe('change');
    expect(plan.commands.map((c) => c.description)).toEqual([
      'iptables-nft -I INPUT 1 -s 10.200.0.2/32 -p tcp -m tcp --dport 22 -j ACCEPT',
      "iptables-nft -t filter -D INPUT -s 10.200.0.2/32 -p tcp -m tcp --dport 22 -m comment --comment 'ban it' -j DROP",
    ]);
    expect(plan.commands[1]!.script).toBe(
      "'iptables-nft' '-t' 'filter' '-D' 'INPUT' '-s' '10.200.0.2/32' '-p' 'tcp' '-m' 'tcp' '--dport' '22' '-m' 'comment' '--comment' 'ban it' '-j' 'DROP'",
    );
    expect(plan.fileChanges.map((f) => [f.path, f.before])).toEqual([['/etc/iptables/rules.v4', null]]);
    expect(plan.stateDiffs?.[0]?.label).toBe('iptables-nft-save filter table');
  });

  test('converged: action none and a message saying so', async () => {
    const ok =
      '*filter\n:INPUT DROP [0:0]\n-A INPUT -s 10.200.0.2/32 -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n';
    const plan = await firewallResource.plan(
      { allow_ssh_from: ['10.200.0.2'], persist: false },
      new FakeHost(probe({ 'v4-nft': ok })),
      ctx,
    );
    expect(plan).toMatchObject({ action: 'none', commands: [], fileChanges: [] });
    expect(plan.messages).toEqual(['iptables: SSH from 10.200.0.2 is accepted before any drop/reject']);
  });

  test("sshd's ports come from its configuration (every Port line), not from running sshd -T", async () => {
    const host = new FakeHost(probe({ 'v4-nft': DROP_WS }), {
      '/etc/ssh/sshd_config': 'Port 2222\nport 22\nMatch User x\n  Banner none\n',
    });
    const plan = await firewallResource.plan({ allow_ssh_from: ['10.200.0.2'], persist: false }, host, ctx);
    expect(plan.commands.map((c) => c.description)).toEqual([
      'iptables-nft -I INPUT 1 -s 10.200.0.2/32 -p tcp -m tcp --dport 22 -j ACCEPT',
      'iptables-nft -I INPUT 1 -s 10.200.0.2/32 -p tcp -m tcp --dport 2222 -j ACCEPT',
      "iptables-nft -t filter -D INPUT -s 10.200.0.2/32 -p tcp -m tcp --dport 22 -m comment --comment 'ban it' -j DROP",
    ]);
    expect(firewallProbeScript()).not.toMatch(/sshd.* -T/);
    expect(host.batches).toBe(1);
  });

  test("ufw's rule files are read with the other files, in the same round trip, not by the probe", async () => {
    const rules = [
      '*filter',
      ':ufw-user-input - [0:0]',
      '### RULES ###',
      '### tuple ### deny any 22 0.0.0.0/0 any 10.200.0.2 in',
      '-A ufw-user-input -p tcp --dport 22 -s 10.200.0.2 -j DROP',
      '### END RULES ###',
      'COMMIT',
      '',
    ].join('\n');
    const host = new FakeHost(
      probe({ ufw: 'yes\n', 'v4-nft': '*filter\n:ufw-user-input - [0:0]\nCOMMIT\n' }),
      {
        '/etc/ssh/sshd_config': '# Port 22\n',
        '/etc/ufw/user.rules': rules,
      },
    );
    const plan = await firewallResource.plan({ allow_ssh_from: ['10.200.0.2'], persist: false }, host, ctx);
    expect(host.batches).toBe(1);
    expect(plan.messages[0]).toBe('backend auto → ufw (ufw is active)');
    // The deny found in user.rules is deleted before the allow is inserted (its twin would make ufw skip it).
    expect(plan.commands.map((c) => c.description)).toContain(
      'ufw delete deny from 10.200.0.2 to any port 22',
    );
    expect(firewallProbeScript()).not.toContain('user.rules');
    expect(firewallProbeScript({ ufwRules: true })).toContain('cat /etc/ufw/user.rules');
  });

  test('no firewall tool: skipped with the reason', async () => {
    const plan = await firewallResource.plan(
      { allow_ssh_from: ['10.200.0.2'] },
      new FakeHost(probe({ 'iptables-version': '', 'have-variants': '' })),
      ctx,
    );
    expect(plan).toMatchObject({ action: 'skip', messages: [expect.stringMatching(/no firewall tool/)] });
  });

  test('checkArgs names the offending entry by its JSON pointer', () => {
    expect(firewallResource.checkArgs!({ allow_ssh_from: ['10.0.0.0/8', '10.1.2.3/8', 'x;reboot'] })).toEqual(
      [
        {
          pointer: '/allow_ssh_from/1',
          message: "'10.1.2.3/8' has host bits set (did you mean 10.0.0.0/8?)",
        },
        { pointer: '/allow_ssh_from/2', message: "'x;reboot' is not an IPv4 or IPv6 address or CIDR" },
      ],
    );
  });
});

describe('command scripts', () => {
  test('display quotes only what sh needs', () => {
    expect(
      shellCommand(['firewall-cmd', '--zone=public', '--add-rich-rule=rule family="ipv4" accept'])
        .description,
    ).toBe(`firewall-cmd --zone=public '--add-rich-rule=rule family="ipv4" accept'`);
  });

  test("firewalld's ALREADY_ENABLED (11) counts as success, other failures do not", () => {
    const run = (code: number): number => {
      const script = commandScript({ words: ['sh', '-c', `exit ${code}`], alsoOk: [11, 12] });
      try {
        execFileSync('sh', ['-c', script]);
        return 0;
      } catch (error) {
        return (error as { status: number }).status;
      }
    };
    expect([run(0), run(11), run(12), run(13), run(1)]).toEqual([0, 0, 0, 13, 1]);
  });
});
