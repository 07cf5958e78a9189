import fc from 'fast-check';
import { parseCidr, type Cidr } from '../../../src/formats/firewall_cidr.js';
import { allowancesFor } from '../../../src/formats/firewall_rules.js';
import { parseUfwRules, planUfw, ufwRuleSpec } from '../../../src/formats/firewall_ufw.js';

const cidr = (t: string): Cidr => parseCidr(t).cidr!;

/** user.rules as ufw 0.36 writes it (tuples are comments above the iptables lines). */
const USER_RULES = `*filter
:ufw-user-input - [0:0]
### RULES ###

### tuple ### allow tcp 22 0.0.0.0/0 any 10.200.0.1 in
-A ufw-user-input -p tcp --dport 22 -s 10.200.0.1 -j ACCEPT

### tuple ### deny any 22 0.0.0.0/0 any 10.200.0.2 in
-A ufw-user-input -p tcp --dport 22 -s 10.200.0.2 -j DROP
-A ufw-user-input -p udp --dport 22 -s 10.200.0.2 -j DROP

### tuple ### allow tcp 80 0.0.0.0/0 any 0.0.0.0/0 in comment=776562
-A ufw-user-input -p tcp --dport 80 -j ACCEPT

### tuple ### deny_log any any 0.0.0.0/0 any 10.0.0.0/8 in_eth1
### tuple ### allow any 22 0.0.0.0/0 any 0.0.0.0/0 OpenSSH - in
### tuple ### route:deny tcp 22 0.0.0.0/0 any 10.200.0.2 in
### END RULES ###
COMMIT
`;
const USER6_RULES = `### tuple ### allow tcp 80 ::/0 any ::/0 in\n`;

describe('ufw rule database', () => {
  const v4 = parseUfwRules(USER_RULES, 4);

  test('tuples become rules with the spec `ufw delete` accepts', () => {
    expect(v4.map(ufwRuleSpec).map((w) => w.join(' '))).toEqual([
      'allow from 10.200.0.1 to any port 22 proto tcp',
      'deny from 10.200.0.2 to any port 22',
      'allow from any to any port 80 proto tcp',
      'deny in on eth1 log from 10.0.0.0/8 to any',
      'allow from any to any app OpenSSH',
      'deny from 10.200.0.2 to any port 22 proto tcp',
    ]);
    expect(v4[1]!.match).toMatchObject({ verdict: 'drop', protocol: 'any' });
    expect(v4[3]!.match).toMatchObject({ verdict: 'drop', extraMatches: true });
    // A route rule never sees an incoming SSH connection.
    expect(v4[5]!.match.verdict).toBe('none');
  });

  test('plan: insert 1 for IPv4; IPv6 positions come after every IPv4 rule; deny deleted by spec', () => {
    const plan = planUfw(
      v4,
      parseUfwRules(USER6_RULES, 6),
      allowancesFor([cidr('10.200.0.2'), cidr('2001:db8::/32')], [22]),
      true,
    );
    expect(plan.commands.map((c) => c.join(' '))).toEqual([
      'ufw insert 1 allow from 10.200.0.2 to any port 22 proto tcp',
      'ufw insert 8 allow from 2001:db8::/32 to any port 22 proto tcp',
      'ufw delete deny from 10.200.0.2 to any port 22',
    ]);
    expect(plan.after).toContain('[ 7] allow from 2001:db8::/32 to any port 22 proto tcp (v6)');
    expect(plan.after).not.toContain('deny from 10.200.0.2 to any port 22\n');
  });

  test('with no rule of that family yet, a plain `ufw allow` (insert N would be an invalid position)', () => {
    const plan = planUfw([], [], allowancesFor([cidr('2001:db8::/32')], [22]), true);
    expect(plan.commands).toEqual([
      ['ufw', 'allow', 'from', '2001:db8::/32', 'to', 'any', 'port', '22', 'proto', 'tcp'],
    ]);
  });

  test('an existing allow after a deny is deleted and re-inserted (re-adding would print "Skipping adding existing rule")', () => {
    const rules = parseUfwRules(
      '### tuple ### deny any any 0.0.0.0/0 any 10.200.0.0/24 in\n### tuple ### allow tcp 22 0.0.0.0/0 any 10.200.0.2 in\n',
      4,
    );
    const plan = planUfw(rules, [], allowancesFor([cidr('10.200.0.2')], [22]), true);
    expect(plan.commands.map((c) => c.join(' '))).toEqual([
      'ufw delete allow from 10.200.0.2 to any port 22 proto tcp',
      'ufw insert 1 allow from 10.200.0.2 to any port 22 proto tcp',
    ]);
    expect(plan.messages[0]).toMatch(/an allow after a deny is dead/);
  });

  test.each([true, false])(
    'a deny with the allow rule\'s own tuple goes first, remove_blocking=%s (ufw would print "Skipping inserting existing rule")',
    (removeBlocking) => {
      const rules = parseUfwRules(
        '### tuple ### allow tcp 22 0.0.0.0/0 any 10.200.0.1 in\n### tuple ### deny tcp 22 0.0.0.0/0 any 10.200.0.2 in\n',
        4,
      );
      const plan = planUfw(rules, [], allowancesFor([cidr('10.200.0.2')], [22]), removeBlocking);
      expect(plan.commands.map((c) => c.join(' '))).toEqual([
        'ufw delete deny from 10.200.0.2 to any port 22 proto tcp',
        'ufw insert 1 allow from 10.200.0.2 to any port 22 proto tcp',
      ]);
    },
  );

  test('nothing to do when the allow already comes first', () => {
    const rules = parseUfwRules(
      '### tuple ### allow tcp 22 0.0.0.0/0 any 10.200.0.2 in\n### tuple ### deny any any 0.0.0.0/0 any 10.200.0.0/24 in\n',
      4,
    );
    expect(planUfw(rules, [], allowancesFor([cidr('10.200.0.2')], [22]), true).commands).toEqual([]);
  });
});

describe('property: the planned rule list needs nothing more (idempotence)', () => {
  const tupleArb = fc
    .tuple(
      fc.constantFrom('allow', 'deny', 'reject', 'limit'),
      fc.constantFrom('tcp', 'any', 'udp'),
      fc.constantFrom('22', 'any', '80', '22,2222'),
      fc.constantFrom('10.200.0.2', '0.0.0.0/0', '10.200.0.0/24', '192.0.2.1'),
    )
    .map(([action, proto, port, src]) => `### tuple ### ${action} ${proto} ${port} 0.0.0.0/0 any ${src} in`);
  test('after applying the planned list, planning again yields no command', () => {
    fc.assert(
      fc.property(fc.array(tupleArb, { maxLength: 6 }), fc.boolean(), (tuples, removeBlocking) => {
        const allowances = allowancesFor([cidr('10.200.0.2')], [22]);
        const plan = planUfw(parseUfwRules(tuples.join('\n'), 4), [], allowances, removeBlocking);
        // Rebuild the database from the planned listing: "[ n] SPEC" lines back into tuples.
        const afterTuples = plan.after
          .split('\n')
          .filter(Boolean)
          .map((line) => specToTuple(line.replace(/^\[\s*\d+\] /, '')));
        const again = planUfw(parseUfwRules(afterTuples.join('\n'), 4), [], allowances, removeBlocking);
        expect(again.commands).toEqual([]);
        // ufw keeps one rule per tuple: an insert next to a same-tuple twin would have been skipped.
        const inserted = plan.commands.some((c) => c[1] === 'insert' || c[1] === 'allow');
        const allowTuple = 'tcp 22 0.0.0.0/0 any 10.200.0.2 in';
        const twins = afterTuples.filter((t) => t.split(' ').slice(4).join(' ') === allowTuple);
        if (inserted) expect(twins).toHaveLength(1);
      }),
    );
  });
});

/** Inverse of ufwRuleSpec for the simple rules the generator makes. */
function specToTuple(spec: string): string {
  const m = /^(\w+) from (\S+) to any(?: port (\S+))?(?: proto (\w+))?$/.exec(spec);
  if (!m) throw new Error(`unexpected spec ${spec}`);
  const src = m[2] === 'any' ? '0.0.0.0/0' : m[2];
  return `### tuple ### ${m[1]} ${m[4] ?? 'any'} ${m[3] ?? 'any'} 0.0.0.0/0 any ${src} in`;
}
