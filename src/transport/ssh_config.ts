/**
 * OpenSSH client configuration (ssh_config(5), `-F FILE` or ~/.ssh/config):
 * how the settings a user already keeps for `ssh` map onto a ConnectionSpec.
 *
 * Host/Match matching and "the first obtained value wins" come from the
 * `ssh-config` package; this module adds what sshfix needs on top: Include,
 * tokens and `~` in file names, ProxyJump chains, and precedence. As in
 * Ansible, where `ansible_*` variables beat ssh_config: CLI flags > inventory
 * variables > ssh_config > defaults.
 */

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SSHConfig, { LineType } from 'ssh-config';
import type { Line } from 'ssh-config';
import { ConfigError } from '../config/diagnostics.js';
import type { SourcePosition } from '../config/diagnostics.js';
import type { ConnectionSpec } from './types.js';
import { errorMessage } from '../errors.js';

const DEFAULT_SSH_PORT = 22;
/** OpenSSH's READCONF_MAX_DEPTH: Include nesting deeper than this is an error. */
const MAX_INCLUDE_DEPTH = 16;
/** Jump hosts whose own ProxyJump names further jump hosts: more than this is a loop. */
const MAX_JUMP_CHAIN = 8;

/** One hop of a ProxyJump list: `[user@]host[:port]` or `ssh://[user@]host[:port]`. */
export interface JumpHop {
  user?: string;
  host: string;
  port?: number;
}

/** StrictHostKeyChecking as written; `ask` (OpenSSH's default) cannot prompt here, so it acts as `yes`. */
export type StrictHostKeyChecking = 'yes' | 'ask' | 'accept-new' | 'no';

/** What ssh_config says about one host name, before tokens are expanded. */
export interface SshHostConfig {
  /** The name the Host and Match blocks were matched against (%n). */
  name: string;
  hostName?: string;
  port?: number;
  user?: string;
  /** Every IdentityFile of every matching block, in order (OpenSSH offers them all; sshfix takes the first that exists). */
  identityFiles: string[];
  identitiesOnly?: boolean;
  /** `none` disables a ProxyJump that a later block would set. */
  proxyJump?: JumpHop[] | 'none';
  strictHostKeyChecking?: StrictHostKeyChecking;
  /** Not supported by sshfix: only noted, so that it is refused rather than bypassed. */
  proxyCommand?: string;
  /** The first UserKnownHostsFile. */
  userKnownHostsFile?: string;
}

/** A source text, kept to point error messages at the line of a bad value. */
interface SourceText {
  file: string;
  text: string;
}

/** A parsed ssh_config file with its Includes spliced in. */
export class SshConfigFile {
  constructor(
    readonly file: string,
    private readonly parsed: SSHConfig,
    private readonly sources: readonly SourceText[],
  ) {}

  /**
   * Settings for a host as OpenSSH would find them for the name given on
   * its command line: the inventory name (an alias such as `web1`) when a
   * Host or Match block names it, otherwise the address.
   */
  lookup(alias: string, address: string = alias): SshHostConfig {
    const byAlias = this.compute(alias);
    if (alias === address || this.namesHost(byAlias)) return this.toHostConfig(alias, byAlias);
    return this.toHostConfig(address, this.compute(address));
  }

  private compute(name: string): Record<string, string | string[]> {
    // `Match exec` would run commands from the file through a shell: sshfix never does, so it never matches.
    return this.parsed.compute(name, { ignoreCase: true, matchExec: false });
  }

  /** Whether some block applies to this name that does not apply to every name. */
  private namesHost(computed: Record<string, string | string[]>): boolean {
    const anyHost = this.compute(NAME_NO_PATTERN_NAMES);
    const { host: _ignored, ...specific } = computed;
    const { host: _ignoredToo, ...generic } = anyHost;
    return JSON.stringify(specific) !== JSON.stringify(generic);
  }

  private toHostConfig(name: string, computed: Record<string, string | string[]>): SshHostConfig {
    const first = (keyword: string): string | undefined => {
      const value = computed[keyword.toLowerCase()];
      return Array.isArray(value) ? value[0] : value;
    };
    const all = (keyword: string): string[] => {
      const value = computed[keyword.toLowerCase()];
      return value === undefined ? [] : Array.isArray(value) ? value : [value];
    };
    const config: SshHostConfig = { name, identityFiles: all('IdentityFile') };
    const hostName = first('HostName');
    if (hostName !== undefined) config.hostName = hostName;
    const port = first('Port');
    if (port !== undefined) config.port = this.parsePort(name, port);
    const user = first('User');
    if (user !== undefined) config.user = user;
    const identitiesOnly = first('IdentitiesOnly');
    if (identitiesOnly !== undefined)
      config.identitiesOnly = this.parseYesNo(name, 'IdentitiesOnly', identitiesOnly);
    const proxyJump = first('ProxyJump');
    if (proxyJump !== undefined) config.proxyJump = this.wrap(name, 'ProxyJump', proxyJump, parseProxyJump);
    const proxyCommand = first('ProxyCommand');
    if (proxyCommand !== undefined && proxyCommand.toLowerCase() !== 'none')
      config.proxyCommand = proxyCommand;
    const strict = first('StrictHostKeyChecking');
    if (strict !== undefined) config.strictHostKeyChecking = this.parseStrict(name, strict);
    const knownHosts = first('UserKnownHostsFile');
    if (knownHosts !== undefined && knownHosts.toLowerCase() !== 'none')
      config.userKnownHostsFile = knownHosts;
    return config;
  }

  private parsePort(name: string, value: string): number {
    return this.wrap(name, 'Port', value, (text) => {
      const port = /^\d+$/.test(text) ? Number(text) : NaN;
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error('not a port number (1-65535)');
      return port;
    });
  }

  private parseYesNo(name: string, keyword: string, value: string): boolean {
    return this.wrap(name, keyword, value, (text) => {
      const word = text.toLowerCase();
      if (word === 'yes' || word === 'true') return true;
      if (word === 'no' || word === 'false') return false;
      throw new Error('expected yes or no');
    });
  }

  private parseStrict(name: string, value: string): StrictHostKeyChecking {
    return this.wrap(name, 'StrictHostKeyChecking', value, (text) => {
      const word = text.toLowerCase();
      if (word === 'yes' || word === 'true') return 'yes';
      if (word === 'no' || word === 'off' || word === 'false') return 'no';
      if (word === 'ask') return 'ask';
      if (word === 'accept-new') return 'accept-new';
      throw new Error('expected yes, accept-new, no, off or ask');
    });
  }

  /** Runs a value parser; a failure becomes a ConfigError at the line that set the value. */
  private wrap<T>(name: string, keyword: string, value: string, parse: (text: string) => T): T {
    try {
      return parse(value);
    } catch (error) {
      const position = locate(this.sources, keyword, value);
      throw new ConfigError([
        {
          severity: 'error',
          summary: `ssh_config ${keyword} "${value}" for host ${name}: ${errorMessage(error)}`,
          ...(position ? { position } : { detail: `in ${this.file} or a file it includes` }),
        },
      ]);
    }
  }
}

/**
 * A name no ssh_config pattern names: matched only by patterns that match
 * every host (`*`), which is what "the file does not mention this host" means.
 */
const NAME_NO_PATTERN_NAMES = '\u0000';

/** The first line that sets `keyword` to `value`, for error messages. */
function locate(sources: readonly SourceText[], keyword: string, value: string): SourcePosition | undefined {
  const pattern = new RegExp(`^(\\s*)${keyword}(\\s*=\\s*|\\s+)"?${escapeRegExp(value)}"?\\s*(#.*)?$`, 'i');
  for (const { file, text } of sources) {
    const lines = text.split(/\r?\n/);
    for (const [index, line] of lines.entries()) {
      const found = pattern.exec(line);
      if (found) return { file, line: index + 1, column: (found[1]?.length ?? 0) + 1 };
    }
  }
  return undefined;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// ---------------------------------------------------------------------------
// ProxyJump

/** Parses a ProxyJump value: `none`, or hops separated by commas, outermost first. */
export function parseProxyJump(value: string): JumpHop[] | 'none' {
  const text = value.trim();
  if (text.toLowerCase() === 'none') return 'none';
  return text.split(',').map((part) => parseJumpHop(part.trim()));
}

/** `[user@]host[:port]`, `[user@][v6addr]:port` or `ssh://[user@]host[:port]`. */
export function parseJumpHop(text: string): JumpHop {
  const withoutScheme = text.replace(/^ssh:\/\//i, '').replace(/\/$/, '');
  if (withoutScheme === '') throw new Error(`empty jump host in "${text}"`);
  const at = withoutScheme.lastIndexOf('@');
  const user = at >= 0 ? withoutScheme.slice(0, at) : undefined;
  const hostPort = withoutScheme.slice(at + 1);
  if (user === '') throw new Error(`empty user name in jump host "${text}"`);
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(hostPort);
  let host: string;
  let portText: string | undefined;
  if (bracketed) {
    host = bracketed[1] ?? '';
    portText = bracketed[2];
  } else {
    const colon = hostPort.indexOf(':');
    // A bare IPv6 address (several colons) has no port.
    const hasPort = colon >= 0 && hostPort.indexOf(':', colon + 1) < 0;
    host = hasPort ? hostPort.slice(0, colon) : hostPort;
    portText = hasPort ? hostPort.slice(colon + 1) : undefined;
  }
  if (host === '') throw new Error(`empty host name in jump host "${text}"`);
  const hop: JumpHop = { host };
  if (user !== undefined) hop.user = user;
  if (portText !== undefined) {
    const port = /^\d+$/.test(portText) ? Number(portText) : NaN;
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new Error(`port "${portText}" of jump host "${text}" is not a port number (1-65535)`);
    }
    hop.port = port;
  }
  return hop;
}

// ---------------------------------------------------------------------------
// Tokens and `~`

/** Values for the `%` tokens of ssh_config(5) "TOKENS" that sshfix expands. */
export interface TokenValues {
  /** %d: local home directory (also what `~` means). */
  home: string;
  /** %u: local user name. */
  localUser: string;
  /** %h: remote host name (after HostName). */
  hostName: string;
  /** %n: the name the host was looked up by. */
  originalHost: string;
  /** %p: remote port. */
  port: number;
  /** %r: remote user. */
  remoteUser: string;
}

/** Expands `~/`, `%%`, `%d`, `%u`, `%h`, `%n`, `%p`, `%r`; any other token is an error naming it. */
export function expandPath(value: string, tokens: TokenValues): string {
  const expanded = value.replace(/%(.)/g, (whole, letter: string) => {
    switch (letter) {
      case '%':
        return '%';
      case 'd':
        return tokens.home;
      case 'u':
        return tokens.localUser;
      case 'h':
        return tokens.hostName;
      case 'n':
        return tokens.originalHost;
      case 'p':
        return String(tokens.port);
      case 'r':
        return tokens.remoteUser;
      default:
        throw new Error(`token ${whole} in "${value}" is not supported by sshfix`);
    }
  });
  if (expanded === '~') return tokens.home;
  if (expanded.startsWith('~/')) return path.join(tokens.home, expanded.slice(2));
  return expanded;
}

/** HostName knows only `%h` (the name given) and `%%`. */
export function expandHostName(value: string, originalHost: string): string {
  return value.replace(/%(.)/g, (whole, letter: string) => {
    if (letter === '%') return '%';
    if (letter === 'h') return originalHost;
    throw new Error(`token ${whole} in HostName "${value}" is not supported`);
  });
}

// ---------------------------------------------------------------------------
// Loading, with Include

/** Where the local machine's facts come from; tests substitute them. */
export interface LocalEnvironment {
  home: string;
  localUser: string;
  readFile: (file: string) => string;
  /** Whether a (private key) file exists. */
  exists: (file: string) => boolean;
  /** Entries of a directory, for Include globs; [] when it cannot be read. */
  listDirectory: (dir: string) => string[];
}

export function localEnvironment(): LocalEnvironment {
  return {
    home: os.homedir(),
    localUser: os.userInfo().username,
    readFile: (file) => fs.readFileSync(file, 'utf8'),
    exists: (file) => fs.existsSync(file),
    listDirectory: (dir) => {
      try {
        return fs.readdirSync(dir);
      } catch {
        return [];
      }
    },
  };
}

/** ~/.ssh/config. */
export function defaultSshConfigFile(env: Pick<LocalEnvironment, 'home'> = localEnvironment()): string {
  return path.join(env.home, '.ssh', 'config');
}

/**
 * Reads `file` (an explicit `-F`; it must exist), or else ~/.ssh/config when
 * it exists. Returns undefined when there is nothing to read.
 */
export function loadSshConfig(
  file: string | undefined,
  env: LocalEnvironment = localEnvironment(),
): SshConfigFile | undefined {
  const chosen = file ?? defaultSshConfigFile(env);
  if (file === undefined && !env.exists(chosen)) return undefined;
  return parseSshConfig(readConfigText(chosen, env), chosen, env);
}

function readConfigText(file: string, env: LocalEnvironment): string {
  try {
    return env.readFile(file);
  } catch (error) {
    throw new ConfigError([
      { severity: 'error', summary: `cannot read ssh_config ${file}: ${errorMessage(error)}` },
    ]);
  }
}

/** Parses ssh_config text read from `file`, splicing in its Includes. */
export function parseSshConfig(
  text: string,
  file: string,
  env: LocalEnvironment = localEnvironment(),
): SshConfigFile {
  const sources: SourceText[] = [];
  const parsed = parseWithIncludes(text, file, env, sources, 0);
  return new SshConfigFile(file, parsed, sources);
}

function parseWithIncludes(
  text: string,
  file: string,
  env: LocalEnvironment,
  sources: SourceText[],
  depth: number,
): SSHConfig {
  sources.push({ file, text });
  const parsed = SSHConfig.parse(text);
  const expanded = new SSHConfig();
  for (const line of parsed) {
    if (isInclude(line)) {
      expanded.push(...includedLines(line, file, env, sources, depth));
    } else if (isSection(line)) {
      // An Include inside a Host/Match block: its plain directives belong to the
      // block; its own Host/Match blocks follow the block (they are matched on
      // their own either way).
      const ownLines = new SSHConfig();
      const laterSections: Line[] = [];
      for (const inner of line.config) {
        if (!isInclude(inner)) {
          ownLines.push(inner);
          continue;
        }
        for (const included of includedLines(inner, file, env, sources, depth)) {
          if (isSection(included)) laterSections.push(included);
          else ownLines.push(included);
        }
      }
      line.config = ownLines;
      expanded.push(line, ...laterSections);
    } else {
      expanded.push(line);
    }
  }
  return expanded;
}

function includedLines(
  include: Line & { value: unknown },
  file: string,
  env: LocalEnvironment,
  sources: SourceText[],
  depth: number,
): Line[] {
  if (depth >= MAX_INCLUDE_DEPTH) {
    throw new ConfigError([
      {
        severity: 'error',
        summary: `ssh_config ${file}: Include nested more than ${MAX_INCLUDE_DEPTH} deep (an Include loop?)`,
      },
    ]);
  }
  const lines: Line[] = [];
  for (const pattern of directiveValues(include.value)) {
    // Relative Include paths are relative to ~/.ssh for user files (ssh_config(5)).
    const withHome =
      pattern === '~' || pattern.startsWith('~/') ? path.join(env.home, pattern.slice(1)) : pattern;
    const absolute = path.isAbsolute(withHome) ? withHome : path.join(env.home, '.ssh', withHome);
    for (const match of globFiles(absolute, env)) {
      const included = parseWithIncludes(readConfigText(match, env), match, env, sources, depth + 1);
      lines.push(...included);
    }
  }
  return lines;
}

function isInclude(line: Line): line is Line & { param: string; value: unknown } {
  return line.type === LineType.DIRECTIVE && /^include$/i.test(line.param);
}

function isSection(line: Line): line is Line & { param: string; config: SSHConfig } {
  return line.type === LineType.DIRECTIVE && 'config' in line;
}

function directiveValues(value: unknown): string[] {
  if (typeof value === 'string') return value.split(/\s+/).filter((v) => v !== '');
  if (Array.isArray(value)) {
    return value
      .map((part: unknown) =>
        typeof part === 'object' && part !== null && 'val' in part ? String(part.val) : String(part),
      )
      .filter((v) => v !== '');
  }
  return [];
}

/** Files matching an absolute path whose segments may hold `*` and `?`, sorted (as glob(3) does). */
export function globFiles(
  pattern: string,
  env: Pick<LocalEnvironment, 'listDirectory' | 'exists'>,
): string[] {
  const segments = pattern.split('/').filter((s) => s !== '');
  let candidates = ['/'];
  for (const segment of segments) {
    if (!/[*?]/.test(segment)) {
      candidates = candidates.map((dir) => path.join(dir, segment));
      continue;
    }
    const matcher = new RegExp(
      `^${segment
        .split(/([*?])/)
        .map(globPart)
        .join('')}$`,
    );
    candidates = candidates.flatMap((dir) =>
      env
        .listDirectory(dir)
        .filter((entry) => !entry.startsWith('.') && matcher.test(entry))
        .sort()
        .map((entry) => path.join(dir, entry)),
    );
  }
  return candidates.filter((candidate) => env.exists(candidate));
}

function globPart(part: string): string {
  if (part === '*') return '[^/]*';
  if (part === '?') return '[^/]';
  return escapeRegExp(part);
}

// ---------------------------------------------------------------------------
// Precedence

/** Settings the inventory or a CLI flag fixed for a host: ssh_config does not change them. */
export interface FixedSettings {
  address: boolean;
  port: boolean;
  user: boolean;
  privateKeyFile: boolean;
  /** Only `--known-hosts` fixes it; it then binds every hop, jump hosts included. */
  knownHostsFile: boolean;
  /** `--accept-new-host-keys`: binds every hop; StrictHostKeyChecking cannot take it back. */
  acceptNewHostKeys: boolean;
}

/**
 * The spec with ssh_config filled in where neither the inventory nor a CLI
 * flag decided: HostName, Port, User, the first IdentityFile that exists,
 * IdentitiesOnly (no ssh-agent keys), ProxyJump, StrictHostKeyChecking and
 * the first UserKnownHostsFile.
 *
 * StrictHostKeyChecking `accept-new`, `no` and `off` all record unknown keys
 * (as `--accept-new-host-keys` does) but a changed key is always refused:
 * sshfix never connects past a key that differs from known_hosts.
 *
 * A jump host gets its own ssh_config settings; what those leave open (key
 * file, known_hosts, host key policy, time limits) it takes from the target.
 * Passwords are never passed on to a jump host.
 */
export function applySshConfig(
  spec: ConnectionSpec,
  config: SshConfigFile,
  fixed: FixedSettings,
  env: LocalEnvironment = localEnvironment(),
): ConnectionSpec {
  if (spec.connection !== 'ssh') return spec;
  return resolveHost(spec, config, fixed, env, [spec.hostName]);
}

function resolveHost(
  spec: ConnectionSpec,
  config: SshConfigFile,
  fixed: FixedSettings,
  env: LocalEnvironment,
  chainNames: readonly string[],
): ConnectionSpec {
  const found = config.lookup(spec.hostName, spec.address);
  const { name } = found;
  const where = (keyword: string, error: unknown): ConfigError =>
    new ConfigError([
      {
        severity: 'error',
        summary: `ssh_config ${config.file}: ${keyword} for host ${spec.hostName}: ${errorMessage(error)}`,
      },
    ]);
  const resolved: ConnectionSpec = { ...spec };
  if (!fixed.address && found.hostName !== undefined) {
    try {
      resolved.address = expandHostName(found.hostName, name);
    } catch (error) {
      throw where('HostName', error);
    }
  }
  if (!fixed.port && found.port !== undefined) resolved.port = found.port;
  if (!fixed.user && found.user !== undefined) resolved.user = found.user;
  const tokens: TokenValues = {
    home: env.home,
    localUser: env.localUser,
    hostName: resolved.address,
    originalHost: name,
    port: resolved.port,
    remoteUser: resolved.user,
  };
  const expand = (keyword: string, value: string): string => {
    try {
      return expandPath(value, tokens);
    } catch (error) {
      throw where(keyword, error);
    }
  };
  if (!fixed.privateKeyFile && found.identityFiles.length > 0) {
    // OpenSSH skips identity files that do not exist; sshfix offers one key, the first that does.
    const existing = found.identityFiles.map((file) => expand('IdentityFile', file)).find(env.exists);
    if (existing !== undefined) resolved.privateKeyFile = existing;
  }
  if (found.identitiesOnly === true) delete resolved.agent;
  if (!fixed.knownHostsFile && found.userKnownHostsFile !== undefined) {
    resolved.knownHostsFile = expand('UserKnownHostsFile', found.userKnownHostsFile);
  }
  if (found.strictHostKeyChecking !== undefined) {
    const acceptNew = found.strictHostKeyChecking === 'accept-new' || found.strictHostKeyChecking === 'no';
    resolved.acceptNewHostKeys = fixed.acceptNewHostKeys || acceptNew;
  }
  delete resolved.jump;
  if (found.proxyCommand !== undefined && found.proxyJump === undefined) {
    // Connecting directly instead would go around the bastion the operator set up.
    throw where('ProxyCommand', new Error('sshfix does not run ProxyCommand; use ProxyJump'));
  }
  if (found.proxyJump !== undefined && found.proxyJump !== 'none') {
    // Jump hosts decide IdentitiesOnly for themselves: they inherit the agent as it was.
    const inherited = { ...resolved, ...(spec.agent !== undefined ? { agent: spec.agent } : {}) };
    resolved.jump = jumpChain(found.proxyJump, inherited, config, fixed, env, chainNames);
  }
  return resolved;
}

/**
 * The hops to reach a target, outermost first. As with `ssh -J B1,B2`, only
 * the first hop's own ProxyJump is followed; B2 is reached through B1
 * whatever its own ProxyJump says.
 */
function jumpChain(
  hops: readonly JumpHop[],
  target: ConnectionSpec,
  config: SshConfigFile,
  fixed: FixedSettings,
  env: LocalEnvironment,
  chainNames: readonly string[],
): ConnectionSpec[] {
  const chain: ConnectionSpec[] = [];
  for (const [index, hop] of hops.entries()) {
    if (chainNames.includes(hop.host) || chainNames.length > MAX_JUMP_CHAIN) {
      throw new ConfigError([
        {
          severity: 'error',
          summary: `ssh_config ${config.file}: ProxyJump loop for host ${chainNames[0] ?? hop.host}: ${[...chainNames, hop.host].join(' -> ')}`,
        },
      ]);
    }
    const hopSpec = resolveHost(
      jumpBaseSpec(hop, target, env),
      config,
      {
        address: false,
        port: hop.port !== undefined,
        user: hop.user !== undefined,
        privateKeyFile: false,
        knownHostsFile: fixed.knownHostsFile,
        acceptNewHostKeys: fixed.acceptNewHostKeys,
      },
      env,
      [...chainNames, hop.host],
    );
    const throughFirst = index === 0 ? (hopSpec.jump ?? []) : [];
    delete hopSpec.jump;
    chain.push(...throughFirst, hopSpec);
  }
  return chain;
}

/** A jump host as written in ProxyJump, with what it inherits from its target. */
function jumpBaseSpec(hop: JumpHop, target: ConnectionSpec, env: LocalEnvironment): ConnectionSpec {
  const spec: ConnectionSpec = {
    hostName: hop.host,
    connection: 'ssh',
    address: hop.host,
    port: hop.port ?? DEFAULT_SSH_PORT,
    user: hop.user ?? env.localUser,
    become: false,
    knownHostsFile: target.knownHostsFile,
    acceptNewHostKeys: target.acceptNewHostKeys,
    connectTimeoutMs: target.connectTimeoutMs,
    commandTimeoutMs: target.commandTimeoutMs,
    keepaliveIntervalMs: target.keepaliveIntervalMs,
  };
  if (target.privateKeyFile !== undefined) spec.privateKeyFile = target.privateKeyFile;
  if (target.agent !== undefined) spec.agent = target.agent;
  if (target.localAddress !== undefined) spec.localAddress = target.localAddress;
  return spec;
}
