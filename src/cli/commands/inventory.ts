/** `sshfix inventory`: the resolved hosts, their groups and variables. */
import { ConfigError, formatDiagnostic } from '../../config/diagnostics.js';
import { loadInventory, type Inventory } from '../../config/inventory.js';
import { selectLimitHosts } from '../../config/selection.js';
import { EXIT } from '../exit_codes.js';
import { redactConfigError, redactVariables, secretValues } from '../redact.js';
import { vaultFromArgs, vaultOptions } from '../vault_password.js';
import type { CliIO, Command, ParsedArgs } from '../io.js';

async function showInventory(args: ParsedArgs, io: CliIO): Promise<number> {
  const vault = await vaultFromArgs(args);
  let inventory: Inventory;
  try {
    inventory = loadInventory(String(args.inventory), vault);
  } catch (error) {
    throw redactConfigError(error, vault.secrets());
  }
  const selection = selectLimitHosts(inventory, args.limit as string | undefined);
  if (selection.warnings.length > 0) io.stderr(selection.warnings.map(formatDiagnostic).join('\n') + '\n');
  if (selection.errors.length > 0) throw new ConfigError(selection.errors);
  const names = selection.hosts;
  // Passwords and secret-named variables are masked, also where another variable repeats them.
  const secrets = [...[...inventory.hosts.values()].flatMap((h) => secretValues(h.vars)), ...vault.secrets()];
  const hosts = names.map((n) => {
    const host = inventory.hosts.get(n)!;
    return { name: host.name, groups: host.groups, vars: redactVariables(host.vars, secrets) };
  });
  if (args.format === 'json') {
    io.stdout(
      JSON.stringify(
        { hosts: Object.fromEntries(hosts.map((h) => [h.name, { groups: h.groups, vars: h.vars }])) },
        null,
        2,
      ) + '\n',
    );
  } else {
    for (const h of hosts) {
      io.stdout(`${h.name}  groups: ${h.groups.join(', ')}\n`);
      for (const [k, v] of Object.entries(h.vars)) io.stdout(`    ${k}: ${JSON.stringify(v)}\n`);
    }
  }
  return EXIT.ok;
}

export const inventoryCommand: Command = {
  command: 'inventory',
  describe: 'Show the resolved hosts and their variables',
  builder: (y) =>
    vaultOptions(
      y
        .option('inventory', {
          alias: 'i',
          type: 'string',
          demandOption: true,
          describe: 'Inventory file (Ansible YAML or INI)',
        })
        .option('limit', {
          alias: 'l',
          type: 'string',
          describe: 'Host pattern; a term matching nothing warns, no host left is an error',
        })
        .option('format', { choices: ['text', 'json'] as const, default: 'text' as const }),
    ),
  run: (args, io) => showInventory(args, io),
};
