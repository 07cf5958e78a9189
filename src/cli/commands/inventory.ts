/**
 * `sshfix inventory`: the resolved hosts, their groups and variables; with
 * `--facts`, also each host's facts, read from the host (read-only).
 */
import { ConfigError, formatDiagnostic } from '../../config/diagnostics.js';
import { loadInventory, type Inventory } from '../../config/inventory.js';
import { selectLimitHosts } from '../../config/selection.js';
import { loadSshConfig } from '../../transport/ssh_config.js';
import { buildConnectionSpec } from '../../transport/spec.js';
import { openConnection } from '../../transport/connect.js';
import { DEFAULT_FORKS } from '../../executor/run.js';
import { ansibleFacts, type AnsibleFacts } from '../../executor/host_facts.js';
import { readFleetFacts, type HostFactsOutcome } from '../../executor/fleet_facts.js';
import { EXIT } from '../exit_codes.js';
import { redactConfigError } from '../redact.js';
import { redactVariables, secretValues } from '../../config/secrets.js';
import { tracingConnect } from '../verbose.js';
import { vaultFromArgs, vaultOptions } from '../vault_password.js';
import type { CliIO, Command, ParsedArgs } from '../io.js';
import { commandSettings, configuredConnection } from '../settings.js';
import type { Settings } from '../../config/settings.js';

/** A remote command of the facts read may take this long: two small probes. */
const FACTS_COMMAND_TIMEOUT_MS = 60_000;

/** What a host's facts read came to: the facts, or why there are none. */
type FactsEntry = { ansible_facts: AnsibleFacts } | { unreachable: string } | { failed: string };

function factsEntry(outcome: HostFactsOutcome): FactsEntry {
  if ('facts' in outcome) return { ansible_facts: ansibleFacts(outcome.facts) };
  return 'unreachable' in outcome ? { unreachable: outcome.unreachable } : { failed: outcome.failed };
}

/** Every selected host's facts, read at most --forks at a time; verify host keys, record none. */
async function readFacts(
  args: ParsedArgs,
  settings: Settings,
  inventory: Inventory,
  names: readonly string[],
  io: CliIO,
  secrets: readonly string[],
): Promise<Map<string, FactsEntry>> {
  const { forks, timeout: connectTimeoutS } = settings.values;
  const privateKeyFile =
    settings.origins.private_key_file.kind === 'cli' ? settings.values.private_key_file : undefined;
  const configured = configuredConnection(settings);
  const sshConfig = loadSshConfig(args['ssh-config'] as string | undefined);
  const flag = (name: string): string | undefined =>
    args[name] === undefined ? undefined : String(args[name]);
  const connection = args.connection as 'ssh' | 'local' | undefined;
  const user = flag('user');
  const knownHostsFile = flag('known-hosts');
  const specs = names.map((name) =>
    buildConnectionSpec(name, inventory.hosts.get(name)!.vars, {
      ...(connection !== undefined ? { connection } : {}),
      ...(user !== undefined ? { user } : {}),
      ...(privateKeyFile !== undefined ? { privateKeyFile } : {}),
      ...(configured.user !== undefined || configured.privateKeyFile !== undefined ? { configured } : {}),
      ...(knownHostsFile !== undefined ? { knownHostsFile } : {}),
      ...(sshConfig ? { sshConfig } : {}),
      // Reading facts changes nothing, not even known_hosts: an unknown host key makes the host
      // unreachable (host_key_checking = False included).
      acceptNewHostKeys: false,
      connectTimeoutMs: connectTimeoutS * 1000,
      commandTimeoutMs: FACTS_COMMAND_TIMEOUT_MS,
    }),
  );
  const connect = args.verbose ? tracingConnect(openConnection, io.stderr, secrets) : openConnection;
  const outcomes = await readFleetFacts(specs, { forks, connect });
  return new Map(outcomes.map((o) => [o.host, factsEntry(o)]));
}

/** "ssh.socket", "ssh.service", or "-" where no systemd unit runs sshd. */
function listener(sshd: AnsibleFacts['sshd']): string {
  if (sshd.unit === null) return '-';
  return `${sshd.unit}.${sshd.socket_activated ? 'socket' : 'service'}`;
}

const yesNo = (value: boolean | null): string => (value === null ? '-' : value ? 'yes' : 'no');

/** One line a host: a table whose columns are as wide as their widest cell. */
function factsTable(names: readonly string[], facts: ReadonlyMap<string, FactsEntry>): string {
  const header = ['HOST', 'DISTRIBUTION', 'INIT', 'SSHD', 'LISTENER', 'LIBWRAP', 'FIREWALL', 'FAIL2BAN'];
  const rows = names.map((name): string[] => {
    const entry = facts.get(name)!;
    if (!('ansible_facts' in entry))
      return [name, 'unreachable' in entry ? `unreachable: ${entry.unreachable}` : `failed: ${entry.failed}`];
    const f = entry.ansible_facts;
    return [
      name,
      `${f.distribution} ${f.distribution_version}`,
      f.service_mgr,
      f.sshd.version ?? '-',
      listener(f.sshd),
      yesNo(f.sshd.libwrap),
      f.firewall_backend ?? '-',
      f.fail2ban_running ? 'running' : 'stopped',
    ];
  });
  // A failure's message runs on to the end of its line: it does not widen the columns.
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.filter((r) => r.length === header.length).map((r) => r[i]!.length)),
  );
  return [header, ...rows]
    .map((cells) => cells.map((c, i) => (i < cells.length - 1 ? c.padEnd(widths[i]!) : c)).join('  '))
    .map((line) => `${line}\n`)
    .join('');
}

async function showInventory(args: ParsedArgs, io: CliIO): Promise<number> {
  const settings = commandSettings(args);
  if (settings.warnings.length > 0) io.stderr(settings.warnings.map(formatDiagnostic).join('\n') + '\n');
  if (settings.values.inventory === undefined)
    throw new ConfigError([{ severity: 'error', summary: 'Missing required argument: inventory' }]);
  const vault = await vaultFromArgs(args);
  let inventory: Inventory;
  try {
    inventory = loadInventory(settings.values.inventory, vault);
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
  const facts = args.facts ? await readFacts(args, settings, inventory, names, io, secrets) : undefined;
  if (args.format === 'json') {
    io.stdout(
      JSON.stringify(
        {
          hosts: Object.fromEntries(
            hosts.map((h) => [h.name, { groups: h.groups, vars: h.vars, ...facts?.get(h.name) }]),
          ),
        },
        null,
        2,
      ) + '\n',
    );
  } else if (facts) {
    io.stdout(factsTable(names, facts));
  } else {
    for (const h of hosts) {
      io.stdout(`${h.name}  groups: ${h.groups.join(', ')}\n`);
      for (const [k, v] of Object.entries(h.vars)) io.stdout(`    ${k}: ${JSON.stringify(v)}\n`);
    }
  }
  const entries = [...(facts?.values() ?? [])];
  if (entries.some((e) => 'failed' in e)) return EXIT.failed;
  if (entries.some((e) => 'unreachable' in e)) return EXIT.unreachable;
  return EXIT.ok;
}

export const inventoryCommand: Command = {
  command: 'inventory',
  describe: 'Show the resolved hosts and their variables; with --facts, what each host runs',
  builder: (y) =>
    vaultOptions(
      y
        .option('inventory', {
          alias: 'i',
          type: 'string',
          describe:
            'Inventory file (Ansible YAML or INI); default: inventory of sshfix.cfg/ansible.cfg or $SSHFIX_INVENTORY',
        })
        .option('limit', {
          alias: 'l',
          type: 'string',
          describe: 'Host pattern; a term matching nothing warns, no host left is an error',
        })
        .option('format', { choices: ['text', 'json'] as const, default: 'text' as const })
        .option('facts', {
          type: 'boolean',
          default: false,
          describe:
            'Connect to the hosts (read-only, one round trip each) and show their facts: distribution, init system, ' +
            'sshd release and unit, libwrap, firewall in use, fail2ban (json: ansible_facts per host)',
        })
        .option('forks', {
          alias: 'f',
          type: 'number',
          defaultDescription: `${DEFAULT_FORKS}, or forks of the config file`,
          describe: 'With --facts: hosts read at once (a whole number, 1 or more)',
        })
        .option('connection', {
          alias: 'c',
          choices: ['ssh', 'local'] as const,
          describe: 'With --facts: connection type for every host',
        })
        .option('user', { alias: 'u', type: 'string', describe: 'With --facts: remote user' })
        .option('private-key', {
          alias: 'key-file',
          type: 'string',
          describe: 'With --facts: private key file (must be readable)',
        })
        .option('ssh-config', {
          alias: 'F',
          type: 'string',
          describe: 'With --facts: OpenSSH client config (default ~/.ssh/config; -F /dev/null reads none)',
        })
        .option('known-hosts', {
          type: 'string',
          describe:
            'With --facts: known_hosts file (default ~/.ssh/known_hosts); unknown hosts are not recorded',
        })
        .option('connect-timeout', {
          type: 'number',
          defaultDescription: '10, or timeout of the config file',
          describe: 'With --facts: seconds to wait for a connection (more than 0)',
        })
        .option('verbose', {
          alias: 'v',
          type: 'boolean',
          default: false,
          describe: 'With --facts: print every script sent to a host, and how it ended, on stderr',
        }),
    ),
  run: (args, io) => showInventory(args, io),
};
