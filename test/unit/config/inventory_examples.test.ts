import { fileURLToPath } from 'node:url';
import type { Inventory } from '../../../src/config/inventory.js';
import { connectionVars, loadInventory, selectHosts } from '../../../src/config/inventory.js';

const examples = (name: string): string =>
  fileURLToPath(new URL(`../../../inventories/${name}`, import.meta.url));

/** Hosts and groups without file positions and paths, which differ between the two files by nature. */
function contents(inventory: Inventory): unknown {
  return {
    hosts: [...inventory.hosts.values()].map(({ name, vars, groups }) => ({ name, vars, groups })),
    groups: Object.fromEntries(
      [...inventory.groups.values()].map((group) => [
        group.name,
        { hosts: group.hosts, children: [...group.children].sort(), vars: group.vars },
      ]),
    ),
  };
}

describe('inventories/example.yml and inventories/example.ini', () => {
  const fromYaml = loadInventory(examples('example.yml'));
  const fromIni = loadInventory(examples('example.ini'));

  test('describe the same fleet', () => {
    expect(contents(fromIni)).toEqual(contents(fromYaml));
  });

  test('the fleet is the one the comments describe', () => {
    expect(selectHosts(fromYaml, 'web')).toEqual([
      'web01.example.net',
      'web02.example.net',
      'web03.example.net',
      'web04.example.net',
    ]);
    expect(selectHosts(fromYaml, 'production:!web')).toEqual(['db01.example.net', 'db02.example.net']);
    expect(selectHosts(fromYaml, 'all:!production')).toEqual(['bastion.example.net']);

    const web = fromYaml.hosts.get('web03.example.net');
    expect(web?.vars).toEqual({
      ansible_user: 'deploy',
      admin_network: '10.20.0.0/16',
      environment: 'production',
      http_port: 443,
    });
    expect(fromYaml.hosts.get('bastion.example.net')?.vars.admin_network).toBe('10.0.0.0/8');
  });

  test('connection settings', () => {
    const settings = (inventory: Inventory, name: string): unknown => {
      const host = inventory.hosts.get(name);
      if (!host) throw new Error(`no host ${name}`);
      return connectionVars(host);
    };
    for (const inventory of [fromYaml, fromIni]) {
      expect(settings(inventory, 'db02.example.net')).toEqual({
        connection: 'ssh',
        address: 'db02.example.net',
        port: 2222,
        user: 'deploy',
        become: true,
      });
      expect(settings(inventory, 'bastion.example.net')).toEqual({
        connection: 'ssh',
        address: '203.0.113.10',
        port: 22,
        user: 'deploy',
        become: false,
      });
    }
  });
});
