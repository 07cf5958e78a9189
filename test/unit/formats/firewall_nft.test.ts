import fc from 'fast-check';
import { parseCidr, type Cidr } from '../../../src/formats/firewall_cidr.js';
import {
  allowRuleText,
  applyNftEdit,
  nftCommands,
  nftRuleMatch,
  normalizeNftListing,
  ownRuleTables,
  parseNftRuleset,
  planNftEdit,
  splitNftWords,
} from '../../../src/formats/firewall_nft.js';
import { allowancesFor } from '../../../src/formats/firewall_rules.js';

const cidr = (t: string): Cidr => parseCidr(t).cidr!;
const ALLOW = allowancesFor([cidr('10.200.0.2'), cidr('2001:db8::/32')], [22]);

/** `nft -a list ruleset` as nftables 1.0.6 prints it, with an iptables-nft table and fail2ban's. */
const LISTING = `table ip filter { # handle 1
	chain INPUT { # handle 1
		type filter hook input priority filter; policy accept;
		ip saddr 10.200.0.2 tcp dport 22  counter packets 0 bytes 0 drop # handle 2
	}
}
table inet t { # handle 3
	set blocked { # handle 9
		type ipv4_addr
		elements = { 192.0.2.1,
			     192.0.2.2 }
	}

	chain input { # handle 1
		type filter hook input priority filter; policy drop;
		ct state established,related accept # handle 4
		ip saddr 10.200.0.2 tcp dport 22 drop # handle 5
		ip6 saddr { 2001:db8::/32, 2001:db9::1 } tcp dport { 22, 2222 } reject with tcp reset # handle 6
		tcp dport 22 ip saddr 10.0.0.0/8 counter packets 3 bytes 180 reject with icmp port-unreachable # handle 7
		ip saddr @blocked drop # handle 8
		jump extra # handle 10
	}

	chain extra { # handle 2
		ip saddr 10.200.0.2 tcp dport ssh drop # handle 11
	}
}
table inet f2b-table { # handle 4
	chain f2b-chain { # handle 1
		type filter hook input priority filter - 1; policy accept;
		tcp dport 22 ip saddr 10.200.0.2 reject # handle 2
	}
}
`;

describe('nft parsing', () => {
  test('words keep sets and strings whole', () => {
    expect(splitNftWords('ip saddr { 1.1.1.1, 2.2.2.2 } log prefix "a b" drop')).toEqual([
      'ip',
      'saddr',
      '{ 1.1.1.1, 2.2.2.2 }',
      'log',
      'prefix',
      '"a b"',
      'drop',
    ]);
  });

  test('tables, base chains, handles and multi-line sets', () => {
    const r = parseNftRuleset(LISTING);
    expect(r.tables.map((t) => `${t.family} ${t.name}`)).toEqual(['ip filter', 'inet t', 'inet f2b-table']);
    const input = r.tables[1]!.chains.get('input')!;
    expect(input).toMatchObject({ type: 'filter', hook: 'input', policy: 'drop' });
    expect(input.rules.map((x) => x.handle)).toEqual([4, 5, 6, 7, 8, 10]);
    expect(r.tables[1]!.chains.get('extra')!.rules[0]!.match.ports).toEqual({
      kind: 'list',
      items: [{ from: 22, to: 22 }],
      negated: false,
    });
  });

  test('rule matches', () => {
    expect(nftRuleMatch('ip saddr != 10.0.0.0/8 tcp dport 22 drop', 'any')).toMatchObject({
      verdict: 'drop',
      family: 4,
      protocol: 'tcp',
      sources: { kind: 'list', negated: true },
    });
    expect(nftRuleMatch('meta l4proto tcp th dport 22-25 reject', 'any').ports).toEqual({
      kind: 'list',
      items: [{ from: 22, to: 25 }],
      negated: false,
    });
    expect(nftRuleMatch('udp dport 22 drop', 'any').protocol).toBe('other');
    expect(nftRuleMatch('iifname "eth1" drop', 'any').extraMatches).toBe(true);
    expect(nftRuleMatch('ip saddr @blocked drop', 'any').sources).toEqual({ kind: 'unknown' });
  });

  test('iptables-nft and fail2ban tables are not "nftables in use"', () => {
    const r = parseNftRuleset(LISTING);
    expect(ownRuleTables(r, new Set(['ip filter'])).map((t) => t.name)).toEqual(['t']);
    expect(ownRuleTables(parseNftRuleset(LISTING.split('table inet t')[0]!), new Set(['ip filter']))).toEqual(
      [],
    );
  });
});

describe('planNftEdit (nft rules are deleted by handle)', () => {
  const ruleset = parseNftRuleset(LISTING);
  const edit = planNftEdit(ruleset, ALLOW, true, new Set(['ip filter']));

  test('accepts go first in every input base chain it may edit; exact bans go by handle', () => {
    expect(nftCommands(edit).map((c) => c.join(' '))).toEqual([
      'nft insert rule inet t input ip6 saddr 2001:db8::/32 tcp dport 22 accept',
      'nft insert rule inet t input ip saddr 10.200.0.2 tcp dport 22 accept',
      'nft delete rule inet t input handle 5',
      'nft delete rule inet t extra handle 11',
    ]);
  });

  test('a drop in a table it leaves alone still applies: warned', () => {
    expect(edit.warnings).toEqual([
      "table ip filter (managed by iptables-nft) may still drop SSH from 10.200.0.2/32: 'ip saddr 10.200.0.2 tcp dport 22  counter packets 0 bytes 0 drop'",
    ]);
  });

  test('the edited text keeps everything else byte-identical', () => {
    const after = applyNftEdit(ruleset, edit);
    const expected = LISTING.replace(
      '\t\ttype filter hook input priority filter; policy drop;\n',
      `\t\ttype filter hook input priority filter; policy drop;\n\t\t${allowRuleText(ALLOW[0]!)}\n\t\t${allowRuleText(ALLOW[1]!)}\n`,
    )
      .replace('\t\tip saddr 10.200.0.2 tcp dport 22 drop # handle 5\n', '')
      .replace('\t\tip saddr 10.200.0.2 tcp dport ssh drop # handle 11\n', '');
    expect(after).toBe(expected);
    expect(normalizeNftListing(after)).not.toMatch(/handle|packets/);
  });

  test('an accept after a drop is moved (deleted by handle, inserted first)', () => {
    const text =
      'table inet t {\n\tchain input {\n\t\ttype filter hook input priority 0; policy accept;\n\t\tip saddr 10.200.0.0/24 drop # handle 2\n\t\tip saddr 10.200.0.2 tcp dport 22 accept # handle 3\n\t}\n}\n';
    const e = planNftEdit(parseNftRuleset(text), ALLOW.slice(0, 1), false, new Set());
    expect(nftCommands(e).map((c) => c.join(' '))).toEqual([
      'nft delete rule inet t input handle 3',
      'nft insert rule inet t input ip saddr 10.200.0.2 tcp dport 22 accept',
    ]);
    expect(e.messages[0]).toMatch(/an accept after a drop is dead/);
  });

  test('an ip6 table only gets IPv6 allowances', () => {
    const text =
      'table ip6 six {\n\tchain input {\n\t\ttype filter hook input priority 0; policy drop;\n\t}\n}\n';
    const e = planNftEdit(parseNftRuleset(text), ALLOW, true, new Set());
    expect(e.inserts[0]!.allowances).toEqual([ALLOW[1]]);
  });
});

// ---------------------------------------------------------------------------
// Properties: /etc/nftables.conf-like texts

const RULES = [
  'ip saddr 10.200.0.2 tcp dport 22 drop',
  'ip saddr 10.200.0.0/16 tcp dport 22 accept',
  'ip saddr 10.200.0.2 tcp dport 22 accept',
  'ip6 saddr 2001:db8::1 tcp dport 22 reject with tcp reset',
  'tcp dport 80 accept',
  'ip saddr 10.0.0.0/8 drop',
  'ct state established,related accept',
  'udp dport 22 drop',
  'jump extra',
  'ip saddr { 10.200.0.2, 10.200.0.3 } tcp dport { 22 } drop',
];
const confArb = fc
  .tuple(
    fc.array(fc.constantFrom(...RULES), { maxLength: 7 }),
    fc.array(fc.constantFrom(...RULES.filter((r) => !r.startsWith('jump'))), { maxLength: 3 }),
    fc.constantFrom('drop', 'accept'),
    fc.constantFrom('inet', 'ip'),
  )
  .map(([input, extra, policy, family]) =>
    [
      '#!/usr/sbin/nft -f',
      '',
      'flush ruleset',
      '',
      `table ${family} filter {`,
      '\tchain input {',
      `\t\ttype filter hook input priority filter; policy ${policy};`,
      ...input.map((r) => `\t\t${r}`),
      '\t}',
      '\tchain extra {',
      ...extra.map((r) => `\t\t${r} # a comment`),
      '\t}',
      '}',
      '',
    ].join('\n'),
  );
const sourcesArb = fc.subarray([cidr('10.200.0.2'), cidr('10.200.0.0/16'), cidr('2001:db8::/32')], {
  minLength: 1,
});

describe('properties', () => {
  test('planning again after the edit changes nothing (idempotence)', () => {
    fc.assert(
      fc.property(confArb, sourcesArb, fc.boolean(), (text, sources, removeBlocking) => {
        const allowances = allowancesFor(sources, [22]);
        const once = applyNftEdit(
          parseNftRuleset(text),
          planNftEdit(parseNftRuleset(text), allowances, removeBlocking, new Set()),
        );
        const again = planNftEdit(parseNftRuleset(once), allowances, removeBlocking, new Set());
        expect({ inserts: again.inserts, removals: again.removals.map((r) => r.rule.text) }).toEqual({
          inserts: [],
          removals: [],
        });
      }),
    );
  });

  test('lossless: lines not removed stay in order, byte-identical; only allow rules are added', () => {
    fc.assert(
      fc.property(confArb, sourcesArb, (text, sources) => {
        const ruleset = parseNftRuleset(text);
        const edit = planNftEdit(ruleset, allowancesFor(sources, [22]), true, new Set());
        const removed = new Set(edit.removals.flatMap((r) => [r.rule.firstLine]));
        const kept = text.split('\n').filter((_, i) => !removed.has(i));
        const added = edit.inserts.flatMap((i) => i.allowances.map((a) => `\t\t${allowRuleText(a)}`));
        const after = applyNftEdit(ruleset, edit).split('\n');
        expect([...after].sort()).toEqual([...kept, ...added].sort());
        let k = 0;
        for (const line of after) if (k < kept.length && line === kept[k]) k++;
        expect(k).toBe(kept.length);
      }),
    );
  });
});
