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
import { connectionVars, loadInventory, selectHosts } from '../../config/inventory.js';
import { defaultKnownHostsFile } from '../../executor/run.js';
import type { ConnectionSpec } from '../../transport/types.js';
import { diagnoseHosts, type DiagnoseTarget, type HostDiagnosis } from '../../diagnose/run.js';
import { fixPlaybook } from '../../diagnose/fix_playbook.js';
import { CAUSES } from '../../diagnose/findings.js';
import { DEFAULT_BURST } from '../../diagnose/probe.js';
import { MAX_ALTERNATE_SOURCES } from '../../diagnose/sources.js';
import { EXIT } from '../exit_codes.js';
import type { CliIO, Command, ParsedArgs } from '../io.js';
import { countOption, portOption, readableFileOption, secondsOption } from '../options.js';

const DEFAULT_CONCURRENCY = 10;

function inputError(summary: string): ConfigError {
  return new ConfigError([{ severity: 'error', summary }]);
}

interface SpecDefaults {
  connection?: 'ssh' | 'local';
  user?: string;
  port?: number;
  privateKeyFile?: string;
  knownHostsFile: string;
  connectTimeoutMs: number;
}

function baseSpec(name: string, address: string, d: SpecDefaults): ConnectionSpec {
  return {
    hostName: name,
    connection: d.connection ?? 'ssh',
    address,
    port: d.port ?? 22,
    user: d.user ?? os.userInfo().username,
    ...(d.privateKeyFile !== undefined ? { privateKeyFile: d.privateKeyFile } : {}),
    ...(process.env.SSH_AUTH_SOCK ? { agent: process.env.SSH_AUTH_SOCK } : {}),
    become: false,
    knownHostsFile: d.knownHostsFile,
    acceptNewHostKeys: false,
    connectTimeoutMs: d.connectTimeoutMs,
    commandTimeoutMs: 60_000,
    keepaliveIntervalMs: 5000,
  };
}

/**
 * The hosts to diagnose: inventory hosts (by --limit and/or names), or names
 * and addresses as given. `warn` is told of --limit terms that match nothing.
 */
export function diagnoseTargets(
  args: ParsedArgs,
  warn: (warnings: Diagnostic[]) => void = () => undefined,
): DiagnoseTarget[] {
  const named = ((args.hosts as string[] | undefined) ?? []).map(String);
  const defaults: SpecDefaults = {
    connection: args.connection as 'ssh' | 'local' | undefined,
    user: args.user as string | undefined,
    port: args.port as number | undefined,
    privateKeyFile: args['private-key'] as string | undefined,
    knownHostsFile: (args['known-hosts'] as string | undefined) ?? defaultKnownHostsFile(),
    connectTimeoutMs: Number(args['connect-timeout']) * 1000,
  };
  const inventoryPath = args.inventory as string | undefined;
  if (inventoryPath === undefined) {
    if (named.length === 0) throw inputError('name the hosts to diagnose, or give an inventory with -i');
    if (args.limit !== undefined) throw inputError('--limit needs an inventory (-i)');
    return named.map((name) => ({ name, spec: baseSpec(name, name, defaults) }));
  }
  const inventory = loadInventory(inventoryPath);
  const limited = selectLimitHosts(inventory, args.limit as string | undefined);
  warn(limited.warnings);
  if (limited.errors.length > 0) throw new ConfigError(limited.errors);
  let names = limited.hosts;
  if (named.length > 0) {
    const wanted = new Set(named.flatMap((pattern) => selectHosts(inventory, pattern)));
    names = names.filter((n) => wanted.has(n));
  }
  if (names.length === 0) throw inputError(`no hosts matched: no host of ${inventoryPath} matches`);
  return names.map((name) => {
    const host = inventory.hosts.get(name)!;
    const vars = connectionVars(host);
    const spec = baseSpec(name, vars.address, {
      ...defaults,
      connection: defaults.connection ?? vars.connection,
      user: defaults.user ?? vars.user,
      port: defaults.port ?? vars.port,
      privateKeyFile: defaults.privateKeyFile ?? vars.privateKeyFile,
    });
    if (vars.password !== undefined) spec.password = vars.password;
    if (vars.become) {
      spec.become = true;
      if (vars.becomePassword !== undefined) spec.becomePassword = vars.becomePassword;
    }
    return { name, spec };
  });
}

/**
 * The jump host of --via: an inventory host (with -i), or `[user@]host[:port]`.
 * Its login uses the same key and known_hosts as the targets.
 */
export function jumpSpec(via: string, args: ParsedArgs): ConnectionSpec {
  const defaults: SpecDefaults = {
    user: args.user as string | undefined,
    privateKeyFile: args['private-key'] as string | undefined,
    knownHostsFile: (args['known-hosts'] as string | undefined) ?? defaultKnownHostsFile(),
    connectTimeoutMs: Number(args['connect-timeout']) * 1000,
  };
  const inventoryPath = args.inventory as string | undefined;
  const inventoryHost = inventoryPath !== undefined ? loadInventory(inventoryPath).hosts.get(via) : undefined;
  if (inventoryHost) {
    const vars = connectionVars(inventoryHost);
    return baseSpec(via, vars.address, {
      ...defaults,
      connection: 'ssh',
      user: vars.user ?? defaults.user,
      port: vars.port,
      privateKeyFile: vars.privateKeyFile ?? defaults.privateKeyFile,
    });
  }
  const match = /^(?:([^@\s]+)@)?(\[[^\]]+\]|[^:@\s]+)(?::(\d{1,5}))?$/.exec(via);
  if (!match) throw inputError(`--via ${JSON.stringify(via)} is not [user@]host[:port] or an inventory host`);
  const host = match[2]!.replace(/^\[|\]$/g, '');
  const port = match[3] !== undefined ? Number(match[3]) : 22;
  if (port < 1 || port > 65535) throw inputError(`--via ${via}: port ${port} is out of range`);
  return baseSpec(via, host, { ...defaults, connection: 'ssh', user: match[1] ?? defaults.user, port });
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

export function renderDiagnosisText(d: HostDiagnosis): string {
  const lines = [
    `${d.host} (${d.address}) for client ${d.client ?? 'unknown'}: ${d.reachable ? 'reachable' : 'NOT reachable'}`,
    d.serverChecks.via === null
      ? `  server-side checks: none (${d.serverChecks.reason})`
      : `  server-side checks: over ${d.serverChecks.via}`,
  ];
  if (d.findings.length === 0) lines.push('  no findings: the SSH path looks healthy');
  d.findings.forEach((f, i) => {
    lines.push(`  ${i + 1}. [${f.confidence}] ${f.cause}`);
    for (const e of f.evidence) lines.push(`       - ${e}`);
    lines.push(`       fix: ${f.fix}`);
  });
  return `${lines.join('\n')}\n\n`;
}

async function runDiagnose(args: ParsedArgs, io: CliIO): Promise<number> {
  const format = args.format as 'text' | 'json';
  // Checked before anything is probed; where they are used, they are read as given.
  countOption(args, 'forks', 'how many hosts to diagnose at once');
  secondsOption(args, 'connect-timeout');
  readableFileOption(args, 'private-key');
  if (args.port !== undefined) portOption(args, 'port');
  const client = checkAddress(args.client, 'client');
  const source = checkAddress(args.source, 'source');
  const alsoFrom = ((args['also-from'] as unknown[] | undefined) ?? []).map((a) =>
    checkAddress(a, 'also-from')!,
  );
  if (alsoFrom.length > MAX_ALTERNATE_SOURCES)
    throw inputError(`--also-from: at most ${MAX_ALTERNATE_SOURCES} addresses`);
  const targets = diagnoseTargets(args, (warnings) =>
    warnings.forEach((w) => io.stderr(`${formatDiagnostic(w)}\n`)),
  );
  if (args.via !== undefined) {
    const jump = jumpSpec(String(args.via), args);
    for (const t of targets) if (t.spec.connection === 'ssh') t.spec.jump = [jump];
  }
  if (client === undefined && targets.some((t) => t.spec.connection === 'local')) {
    throw inputError(
      'with -c local (on the server itself), name the client to diagnose for with --client ADDR',
    );
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
      io.stderr(
        `fix playbook written to ${fixFile}: review it with \`sshfix plan ${fixFile} -i INVENTORY\`\n`,
      );
    }
  }
  return EXIT.ok;
}

export const diagnoseCommand: Command = {
  command: 'diagnose [hosts..]',
  describe: 'Say why hosts reset or refuse SSH connections, and write a playbook that fixes it',
  builder: (y: Argv) =>
    y
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
        describe: 'Diagnose for this client address (default: ours toward the host)',
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
        describe: 'Remote user (default: inventory ansible_user, else yours)',
      })
      .option('port', {
        alias: 'p',
        type: 'number',
        describe: 'SSH port (default: inventory ansible_port, else 22)',
      })
      .option('private-key', { alias: 'key-file', type: 'string', describe: 'Private key for the login' })
      .option('offer-key', {
        type: 'string',
        array: true,
        describe: 'Key the client also offers before the login key (repeat; as an agent with several keys)',
      })
      .option('known-hosts', { type: 'string', describe: 'known_hosts file (default ~/.ssh/known_hosts)' })
      .option('connect-timeout', {
        type: 'number',
        default: 10,
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
