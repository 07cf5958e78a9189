/**
 * `sshfix diagnose`: why does a host reset, refuse or ignore SSH connections
 * from a client? Probes from the client side, checks the server side where a
 * way in exists, prints ranked findings and can write a fix playbook.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import type { Argv } from 'yargs';
import { ConfigError, formatDiagnostic, type Diagnostic } from '../../config/diagnostics.js';
import { selectLimitHosts } from '../../config/selection.js';
import { connectionVars, loadInventory, selectHosts, type Inventory } from '../../config/inventory.js';
import { loadSshConfig } from '../../transport/ssh_config.js';
import { buildConnectionSpec, type SpecOptions } from '../../transport/spec.js';
import type { ConnectionSpec } from '../../transport/types.js';
import { diagnoseHosts, type DiagnoseTarget, type HostDiagnosis } from '../../diagnose/run.js';
import { fixPlaybook } from '../../diagnose/fix_playbook.js';
import { CAUSES } from '../../diagnose/findings.js';
import { DEFAULT_BURST } from '../../diagnose/probe.js';
import { MAX_ALTERNATE_SOURCES } from '../../diagnose/sources.js';
import { EXIT } from '../exit_codes.js';
import type { CliIO, Command, ParsedArgs } from '../io.js';
import { countOption, portOption } from '../options.js';
import { DEFAULTS, type Settings } from '../../config/settings.js';
import { commandSettings, configuredConnection } from '../settings.js';
import { redactConfigError } from '../redact.js';
import { vaultFromArgs, vaultOptions } from '../vault_password.js';
import { Vault } from '../../config/vault.js';

const DEFAULT_CONCURRENCY = 10;

function inputError(summary: string): ConfigError {
  return new ConfigError([{ severity: 'error', summary }]);
}

/**
 * What the flags say about every host's connection, with the remote_user,
 * private_key_file and timeout of the config file and environment
 * (`settings`, flags applied); the inventory and ssh_config fill in the rest.
 */
function specOptions(args: ParsedArgs, settings?: Settings): SpecOptions {
  const sshConfig = loadSshConfig(args['ssh-config'] as string | undefined);
  const flag = <T>(name: string): T | undefined => args[name] as T | undefined;
  const configured = settings ? configuredConnection(settings) : {};
  const timeoutS = settings?.values.timeout ?? Number(args['connect-timeout'] ?? DEFAULTS.timeout);
  return {
    ...(flag<'ssh' | 'local'>('connection') !== undefined
      ? { connection: flag<'ssh' | 'local'>('connection') }
      : {}),
    ...(flag<string>('user') !== undefined ? { user: String(flag<string>('user')) } : {}),
    ...(flag<number>('port') !== undefined ? { port: Number(flag<number>('port')) } : {}),
    ...(flag<string>('private-key') !== undefined
      ? { privateKeyFile: String(flag<string>('private-key')) }
      : {}),
    ...(flag<string>('known-hosts') !== undefined
      ? { knownHostsFile: String(flag<string>('known-hosts')) }
      : {}),
    ...(sshConfig ? { sshConfig } : {}),
    ...(configured.user !== undefined || configured.privateKeyFile !== undefined ? { configured } : {}),
    // diagnose changes nothing, not even known_hosts: an unknown host key ends the probe.
    acceptNewHostKeys: false,
    connectTimeoutMs: timeoutS * 1000,
    commandTimeoutMs: 60_000,
  };
}

/**
 * Inventory hosts for one name given on the command line: a pattern of
 * names and groups, or else the address of a host (its ansible_host), so
 * that findings and the fix playbook name it as the inventory does.
 */
function hostsNamed(inventory: Inventory, pattern: string): string[] {
  const byPattern = selectHosts(inventory, pattern);
  if (byPattern.length > 0 || net.isIP(pattern) === 0) return byPattern;
  return [...inventory.hosts.values()]
    .filter((host) => {
      try {
        return connectionVars(host).address === pattern;
      } catch {
        return false;
      }
    })
    .map((host) => host.name);
}

/**
 * The hosts to diagnose: inventory hosts (by --limit and/or names or
 * addresses), names and addresses as given, or with `-c local` and no host
 * this machine itself. `warn` is told of --limit terms that match nothing.
 */
export function diagnoseTargets(
  args: ParsedArgs,
  warn: (warnings: Diagnostic[]) => void = () => undefined,
  settings?: Settings,
  vault: Vault = new Vault(),
): DiagnoseTarget[] {
  const named = ((args.hosts as string[] | undefined) ?? []).map(String);
  const options = specOptions(args, settings);
  const inventoryPath = args.inventory as string | undefined;
  if (inventoryPath === undefined) {
    if (args.limit !== undefined) throw inputError('--limit needs an inventory (-i)');
    if (named.length === 0) {
      if (options.connection !== 'local')
        throw inputError(
          'name the hosts to diagnose, give an inventory with -i, or use -c local for this machine',
        );
      const name = os.hostname();
      return [{ name, spec: buildConnectionSpec(name, { ansible_host: 'localhost' }, options) }];
    }
    return named.map((name) => ({ name, spec: buildConnectionSpec(name, {}, options) }));
  }
  const inventory = loadInventory(inventoryPath, vault);
  const limited = selectLimitHosts(inventory, args.limit as string | undefined);
  warn(limited.warnings);
  if (limited.errors.length > 0) throw new ConfigError(limited.errors);
  let names = limited.hosts;
  if (named.length > 0) {
    const wanted = new Set(named.flatMap((pattern) => hostsNamed(inventory, pattern)));
    names = names.filter((n) => wanted.has(n));
  }
  if (names.length === 0) throw inputError(`no hosts matched: no host of ${inventoryPath} matches`);
  return names.map((name) => ({
    name,
    spec: {
      ...buildConnectionSpec(name, inventory.hosts.get(name)!.vars, options),
      acceptNewHostKeys: false,
    },
  }));
}

/**
 * The jump host of --via for one target: an inventory host (with -i), or
 * `[user@]host[:port]`, looked up in ssh_config like any host. What neither
 * sets, it takes from its target: the user and the key (and the agent and
 * known_hosts, as every spec does), as `ssh -J` would log in with them.
 */
export function jumpSpec(
  via: string,
  target: ConnectionSpec,
  args: ParsedArgs,
  settings?: Settings,
  vault: Vault = new Vault(),
): ConnectionSpec {
  const options: SpecOptions = {
    ...specOptions(args, settings),
    connection: 'ssh',
    fallback: {
      user: target.user,
      ...(target.privateKeyFile !== undefined ? { privateKeyFile: target.privateKeyFile } : {}),
    },
  };
  const inventoryPath = args.inventory as string | undefined;
  const inventoryHost =
    inventoryPath !== undefined ? loadInventory(inventoryPath, vault).hosts.get(via) : undefined;
  if (inventoryHost) return buildConnectionSpec(via, inventoryHost.vars, options);
  const match = /^(?:([^@\s]+)@)?(\[[^\]]+\]|[^:@\s]+)(?::(\d{1,5}))?$/.exec(via);
  if (!match) throw inputError(`--via ${JSON.stringify(via)} is not [user@]host[:port] or an inventory host`);
  const host = match[2]!.replace(/^\[|\]$/g, '');
  const port = match[3] !== undefined ? Number(match[3]) : undefined;
  if (port !== undefined && (port < 1 || port > 65535))
    throw inputError(`--via ${via}: port ${port} is out of range`);
  return buildConnectionSpec(
    host,
    {},
    {
      ...options,
      ...(match[1] !== undefined ? { user: match[1] } : {}),
      ...(port !== undefined ? { port } : {}),
    },
  );
}

function checkAddress(value: unknown, option: string): string | undefined {
  if (value === undefined) return undefined;
  const text = String(value);
  if (net.isIP(text) === 0)
    throw inputError(`--${option} ${JSON.stringify(text)} is not an IPv4 or IPv6 address`);
  return text;
}

/** The JSON document: its shape is an interface (README). */
export function renderDiagnosisJson(results: readonly HostDiagnosis[]): string {
  const hosts = Object.fromEntries(
    results.map((d) => [
      d.host,
      {
        address: d.address,
        client: d.client,
        reachable: d.reachable,
        serverChecks: d.serverChecks.via,
        ...(d.serverChecks.via === null ? { serverChecksSkipped: d.serverChecks.reason } : {}),
        findings: d.findings.map((f) => ({
          cause: f.cause,
          confidence: f.confidence,
          ...(f.client !== undefined ? { client: f.client } : {}),
          evidence: f.evidence,
          fix: f.fix,
        })),
        // The client side's measurements (timings, what refused the SYN, other sources' outcomes).
        ...(d.probe ? { probe: d.probe } : {}),
      },
    ]),
  );
  return `${JSON.stringify({ hosts }, null, 2)}\n`;
}

function forWhom(d: HostDiagnosis): string {
  if (d.client !== null) return `client ${d.client}`;
  return d.serverChecks.via === 'local' ? 'every client' : 'client unknown';
}

export function renderDiagnosisText(d: HostDiagnosis): string {
  const lines = [
    `${d.host} (${d.address}) for ${forWhom(d)}: ${d.reachable ? 'reachable' : 'NOT reachable'}`,
    d.serverChecks.via === null
      ? `  server-side checks: none (${d.serverChecks.reason})`
      : `  server-side checks: over ${d.serverChecks.via}`,
  ];
  if (d.findings.length === 0) lines.push('  no findings: the SSH path looks healthy');
  d.findings.forEach((f, i) => {
    const who =
      f.client === undefined ? '' : ` (${f.client === '*' ? 'any other client' : `for ${f.client}`})`;
    lines.push(`  ${i + 1}. [${f.confidence}] ${f.cause}${who}`);
    for (const e of f.evidence) lines.push(`       - ${e}`);
    lines.push(`       fix: ${f.fix}`);
  });
  return `${lines.join('\n')}\n\n`;
}

async function runDiagnose(args: ParsedArgs, io: CliIO): Promise<number> {
  const vault = await vaultFromArgs(args);
  try {
    return await runDiagnoseWith(vault, args, io);
  } catch (error) {
    throw redactConfigError(error, vault.secrets());
  }
}

async function runDiagnoseWith(vault: Vault, args: ParsedArgs, io: CliIO): Promise<number> {
  const format = args.format as 'text' | 'json';
  // Checked before anything is probed; where they are used, they are read as given.
  countOption(args, 'forks', 'how many hosts to diagnose at once');
  // --connect-timeout and --private-key are checked here, as are the config file's values.
  const settings = commandSettings(args);
  if (settings.warnings.length > 0) io.stderr(settings.warnings.map(formatDiagnostic).join('\n') + '\n');
  if (args.port !== undefined) portOption(args, 'port');
  const client = checkAddress(args.client, 'client');
  const source = checkAddress(args.source, 'source');
  const alsoFrom = ((args['also-from'] as unknown[] | undefined) ?? []).map((a) =>
    checkAddress(a, 'also-from')!,
  );
  if (alsoFrom.length > MAX_ALTERNATE_SOURCES)
    throw inputError(`--also-from: at most ${MAX_ALTERNATE_SOURCES} addresses`);
  const targets = diagnoseTargets(
    args,
    (warnings) => warnings.forEach((w) => io.stderr(`${formatDiagnostic(w)}\n`)),
    settings,
    vault,
  );
  if (args.via !== undefined) {
    for (const t of targets)
      if (t.spec.connection === 'ssh')
        t.spec.jump = [jumpSpec(String(args.via), t.spec, args, settings, vault)];
  }
  const burst = Number(args.burst);
  if (!Number.isInteger(burst) || burst < 0 || burst > 30)
    throw inputError('--burst must be between 0 and 30');
  const results = await diagnoseHosts(
    targets,
    {
      ...(client !== undefined ? { client } : {}),
      ...(source !== undefined ? { source } : {}),
      ...(alsoFrom.length > 0 ? { alsoFrom } : {}),
      offerKeys: ((args['offer-key'] as string[] | undefined) ?? []).map(String),
      burstConnections: burst,
      probeOnly: Boolean(args['probe-only']),
      concurrency: Number(args.forks),
    },
    format === 'text' ? (d) => io.stdout(renderDiagnosisText(d)) : undefined,
  );
  if (format === 'json') io.stdout(renderDiagnosisJson(results));
  const fixFile = args['fix-playbook'] as string | undefined;
  if (fixFile !== undefined) {
    const text = fixPlaybook(results.map((d) => ({ host: d.host, findings: d.findings })));
    if (text === null) {
      io.stderr(`nothing to fix: ${fixFile} not written\n`);
    } else {
      fs.writeFileSync(fixFile, text);
      const inventory = args.inventory as string | undefined;
      io.stderr(
        inventory !== undefined
          ? `fix playbook written to ${fixFile}: review it with \`sshfix plan ${fixFile} -i ${inventory}\`\n`
          : `fix playbook written to ${fixFile}: its plays name the hosts as given here; review it with \`sshfix plan ${fixFile} -i INVENTORY\` (an inventory that names them so; with diagnose -i, plays use inventory names)\n`,
      );
    }
  }
  return EXIT.ok;
}

export const diagnoseCommand: Command = {
  command: 'diagnose [hosts..]',
  describe: 'Say why hosts reset or refuse SSH connections, and write a playbook that fixes it',
  builder: (y: Argv) =>
    vaultOptions(y)
      .positional('hosts', {
        type: 'string',
        array: true,
        describe: 'Hosts (names, addresses, or inventory patterns with -i)',
      })
      .option('inventory', { alias: 'i', type: 'string', describe: 'Inventory file (Ansible YAML or INI)' })
      .option('limit', { alias: 'l', type: 'string', describe: 'Limit the inventory hosts with a pattern' })
      .option('connection', {
        alias: 'c',
        choices: ['ssh', 'local'] as const,
        describe: 'local: run on the server itself (its console) for the server-side checks',
      })
      .option('via', { type: 'string', describe: 'Reach the server-side checks through this jump host' })
      .option('client', {
        type: 'string',
        describe:
          'Diagnose for this client address (default: ours toward the host; with -c local, every client some rule or log names)',
      })
      .option('source', { type: 'string', describe: 'Bind the probes to this local address' })
      .option('also-from', {
        type: 'string',
        array: true,
        describe: `When the connect gets no banner, also try it from this local address (repeat); our other addresses in the host's subnet are tried too, at most ${MAX_ALTERNATE_SOURCES} in all`,
      })
      .option('user', {
        alias: 'u',
        type: 'string',
        describe:
          'Remote user (default: inventory ansible_user, else remote_user of the config file, else ssh_config, else yours)',
      })
      .option('port', {
        alias: 'p',
        type: 'number',
        describe: 'SSH port (default: inventory ansible_port, else 22)',
      })
      .option('private-key', {
        alias: 'key-file',
        type: 'string',
        describe: 'Private key for the login (default: inventory, else private_key_file of the config file)',
      })
      .option('offer-key', {
        type: 'string',
        array: true,
        describe: 'Key the client also offers before the login key (repeat; as an agent with several keys)',
      })
      .option('ssh-config', {
        alias: 'F',
        type: 'string',
        describe:
          'OpenSSH client config for HostName, Port, User, IdentityFile, ProxyJump… (default ~/.ssh/config; -F /dev/null reads none)',
      })
      .option('known-hosts', { type: 'string', describe: 'known_hosts file (default ~/.ssh/known_hosts)' })
      .option('connect-timeout', {
        type: 'number',
        defaultDescription: `timeout of the config file, else ${DEFAULTS.timeout}`,
        describe: 'Seconds to wait for a TCP connection',
      })
      .option('burst', {
        type: 'number',
        default: DEFAULT_BURST.connections,
        describe: 'Concurrent connections opened to reveal MaxStartups throttling (0 to skip, at most 30)',
      })
      .option('probe-only', { type: 'boolean', default: false, describe: 'Client-side probe only: no login' })
      .option('forks', {
        alias: 'f',
        type: 'number',
        default: DEFAULT_CONCURRENCY,
        describe: 'Hosts diagnosed at once',
      })
      .option('fix-playbook', {
        type: 'string',
        describe: 'Write a playbook that fixes the findings to this file',
      })
      .option('format', {
        choices: ['text', 'json'] as const,
        default: 'text' as const,
        describe: 'Output format',
      })
      .epilog(`Causes (stable ids): ${CAUSES.join(', ')}.`),
  run: (args, io) => runDiagnose(args, io),
};
