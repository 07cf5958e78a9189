/**
 * `--shard K/N`: run only the K-th of N slices of the selected hosts, so that
 * a CI matrix or a Kubernetes indexed Job can spread one fleet over N
 * machines, each running the same command with its own K.
 *
 * The split is round-robin over the host names sorted by UTF-16 code units:
 * the host at sorted position i belongs to shard (i mod N) + 1.
 *
 * - Sorted, not inventory order, so that reordering an inventory file does not
 *   move hosts between shards; code units, not `localeCompare`, because
 *   collation depends on the ICU data and locale of each machine, and every
 *   machine of the matrix must compute the same split.
 * - By position, not by a hash of the name: every job of a matrix sees the
 *   same inventory (the same commit), so stability against added hosts buys
 *   nothing, while a hash leaves shards uneven on small fleets (4 hosts in 4
 *   shards would often leave one shard empty and another with two). Positions
 *   make shard sizes differ by at most one host.
 * - Round-robin, not contiguous blocks: hosts with similar names (web01..web04,
 *   one rack, one role) land in different shards, so one slow or failing job
 *   does not hold a whole role.
 */
import { ConfigError } from '../config/diagnostics.js';

export interface Shard {
  /** 1-based: 1 ≤ index ≤ count. */
  index: number;
  count: number;
}

/** Parses "K/N"; throws ConfigError saying what is wrong with it. */
export function parseShard(text: string): Shard {
  const match = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  const invalid = (why: string) =>
    new ConfigError([{ severity: 'error', summary: `--shard '${text}': ${why}` }]);
  if (!match) throw invalid('expected K/N, e.g. 2/5 for the second of five shards');
  const index = Number(match[1]);
  const count = Number(match[2]);
  if (!Number.isSafeInteger(count) || count < 1) throw invalid('N (the number of shards) must be at least 1');
  if (!Number.isSafeInteger(index) || index < 1 || index > count) {
    throw invalid(`K must be between 1 and ${count} (shards are numbered from 1)`);
  }
  return { index, count };
}

/** Compares by UTF-16 code units: the same answer on every machine, whatever its locale. */
function codeUnitOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The hosts of one shard, in the order given; duplicates count once. */
export function shardHosts(hosts: readonly string[], shard: Shard): string[] {
  const sorted = [...new Set(hosts)].sort(codeUnitOrder);
  const members = new Set(sorted.filter((_, position) => position % shard.count === shard.index - 1));
  const seen = new Set<string>();
  return hosts.filter((host) => {
    if (seen.has(host) || !members.has(host)) return false;
    seen.add(host);
    return true;
  });
}

/** The items (host jobs, results) whose host is in the shard; all of them without a shard. */
export function selectShard<T extends { host: string }>(items: readonly T[], shard: Shard | undefined): T[] {
  if (!shard) return [...items];
  const members = new Set(
    shardHosts(
      items.map((item) => item.host),
      shard,
    ),
  );
  return items.filter((item) => members.has(item.host));
}
