import fc from 'fast-check';
import { parseCidr, type Cidr } from '../../../src/formats/firewall_cidr.js';
import {
  ALLOW_PRIORITY,
  allowRichRule,
  firewalldCommands,
  parseFirewalldZones,
  parseRichRule,
  planFirewalld,
  sshZones,
} from '../../../src/formats/firewall_firewalld.js';
import { allowancesFor } from '../../../src/formats/firewall_rules.js';

const cidr = (t: string): Cidr => parseCidr(t).cidr!;
const WS = allowancesFor([cidr('10.200.0.2')], [22]);

/** `firewall-cmd --list-all-zones` as firewalld 1.3 prints it (the default zone unmarked: no interface). */
const ZONES = `block
  target: %%REJECT%%
  icmp-block-inversion: no
  interfaces: 
  sources: 
  services: 
  rich rules: 

internal (active)
  target: default
  interfaces: 
  sources: 10.200.0.0/24
  services: ssh
  rich rules: 
\trule family="ipv4" source address="10.200.0.2" service name="ssh" drop

public
  target: default
  icmp-block-inversion: no
  interfaces: 
  sources: 
  services: dhcpv6-client ssh
  ports: 
  rich rules: 
\trule family="ipv4" source address="10.200.0.2" port port="22" protocol="tcp" reject type="tcp-reset"
\trule family="ipv4" source address="10.200.0.0/16" port port="22" protocol="tcp" accept
\trule family="ipv4" source address="192.0.2.0/24" drop

`;

describe('firewall-cmd --list-all-zones', () => {
  const zones = parseFirewalldZones(ZONES);

  test('zones, flags, sources and rich rules', () => {
    expect(zones.map((z) => [z.name, z.active, z.sources, z.richRules.length])).toEqual([
      ['block', false, [], 0],
      ['internal', true, ['10.200.0.0/24'], 1],
      ['public', false, [], 3],
    ]);
  });

  test('SSH zones: the default zone (asked with --get-default-zone) and every active one', () => {
    expect(sshZones(zones, 'public')).toEqual(['public', 'internal']);
  });

  test('rich rules: service ssh is port 22/tcp; priority; NOT', () => {
    expect(
      parseRichRule('rule family="ipv4" source address="10.200.0.2" service name="ssh" drop').match,
    ).toMatchObject({
      verdict: 'drop',
      protocol: 'tcp',
      ports: { kind: 'list', items: [{ from: 22, to: 22 }] },
    });
    expect(parseRichRule(allowRichRule(WS[0]!)).priority).toBe(ALLOW_PRIORITY);
    expect(
      parseRichRule('rule family="ipv4" source NOT address="10.0.0.0/8" drop').match.sources,
    ).toMatchObject({ negated: true });
  });

  test("plan: a lowest-priority allow where anything may block; exact bans removed; exit 11 is the caller's", () => {
    const edit = planFirewalld(zones, sshZones(zones, 'public'), WS, true, 'runtime');
    const allow =
      'rule priority="-32768" family="ipv4" source address="10.200.0.2/32" port port="22" protocol="tcp" accept';
    expect(firewalldCommands(edit, true)).toEqual([
      ['firewall-cmd', '--permanent', '--zone=public', `--add-rich-rule=${allow}`],
      [
        'firewall-cmd',
        '--permanent',
        '--zone=public',
        '--remove-rich-rule=rule family="ipv4" source address="10.200.0.2" port port="22" protocol="tcp" reject type="tcp-reset"',
      ],
      ['firewall-cmd', '--permanent', '--zone=internal', `--add-rich-rule=${allow}`],
      [
        'firewall-cmd',
        '--permanent',
        '--zone=internal',
        '--remove-rich-rule=rule family="ipv4" source address="10.200.0.2" service name="ssh" drop',
      ],
    ]);
    // 192.0.2.0/24 is not ours; the /16 accept is not the exact rule and stays.
    expect(edit.zones.flatMap((z) => z.remove)).not.toContain(
      'rule family="ipv4" source address="192.0.2.0/24" drop',
    );
  });

  test('an accept at priority 0 loses to a reject at priority 0 (deny before allow): replaced', () => {
    const z = parseFirewalldZones(
      'public\n  rich rules: \n\trule family="ipv4" source address="10.200.0.2" port port="22" protocol="tcp" accept\n\trule family="ipv4" source address="10.200.0.0/24" reject\n',
    );
    const edit = planFirewalld(z, ['public'], WS, false, 'runtime');
    expect(edit.zones[0]!.remove).toEqual([
      'rule family="ipv4" source address="10.200.0.2" port port="22" protocol="tcp" accept',
    ]);
    expect(edit.zones[0]!.add).toEqual([allowRichRule(WS[0]!)]);
  });
});

describe('property: planning again on the planned rich rules changes nothing', () => {
  const ruleArb = fc
    .tuple(
      fc.constantFrom('10.200.0.2', '10.200.0.0/24', '192.0.2.1'),
      fc.constantFrom(
        'port port="22" protocol="tcp"',
        'service name="ssh"',
        'port port="80" protocol="tcp"',
        '',
      ),
      fc.constantFrom('accept', 'drop', 'reject'),
      fc.constantFrom('', ' priority="-5"', ' priority="10"'),
    )
    .map(([src, what, action, priority]) =>
      `rule${priority} family="ipv4" source address="${src}" ${what} ${action}`.replace(/\s+/g, ' '),
    );
  test('idempotence', () => {
    fc.assert(
      fc.property(fc.array(ruleArb, { maxLength: 5 }), fc.boolean(), (rules, removeBlocking) => {
        const text = `public\n  rich rules: \n${rules.map((r) => `\t${r}\n`).join('')}`;
        const edit = planFirewalld(parseFirewalldZones(text), ['public'], WS, removeBlocking, 'runtime');
        const z = edit.zones[0];
        const after = [...(z?.add ?? []), ...rules.filter((r) => !(z?.remove ?? []).includes(r))];
        const again = planFirewalld(
          parseFirewalldZones(`public\n  rich rules: \n${after.map((r) => `\t${r}\n`).join('')}`),
          ['public'],
          WS,
          removeBlocking,
          'runtime',
        );
        expect(again.zones).toEqual([]);
      }),
    );
  });
});
