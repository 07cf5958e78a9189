/**
 * On a server's console with no client named (`diagnose -c local`): which
 * clients to diagnose for. Every client some layer names, as a literal
 * address: hosts.allow/deny, the sources of iptables rules, fail2ban's bans,
 * and the clients sshd refused, dropped or cut off since it started. One more
 * stands for every client no rule names: 192.0.2.1, from TEST-NET-1 (RFC
 * 5737), which no real client has. Pure.
 */
import net from 'node:net';
import type { ServerEvidence } from './server_checks.js';
import type { Cause } from './findings.js';

/** Stands for "any other client": the documentation address no network routes (RFC 5737). */
export const OTHER_CLIENT = '192.0.2.1';
/** Clients diagnosed at most, besides OTHER_CLIENT: each is one more round trip. */
export const MAX_NAMED_CLIENTS = 16;

/** Causes that depend on who connects; the others hold for every client alike. */
export const CLIENT_CAUSES: ReadonlySet<Cause> = new Set<Cause>([
  'tcp_wrappers_deny',
  'firewall_drop',
  'firewall_reject',
  'fail2ban_ban',
  'source_penalty',
  'max_auth_tries',
]);

/** A literal host address in `token` ("10.0.0.5", "10.0.0.5/32", "fd00::5/128"), or null. */
function hostAddress(token: string): string | null {
  const [address, prefix] = token.replace(/[.;]+$/, '').split('/');
  if (address === undefined || net.isIP(address) === 0) return null;
  if (prefix !== undefined && prefix !== (net.isIP(address) === 4 ? '32' : '128')) return null;
  return address;
}

function tokens(text: string): string[] {
  return text.split(/[\s,'"()[\]{}]+/).filter((t) => t !== '');
}

function fromHostsFile(text: string | null): string[] {
  const lines = (text ?? '').split('\n').filter((l) => !l.trimStart().startsWith('#'));
  return lines.flatMap(tokens).flatMap((t) => hostAddress(t) ?? []);
}

function fromIptables(text: string | null): string[] {
  const found: string[] = [];
  for (const line of (text ?? '').split('\n')) {
    const words = tokens(line);
    words.forEach((word, i) => {
      if (word !== '-s' && word !== '--source') return;
      for (const source of (words[i + 1] ?? '').split(',')) {
        const address = hostAddress(source);
        if (address) found.push(address);
      }
    });
  }
  return found;
}

/** sshd's wording: "from ADDR port", "from [ADDR]:PORT", "refused connect from ADDR (ADDR)", "authenticating user U ADDR port". */
function fromAuthLog(lines: readonly string[]): string[] {
  const found: string[] = [];
  for (const line of lines) {
    for (const m of line.matchAll(/\bfrom \[?([0-9A-Fa-f.:]+)\]?/g)) {
      const address = hostAddress(m[1]!);
      if (address) found.push(address);
    }
    const user = /authenticating user \S+ ([0-9A-Fa-f.:]+) port/.exec(line)?.[1];
    if (user !== undefined && hostAddress(user)) found.push(user);
  }
  return found;
}

/** The clients named anywhere in the server's evidence, at most MAX_NAMED_CLIENTS, in the order found. */
export function clientsNamed(server: ServerEvidence): { clients: string[]; more: number } {
  const all = [
    ...fromHostsFile(server.hostsDeny),
    ...fromHostsFile(server.hostsAllow),
    ...fromIptables(server.iptables),
    ...tokens(server.fail2ban.raw).flatMap((t) => hostAddress(t) ?? []),
    ...fromAuthLog(server.authLog),
  ];
  const unique = [...new Set(all)].filter(
    (a) => a !== OTHER_CLIENT && !a.startsWith('127.') && a !== '::1' && a !== '0.0.0.0' && a !== '::',
  );
  return {
    clients: unique.slice(0, MAX_NAMED_CLIENTS),
    more: Math.max(0, unique.length - MAX_NAMED_CLIENTS),
  };
}
