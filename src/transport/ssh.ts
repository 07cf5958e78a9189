/**
 * Connection over SSH (ssh2): one client per host for the whole run, host keys
 * checked against known_hosts before authentication, scripts on the stdin of
 * `sh -s`, at most MaxSessions channels at a time.
 */

import { readFile } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import type {
  AnyAuthMethod,
  AuthHandlerMiddleware,
  AuthenticationType,
  ClientChannel,
  ClientErrorExtensions,
  ParsedKey,
  ConnectConfig,
  ServerHostKeyAlgorithm,
} from 'ssh2';
import {
  appendKnownHost,
  checkHostKey,
  fingerprintSha256,
  formatKnownHostsLine,
  keyTypeOfBlob,
  knownHostEntriesFor,
  knownKeyTypes,
  readKnownHostsFile,
  KnownHostsIndex,
} from './known_hosts.js';
import type { KnownHostEntry } from './known_hosts.js';
import { scriptShell, splitScriptPid } from './shell.js';
import type { ScriptShell } from './shell.js';
import { CommandTimeoutError, HandshakeTimeoutError, HostKeyError, UnreachableError } from './types.js';
import type { Connection, ConnectionSpec, ExecResult, RunOptions } from './types.js';
import { errorMessage } from '../errors.js';
import { cachedFileParse } from './file_cache.js';
import { defaultIdentityFiles } from './identities.js';
import { skipHostKeyProof } from './host_keys_notice.js';
import { Slots, SlotWaitAborted, SlotWaitTimeout } from './slots.js';
import { handshakeWindow, type HandshakeTicket } from './handshakes.js';

const { Client, utils } = ssh2;
export type SshClient = InstanceType<typeof Client>;
type SshError = Error & Partial<ClientErrorExtensions> & { code?: string };

/** OpenSSH's default MaxSessions: the 11th concurrent channel on one connection is refused. */
export const MAX_SESSIONS_PER_CONNECTION = 10;

/** Unanswered keepalives before the connection counts as dead (OpenSSH's ServerAliveCountMax default). */
const KEEPALIVE_COUNT_MAX = 3;

/**
 * Delay before opening again after a refused open while none of our channels
 * is open (so no close of ours will say when a session is free): 20, 40, 80…
 * up to 1 s.
 */
function idleRefusalDelayMs(refusals: number): number {
  return Math.min(20 * 2 ** Math.max(0, refusals - 1), 1000);
}

/** Time limit for stopping a timed-out script from a second session. */
const STOP_SCRIPT_TIMEOUT_MS = 10000;

/** How long close() waits for the server to acknowledge the disconnect before dropping the socket. */
const CLOSE_GRACE_MS = 2000;

/** ssh2's default host key algorithm order, strongest first. */
const DEFAULT_HOST_KEY_ALGORITHMS: readonly ServerHostKeyAlgorithm[] = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
];

/** Host key algorithms that prove possession of a key of each known_hosts key type. */
const ALGORITHMS_FOR_KEY_TYPE: Readonly<Record<string, readonly ServerHostKeyAlgorithm[]>> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
  'ssh-dss': ['ssh-dss'],
};

/**
 * Host key algorithms in the order to offer them: those matching key types
 * already in known_hosts first (as OpenSSH does), so a server with several
 * host keys presents the one we know instead of tripping the mismatch check.
 */
export function hostKeyAlgorithmOrder(knownTypes: readonly string[]): ServerHostKeyAlgorithm[] {
  const preferred = knownTypes.flatMap((type) => ALGORITHMS_FOR_KEY_TYPE[type] ?? []);
  return [...new Set([...preferred, ...DEFAULT_HOST_KEY_ALGORITHMS])];
}

/**
 * Opens and authenticates an SSH connection; rejects with UnreachableError (or
 * HostKeyError). `sock` is a stream already connected to the host's port (a
 * channel forwarded by a jump host); a spec with jump hosts needs one, and
 * openConnection (connect.ts) provides it.
 */
export async function connectSsh(spec: ConnectionSpec, sock?: Duplex): Promise<Connection> {
  if (sock === undefined && spec.jump !== undefined && spec.jump.length > 0) {
    // Connecting directly would silently bypass the jump hosts the operator asked for.
    throw new Error(`${spec.hostName}: a connection through jump hosts must be opened with openConnection`);
  }
  const shell = scriptShell({
    become: spec.become,
    becomePassword: spec.becomePassword,
    loginIsRoot: spec.user === 'root',
    reportPid: true,
  });
  const client = new Client();
  const connection = new SshConnection(client, spec, shell);
  connection.authMethod = await establish(client, spec, sock, () => connection.close());
  return connection;
}

/**
 * An authenticated ssh2 client with no shell of its own, for a jump host:
 * the same host key checks and credentials as connectSsh. The caller owns it
 * (end() it); its 'error' events are already handled.
 */
export async function openSshClient(spec: ConnectionSpec, sock?: Duplex): Promise<SshClient> {
  const client = new Client();
  // An 'error' event without a listener crashes Node; the owner watches 'close'.
  client.on('error', () => undefined);
  await establish(client, spec, sock, () => {
    client.destroy();
    return Promise.resolve();
  });
  return client;
}

/** Handshake, host key check and authentication; records a host key accepted as new. */
async function establish(
  client: SshClient,
  spec: ConnectionSpec,
  sock: Duplex | undefined,
  closeOnFailure: () => Promise<void>,
): Promise<AuthMethodUsed> {
  const knownHosts = await loadKnownHosts(spec);
  const authMethods = await buildAuthMethods(spec);
  const verifier = new HostKeyVerifier(spec, knownHosts);
  const authMethod = await handshake(client, spec, verifier, authMethods, sock);
  const newHostLine = verifier.lineToRecord();
  if (newHostLine !== null) {
    try {
      await appendKnownHost(spec.knownHostsFile, newHostLine);
    } catch (error) {
      await closeOnFailure();
      throw new HostKeyError(
        spec.hostName,
        `cannot record the new host key for ${where(spec)} in ${spec.knownHostsFile}: ${errorMessage(error)}`,
      );
    }
  }
  return authMethod;
}

function where(spec: ConnectionSpec): string {
  return `${spec.hostName} (${spec.address}:${spec.port})`;
}

async function loadKnownHosts(spec: ConnectionSpec): Promise<KnownHostEntry[]> {
  try {
    const index = await cachedFileParse(
      'known-hosts',
      spec.knownHostsFile,
      async (file) => new KnownHostsIndex(await readKnownHostsFile(file)),
    );
    return index.candidatesFor(spec.address, spec.port);
  } catch (error) {
    // Fail closed: without the file we cannot tell a known host from an attacker.
    throw new HostKeyError(spec.hostName, `refusing to connect to ${where(spec)}: ${errorMessage(error)}`);
  }
}

/** Checks the server's host key during key exchange, before any credential is sent. */
class HostKeyVerifier {
  /** Why the key was refused; reported instead of ssh2's generic handshake error. */
  failure: HostKeyError | null = null;
  private acceptedNewKey: { keyType: string; keyBase64: string } | null = null;

  constructor(
    private readonly spec: ConnectionSpec,
    private readonly entries: readonly KnownHostEntry[],
  ) {}

  get algorithms(): ServerHostKeyAlgorithm[] {
    return hostKeyAlgorithmOrder(knownKeyTypes(this.entries, this.spec.address, this.spec.port));
  }

  /** ssh2 hostVerifier: true lets the handshake go on. */
  verify(keyBlob: Buffer): boolean {
    const { spec } = this;
    const keyType = keyTypeOfBlob(keyBlob) ?? 'unknown-key-type';
    const keyBase64 = keyBlob.toString('base64');
    const shown = `${keyType} ${fingerprintSha256(keyBase64)}`;
    const status = checkHostKey(this.entries, spec.address, spec.port, keyType, keyBase64);
    switch (status) {
      case 'match':
        return true;
      case 'unknown':
        if (spec.acceptNewHostKeys) {
          this.acceptedNewKey = { keyType, keyBase64 };
          return true;
        }
        return this.refuse(
          `host key for ${where(spec)} is not in known_hosts ${spec.knownHostsFile} (${shown}); ` +
            'add it after checking the fingerprint, or allow accept-new',
        );
      case 'mismatch': {
        const lines = knownHostEntriesFor(this.entries, spec.address, spec.port).map((entry) => entry.line);
        return this.refuse(
          `host key for ${where(spec)} does not match known_hosts (${shown}); ` +
            `known keys: ${spec.knownHostsFile} line ${lines.join(', ')}`,
        );
      }
      case 'revoked':
        return this.refuse(
          `host key for ${where(spec)} is marked @revoked in known_hosts ${spec.knownHostsFile} (${shown})`,
        );
    }
  }

  /** The known_hosts line for a key accepted as new; recorded only once authentication succeeded. */
  lineToRecord(): string | null {
    if (this.acceptedNewKey === null) return null;
    const { keyType, keyBase64 } = this.acceptedNewKey;
    return formatKnownHostsLine(this.spec.address, this.spec.port, keyType, keyBase64);
  }

  private refuse(message: string): false {
    this.failure = new HostKeyError(this.spec.hostName, message);
    return false;
  }
}

interface AuthCandidate {
  method: AnyAuthMethod;
  /** The SSH method name the server lists in "methods that can continue". */
  protocolMethod: AuthenticationType;
  /** For messages: what was tried. */
  label: string;
}

/**
 * Credentials in OpenSSH's order: the configured key file, then the agent's
 * keys, then the password; with none of them configured, OpenSSH's default
 * identities (~/.ssh/id_rsa, id_ecdsa, id_ed25519) that exist. Each is offered only while the server still lists
 * its method, so a server that allows publickey only never sees the password
 * (and fail2ban does not count an attempt that was bound to fail).
 */
async function buildAuthMethods(spec: ConnectionSpec): Promise<AuthCandidate[]> {
  const username = spec.user;
  const candidates: AuthCandidate[] = [];
  if (spec.privateKeyFile !== undefined) {
    const key = await readPrivateKey(spec, spec.privateKeyFile);
    candidates.push({
      method: { type: 'publickey', username, key },
      protocolMethod: 'publickey',
      label: `key ${spec.privateKeyFile}`,
    });
  }
  if (spec.agent !== undefined && spec.agent !== '') {
    candidates.push({
      method: { type: 'agent', username, agent: spec.agent },
      protocolMethod: 'publickey',
      label: 'ssh-agent',
    });
  }
  if (spec.password !== undefined) {
    candidates.push({
      method: { type: 'password', username, password: spec.password },
      protocolMethod: 'password',
      label: 'password',
    });
  }
  if (candidates.length === 0) {
    // Nothing configured: as ssh does, the default identities that exist and can be used.
    const defaults = defaultIdentityFiles();
    for (const file of defaults) {
      const parsed = await cachedFileParse('private-key', file, parsePrivateKeyFile);
      if (!('key' in parsed)) continue;
      candidates.push({
        method: { type: 'publickey', username, key: parsed.key },
        protocolMethod: 'publickey',
        label: `key ${file}`,
      });
    }
    if (candidates.length === 0) {
      const tried = defaults.length > 0 ? ` (none of ${defaults.join(', ')} is usable)` : '';
      throw new UnreachableError(
        spec.hostName,
        `cannot log in to ${where(spec)}: no private key file, ssh-agent, password or default identity${tried}`,
      );
    }
  }
  return candidates;
}

type ParsedPrivateKey = ParsedKey;

/** The key parsed, or why it cannot be used (each connection reports it with its own host name). */
async function parsePrivateKeyFile(file: string): Promise<{ key: ParsedPrivateKey } | { problem: string }> {
  let data: Buffer;
  try {
    data = await readFile(file);
  } catch (error) {
    return { problem: `cannot read private key ${file}: ${errorMessage(error)}` };
  }
  const parsed = utils.parseKey(data);
  // Checked by shape: ssh2's Error may come from another realm than ours.
  if (!('type' in parsed) && 'message' in parsed) {
    if (/passphrase/i.test(parsed.message)) {
      return {
        problem:
          `private key ${file} is protected by a passphrase, which sshfix does not support yet; ` +
          'load it into ssh-agent (ssh-add) and use the agent instead',
      };
    }
    return { problem: `cannot use private key ${file}: ${parsed.message}` };
  }
  return { key: parsed as ParsedKey };
}

/** Parsed once per run (per version of the file), handed to ssh2 parsed: it would parse it again per host. */
async function readPrivateKey(spec: ConnectionSpec, file: string): Promise<ParsedPrivateKey> {
  const result = await cachedFileParse('private-key', file, parsePrivateKeyFile);
  if ('problem' in result) throw new UnreachableError(spec.hostName, result.problem);
  return result.key;
}

/** How a connection authenticated: the method of the last credential offered before success. */
type AuthMethodUsed = Connection['authMethod'];

function authHandler(
  candidates: readonly AuthCandidate[],
  offered: { method?: AuthenticationType },
): AuthHandlerMiddleware {
  let next = 0;
  // ssh2 passes null before the first attempt, then the methods the server still accepts.
  const handler = (methodsLeft: AuthenticationType[] | null): AnyAuthMethod | false => {
    while (next < candidates.length) {
      const candidate = candidates[next++];
      if (candidate && (methodsLeft === null || methodsLeft.includes(candidate.protocolMethod))) {
        offered.method = candidate.protocolMethod;
        return candidate.method;
      }
    }
    return false;
  };
  // Returning false (no more methods) is part of ssh2's contract but not of its typings.
  return handler as unknown as AuthHandlerMiddleware;
}

/**
 * Waits for a handshake slot (handshakes.ts): the connect time limit counts
 * from when the handshake starts, not from when the host was queued. An
 * urgent handshake waits at most until its deadline.
 */
async function handshakeSlot(
  spec: ConnectionSpec,
): Promise<{ ticket: HandshakeTicket; timeLimitMs: number }> {
  const notAfterMs = spec.urgent?.notAfterMs;
  const timeLimit = (): number =>
    notAfterMs === undefined
      ? spec.connectTimeoutMs
      : Math.min(spec.connectTimeoutMs, notAfterMs - Date.now());
  try {
    const ticket = await handshakeWindow.acquire({
      timeLimitMs: timeLimit(),
      ...(spec.urgent ? { urgent: true } : {}),
      ...(notAfterMs !== undefined ? { waitMs: notAfterMs - Date.now() } : {}),
      ...(spec.abort !== undefined ? { abort: spec.abort } : {}),
    });
    const timeLimitMs = timeLimit();
    if (timeLimitMs > 0) return { ticket, timeLimitMs };
    ticket.finish({ kind: 'failed' });
    throw new SlotWaitTimeout(0);
  } catch (error) {
    if (error instanceof SlotWaitAborted)
      throw new UnreachableError(
        spec.hostName,
        `gave up connecting to ${where(spec)}: the run was interrupted`,
      );
    if (error instanceof SlotWaitTimeout)
      throw new HandshakeTimeoutError(
        spec.hostName,
        `cannot reach ${where(spec)}: no SSH handshake could start before its deadline ` +
          `(${handshakeWindow.inFlight} handshake(s) in flight on a busy controller)`,
      );
    throw error;
  }
}

/** Connects and authenticates; every failure becomes an UnreachableError with a one-line reason. */
async function handshake(
  client: SshClient,
  spec: ConnectionSpec,
  verifier: HostKeyVerifier,
  candidates: readonly AuthCandidate[],
  sock: Duplex | undefined,
): Promise<AuthMethodUsed> {
  const { ticket, timeLimitMs } = await handshakeSlot(spec);
  const startedAt = Date.now();
  try {
    const method = await handshakeWithin(client, spec, verifier, candidates, sock, timeLimitMs);
    ticket.finish({ kind: 'completed', tookMs: Date.now() - startedAt });
    return method;
  } catch (error) {
    ticket.finish(error instanceof HandshakeTimeoutError ? { kind: 'timed-out' } : { kind: 'failed' });
    throw error;
  }
}

function handshakeWithin(
  client: SshClient,
  spec: ConnectionSpec,
  verifier: HostKeyVerifier,
  candidates: readonly AuthCandidate[],
  sock: Duplex | undefined,
  timeLimitMs: number,
): Promise<AuthMethodUsed> {
  const offered: { method?: AuthenticationType } = {};
  const config: ConnectConfig = {
    host: spec.address,
    port: spec.port,
    username: spec.user,
    readyTimeout: timeLimitMs,
    keepaliveInterval: spec.keepaliveIntervalMs,
    keepaliveCountMax: KEEPALIVE_COUNT_MAX,
    algorithms: { serverHostKey: verifier.algorithms },
    hostVerifier: (key: Buffer) => verifier.verify(key),
    authHandler: authHandler(candidates, offered),
    ...(sock !== undefined ? { sock } : {}),
    ...(sock === undefined && spec.localAddress !== undefined ? { localAddress: spec.localAddress } : {}),
  };
  const tried = candidates.map((candidate) => candidate.label).join(', ');
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (error: UnreachableError): void => {
      if (settled) return;
      settled = true;
      spec.abort?.removeEventListener('abort', abandon);
      client.destroy();
      reject(error);
    };
    const abandon = (): void =>
      fail(
        new UnreachableError(spec.hostName, `gave up connecting to ${where(spec)}: the run was interrupted`),
      );
    spec.abort?.addEventListener('abort', abandon, { once: true });
    // Checked before building an error: every connection closes, and an Error captures a stack.
    client.on('error', (error: SshError) => {
      if (settled) return;
      if (verifier.failure) return fail(verifier.failure);
      const message = connectFailure({ ...spec, connectTimeoutMs: timeLimitMs }, error, tried);
      fail(
        error.level === 'client-timeout'
          ? new HandshakeTimeoutError(spec.hostName, message)
          : new UnreachableError(spec.hostName, message, error.code ?? undefined),
      );
    });
    client.on('close', () => {
      if (settled) return;
      fail(
        verifier.failure ??
          new UnreachableError(
            spec.hostName,
            `cannot reach ${where(spec)}: connection closed during the handshake`,
          ),
      );
    });
    // Nagle's algorithm delays small packets by up to 40 ms; scripts are many small round trips.
    client.on('connect', () => client.setNoDelay(true));
    // After the host key was accepted (hostVerifier runs before the key exchange completes).
    const onKeyExchange = spec.onKeyExchange;
    if (onKeyExchange !== undefined) client.once('handshake', () => onKeyExchange());
    client.on('ready', () => {
      spec.abort?.removeEventListener('abort', abandon);
      settled = true;
      const method = offered.method;
      resolve(
        method === 'publickey' || method === 'password' || method === 'keyboard-interactive'
          ? method
          : undefined,
      );
    });
    if (spec.abort?.aborted) return abandon();
    client.connect(config);
    skipHostKeyProof(client);
  });
}

/** One line saying why a connection attempt failed. */
export function connectFailure(spec: ConnectionSpec, error: SshError, triedAuth: string): string {
  const prefix = `cannot reach ${where(spec)}: `;
  if (error.level === 'client-authentication') {
    return `${prefix}authentication as ${spec.user} failed (tried ${triedAuth})`;
  }
  if (error.level === 'client-timeout') {
    return `${prefix}no SSH handshake within ${spec.connectTimeoutMs} ms (a firewall dropping packets, or an overloaded host)`;
  }
  switch (error.code) {
    case 'ECONNREFUSED':
      return `${prefix}connection refused (no sshd listening on port ${spec.port}, or a firewall rejecting it)`;
    case 'ECONNRESET':
      return `${prefix}connection reset by peer (TCP wrappers, MaxStartups or a firewall may be refusing this client)`;
    case 'EHOSTUNREACH':
      return `${prefix}no route to host`;
    case 'ENETUNREACH':
      return `${prefix}network unreachable`;
    case 'ETIMEDOUT':
      return `${prefix}TCP connection timed out`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `${prefix}cannot resolve ${spec.address}`;
    case 'EADDRNOTAVAIL':
      return `${prefix}cannot bind the local address ${spec.localAddress ?? '(default)'}`;
  }
  return `${prefix}${error.message.split('\n')[0] ?? error.message}`;
}

/** What a channel open came to. */
type OpenOutcome = { channel: ClientChannel } | { refused: Error };

class SshConnection implements Connection {
  readonly hostName: string;
  authMethod: AuthMethodUsed;
  /**
   * Sessions we may have open at once. Starts at OpenSSH's MaxSessions default
   * and follows what the host shows: a refused open lowers it to the sessions
   * of ours open at that moment, and a run of opens that all succeed raises it
   * by one, back up to the default (a host may set MaxSessions lower, and sshd
   * refuses an open that arrives before it has freed a session we just closed).
   */
  private readonly sessions = new Slots(MAX_SESSIONS_PER_CONNECTION);
  private opensSinceRefusal = 0;
  /** Rejecters of the scripts running now, called when the connection drops. */
  private readonly running = new Set<(error: UnreachableError) => void>();
  private lastError: SshError | null = null;
  /** Channels of ours the server has open now. */
  private openChannels = 0;
  /** Set once the connection is gone; every later runScript rejects with it. */
  private lost: UnreachableError | null = null;
  private closedByUs = false;

  constructor(
    private readonly client: SshClient,
    private readonly spec: ConnectionSpec,
    private readonly shell: ScriptShell,
  ) {
    this.hostName = spec.hostName;
    // An 'error' event without a listener crashes Node: always keep one.
    client.on('error', (error: SshError) => {
      this.lastError = error;
    });
    client.on('close', () => this.onClosed());
  }

  /**
   * Waits for a session (at most the time limit), then runs the script (again
   * at most the time limit): no script waits or runs unbounded.
   */
  async runScript(script: string, options: RunOptions = {}): Promise<ExecResult> {
    const timeoutMs = options.timeoutMs ?? this.spec.commandTimeoutMs;
    if (this.lost) throw this.lost;
    const channel = await this.openSession(timeoutMs);
    return this.runOnChannel(channel, script, timeoutMs);
  }

  close(): Promise<void> {
    if (this.lost) return Promise.resolve();
    this.closedByUs = true;
    return new Promise((resolve) => {
      const drop = setTimeout(() => this.client.destroy(), CLOSE_GRACE_MS);
      this.client.once('close', () => {
        clearTimeout(drop);
        resolve();
      });
      this.client.end();
    });
  }

  /**
   * Opens a session channel, holding one of `sessions` until it closes. A
   * refused open gives its slot back and waits at the head of the line for a
   * real free one: the close of one of our channels, or, when none of ours is
   * open (nothing will close), a growing delay. Every wait ends at `waitMs`.
   */
  private async openSession(waitMs: number): Promise<ClientChannel> {
    const deadline = Date.now() + waitMs;
    let refusals = 0;
    let lastRefusal: Error | null = null;
    const timedOut = (): CommandTimeoutError =>
      new CommandTimeoutError(
        this.hostName,
        waitMs,
        `no SSH session could be opened within ${waitMs} ms` +
          (lastRefusal
            ? `: sshd refused ${refusals} session open(s) (${lastRefusal.message}; MaxSessions reached?)`
            : ` (${this.openChannels} of ours open)`),
      );
    for (;;) {
      try {
        await this.sessions.acquire({ first: refusals > 0, waitMs: Math.max(0, deadline - Date.now()) });
      } catch (error) {
        throw error instanceof SlotWaitTimeout ? timedOut() : error;
      }
      if (this.lost) {
        this.sessions.release();
        throw this.lost;
      }
      const outcome = await this.openChannel(deadline);
      if (outcome === null) throw timedOut();
      if ('channel' in outcome) {
        this.onOpened();
        return outcome.channel;
      }
      // openChannel gave the slot back already.
      refusals++;
      lastRefusal = outcome.refused;
      this.opensSinceRefusal = 0;
      if (this.openChannels > 0) {
        // The host holds as many of ours as it takes now; the next close frees one.
        this.sessions.setLimit(this.openChannels);
      } else {
        // sshd frees a session only once it has processed our close of it, so
        // an open right after a close can be refused with none of ours open.
        const pauseMs = Math.min(idleRefusalDelayMs(refusals), deadline - Date.now());
        if (pauseMs <= 0) throw timedOut();
        await new Promise((resolve) => setTimeout(resolve, pauseMs));
      }
      if (this.lost) throw this.lost;
    }
  }

  /** A run of successful opens as long as the limit raises it by one, up to the default. */
  private onOpened(): void {
    this.opensSinceRefusal++;
    const limit = this.sessions.limit;
    if (limit < MAX_SESSIONS_PER_CONNECTION && this.opensSinceRefusal >= limit) {
      this.opensSinceRefusal = 0;
      this.sessions.setLimit(limit + 1);
    }
  }

  /**
   * One channel open, the caller holding a slot. The slot is released when the
   * channel closes, or here when no channel came of it. Resolves null when the
   * deadline passed first (a channel that opens later is closed at once).
   */
  private openChannel(deadline: number): Promise<OpenOutcome | null> {
    return new Promise((resolve, reject) => {
      let abandoned = false;
      const timer = setTimeout(
        () => {
          abandoned = true;
          resolve(null);
        },
        Math.max(0, deadline - Date.now()),
      );
      const lostBeforeAnswer = (error: UnreachableError): void => {
        abandoned = true;
        clearTimeout(timer);
        reject(error);
      };
      this.running.add(lostBeforeAnswer);
      this.client.exec(this.shell.command, (error, opened) => {
        this.running.delete(lostBeforeAnswer);
        clearTimeout(timer);
        if (error) {
          this.sessions.release();
          if (abandoned) return;
          // ssh2 gives a refused open (CHANNEL_OPEN_FAILURE) its numeric reason code.
          if (typeof (error as Error & { reason?: unknown }).reason === 'number') resolve({ refused: error });
          else
            reject(this.lost ?? new Error(`${this.hostName}: cannot start a remote shell: ${error.message}`));
          return;
        }
        this.openChannels++;
        // Writing to a channel the server already closed (a script that exits
        // early) errors; the exit status tells the story, so just note it.
        opened.on('error', () => undefined);
        opened.once('close', () => {
          this.openChannels--;
          this.sessions.release();
        });
        if (abandoned) {
          stopChannel(opened);
          return;
        }
        resolve({ channel: opened });
      });
    });
  }

  /**
   * Runs one script on an open channel. At the time limit the script is
   * stopped (signal and close, then its process group killed from another
   * session) before the CommandTimeoutError is raised, so nothing of it runs on.
   */
  private runOnChannel(channel: ClientChannel, script: string, timeoutMs: number): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      let settled = false;
      let timedOut = false;
      const settle = (outcome: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.running.delete(onConnectionLost);
        outcome();
      };
      const onConnectionLost = (error: UnreachableError): void => settle(() => reject(error));
      this.running.add(onConnectionLost);
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      let exitCode: number | null = null;
      const timer = setTimeout(() => {
        timedOut = true;
        stopChannel(channel);
        const { pid } = splitScriptPid(Buffer.concat(stderr).toString('utf8'));
        const stopped = pid === null ? Promise.resolve() : this.stopRemoteScript(pid);
        void stopped.then(() => settle(() => reject(new CommandTimeoutError(this.hostName, timeoutMs))));
      }, timeoutMs);
      channel.on('data', (chunk: Buffer) => stdout.push(chunk));
      channel.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
      // 'exit' is optional in the protocol: the result is decided on 'close'.
      channel.on('exit', (code: number | null) => {
        exitCode = typeof code === 'number' ? code : null;
      });
      channel.on('close', () => {
        if (timedOut) return;
        settle(() =>
          resolve({
            stdout: Buffer.concat(stdout).toString('utf8'),
            stderr: splitScriptPid(Buffer.concat(stderr).toString('utf8')).stderr,
            exitCode,
          }),
        );
      });
      if (this.shell.stdinPrefix !== '') channel.write(this.shell.stdinPrefix);
      channel.end(script);
    });
  }

  /**
   * Ends a timed-out script's process group from a second session: sshd
   * ignores signal requests on root logins. Best effort, and bounded: the
   * connection may be gone too.
   */
  private async stopRemoteScript(pid: number): Promise<void> {
    // Field 5 of /proc/PID/stat is the process group: sshd makes each session
    // a group of its own, so this is the script's shell and what it started.
    // (`kill -- -N` is refused by dash; `kill -TERM -N` works in every sh.)
    const stop =
      `group=$(cut -d' ' -f5 /proc/${pid}/stat 2>/dev/null)\n` +
      `[ -n "$group" ] && [ "$group" -gt 1 ] && kill -TERM "-$group" 2>/dev/null\n` +
      `kill -TERM ${pid} 2>/dev/null\nexit 0\n`;
    try {
      await this.runScript(stop, { timeoutMs: STOP_SCRIPT_TIMEOUT_MS });
    } catch {
      // Nothing more can be done from here; the timeout is reported either way.
    }
  }

  private onClosed(): void {
    const reason = this.closedByUs
      ? `connection to ${where(this.spec)} was closed`
      : `lost the connection to ${where(this.spec)}${this.lastError ? `: ${this.lastError.message}` : ''}`;
    this.lost = new UnreachableError(this.hostName, reason);
    for (const reject of [...this.running]) reject(this.lost);
    this.sessions.refuseAll(this.lost);
  }
}

/** ssh2's channel internals that signalling needs (not in its public typings). */
interface ChannelInternals {
  outgoing?: { id?: number; state?: string };
  _client?: { _protocol?: { signal?: (channelId: number, signalName: string) => void } };
}

/** Ends a remote script early: TERM to its process group (sudo relays it), then close the channel. */
function stopChannel(channel: ClientChannel): void {
  // ssh2's channel.signal() sends nothing once our side sent EOF (it checks
  // `writable`), and every script ends its stdin. RFC 4254 6.9 allows a signal
  // until the channel closes, and sshd then kills the session's process group,
  // so the request goes out through the protocol object directly.
  const internals = channel as unknown as ChannelInternals;
  const channelId = internals.outgoing?.id;
  const protocol = internals._client?._protocol;
  try {
    const state = internals.outgoing?.state;
    if ((state === 'open' || state === 'eof') && channelId !== undefined && protocol?.signal) {
      protocol.signal(channelId, 'TERM');
    }
  } catch {
    // The channel may already be closing; closing it below is what matters.
  }
  channel.close();
}
