import { parseCidr, type Cidr } from '../../../src/formats/firewall_cidr.js';
import {
  chooseBackend,
  chooseIptablesVariant,
  decideFirewall,
  FirewallPlanError,
  RULES_V4,
  type FirewallRequest,
} from '../../../src/formats/firewall_decide.js';
import {
  fail2banRulesText,
  firewallProbeScript,
  parseFirewallProbe,
  probeSections,
} from '../../../src/formats/firewall_probe.js';

const cidr = (t: string): Cidr => parseCidr(t).cidr!;

/** Probe output as the script prints it: one marker line per section. */
function probeOutput(sections: Record<string, string>): string {
  const defaults: Record<string, string> = {
    'iptables-version': 'iptables v1.8.9 (nf_tables)\n',
    'have-variants': 'yes\n',
    ufw: 'yes\n',
  };
  return Object.entries({ ...defaults, ...sections })
    .map(([name, body]) => `\n@@sshfix-fw ${name}\n${body}`)
    .join('');
}

const SSHD_ON_22 = { ports: [22] };

const EMPTY_FILTER = '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n';
const DROP_WS =
  '*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 10.200.0.2/32 -p tcp -m tcp --dport 22 -j DROP\nCOMMIT\n';
const request = (over: Partial<FirewallRequest> = {}): FirewallRequest => ({
  sources: [cidr('10.200.0.2')],
  port: null,
  backend: 'auto',
  persist: true,
  removeBlocking: true,
  ...over,
});

describe('probe', () => {
  test('the script guards every tool and is constant (HostView caches probes by text)', () => {
    const script = firewallProbeScript();
    expect(script).toBe(firewallProbeScript());
    for (const tool of ['iptables-legacy-save', 'iptables-nft-save', 'nft', 'ufw', 'firewall-cmd'])
      expect(script).toContain(`command -v ${tool}`);
    // Python (ufw, firewall-cmd) must not start on a host without a running firewalld
    // (firewall_probe_script.test.ts runs the script: firewall-cmd starts only after a check says so).
    expect(script).not.toMatch(/^ufw status/m);
  });

  test('sections and facts', () => {
    const out = probeOutput({
      'v4-nft': DROP_WS,
      'iptables-dir': 'yes\n',
      nft: 'table inet t {\n}\n@@sshfix-fw-present\n',
    });
    expect([...probeSections(out).keys()]).toContain('v4-nft');
    const facts = parseFirewallProbe(out, { ports: [22, 2222] });
    expect(facts).toMatchObject({
      sshdPorts: [22, 2222],
      iptablesDefault: 'nft',
      iptablesDir: true,
      ufwInstalled: true,
      firewalld: null,
    });
    expect(facts.iptables.nft!.v4).toBe(DROP_WS);
    expect(facts.nftListing).toBe('table inet t {\n}\n');
  });
});

describe("fail2ban's bans in the loaded rules", () => {
  test('f2b chains of every iptables variant and nftables f2b-table, nothing else', () => {
    const out = probeOutput({
      'v4-legacy':
        '*filter\n:f2b-sshd - [0:0]\n-A f2b-sshd -s 10.1.1.1/32 -j REJECT\n-A INPUT -j DROP\nCOMMIT\n',
      'v6-nft': '*filter\n:f2b-sshd - [0:0]\n-A f2b-sshd -s 2001:db8::1/128 -j REJECT\nCOMMIT\n',
      nft: [
        'table inet filter { # handle 1',
        '\tset addr-set-other { # handle 2',
        '\t\telements = { 10.9.9.9 }',
        '\t}',
        '}',
        'table inet f2b-table { # handle 7',
        '\tset addr-set-sshd { # handle 3',
        '\t\telements = { 10.2.2.2 }',
        '\t}',
        '}',
        '@@sshfix-fw-present',
        '',
      ].join('\n'),
    });
    const text = fail2banRulesText(out);
    expect(text).toContain('-A f2b-sshd -s 10.1.1.1/32 -j REJECT\n');
    expect(text).toContain('-A f2b-sshd -s 2001:db8::1/128 -j REJECT\n');
    expect(text).toContain('10.2.2.2');
    expect(text).not.toContain('10.9.9.9');
    expect(text).not.toContain('-A INPUT');
  });
});

describe('backend auto picks the one in use', () => {
  test('active ufw first (its chains are loaded)', () => {
    const facts = parseFirewallProbe(
      probeOutput({ 'v4-nft': '*filter\n:ufw-user-input - [0:0]\nCOMMIT\n' }),
      SSHD_ON_22,
    );
    expect(chooseBackend(facts, 'auto').backend).toBe('ufw');
  });

  test('inactive ufw falls through; running firewalld next', () => {
    const facts = parseFirewallProbe(
      probeOutput({
        firewalld: 'installed\n',
        'firewalld-default': 'public\n',
        'firewalld-runtime': 'public\n  rich rules: \n',
        'firewalld-permanent': '',
      }),
      SSHD_ON_22,
    );
    expect(chooseBackend(facts, 'auto')).toEqual({
      backend: 'firewalld',
      reason: 'backend auto → firewalld (firewalld is running)',
    });
  });

  test('an nft table of its own means nftables; iptables-nft and fail2ban tables do not', () => {
    const own =
      'table inet t {\n\tchain input {\n\t\ttype filter hook input priority 0;\n\t\ttcp dport 80 drop\n\t}\n}\n@@sshfix-fw-present\n';
    expect(chooseBackend(parseFirewallProbe(probeOutput({ nft: own }), SSHD_ON_22), 'auto').backend).toBe(
      'nftables',
    );
    const theirs =
      'table ip filter {\n\tchain INPUT {\n\t\ttype filter hook input priority 0;\n\t\tip saddr 10.200.0.2 drop\n\t}\n}\ntable inet f2b-table {\n\tchain f2b-chain {\n\t\ttype filter hook input priority -1;\n\t\tip saddr 10.200.0.9 reject\n\t}\n}\n@@sshfix-fw-present\n';
    expect(
      chooseBackend(parseFirewallProbe(probeOutput({ nft: theirs, 'v4-nft': DROP_WS }), SSHD_ON_22), 'auto')
        .backend,
    ).toBe('iptables');
  });

  test('no firewall tool at all: skip', () => {
    const facts = parseFirewallProbe(
      probeOutput({ 'iptables-version': '', 'have-variants': '', ufw: '' }),
      SSHD_ON_22,
    );
    expect(decideFirewall(facts, request(), new Map()).skipReason).toMatch(/no firewall tool/);
  });

  test('an explicit backend that is missing or not running is an error', () => {
    const facts = parseFirewallProbe(probeOutput({ firewalld: 'installed\n' }), SSHD_ON_22);
    expect(() => chooseBackend(facts, 'firewalld')).toThrow(/firewalld is not running/);
    expect(() => chooseBackend(parseFirewallProbe(probeOutput({}), SSHD_ON_22), 'nftables')).toThrow(
      FirewallPlanError,
    );
  });
});

describe('never mixes iptables-legacy and iptables-nft (TRAPS.md)', () => {
  test('the variant that holds rules is used', () => {
    const facts = parseFirewallProbe(
      probeOutput({ 'v4-legacy': DROP_WS, 'v4-nft': EMPTY_FILTER }),
      SSHD_ON_22,
    );
    expect(chooseIptablesVariant(facts)).toEqual({ variant: 'legacy' });
    const decision = decideFirewall(facts, request(), new Map());
    expect(decision.commands.map((c) => c.words[0])).toEqual(['iptables-legacy', 'iptables-legacy']);
  });

  test('both holding rules: the default variant, with a warning', () => {
    const facts = parseFirewallProbe(probeOutput({ 'v4-legacy': DROP_WS, 'v4-nft': DROP_WS }), SSHD_ON_22);
    expect(chooseIptablesVariant(facts).variant).toBe('nft');
    expect(chooseIptablesVariant(facts).warning).toMatch(
      /both iptables-legacy \(1 rules\) and iptables-nft \(1 rules\)/,
    );
  });

  test('an old iptables without variants is used as is', () => {
    const facts = parseFirewallProbe(
      probeOutput({ 'iptables-version': 'iptables v1.6.1\n', 'have-variants': '', 'v4-plain': DROP_WS }),
      SSHD_ON_22,
    );
    expect(decideFirewall(facts, request(), new Map()).commands[0]!.words.slice(0, 4)).toEqual([
      'iptables',
      '-I',
      'INPUT',
      '1',
    ]);
  });
});

describe('ports and persistence', () => {
  test('every port sshd listens on, unless the task sets one', () => {
    const facts = parseFirewallProbe(probeOutput({ 'v4-nft': EMPTY_FILTER }), { ports: [22, 2222] });
    const dports = (r: FirewallRequest) =>
      decideFirewall(facts, r, new Map()).commands.map((c) => c.words[c.words.indexOf('--dport') + 1]);
    // Each goes to position 1, the last first, so INPUT ends up listing 22 then 2222.
    expect(dports(request())).toEqual(['2222', '22']);
    expect(dports(request({ port: 8022 }))).toEqual(['8022']);
  });

  test("sshd's ports unknown and no port given: a clear error", () => {
    const facts = parseFirewallProbe(probeOutput({}), {
      error: '/etc/ssh/sshd_config:3: Port 22x is not a port number',
    });
    expect(() => decideFirewall(facts, request(), new Map())).toThrow(
      /cannot tell sshd's port .*sshd_config:3: Port 22x/,
    );
  });

  test('an existing rules.v4 is edited in place; no layout, no file', () => {
    const facts = parseFirewallProbe(probeOutput({ 'v4-nft': DROP_WS, 'iptables-dir': 'yes\n' }), SSHD_ON_22);
    const stored =
      '# saved by hand\n*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 80 -j ACCEPT\nCOMMIT\n';
    const decision = decideFirewall(
      facts,
      request(),
      new Map([[RULES_V4, { exists: true, content: stored }]]),
    );
    expect(decision.files).toEqual([
      {
        path: RULES_V4,
        before: stored,
        after: stored.replace(
          '-A INPUT -p',
          '-A INPUT -s 10.200.0.2/32 -p tcp -m tcp --dport 22 -j ACCEPT\n-A INPUT -p',
        ),
        check: ['iptables-nft-restore', '--test'],
      },
    ]);
    const noLayout = parseFirewallProbe(probeOutput({ 'v4-nft': DROP_WS }), SSHD_ON_22);
    const d2 = decideFirewall(noLayout, request(), new Map());
    expect(d2.files).toEqual([]);
    expect(d2.messages).toContain(
      'no /etc/iptables directory (iptables-persistent): the iptables-nft change is not persisted',
    );
  });

  test('nothing to do: no commands, no files', () => {
    const converged =
      '*filter\n:INPUT DROP [0:0]\n-A INPUT -s 10.200.0.2/32 -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n';
    const facts = parseFirewallProbe(
      probeOutput({ 'v4-nft': converged, 'iptables-dir': 'yes\n' }),
      SSHD_ON_22,
    );
    const decision = decideFirewall(
      facts,
      request(),
      new Map([[RULES_V4, { exists: true, content: converged }]]),
    );
    expect([decision.commands, decision.files, decision.messages]).toEqual([[], [], []]);
  });
});
