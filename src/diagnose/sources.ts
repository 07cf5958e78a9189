/**
 * Which local address a probe goes out from, and which other local addresses
 * it can repeat a failed connect from. A banner from another of our addresses
 * while ours is refused proves the block is by source address (a firewall
 * rule, a fail2ban ban, TCP wrappers), not a stopped sshd.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import type os from 'node:os';
import { cidrContains, parseHostCidr } from '../formats/firewall_cidr.js';

/** At most this many other sources per failed probe: a second opinion, never a scan. */
export const MAX_ALTERNATE_SOURCES = 3;

/** Our source address toward `address` (a connected UDP socket sends nothing). */
export function sourceAddressToward(address: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket(net.isIP(address) === 6 ? 'udp6' : 'udp4');
    socket.on('error', () => {
      socket.close();
      resolve(null);
    });
    socket.connect(port, address, () => {
      const local = socket.address().address;
      socket.close();
      resolve(local);
    });
  });
}

/**
 * The addresses to repeat a failed connect to `target` from: every `explicit`
 * one (the operator named them), then this machine's other addresses in the
 * target's own subnet (same family, not loopback, not link-local, not
 * `primary`), up to MAX_ALTERNATE_SOURCES in all.
 */
export function alternateSources(
  target: string,
  primary: string | null,
  interfaces: NodeJS.Dict<os.NetworkInterfaceInfo[]>,
  explicit: readonly string[] = [],
): string[] {
  const chosen = [...new Set(explicit)];
  const targetCidr = parseHostCidr(target);
  if (targetCidr === null) return chosen;
  for (const info of Object.values(interfaces).flat()) {
    if (chosen.length >= MAX_ALTERNATE_SOURCES) break;
    if (!info || info.internal || (info.family === 'IPv6' && info.scopeid !== 0)) continue;
    if (info.address === primary || chosen.includes(info.address)) continue;
    const subnet = info.cidr !== null ? parseHostCidr(info.cidr) : null;
    if (subnet && cidrContains(subnet, targetCidr)) chosen.push(info.address);
  }
  return chosen;
}
