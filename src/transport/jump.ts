/**
 * Connections through jump hosts (ssh_config ProxyJump): the jump host opens a
 * `direct-tcpip` channel to the next hop, and that channel is the socket of
 * the next SSH client. Every hop's host key is checked against known_hosts
 * like a direct connection.
 *
 * One connection to a jump host serves every target behind it, and at most
 * MAX_FORWARDED_HANDSHAKES_PER_JUMP handshakes run through it at once. A
 * controller opening a connection per target through one bastion is what
 * trips the bastion's MaxStartups and produces "Connection reset by peer"
 * (ansible/ansible#17349): sshfix must not cause the error it exists to fix.
 */

import type { Duplex } from 'node:stream';
import { connectSsh, openSshClient } from './ssh.js';
import { Slots } from './slots.js';
import type { SshClient } from './ssh.js';
import { HostKeyError, UnreachableError } from './types.js';
import type { Connection, ConnectionSpec } from './types.js';
import { errorMessage } from '../errors.js';

/**
 * Below the start value of OpenSSH's default MaxStartups (10:30:100), so that
 * our handshakes alone never make a host behind the jump drop connections,
 * with room for another client's.
 */
export const MAX_FORWARDED_HANDSHAKES_PER_JUMP = 8;

/** Where forwarded channels say they come from (as `ssh -W` does). */
const FORWARD_ORIGIN_ADDRESS = '127.0.0.1';
const FORWARD_ORIGIN_PORT = 0;

/** One open (or opening) connection to a jump host, shared by all leases on it. */
interface JumpEntry {
  key: string;
  spec: ConnectionSpec;
  client: Promise<SshClient>;
  /** Leases holding this entry; the connection closes when the last one goes. */
  users: number;
  /** Forwarded handshakes through this jump host. */
  handshakes: Slots;
  handshakesNow: number;
}

/** Counters for tests and diagnostics. */
export interface JumpPoolStats {
  /** Connections opened to jump hosts. */
  jumpConnectionsOpened: number;
  /** The most forwarded handshakes that ran at once through any one jump host. */
  peakHandshakesPerJump: number;
}

/** A stream to `address:port` opened through jump hosts; release() when done with it. */
export interface ForwardedStream {
  stream: Duplex;
  release(): void;
}

export class JumpPool {
  private readonly entries = new Map<string, JumpEntry>();
  readonly stats: JumpPoolStats = { jumpConnectionsOpened: 0, peakHandshakesPerJump: 0 };

  constructor(private readonly handshakesPerJump: number = MAX_FORWARDED_HANDSHAKES_PER_JUMP) {}

  /** Connections to jump hosts open (or opening) now. */
  get openJumpConnections(): number {
    return this.entries.size;
  }

  /** Opens an SSH connection to `spec` through `spec.jump`; closing it lets go of the jump hosts. */
  async connect(spec: ConnectionSpec): Promise<Connection> {
    const chain = spec.jump ?? [];
    if (chain.length === 0) return connectSsh(spec);
    const held = await this.acquireChain(spec, chain);
    const last = held[held.length - 1]!;
    try {
      return await this.throughJump(last, spec.address, spec.port, async (stream) => {
        // Whatever ends the target's connection closes its channel: that lets go of the jump hosts.
        stream.once('close', () => this.releaseChain(held));
        try {
          return await connectSsh(spec, stream);
        } catch (error) {
          stream.destroy();
          throw error;
        }
      });
    } catch (error) {
      this.releaseChain(held);
      throw throughJumpError(spec, last.spec, error);
    }
  }

  /**
   * A raw stream to `address:port` through the jump hosts `chain` (outermost
   * first), for probes that speak to a port themselves (reading an SSH banner).
   */
  async openStream(
    chain: readonly ConnectionSpec[],
    forHost: string,
    address: string,
    port: number,
  ): Promise<ForwardedStream> {
    const target = { hostName: forHost, address, port };
    if (chain.length === 0) throw new Error(`${forHost}: openStream needs at least one jump host`);
    const held = await this.acquireChain(target, chain);
    const last = held[held.length - 1]!;
    try {
      const stream = await this.throughJump(last, address, port, (opened) => Promise.resolve(opened));
      stream.once('close', () => this.releaseChain(held));
      return { stream, release: () => stream.destroy() };
    } catch (error) {
      this.releaseChain(held);
      throw throughJumpError(target, last.spec, error);
    }
  }

  /** Takes (or opens) a connection to every hop, outermost first. */
  private async acquireChain(
    target: Pick<ConnectionSpec, 'hostName' | 'address' | 'port'>,
    chain: readonly ConnectionSpec[],
  ): Promise<JumpEntry[]> {
    const held: JumpEntry[] = [];
    let key = '';
    try {
      for (const hop of chain) {
        key = `${key}${key === '' ? '' : ' > '}${hop.user}@${hop.address}:${hop.port}`;
        const entry = this.entries.get(key) ?? this.open(key, hop, held[held.length - 1]);
        entry.users++;
        held.push(entry);
        await entry.client;
      }
      return held;
    } catch (error) {
      const failedHop = held[held.length - 1]?.spec ?? chain[0];
      this.releaseChain(held);
      throw failedHop === undefined ? error : jumpHostError(target, failedHop, error);
    }
  }

  private open(key: string, spec: ConnectionSpec, through: JumpEntry | undefined): JumpEntry {
    const connectHop = async (): Promise<SshClient> => {
      if (through === undefined) return openSshClient(spec);
      return this.throughJump(through, spec.address, spec.port, async (stream) => {
        try {
          return await openSshClient(spec, stream);
        } catch (error) {
          stream.destroy();
          throw error;
        }
      });
    };
    const entry: JumpEntry = {
      key,
      spec,
      client: connectHop(),
      users: 0,
      handshakes: new Slots(this.handshakesPerJump),
      handshakesNow: 0,
    };
    this.entries.set(key, entry);
    this.stats.jumpConnectionsOpened++;
    entry.client.then(
      (client) => {
        client.on('close', () => this.forget(entry));
      },
      () => this.forget(entry),
    );
    return entry;
  }

  /** Drops a closed or failed connection from the pool, so the next lease opens a fresh one. */
  private forget(entry: JumpEntry): void {
    if (this.entries.get(entry.key) === entry) this.entries.delete(entry.key);
  }

  /**
   * Opens a channel from the jump host to `address:port` and runs `handshake`
   * over it while holding one of the jump host's handshake slots.
   */
  private async throughJump<T>(
    jump: JumpEntry,
    address: string,
    port: number,
    handshake: (stream: Duplex) => Promise<T>,
  ): Promise<T> {
    const client = await jump.client;
    await jump.handshakes.acquire();
    jump.handshakesNow++;
    this.stats.peakHandshakesPerJump = Math.max(this.stats.peakHandshakesPerJump, jump.handshakesNow);
    try {
      const stream = await forwardOut(client, jump.spec, address, port);
      return await handshake(stream);
    } finally {
      jump.handshakesNow--;
      jump.handshakes.release();
    }
  }

  /** Lets go of the hops, innermost first; a hop nobody uses any more is disconnected. */
  private releaseChain(held: JumpEntry[]): void {
    for (const entry of held.splice(0).reverse()) {
      entry.users--;
      if (entry.users > 0) continue;
      this.forget(entry);
      entry.client.then(
        (client) => client.end(),
        () => undefined,
      );
    }
  }
}

/** Asks the jump host for a `direct-tcpip` channel to `address:port`, within the connect time limit. */
function forwardOut(client: SshClient, jump: ConnectionSpec, address: string, port: number): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      reject(
        new Error(
          `jump host ${jump.hostName} did not connect to ${address}:${port} within ${jump.connectTimeoutMs} ms`,
        ),
      );
    }, jump.connectTimeoutMs);
    const opened = (error: Error | undefined, channel: Duplex | undefined): void => {
      if (settled) {
        // Too late: the caller gave up; do not leave the channel open on the jump host.
        channel?.destroy();
        return;
      }
      settled = true;
      clearTimeout(timer);
      if (error !== undefined || channel === undefined) {
        const reason = error?.message ?? 'no channel';
        reject(new Error(`jump host ${jump.hostName} could not connect to ${address}:${port}: ${reason}`));
        return;
      }
      // Errors surface as the SSH client's own (it reads this stream); keep Node from crashing meanwhile.
      channel.on('error', () => undefined);
      resolve(channel);
    };
    try {
      client.forwardOut(FORWARD_ORIGIN_ADDRESS, FORWARD_ORIGIN_PORT, address, port, (error, channel) =>
        opened(error, channel),
      );
    } catch (error) {
      // ssh2 throws when the jump connection is already gone.
      opened(new Error(`lost the connection: ${errorMessage(error)}`), undefined);
    }
  });
}

/** A failure to reach a jump host, reported on the target (a host key problem stays one). */
function jumpHostError(
  target: Pick<ConnectionSpec, 'hostName' | 'address' | 'port'>,
  jump: ConnectionSpec,
  error: unknown,
): UnreachableError {
  const message = `cannot reach ${target.hostName} (${target.address}:${target.port}) through jump host ${jump.hostName}: ${errorMessage(error)}`;
  return error instanceof HostKeyError
    ? new HostKeyError(target.hostName, message)
    : new UnreachableError(target.hostName, message);
}

/** A failure past the jump hosts: the target's own error, saying which jump it went through. */
function throughJumpError(
  target: Pick<ConnectionSpec, 'hostName' | 'address' | 'port'>,
  jump: ConnectionSpec,
  error: unknown,
): unknown {
  if (error instanceof HostKeyError)
    return new HostKeyError(target.hostName, `${error.message} (through jump host ${jump.hostName})`);
  if (error instanceof UnreachableError)
    return new UnreachableError(target.hostName, `${error.message} (through jump host ${jump.hostName})`);
  return jumpHostError(target, jump, error);
}

/** The pool every connection of this process shares. */
export const jumpPool = new JumpPool();

/** Opens an SSH connection honouring `spec.jump` (directly when it has none). */
export function connectThroughJumps(spec: ConnectionSpec): Promise<Connection> {
  return jumpPool.connect(spec);
}

/** A raw stream to `address:port` through `chain` (e.g. `sshfix diagnose --via JUMPHOST`). */
export function openForwardedStream(
  chain: readonly ConnectionSpec[],
  forHost: string,
  address: string,
  port: number,
): Promise<ForwardedStream> {
  return jumpPool.openStream(chain, forHost, address, port);
}
