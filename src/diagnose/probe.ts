/**
 * The client-side probe: what a client sees of a host's SSH port without
 * logging in. Every step records what happened and how long it took, because
 * the timing is the evidence: a DROP shows as a connect time-out, TCP wrappers
 * reset the connection after libwrap's ~5 s pause, MaxStartups drops at once.
 *
 * Steps, each run only when the previous one got through:
 * DNS → TCP connect → SSH banner → key exchange → authentication (counting the
 * keys offered, against MaxAuthTries), then a bounded burst of concurrent
 * unauthenticated connections that reveals MaxStartups throttling.
 *
 * When the first connection gets no banner, two more measurements tell the
 * causes apart that look alike on the wire: a refused connect is repeated a
 * few times while the kernel's ICMP counter is watched (an ICMP answer is a
 * firewall REJECT, a reset may be a closed port: refusal.ts), and the connect
 * is repeated from a few of our other addresses (a banner there proves the
 * block is by source address: sources.ts).
 */
import dns from 'node:dns/promises';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import os from 'node:os';
import ssh2 from 'ssh2';
import type { AnyAuthMethod, AuthHandlerMiddleware, AuthenticationType } from 'ssh2';
import {
  checkHostKey,
  fingerprintSha256,
  keyTypeOfBlob,
  type KnownHostEntry,
} from '../transport/known_hosts.js';
import { errorMessage } from '../errors.js';
import { classifyRefusal, readInDestUnreachs, REFUSAL_ATTEMPTS, type RefusalEvidence } from './refusal.js';
import { alternateSources, sourceAddressToward } from './sources.js';
import { exclusiveWindow } from './icmp_window.js';

const { Client } = ssh2;

export interface ProbeTarget {
  /** Name or address as given; resolved first. */
  host: string;
  port: number;
  /** Bind probes to this local address (act as another workstation). */
  sourceAddress?: string;
}

export interface ProbeKey {
  /** For evidence lines, e.g. the key file's path. */
  label: string;
  /** Private key in a format ssh2 reads. */
  key: Buffer;
}

export interface AuthProbeOptions {
  user: string;
  /** Offered in this order, as ssh would offer its identities. */
  keys: ProbeKey[];
  /** Authentication is attempted only after the host key matched one of these (fail closed). */
  knownHosts: readonly KnownHostEntry[];
}

export interface BurstOptions {
  /** Concurrent connections opened at once. */
  connections: number;
  /** How long the whole burst may take before every socket is closed. */
  windowMs: number;
}

export interface ProbeOptions {
  connectTimeoutMs: number;
  /** How long to wait for the banner after the TCP connection is up; above libwrap's 5 s pause. */
  bannerTimeoutMs: number;
  auth?: AuthProbeOptions;
  /** Omitted: no burst. */
  burst?: BurstOptions;
  /** Local addresses the connect is repeated from when it gets no banner, besides our others in the target's subnet. */
  alsoFrom?: readonly string[];
}

/** Below stock sshd's MaxStartups start (10), so a healthy host drops none of them. */
export const DEFAULT_BURST: BurstOptions = { connections: 8, windowMs: 4000 };
/** The upper bounds of the burst, whatever the caller asks: it must never become a flood. */
export const MAX_BURST_CONNECTIONS = 30;
export const MAX_BURST_WINDOW_MS = 10_000;
/** Time for sshd to stop counting a connection we closed against MaxStartups (its child exits at once). */
export const OWN_CONNECTION_SETTLE_MS = 500;

export interface DnsEvidence {
  addresses: string[];
  ms: number;
  error?: string;
}

export type TcpOutcome = 'connected' | 'timeout' | 'refused' | 'unreachable' | 'error';

export interface TcpEvidence {
  outcome: TcpOutcome;
  ms: number;
  /** errno code such as ECONNREFUSED, EHOSTUNREACH. */
  code?: string;
  /** Our side of the connection: the client address the server sees. */
  localAddress?: string;
  /** For a refused connect: whether an ICMP error or a TCP reset refused it. */
  refusal?: RefusalEvidence;
}

export type BannerOutcome = 'banner' | 'reset' | 'closed' | 'timeout';

export interface BannerEvidence {
  outcome: BannerOutcome;
  /** From TCP connected to banner (or to reset/close/time-out). */
  ms: number;
  banner?: string;
  /**
   * What the server wrote before it closed without an identification string: OpenSSH >= 9.8 writes
   * "Not allowed at this time" to a connection its listener drops (MaxStartups, PerSourcePenalties).
   */
  preamble?: string;
}

export interface KexEvidence {
  outcome: 'ok' | 'failed' | 'host_key_unknown' | 'host_key_mismatch';
  ms: number;
  hostKey?: string;
  error?: string;
}

export type AuthOutcome = 'accepted' | 'rejected' | 'too_many_failures' | 'disconnected' | 'error';

export interface AuthEvidence {
  outcome: AuthOutcome;
  /** Keys offered before the outcome (the accepted one included). */
  keysOffered: number;
  keysAvailable: number;
  error?: string;
}

export interface BurstEvidence {
  connections: number;
  banners: number;
  resets: number;
  closedBeforeBanner: number;
  timeouts: number;
  refused: number;
  ms: number;
}

export interface ProbeEvidence {
  target: ProbeTarget;
  dns: DnsEvidence;
  /** The address probed (the first one DNS returned). */
  address?: string;
  tcp?: TcpEvidence;
  banner?: BannerEvidence;
  kex?: KexEvidence;
  auth?: AuthEvidence;
  burst?: BurstEvidence;
  /** The connect repeated from other local addresses, when the first one got no banner. */
  alternates?: SourceAttempt[];
  /** The first connect, when sshd closed it before the banner and it was repeated (tcp and banner are the repeat's). */
  closedFirst?: BannerEvidence;
}

const now = (): number => performance.now();
const elapsed = (since: number): number => Math.round(now() - since);

export async function resolveTarget(host: string): Promise<DnsEvidence> {
  const start = now();
  if (net.isIP(host) !== 0) return { addresses: [host], ms: 0 };
  try {
    const found = await dns.lookup(host, { all: true, verbatim: true });
    return { addresses: found.map((a) => a.address), ms: elapsed(start) };
  } catch (error) {
    return { addresses: [], ms: elapsed(start), error: errorMessage(error) };
  }
}

/** What happened on one raw TCP connection: connect, then wait for the banner without sending anything. */
export interface RawAttempt {
  tcp: TcpEvidence;
  banner?: BannerEvidence;
  /**
   * With `keep`, the connection that got the banner, paused, with what it read put back: an SSH
   * client can go on with it (a login on it spares sshd a connection that never logs in).
   */
  socket?: Duplex;
}

export interface SourceAttempt extends RawAttempt {
  /** The local address the attempt was bound to. */
  source: string;
}

function tcpOutcomeOf(code: string | undefined): TcpOutcome {
  switch (code) {
    case 'ECONNREFUSED':
      return 'refused';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EHOSTDOWN':
      return 'unreachable';
    case 'ETIMEDOUT':
      return 'timeout';
    default:
      return 'error';
  }
}

/**
 * One TCP connection that waits for the server's identification string. The
 * client sends nothing: what the server (or a firewall) does to an idle new
 * connection is the evidence. `hold` keeps the socket open after the outcome
 * until the returned release function is called (the burst needs every
 * connection open at once to count against MaxStartups).
 */
export function rawAttempt(
  address: string,
  port: number,
  options: { sourceAddress?: string; connectTimeoutMs: number; bannerTimeoutMs: number; keep?: boolean },
): { result: Promise<RawAttempt>; release: () => void } {
  const start = now();
  const socket = net.connect({
    host: address,
    port,
    ...(options.sourceAddress !== undefined ? { localAddress: options.sourceAddress } : {}),
  });
  const release = (): void => {
    socket.destroy();
  };
  const result = new Promise<RawAttempt>((resolve) => {
    let tcp: TcpEvidence | undefined;
    let connectedAt = 0;
    let received = '';
    let settled = false;
    const settle = (attempt: RawAttempt): void => {
      if (settled) return;
      settled = true;
      clearTimeout(connectTimer);
      clearTimeout(bannerTimer);
      resolve(attempt);
    };
    let bannerTimer: NodeJS.Timeout | undefined;
    const connectTimer = setTimeout(() => {
      settle({ tcp: { outcome: 'timeout', ms: elapsed(start) } });
      socket.destroy();
    }, options.connectTimeoutMs);
    socket.on('connect', () => {
      connectedAt = now();
      clearTimeout(connectTimer);
      tcp = {
        outcome: 'connected',
        ms: elapsed(start),
        ...(socket.localAddress ? { localAddress: socket.localAddress } : {}),
      };
      bannerTimer = setTimeout(() => {
        settle({ tcp: tcp!, banner: { outcome: 'timeout', ms: elapsed(connectedAt) } });
      }, options.bannerTimeoutMs);
    });
    socket.on('data', (chunk: Buffer) => {
      // latin1 maps each byte to one character and back: what was read can be put back exactly.
      received += chunk.toString('latin1');
      // RFC 4253 4.2: the server may send other lines before its "SSH-" line.
      const line = received.split(/\r?\n/).find((l, i, all) => l.startsWith('SSH-') && i < all.length - 1);
      if (line !== undefined && tcp) {
        const banner: BannerEvidence = {
          outcome: 'banner',
          ms: elapsed(connectedAt),
          banner: line.slice(0, 200),
        };
        if (options.keep) {
          socket.pause();
          for (const event of ['data', 'end', 'close', 'error'] as const) socket.removeAllListeners(event);
          socket.on('error', () => undefined);
          socket.unshift(Buffer.from(received, 'latin1'));
          settle({ tcp, banner, socket });
        } else {
          settle({ tcp, banner });
        }
      }
    });
    /** The lines the server wrote before closing, without an identification string. */
    const preamble = (): { preamble?: string } => {
      const text = received
        .split(/\r?\n/)
        .filter((l) => l.trim() !== '')
        .join(' / ')
        .slice(0, 200);
      return text !== '' ? { preamble: text } : {};
    };
    socket.on('end', () => {
      if (tcp) settle({ tcp, banner: { outcome: 'closed', ms: elapsed(connectedAt), ...preamble() } });
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (tcp) {
        settle({ tcp, banner: { outcome: 'reset', ms: elapsed(connectedAt), ...preamble() } });
      } else if (error.code === 'ECONNRESET') {
        // A reset answering the SYN would be ECONNREFUSED: this one came after the handshake, before we saw it.
        settle({
          tcp: { outcome: 'connected', ms: elapsed(start), code: 'ECONNRESET' },
          banner: { outcome: 'reset', ms: 0 },
        });
      } else {
        settle({
          tcp: {
            outcome: tcpOutcomeOf(error.code),
            ms: elapsed(start),
            ...(error.code ? { code: error.code } : {}),
          },
        });
      }
    });
    socket.on('close', () => {
      if (tcp) settle({ tcp, banner: { outcome: 'closed', ms: elapsed(connectedAt), ...preamble() } });
      else settle({ tcp: { outcome: 'error', ms: elapsed(start), code: 'ECLOSED' } });
    });
  });
  return { result, release };
}

/**
 * Key exchange and authentication on one ssh2 connection. The host key is
 * checked against known_hosts before any key is offered; keys are offered
 * one by one and counted, so "Too many authentication failures" can be set
 * against MaxAuthTries.
 */
export function kexAndAuth(
  address: string,
  port: number,
  options: { sourceAddress?: string; connectTimeoutMs: number; auth?: AuthProbeOptions; sock?: Duplex },
): Promise<{ kex: KexEvidence; auth?: AuthEvidence }> {
  const start = now();
  const client = new Client();
  const auth = options.auth;
  let kex: KexEvidence | undefined;
  let hostKeyProblem: KexEvidence['outcome'] | undefined;
  let hostKey: string | undefined;
  let keysOffered = 0;
  const keys = auth?.keys ?? [];
  const handler = (methodsLeft: AuthenticationType[] | null): AnyAuthMethod | false => {
    if (methodsLeft !== null && !methodsLeft.includes('publickey')) return false;
    const next = keys[keysOffered];
    if (!next || !auth) return false;
    keysOffered++;
    return { type: 'publickey', username: auth.user, key: next.key };
  };
  return new Promise((resolve) => {
    let settled = false;
    const finish = (result: { kex: KexEvidence; auth?: AuthEvidence }): void => {
      if (settled) return;
      settled = true;
      client.removeAllListeners('close');
      client.on('error', () => undefined);
      client.end();
      setTimeout(() => client.destroy(), 500).unref();
      resolve(result);
    };
    const authResult = (outcome: AuthOutcome, error?: string): AuthEvidence => ({
      outcome,
      keysOffered,
      keysAvailable: keys.length,
      ...(error !== undefined ? { error } : {}),
    });
    client.on('handshake', () => {
      kex = { outcome: 'ok', ms: elapsed(start), ...(hostKey ? { hostKey } : {}) };
      if (!auth || keys.length === 0) finish({ kex });
    });
    client.on('ready', () =>
      finish({ kex: kex ?? { outcome: 'ok', ms: elapsed(start) }, auth: authResult('accepted') }),
    );
    client.on('error', (error: Error & { level?: string }) => {
      const message = errorMessage(error);
      if (!kex) {
        finish({
          kex: {
            outcome: hostKeyProblem ?? 'failed',
            ms: elapsed(start),
            error: message,
            ...(hostKey ? { hostKey } : {}),
          },
        });
      } else if (error.level === 'client-authentication') {
        finish({ kex, auth: authResult('rejected', message) });
      } else if (/too many authentication failures/i.test(message)) {
        finish({ kex, auth: authResult('too_many_failures', message) });
      } else {
        finish({ kex, auth: authResult('error', message) });
      }
    });
    client.on('close', () => {
      if (!kex)
        finish({
          kex: { outcome: 'failed', ms: elapsed(start), error: 'connection closed during key exchange' },
        });
      else finish({ kex, auth: authResult('disconnected', 'connection closed during authentication') });
    });
    client.connect({
      host: address,
      port,
      username: auth?.user ?? 'sshfix-probe',
      readyTimeout: options.connectTimeoutMs,
      ...(options.sock !== undefined ? { sock: options.sock } : {}),
      ...(options.sock === undefined && options.sourceAddress !== undefined
        ? { localAddress: options.sourceAddress }
        : {}),
      hostVerifier: (blob: Buffer) => {
        const keyType = keyTypeOfBlob(blob) ?? 'unknown';
        const base64 = blob.toString('base64');
        hostKey = `${keyType} ${fingerprintSha256(base64)}`;
        if (!auth) return true;
        const status = checkHostKey(auth.knownHosts, address, port, keyType, base64);
        if (status === 'match') return true;
        hostKeyProblem = status === 'unknown' ? 'host_key_unknown' : 'host_key_mismatch';
        return false;
      },
      authHandler: handler as unknown as AuthHandlerMiddleware,
    });
  });
}

/**
 * Opens `connections` raw connections at once and keeps every one open until
 * all have an outcome (or the window ends), so they count together against
 * MaxStartups; then closes them all. Bounded in count and time.
 *
 * With `auth`, each connection that got a banner then logs in before it is
 * closed: OpenSSH >= 9.8 counts a connection that ends without authenticating
 * as `noauth` (PerSourcePenalties noauth:1, min:15), and a burst of them, run
 * twice, would get the controller dropped by the very check that looks for
 * drops. A connection that authenticated costs nothing.
 */
export async function burst(
  address: string,
  port: number,
  options: BurstOptions & { sourceAddress?: string; connectTimeoutMs: number; auth?: AuthProbeOptions },
): Promise<BurstEvidence> {
  const count = Math.max(1, Math.min(options.connections, MAX_BURST_CONNECTIONS));
  const windowMs = Math.max(500, Math.min(options.windowMs, MAX_BURST_WINDOW_MS));
  const start = now();
  const attempts = Array.from({ length: count }, () =>
    rawAttempt(address, port, {
      ...(options.sourceAddress !== undefined ? { sourceAddress: options.sourceAddress } : {}),
      connectTimeoutMs: Math.min(options.connectTimeoutMs, windowMs),
      bannerTimeoutMs: windowMs,
      keep: options.auth !== undefined,
    }),
  );
  try {
    const results = await Promise.all(attempts.map((a) => a.result));
    const auth = options.auth;
    if (auth) {
      await Promise.all(
        results.flatMap((r) =>
          r.socket
            ? [
                kexAndAuth(address, port, {
                  connectTimeoutMs: options.connectTimeoutMs,
                  auth,
                  sock: r.socket,
                }),
              ]
            : [],
        ),
      );
    }
    const tally = (predicate: (r: RawAttempt) => boolean): number => results.filter(predicate).length;
    return {
      connections: count,
      banners: tally((r) => r.banner?.outcome === 'banner'),
      resets: tally((r) => r.banner?.outcome === 'reset'),
      closedBeforeBanner: tally((r) => r.banner?.outcome === 'closed'),
      timeouts: tally((r) => r.tcp.outcome === 'timeout' || r.banner?.outcome === 'timeout'),
      refused: tally((r) => r.tcp.outcome === 'refused'),
      ms: elapsed(start),
    };
  } finally {
    for (const a of attempts) a.release();
  }
}

/**
 * Repeats a refused connect REFUSAL_ATTEMPTS times, one at a time, reading
 * the kernel's ICMP destination-unreachable counter just before and after
 * each: an ICMP answer is a firewall REJECT, a reset is the host's TCP stack.
 * Each "read, connect, read" is an exclusive window (icmp_window.ts): the
 * counter is the whole machine's, and another host's ICMP arriving during
 * the window would be read as this host's.
 */
export async function measureRefusal(
  address: string,
  port: number,
  options: { sourceAddress?: string; connectTimeoutMs: number },
  readCounter: (family: 4 | 6) => number | null = readInDestUnreachs,
  window: typeof exclusiveWindow = exclusiveWindow,
): Promise<RefusalEvidence> {
  const family = net.isIP(address) === 6 ? 6 : 4;
  const icmpDeltas: (number | null)[] = [];
  for (let i = 0; i < REFUSAL_ATTEMPTS; i++) {
    const measured = await window(async (exclusive) => {
      const before = readCounter(family);
      const attempt = rawAttempt(address, port, { ...options, bannerTimeoutMs: 0 });
      const { tcp } = await attempt.result;
      const after = readCounter(family);
      attempt.release();
      const trusted = exclusive && before !== null && after !== null;
      return { tcp, delta: trusted ? after - before : null };
    });
    if (measured.tcp.outcome === 'refused') icmpDeltas.push(measured.delta);
  }
  return { answer: classifyRefusal(icmpDeltas), attempts: REFUSAL_ATTEMPTS, icmpDeltas };
}

/** The connect and banner wait (no login) from each of `sources` at once. */
async function fromOtherSources(
  address: string,
  port: number,
  sources: readonly string[],
  options: { connectTimeoutMs: number; bannerTimeoutMs: number },
): Promise<SourceAttempt[]> {
  return Promise.all(
    sources.map(async (source) => {
      const attempt = rawAttempt(address, port, { ...options, sourceAddress: source });
      const result = await attempt.result;
      attempt.release();
      return { source, ...result };
    }),
  );
}

/** Runs the whole probe; never throws (every failure is evidence). */
export async function probeHost(target: ProbeTarget, options: ProbeOptions): Promise<ProbeEvidence> {
  const evidence: ProbeEvidence = { target, dns: await resolveTarget(target.host) };
  const address = evidence.dns.addresses[0];
  if (address === undefined) return evidence;
  evidence.address = address;
  const source = target.sourceAddress !== undefined ? { sourceAddress: target.sourceAddress } : {};
  // The connection that got the banner goes on to the key exchange and login: one that closed after
  // the banner would be a PerSourcePenalties noauth of ours (OpenSSH >= 9.8).
  let served: { socket: Duplex; release: () => void } | undefined;
  const connectAndWait = async (): Promise<RawAttempt> => {
    const raw = rawAttempt(address, target.port, {
      ...source,
      connectTimeoutMs: options.connectTimeoutMs,
      bannerTimeoutMs: options.bannerTimeoutMs,
      keep: true,
    });
    const result = await raw.result;
    if (result.socket) served = { socket: result.socket, release: raw.release };
    else raw.release();
    return result;
  };
  let attempt = await connectAndWait();
  if (attempt.banner?.outcome === 'closed') {
    // sshd closes what it drops past MaxStartups, and our own connections of a moment ago (an
    // earlier run's burst) may still fill a low limit: once more, after sshd has let go of them.
    evidence.closedFirst = attempt.banner;
    await new Promise((resolve) => setTimeout(resolve, OWN_CONNECTION_SETTLE_MS));
    attempt = await connectAndWait();
  }
  evidence.tcp = attempt.tcp;
  if (attempt.banner) evidence.banner = attempt.banner;
  if (attempt.banner?.outcome !== 'banner') {
    if (attempt.tcp.outcome === 'refused') {
      evidence.tcp.refusal = await measureRefusal(address, target.port, {
        ...source,
        connectTimeoutMs: options.connectTimeoutMs,
      });
    }
    const primary = target.sourceAddress ?? (await sourceAddressToward(address, target.port));
    const others = alternateSources(address, primary, os.networkInterfaces(), options.alsoFrom);
    if (others.length > 0) {
      evidence.alternates = await fromOtherSources(address, target.port, others, {
        connectTimeoutMs: options.connectTimeoutMs,
        bannerTimeoutMs: options.bannerTimeoutMs,
      });
    }
    return evidence;
  }
  const login = async (sock?: Duplex): Promise<{ kex: KexEvidence; auth?: AuthEvidence }> =>
    kexAndAuth(address, target.port, {
      ...source,
      connectTimeoutMs: options.connectTimeoutMs,
      ...(options.auth ? { auth: options.auth } : {}),
      ...(sock ? { sock } : {}),
    });
  let session: { kex: KexEvidence; auth?: AuthEvidence };
  try {
    session = await login(served?.socket);
  } finally {
    served?.release();
  }
  if (session.kex.outcome === 'failed') {
    // sshd counts our first connection against MaxStartups until its child has seen us close it:
    // under a low limit (1:100:1) the next connection is dropped. Once more, after that moment.
    await new Promise((resolve) => setTimeout(resolve, OWN_CONNECTION_SETTLE_MS));
    session = await login();
  }
  evidence.kex = session.kex;
  if (session.auth) evidence.auth = session.auth;
  if (options.burst) {
    evidence.burst = await burst(address, target.port, {
      ...options.burst,
      ...source,
      connectTimeoutMs: options.connectTimeoutMs,
      ...(evidence.auth?.outcome === 'accepted' && options.auth ? { auth: options.auth } : {}),
    });
  }
  return evidence;
}
