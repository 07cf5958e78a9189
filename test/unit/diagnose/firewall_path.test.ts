/**
 * The lockout guard and diagnose ask the same question of filter/INPUT for a
 * new SSH connection: they must judge every rule alike (one walker).
 */
import { iptablesVerdict } from '../../../src/resources/sshd_guard.js';
import { traceSshPacket } from '../../../src/diagnose/firewall_path.js';
import { parseIptablesSave } from '../../../src/formats/firewall_iptables.js';
import { parseHostCidr } from '../../../src/formats/firewall_cidr.js';

const CLIENT = '10.200.0.1';

const dump = (rules: string[], policy = 'ACCEPT'): string =>
  [
    '*filter',
    `:INPUT ${policy} [0:0]`,
    ':f2b-sshd - [0:0]',
    ':allow-admin - [0:0]',
    ...rules,
    'COMMIT',
    '',
  ].join('\n');

/** The guard's verdict and diagnose's, as admit / block / unknown. */
function bothVerdicts(text: string, port = 22): { guard: string; diagnose: string } {
  const guard = iptablesVerdict(parseIptablesSave(text, 4), parseHostCidr(CLIENT)!, port).verdict;
  const path = traceSshPacket(text, CLIENT, port, 'new');
  let diagnose = 'admit';
  if (path?.outcome === 'drop' || path?.outcome === 'reject') diagnose = 'block';
  else if (path?.outcome === 'policy_drop') diagnose = path.uncertainAccept ? 'unknown' : 'block';
  return { guard, diagnose };
}

describe('one iptables walk for the guard and diagnose', () => {
  const cases: [string, string[], string, string][] = [
    ['! --state NEW never matches a SYN', ['-A INPUT -m state ! --state NEW -j DROP'], 'ACCEPT', 'admit'],
    [
      '! --ctstate ESTABLISHED matches a SYN',
      ['-A INPUT -m conntrack ! --ctstate ESTABLISHED -j DROP'],
      'ACCEPT',
      'block',
    ],
    ['-i lo never carries a remote client', ['-A INPUT -i lo -j ACCEPT'], 'DROP', 'block'],
    [
      '-i lo REJECT does not block a remote client',
      ['-A INPUT -i lo -p tcp --dport 22 -j REJECT'],
      'ACCEPT',
      'admit',
    ],
    [
      'an ACCEPT on another interface may match',
      ['-A INPUT -i eth0 -p tcp --dport 22 -j ACCEPT'],
      'DROP',
      'unknown',
    ],
    [
      'RELATED,ESTABLISHED then a NEW accept for the client',
      [
        '-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
        `-A INPUT -s ${CLIENT}/32 -p tcp -m state --state NEW -m tcp --dport 22 -j ACCEPT`,
      ],
      'DROP',
      'admit',
    ],
    [
      'a fail2ban chain rejecting the client',
      ['-A INPUT -p tcp -m multiport --dports 22 -j f2b-sshd', `-A f2b-sshd -s ${CLIENT}/32 -j REJECT`],
      'ACCEPT',
      'block',
    ],
    [
      'a chain that returns, then the policy',
      ['-A INPUT -j allow-admin', '-A allow-admin -s 10.9.9.9/32 -j ACCEPT', '-A allow-admin -j RETURN'],
      'DROP',
      'block',
    ],
  ];
  it.each(cases)('%s', (_name, rules, policy, expected) => {
    expect(bothVerdicts(dump(rules, policy))).toEqual({ guard: expected, diagnose: expected });
  });

  it('a REJECT on lo is not even a possible block for a remote client', () => {
    const path = traceSshPacket(dump(['-A INPUT -i lo -p tcp --dport 22 -j REJECT']), CLIENT, 22, 'new');
    expect(path?.uncertainBlockers).toEqual([]);
  });

  it('a rule that only maybe blocks is reported as uncertain, not as the decision', () => {
    const path = traceSshPacket(
      dump(['-A INPUT -p tcp --dport 22 -m recent --rcheck -j DROP']),
      CLIENT,
      22,
      'new',
    );
    expect(path?.outcome).toBe('policy_accept');
    expect(path?.uncertainBlockers.map((r) => r.text)).toEqual([
      '-A INPUT -p tcp --dport 22 -m recent --rcheck -j DROP',
    ]);
  });

  it('an established packet passes a NEW-only block and meets an ESTABLISHED reset', () => {
    const text = dump([
      `-A INPUT -s ${CLIENT}/32 -p tcp --dport 22 -m conntrack --ctstate ESTABLISHED -j REJECT --reject-with tcp-reset`,
    ]);
    expect(traceSshPacket(text, CLIENT, 22, 'new')?.outcome).toBe('policy_accept');
    expect(traceSshPacket(text, CLIENT, 22, 'established')).toMatchObject({
      outcome: 'reject',
      rejectWith: 'tcp-reset',
    });
  });
});
