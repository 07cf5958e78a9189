/**
 * What answered a refused SYN: a TCP reset or an ICMP destination-unreachable.
 * Node reports both as ECONNREFUSED, but they mean different things: Linux
 * answers a SYN to a closed port with a reset, never with ICMP, so an ICMP
 * answer proves a firewall REJECT rule (iptables' default icmp-port-unreachable,
 * which fail2ban's default banaction uses), not a stopped sshd.
 *
 * Node cannot see ICMP, but the kernel counts it: the probe reads the
 * InDestUnreachs counter (/proc/net/snmp, /proc/net/snmp6 for IPv6) just
 * before and just after each of a few repeated connects. Other traffic can
 * only add to the counter, so "no ICMP on most attempts" (a reset) is robust,
 * and "ICMP" needs a rise on every attempt.
 */
import fs from 'node:fs';

export type RefusalAnswer = 'icmp' | 'rst' | 'unknown';

export interface RefusalEvidence {
  answer: RefusalAnswer;
  /** Repeated connects made to tell, refused or not. */
  attempts: number;
  /** For each repeat that was refused: how much InDestUnreachs rose during it; null where unreadable. */
  icmpDeltas: (number | null)[];
}

/** Repeats of the refused connect: few, so that it never becomes a scan. */
export const REFUSAL_ATTEMPTS = 3;

/**
 * InDestUnreachs from /proc/net/snmp (IPv4: an "Icmp:" header line, then an
 * "Icmp:" value line) or /proc/net/snmp6 (IPv6: "Icmp6InDestUnreachs N");
 * null when the text has no such counter.
 */
export function parseInDestUnreachs(text: string, family: 4 | 6): number | null {
  const lines = text.split('\n');
  if (family === 6) {
    const line = lines.find((l) => /^Icmp6InDestUnreachs\s/.test(l));
    const value = line?.trim().split(/\s+/)[1];
    return value !== undefined && /^\d+$/.test(value) ? Number(value) : null;
  }
  const icmp = lines.filter((l) => l.startsWith('Icmp:'));
  const names = icmp[0]?.trim().split(/\s+/) ?? [];
  const values = icmp[1]?.trim().split(/\s+/) ?? [];
  const index = names.indexOf('InDestUnreachs');
  const value = index > 0 ? values[index] : undefined;
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : null;
}

/**
 * ICMP when the counter rose during every refused attempt; a reset when it
 * stayed still during most of them; otherwise (or with no reading) unknown.
 */
export function classifyRefusal(icmpDeltas: readonly (number | null)[]): RefusalAnswer {
  if (icmpDeltas.length === 0 || icmpDeltas.some((d) => d === null)) return 'unknown';
  if (icmpDeltas.every((d) => d! >= 1)) return 'icmp';
  if (icmpDeltas.filter((d) => d === 0).length * 2 > icmpDeltas.length) return 'rst';
  return 'unknown';
}

const COUNTER_FILE = { 4: '/proc/net/snmp', 6: '/proc/net/snmp6' } as const;

/** The current InDestUnreachs count of our network namespace; null off Linux or when unreadable. */
export function readInDestUnreachs(family: 4 | 6): number | null {
  try {
    // Synchronous on purpose: the window between the readings should hold nothing but the connect.
    return parseInDestUnreachs(fs.readFileSync(COUNTER_FILE[family], 'latin1'), family);
  } catch {
    return null;
  }
}
