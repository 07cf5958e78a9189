/**
 * Follows a packet of an SSH connection from the client through the host's
 * iptables filter/INPUT chain: the SYN of a new connection, and a packet of
 * the established connection (a rule that resets established port-22
 * connections lets the TCP handshake through and kills the connection before
 * the banner). The walk itself is the one the lockout guard uses. No I/O.
 */
import { parseHostCidr } from '../formats/firewall_cidr.js';
import { parseIptablesSave } from '../formats/firewall_iptables.js';
import {
  traceIptablesInput,
  type IptablesPath,
  type PacketPhase,
} from '../formats/firewall_iptables_path.js';

export type { PacketPhase };
export type PathVerdict = IptablesPath;

/** The fate of an SSH packet from `client` to `port` in an iptables-save dump; null without a filter/INPUT chain. */
export function traceSshPacket(
  iptablesSave: string,
  client: string,
  port: number,
  phase: PacketPhase,
): PathVerdict | null {
  const source = parseHostCidr(client);
  if (!source) return null;
  return traceIptablesInput(parseIptablesSave(iptablesSave, source.family), source, port, phase);
}
