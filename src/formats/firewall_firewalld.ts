/**
 * firewalld: zones as `firewall-cmd --list-all-zones` prints them (runtime and
 * `--permanent`), rich rules parsed into `RuleMatch`, and the rich rules to
 * add/remove. firewalld orders a zone's rich rules by priority (and, at equal
 * priority 0, deny before allow), so the allow rule carries the lowest
 * priority there is and precedes every drop/reject. No I/O.
 */
import { formatCidr, parseHostCidr } from './firewall_cidr.js';
import {
  isRemovableBlock,
  placeAllow,
  type ChainRules,
  type PortRange,
  type RuleMatch,
  type SshAllowance,
  openRuleMatch,
} from './firewall_rules.js';

/** The lowest rich-rule priority firewalld accepts: nothing in the zone is evaluated earlier. */
export const ALLOW_PRIORITY = -32768;

export interface FirewalldZone {
  name: string;
  isDefault: boolean;
  active: boolean;
  sources: string[];
  interfaces: string[];
  richRules: string[];
}

/** Parses `firewall-cmd [--permanent] --list-all-zones`. */
export function parseFirewalldZones(text: string): FirewalldZone[] {
  const zones: FirewalldZone[] = [];
  let zone: FirewalldZone | undefined;
  let inRichRules = false;
  for (const line of text.split('\n')) {
    const header = /^(\S+)(?:\s+\(([^)]*)\))?\s*$/.exec(line);
    if (header) {
      const flags = (header[2] ?? '').split(',').map((s) => s.trim());
      zone = {
        name: header[1]!,
        isDefault: flags.includes('default'),
        active: flags.includes('active'),
        sources: [],
        interfaces: [],
        richRules: [],
      };
      zones.push(zone);
      inRichRules = false;
      continue;
    }
    if (!zone) continue;
    const field = /^\s+([a-z][a-z -]*?):\s*(.*)$/.exec(line);
    if (field && !line.startsWith('\t')) {
      inRichRules = field[1] === 'rich rules';
      const values = field[2]!.trim() === '' ? [] : field[2]!.trim().split(/\s+/);
      if (field[1] === 'sources') zone.sources = values;
      if (field[1] === 'interfaces') zone.interfaces = values;
      continue;
    }
    if (inRichRules && line.trim().startsWith('rule')) zone.richRules.push(line.trim());
  }
  return zones;
}

/** Splits a rich rule into `key="value"` pairs and bare words, in order. */
export function richRuleWords(rule: string): { key: string; value?: string }[] {
  const words: { key: string; value?: string }[] = [];
  const pattern = /([A-Za-z-]+)(?:="((?:[^"\\]|\\.)*)"|=(\S+))?/g;
  for (const m of rule.matchAll(pattern))
    words.push({ key: m[1]!, ...((m[2] ?? m[3]) ? { value: m[2] ?? m[3] } : {}) });
  return words;
}

export interface RichRule {
  text: string;
  priority: number;
  match: RuleMatch;
}

/** Well-known services whose port is the SSH question; others are "some other port". */
const SERVICE_PORTS: Record<string, PortRange[]> = { ssh: [{ from: 22, to: 22 }] };

export function parseRichRule(text: string): RichRule {
  const match: RuleMatch = openRuleMatch('any');
  let priority = 0;
  let element = '';
  let negate = false;
  for (const { key, value } of richRuleWords(text)) {
    if (key === 'family' && value) match.family = value === 'ipv6' ? 6 : 4;
    else if (key === 'priority' && value) priority = Number(value);
    else if (
      [
        'source',
        'destination',
        'service',
        'port',
        'protocol',
        'icmp-block',
        'forward-port',
        'source-port',
        'masquerade',
        'log',
        'audit',
      ].includes(key) &&
      value === undefined
    ) {
      element = key;
      negate = false;
      if (key === 'destination' || key === 'source-port' || key === 'icmp-block') match.extraMatches = true;
      if (key === 'icmp-block' || key === 'masquerade' || key === 'forward-port') match.protocol = 'other';
    } else if (key === 'NOT') negate = true;
    else if (element === 'source' && key === 'address' && value) {
      const cidr = parseHostCidr(value);
      match.sources = cidr ? { kind: 'list', items: [cidr], negated: negate } : { kind: 'unknown' };
    } else if (element === 'source' && (key === 'ipset' || key === 'mac'))
      match.sources = { kind: 'unknown' };
    else if (element === 'port' && key === 'port' && value) {
      const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(value);
      match.ports = m
        ? { kind: 'list', items: [{ from: Number(m[1]), to: Number(m[2] ?? m[1]) }], negated: false }
        : { kind: 'unknown' };
    } else if (element === 'port' && key === 'protocol' && value)
      match.protocol = value === 'tcp' ? 'tcp' : 'other';
    else if (element === 'protocol' && key === 'value' && value)
      match.protocol = value === 'tcp' ? 'tcp' : 'other';
    else if (element === 'service' && key === 'name' && value) {
      const ports = SERVICE_PORTS[value];
      match.ports = ports ? { kind: 'list', items: ports, negated: false } : { kind: 'unknown' };
      if (ports) match.protocol = 'tcp';
    } else if (['accept', 'drop', 'reject'].includes(key) && value === undefined)
      match.verdict = key as RuleMatch['verdict'];
    else if (key === 'mark' && value === undefined) match.verdict = 'other';
  }
  // A source address limits the rule to its family even without family="...".
  if (match.sources.kind === 'list' && match.family === 'any') match.family = match.sources.items[0]!.family;
  return { text, priority, match };
}

/** The rich rule sshfix adds, in the order firewalld lists it (priority first). */
export function allowRichRule(a: SshAllowance): string {
  const family = a.source.family === 4 ? 'ipv4' : 'ipv6';
  return `rule priority="${ALLOW_PRIORITY}" family="${family}" source address="${formatCidr(a.source)}" port port="${a.port}" protocol="tcp" accept`;
}

/** Evaluation order of a zone's rich rules: by priority; at equal priority, drop/reject first (conservatively). */
function evaluationOrder(rules: RichRule[]): RichRule[] {
  const rank = (r: RichRule): number => (r.match.verdict === 'accept' ? 1 : 0);
  return [...rules].sort((x, y) => x.priority - y.priority || rank(x) - rank(y));
}

export interface FirewalldZoneEdit {
  zone: string;
  add: string[];
  remove: string[];
}

export interface FirewalldEdit {
  zones: FirewalldZoneEdit[];
  messages: string[];
}

/**
 * The zones that see SSH traffic (the default zone and every active one) each
 * need the allow rich rule ahead of any drop/reject; with removeBlocking,
 * rich rules aimed at exactly those sources on that port go. `label` says
 * which configuration this is (runtime or permanent).
 */
export function planFirewalld(
  zones: FirewalldZone[],
  targetZones: string[],
  allowances: SshAllowance[],
  removeBlocking: boolean,
  label: string,
): FirewalldEdit {
  const edit: FirewalldEdit = { zones: [], messages: [] };
  for (const name of targetZones) {
    const zone = zones.find((z) => z.name === name);
    if (!zone) continue;
    const rules = evaluationOrder(zone.richRules.map(parseRichRule));
    const chain: ChainRules<RichRule> = { name, rules: rules.map((rule) => ({ rule, match: rule.match })) };
    const zoneEdit: FirewalldZoneEdit = { zone: name, add: [], remove: [] };
    for (const a of allowances) {
      const placement = placeAllow(chain, a, () => undefined);
      if (!placement.needsInsert) continue;
      const what = `SSH from ${formatCidr(a.source)} to port ${a.port}`;
      if (placement.existing) {
        zoneEdit.remove.push(placement.existing.text);
        edit.messages.push(
          `${label} zone ${name}: ${what} is accepted only after '${placement.blockersBefore[0]!.text}' → replaced by a priority ${ALLOW_PRIORITY} rule`,
        );
      } else if (placement.blockersBefore.length > 0) {
        edit.messages.push(
          `${label} zone ${name}: ${what} is blocked by '${placement.blockersBefore[0]!.text}' → allow rule added`,
        );
      } else edit.messages.push(`${label} zone ${name}: no rich rule accepts ${what} → allow rule added`);
      zoneEdit.add.push(allowRichRule(a));
    }
    if (removeBlocking) {
      for (const rule of rules) {
        if (isRemovableBlock(rule.match, allowances) && !zoneEdit.remove.includes(rule.text)) {
          zoneEdit.remove.push(rule.text);
          edit.messages.push(`${label} zone ${name}: '${rule.text}' blocks an allowed source → removed`);
        }
      }
    }
    if (zoneEdit.add.length > 0 || zoneEdit.remove.length > 0) edit.zones.push(zoneEdit);
  }
  return edit;
}

/** Zones that see incoming SSH: the default zone and every active zone, default first. */
export function sshZones(runtime: FirewalldZone[], defaultZone: string): string[] {
  const names = defaultZone ? [defaultZone] : runtime.filter((z) => z.isDefault).map((z) => z.name);
  for (const z of runtime) if (z.active && !names.includes(z.name)) names.push(z.name);
  return names;
}

/** Command words; the caller treats exit 11 (ALREADY_ENABLED) and 12 (NOT_ENABLED) as success. */
export function firewalldCommands(edit: FirewalldEdit, permanent: boolean): string[][] {
  const base = permanent ? ['firewall-cmd', '--permanent'] : ['firewall-cmd'];
  const commands: string[][] = [];
  for (const z of edit.zones) {
    for (const rule of z.add) commands.push([...base, `--zone=${z.zone}`, `--add-rich-rule=${rule}`]);
    for (const rule of z.remove) commands.push([...base, `--zone=${z.zone}`, `--remove-rich-rule=${rule}`]);
  }
  return commands;
}

/** Rich rules of the given zones, one per line, for before/after views. */
export function richRuleListing(zones: FirewalldZone[], names: string[], edit?: FirewalldEdit): string {
  const out: string[] = [];
  for (const name of names) {
    const zone = zones.find((z) => z.name === name);
    if (!zone) continue;
    const e = edit?.zones.find((z) => z.zone === name);
    const rules = [...(e?.add ?? []), ...zone.richRules.filter((r) => !(e?.remove ?? []).includes(r))];
    out.push(`${name}:`, ...rules.map((r) => `  ${r}`));
  }
  return out.length > 0 ? `${out.join('\n')}\n` : '';
}
