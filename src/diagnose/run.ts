/**
 * One diagnosis per host: the client-side probe, then the server-side checks
 * over whatever way in exists (an SSH login, or the local console), then the
 * findings. Hosts are diagnosed concurrently; nothing here throws for a host
 * that cannot be reached (that is evidence too).
 */
import { readFile } from 'node:fs/promises';
import PQueue from 'p-queue';
import type { Connection, ConnectionSpec } from '../transport/types.js';
import { openConnection } from '../transport/connect.js';
import { defaultIdentityFiles } from '../transport/identities.js';
import { readKnownHostsFile, type KnownHostEntry } from '../transport/known_hosts.js';
import { errorMessage } from '../errors.js';
import {
  burst,
  DEFAULT_BURST,
  OWN_CONNECTION_SETTLE_MS,
  probeHost,
  type AuthProbeOptions,
  type ProbeEvidence,
  type ProbeKey,
} from './probe.js';
import { sourceAddressToward } from './sources.js';
import { runServerChecks, type ServerEvidence } from './server_checks.js';
import { diagnose, hasPenalties, opensshVersion, type Cause, type Finding } from './findings.js';
import { CLIENT_CAUSES, clientsNamed, OTHER_CLIENT } from './clients.js';

export interface DiagnoseTarget {
  /** Inventory name, or the host as given on the command line. */
  name: string;
  /** How the server-side checks get in; `connection: 'local'` runs them on this machine. */
  spec: ConnectionSpec;
}

export interface DiagnoseOptions {
  /** Diagnose for this client address instead of our own source address. */
  client?: string;
  /** Bind the probes to this local address. */
  source?: string;
  /** Local addresses a failed connect is also tried from (besides our others in the host's subnet). */
  alsoFrom?: string[];
  /** Extra keys the client offers before the login key (as ssh-agent or ~/.ssh/id_* would). */
  offerKeys: string[];
  /** Concurrent connections of the MaxStartups burst; 0 for none. */
  burstConnections: number;
  /** Skip the server-side checks over SSH (client-side probe only). */
  probeOnly: boolean;
  concurrency: number;
  /** Opens connections; tests may substitute. */
  connect?: (spec: ConnectionSpec) => Promise<Connection>;
}

export interface HostDiagnosis {
  host: string;
  address: string;
  client: string | null;
  /** Some way in worked: an SSH login (the probe's or the checks'), or the local console. */
  reachable: boolean;
  /** How the server-side checks ran ('jump': through --via), or why they did not. */
  serverChecks: { via: 'ssh' | 'local' | 'jump' } | { via: null; reason: string };
  probe?: ProbeEvidence;
  server?: ServerEvidence;
  findings: Finding[];
}

/** libwrap pauses 5 s before refusing: the banner wait must outlast it. */
const MIN_BANNER_TIMEOUT_MS = 8000;
const SERVER_CHECKS_TIMEOUT_MS = 60_000;

/** The keys the probe offers: the extra ones, then the login's key (or, with nothing configured, ssh's defaults). */
async function probeKeys(spec: ConnectionSpec, offerKeys: readonly string[]): Promise<ProbeKey[]> {
  const nothingConfigured = spec.privateKeyFile === undefined && !spec.agent && spec.password === undefined;
  const login =
    spec.privateKeyFile !== undefined
      ? [spec.privateKeyFile]
      : nothingConfigured
        ? defaultIdentityFiles()
        : [];
  const files = [...offerKeys, ...login];
  return Promise.all(files.map(async (file) => ({ label: file, key: await readFile(file) })));
}

async function knownHostsOf(spec: ConnectionSpec): Promise<KnownHostEntry[]> {
  try {
    return await readKnownHostsFile(spec.knownHostsFile);
  } catch {
    // Without known_hosts the probe stops after the key exchange: no key is offered to an unverified host.
    return [];
  }
}

async function diagnoseOne(target: DiagnoseTarget, options: DiagnoseOptions): Promise<HostDiagnosis> {
  const { spec } = target;
  const connect = options.connect ?? openConnection;
  const result: HostDiagnosis = {
    host: target.name,
    address: spec.address,
    client: options.client ?? null,
    reachable: false,
    serverChecks: { via: null, reason: 'not attempted' },
    findings: [],
  };
  let serverUnavailable: string | undefined;
  let everyClient: Finding[] | undefined;
  let probeAuth: AuthProbeOptions | undefined;

  if (spec.connection !== 'local') {
    const keys = await probeKeys(spec, options.offerKeys);
    probeAuth = { user: spec.user, keys, knownHosts: await knownHostsOf(spec) };
    result.probe = await probeHost(
      {
        host: spec.address,
        port: spec.port,
        ...(options.source !== undefined ? { sourceAddress: options.source } : {}),
      },
      {
        connectTimeoutMs: spec.connectTimeoutMs,
        bannerTimeoutMs: Math.max(MIN_BANNER_TIMEOUT_MS, spec.connectTimeoutMs),
        auth: probeAuth,
        ...(options.alsoFrom !== undefined ? { alsoFrom: options.alsoFrom } : {}),
        // The burst comes last (below): it fills sshd's unauthenticated slots, and under a low
        // MaxStartups the server-side login right after it would be dropped.
      },
    );
    const probe = result.probe;
    const probed = probe.address ?? spec.address;
    result.client ??=
      probe.tcp?.localAddress ?? options.source ?? (await sourceAddressToward(probed, spec.port));
    if (probe.auth?.outcome === 'accepted') result.reachable = true;
  }

  const probeFailedEarly =
    result.probe !== undefined &&
    result.probe.auth?.outcome !== 'accepted' &&
    result.probe.banner?.outcome !== 'banner';
  // The login would go the same way as the probe: same source address, same path.
  const loginWouldFailToo =
    probeFailedEarly && options.source === undefined && (spec.jump ?? []).length === 0;
  // The login offers the probe's login key again: refused once (every key offered, the login's
  // included), refused again, and each refused login is one more PerSourcePenalties authfail (5 s of
  // the 15 that get this address dropped). Too many failures is not that: the login offers fewer keys.
  const keysRefused =
    result.probe?.auth?.outcome === 'rejected' &&
    !spec.agent &&
    spec.password === undefined &&
    (spec.jump ?? []).length === 0;
  if (spec.connection !== 'local' && options.probeOnly) {
    serverUnavailable = 'client-side probe only (--probe-only)';
  } else if (spec.connection !== 'local' && loginWouldFailToo) {
    serverUnavailable = 'no way in: the probe could not reach sshd from this address';
  } else if (spec.connection !== 'local' && keysRefused) {
    serverUnavailable = `no way in: sshd refused the probe's keys (${result.probe?.auth?.error ?? 'authentication failed'})`;
  } else if (result.client === null && spec.connection !== 'local') {
    serverUnavailable = 'the client address is unknown (give --client)';
  } else {
    let conn: Connection | undefined;
    try {
      conn = await connect(spec).catch(async (error: unknown) => {
        if (result.probe?.banner?.outcome !== 'banner' || /authentication/i.test(errorMessage(error)))
          throw error;
        // sshd served the probe a moment ago: our own probe connections may still count against a
        // low MaxStartups. Once more, after sshd has let go of them.
        await new Promise((resolve) => setTimeout(resolve, OWN_CONNECTION_SETTLE_MS));
        return connect(spec);
      });
      if (result.client === null) {
        // On the console with no client named: what refuses whom.
        const every = await forEveryClient(conn, spec);
        result.server = every.server;
        everyClient = every.findings;
      } else {
        result.server = await runServerChecks(
          conn,
          { client: result.client, port: spec.port, user: spec.user },
          SERVER_CHECKS_TIMEOUT_MS,
        );
      }
      result.reachable = true;
      result.serverChecks = { via: (spec.jump ?? []).length > 0 ? 'jump' : spec.connection };
    } catch (error) {
      serverUnavailable = `cannot log in: ${errorMessage(error)}`;
    } finally {
      await conn?.close().catch(() => undefined);
    }
  }
  if (serverUnavailable !== undefined) result.serverChecks = { via: null, reason: serverUnavailable };
  const probe = result.probe;
  // Each connection of the burst logs in before it closes, when the probe's login worked. Without a
  // login, every one would count as a PerSourcePenalties noauth on an OpenSSH >= 9.8: no burst there.
  const loggedIn = probe?.auth?.outcome === 'accepted';
  const penalises =
    opensshVersion(probe?.banner?.banner) === null || hasPenalties(opensshVersion(probe?.banner?.banner));
  if (
    probe?.address !== undefined &&
    probe.banner?.outcome === 'banner' &&
    options.burstConnections > 0 &&
    (loggedIn || !penalises)
  ) {
    probe.burst = await burst(probe.address, spec.port, {
      ...DEFAULT_BURST,
      connections: options.burstConnections,
      ...(options.source !== undefined ? { sourceAddress: options.source } : {}),
      connectTimeoutMs: spec.connectTimeoutMs,
      ...(loggedIn && probeAuth ? { auth: probeAuth } : {}),
    });
  }
  result.findings =
    everyClient ??
    diagnose({
      port: spec.port,
      client: result.client,
      ...(result.probe ? { probe: result.probe } : {}),
      ...(result.server ? { server: result.server } : {}),
      ...(serverUnavailable !== undefined ? { serverUnavailable } : {}),
    });
  return result;
}

/**
 * The findings for every client of a host: those that hold for all (sshd
 * down, its configuration, resources) once; those that depend on the client
 * for each client a layer names, where it fares otherwise than a client no
 * rule names (OTHER_CLIENT, reported as client "*").
 */
async function forEveryClient(
  conn: Connection,
  spec: ConnectionSpec,
): Promise<{ server: ServerEvidence; findings: Finding[] }> {
  const check = (client: string): Promise<ServerEvidence> =>
    runServerChecks(conn, { client, port: spec.port, user: spec.user }, SERVER_CHECKS_TIMEOUT_MS);
  const others = await check(OTHER_CLIENT);
  const anyOther = (text: string): string => text.replaceAll(OTHER_CLIENT, 'any other client');
  const findings: Finding[] = [];
  const forOthers = new Map<Cause, number>();
  for (const f of diagnose({ port: spec.port, client: OTHER_CLIENT, server: others })) {
    if (!CLIENT_CAUSES.has(f.cause)) {
      findings.push(f);
      continue;
    }
    forOthers.set(f.cause, f.score);
    // No remedy: a fix for "everyone else" is a policy decision, not a repair.
    const { remedy: _remedy, ...rest } = f;
    findings.push({ ...rest, client: '*', evidence: f.evidence.map(anyOther), fix: anyOther(f.fix) });
  }
  const { clients } = clientsNamed(others);
  for (const client of clients) {
    const server = await check(client);
    for (const f of diagnose({ port: spec.port, client, server })) {
      if (CLIENT_CAUSES.has(f.cause) && forOthers.get(f.cause) !== f.score) findings.push({ ...f, client });
    }
  }
  findings.sort((a, b) => b.score - a.score);
  return { server: others, findings };
}

/** Diagnoses every target, at most `concurrency` at once; results in target order. */
export async function diagnoseHosts(
  targets: readonly DiagnoseTarget[],
  options: DiagnoseOptions,
  onDone?: (d: HostDiagnosis) => void,
): Promise<HostDiagnosis[]> {
  const queue = new PQueue({ concurrency: Math.max(1, options.concurrency) });
  return Promise.all(
    targets.map((target) =>
      queue.add(async () => {
        const d = await diagnoseOne(target, options);
        onDone?.(d);
        return d;
      }),
    ),
  ) as Promise<HostDiagnosis[]>;
}
