import fc from 'fast-check';
import { stringify } from 'yaml';
import type { Inventory } from '../../../src/config/inventory.js';
import { parseInventory } from '../../../src/config/inventory.js';

/**
 * Random fleets rendered to YAML and to INI must read back to the same hosts,
 * groups and variables, and to the fleet that was rendered.
 */

type Value = string | number | boolean;
type Vars = Record<string, Value>;

interface Fleet {
  allVars: Vars;
  groups: { name: string; vars: Vars; parents: string[] }[];
  hosts: { name: string; vars: Vars; groups: string[] }[];
}

const RESERVED = new Set(['all', 'ungrouped']);
const groupName = fc.stringMatching(/^[a-z][a-z0-9_-]{0,6}$/).filter((name) => !RESERVED.has(name));
const hostName = fc.stringMatching(/^[a-z][a-z0-9.-]{0,8}$/);
const varName = fc.stringMatching(/^[a-z_][a-z0-9_]{0,6}$/);
// Text that needs quoting in INI: spaces, quotes, backslashes, comment and assignment characters.
const text = fc.string({
  unit: fc.constantFrom('a', 'Z', '7', ' ', '#', ';', '=', ':', '"', "'", '\\', '$', '`', '[', ']', '.'),
  maxLength: 12,
});
const value: fc.Arbitrary<Value> = fc.oneof(text, fc.integer({ min: -100000, max: 100000 }), fc.boolean());
const vars = fc.dictionary(varName, value, { maxKeys: 3 });

const fleet: fc.Arbitrary<Fleet> = fc
  .record({
    allVars: vars,
    groupNames: fc.uniqueArray(groupName, { minLength: 1, maxLength: 6 }),
    hostNames: fc.uniqueArray(hostName, { minLength: 1, maxLength: 8 }),
  })
  .chain(({ allVars, groupNames, hostNames }) =>
    fc.record({
      allVars: fc.constant(allVars),
      // A group's parents come earlier in the list, so there are no loops.
      groups: fc.tuple(
        ...groupNames.map((name, index) =>
          fc.record({
            name: fc.constant(name),
            vars,
            parents: fc.subarray(groupNames.slice(0, index)),
          }),
        ),
      ),
      hosts: fc.tuple(
        ...hostNames.map((name) =>
          fc.record({ name: fc.constant(name), vars, groups: fc.subarray(groupNames) }),
        ),
      ),
    }),
  );

function renderYaml(fleet: Fleet): string {
  const rendered = new Set<string>();
  const hostsOf = (group: string): Record<string, Vars | null> =>
    Object.fromEntries(
      fleet.hosts
        .filter((host) => host.groups.includes(group))
        .map((host) => [host.name, host.groups[0] === group ? host.vars : null]),
    );
  const renderGroup = (name: string): Record<string, unknown> | null => {
    // A group with several parents is written out in full under the first one only.
    if (rendered.has(name)) return null;
    rendered.add(name);
    const group = fleet.groups.find((candidate) => candidate.name === name);
    const children = fleet.groups.filter((candidate) => candidate.parents.includes(name));
    return {
      hosts: hostsOf(name),
      vars: group?.vars ?? {},
      children: Object.fromEntries(children.map((child) => [child.name, renderGroup(child.name)])),
    };
  };
  const topLevel = fleet.groups.filter((group) => group.parents.length === 0);
  const document = {
    all: {
      vars: fleet.allVars,
      hosts: Object.fromEntries(
        fleet.hosts.filter((h) => h.groups.length === 0).map((h) => [h.name, h.vars]),
      ),
      children: Object.fromEntries(topLevel.map((group) => [group.name, renderGroup(group.name)])),
    },
  };
  return stringify(document);
}

function renderIniValue(value: Value): string {
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'number') return String(value);
  return `"${value.replace(/["\\]/g, '\\$&')}"`;
}

function renderIni(fleet: Fleet): string {
  const hostLine = (name: string, vars: Vars): string =>
    [name, ...Object.entries(vars).map(([key, v]) => `${key}=${renderIniValue(v)}`)].join(' ');
  const varsLines = (vars: Vars): string[] =>
    Object.entries(vars).map(([key, v]) => `${key} = ${renderIniValue(v)}`);
  const lines = fleet.hosts.filter((h) => h.groups.length === 0).map((h) => hostLine(h.name, h.vars));
  lines.push('[all:vars]', ...varsLines(fleet.allVars));
  for (const group of fleet.groups) {
    lines.push(`[${group.name}]`);
    for (const host of fleet.hosts.filter((h) => h.groups.includes(group.name))) {
      lines.push(hostLine(host.name, host.groups[0] === group.name ? host.vars : {}));
    }
    lines.push(`[${group.name}:vars]`, ...varsLines(group.vars));
    const children = fleet.groups.filter((candidate) => candidate.parents.includes(group.name));
    lines.push(`[${group.name}:children]`, ...children.map((child) => child.name));
  }
  return lines.join('\n') + '\n';
}

/** Everything both formats must agree on, independent of the order in which they list things. */
function summary(inventory: Inventory): unknown {
  const sortedNames = (names: string[]): string[] => [...names].sort();
  return {
    hosts: Object.fromEntries(
      [...inventory.hosts.values()]
        .sort((a, b) => (a.name < b.name ? -1 : 1))
        .map((host) => [host.name, { vars: host.vars, groups: host.groups }]),
    ),
    groups: Object.fromEntries(
      [...inventory.groups.values()]
        .sort((a, b) => (a.name < b.name ? -1 : 1))
        .map((group) => [
          group.name,
          { hosts: sortedNames(group.hosts), children: sortedNames(group.children), vars: group.vars },
        ]),
    ),
  };
}

test('YAML and INI renderings of a fleet read back to the same inventory, and to that fleet', () => {
  fc.assert(
    fc.property(fleet, (fleet) => {
      const fromYaml = parseInventory(renderYaml(fleet), 'fleet.yml');
      const fromIni = parseInventory(renderIni(fleet), 'fleet.ini');
      expect(summary(fromIni)).toEqual(summary(fromYaml));

      expect(fromYaml.groups.get('all')?.vars).toEqual(fleet.allVars);
      for (const group of fleet.groups) {
        const read = fromYaml.groups.get(group.name);
        expect(read?.vars).toEqual(group.vars);
        const members = fleet.hosts
          .filter((host) => host.groups.includes(group.name))
          .map((host) => host.name);
        expect([...(read?.hosts ?? [])].sort()).toEqual(members.sort());
        for (const parent of group.parents)
          expect(fromYaml.groups.get(parent)?.children).toContain(group.name);
      }
      for (const host of fleet.hosts) {
        const read = fromYaml.hosts.get(host.name);
        expect(read?.groups).toEqual(expect.arrayContaining(['all', ...host.groups]));
        // A host's own variables beat every group's.
        expect(read?.vars).toEqual(expect.objectContaining(host.vars));
      }
      expect(fromIni.groups.get('ungrouped')?.hosts.sort()).toEqual(
        fleet.hosts
          .filter((host) => host.groups.length === 0)
          .map((host) => host.name)
          .sort(),
      );
    }),
    { numRuns: 150 },
  );
});
