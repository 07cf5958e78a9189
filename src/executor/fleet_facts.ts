/**
 * `sshfix inventory --facts`: the host facts of many hosts, read-only. One
 * connection and one round trip a host (the facts probe and the firewall
 * probe go out together), at most `forks` hosts at once.
 */
import PQueue from 'p-queue';
import type { Connection, ConnectionSpec } from '../transport/types.js';
import { UnreachableError } from '../transport/types.js';
import { errorMessage } from '../errors.js';
import { RemoteHostView } from './host_view.js';
import { gatherHostFacts, type HostFacts } from './host_facts.js';

export type HostFactsOutcome =
  | { host: string; facts: HostFacts }
  | { host: string; unreachable: string }
  | { host: string; failed: string };

export interface FleetFactsOptions {
  forks: number;
  connect: (spec: ConnectionSpec) => Promise<Connection>;
}

async function readOne(
  spec: ConnectionSpec,
  connect: FleetFactsOptions['connect'],
): Promise<HostFactsOutcome> {
  const host = spec.hostName;
  let conn: Connection | undefined;
  try {
    conn = await connect(spec);
    return { host, facts: await gatherHostFacts(new RemoteHostView(conn)) };
  } catch (error) {
    if (error instanceof UnreachableError) return { host, unreachable: error.message };
    return { host, failed: errorMessage(error) };
  } finally {
    await conn?.close().catch(() => undefined);
  }
}

/** Every host's facts (or why there are none), in the order of `specs`. */
export async function readFleetFacts(
  specs: readonly ConnectionSpec[],
  options: FleetFactsOptions,
): Promise<HostFactsOutcome[]> {
  const queue = new PQueue({ concurrency: Math.max(1, options.forks) });
  return Promise.all(specs.map((spec) => queue.add(() => readOne(spec, options.connect)))) as Promise<
    HostFactsOutcome[]
  >;
}
