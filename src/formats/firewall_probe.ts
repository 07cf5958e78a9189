/**
 * The one read-only probe the firewall resource runs on a host, and the
 * parsing of its output into facts. Every tool is guarded by `command -v`;
 * only C programs run unless firewalld is running (then firewall-cmd, the only
 * way to ask it). ufw's state comes from its rule files and from whether its
 * chains are loaded (exactly what `ufw status` checks), so no Python starts
 * on the no-op path. No I/O here: the resource sends the script.
 */
import { isActiveTest, SHARED_UNITS, sharedShowLines } from './systemd_units.js';

export type SshdPorts = { ports: number[] } | { error: string };

export type IptablesVariant = 'legacy' | 'nft' | 'plain';

export interface IptablesDump {
  v4: string;
  v6: string;
}

export interface FirewallFacts {
  /** Ports sshd listens on (from its configuration tree), or null when they are unknown (then `sshdError`). */
  sshdPorts: number[] | null;
  sshdError?: string;
  /** Which variant plain `iptables` is (`iptables -V` says "(legacy)" or "(nf_tables)"); null without iptables. */
  iptablesDefault: 'legacy' | 'nft' | null;
  /** Dumps per installed variant ("plain" only where iptables has no -legacy/-nft programs). */
  iptables: Partial<Record<IptablesVariant, IptablesDump>>;
  /** `nft -a list ruleset`, or null without nft. */
  nftListing: string | null;
  ufwInstalled: boolean;
  ufwV4: string | null;
  ufwV6: string | null;
  /** /etc/iptables exists (the iptables-persistent layout). */
  iptablesDir: boolean;
  firewalldInstalled: boolean;
  /**
   * `firewall-cmd --get-default-zone`, `--list-all-zones` and `--permanent --list-all-zones`, or null when
   * firewalld is not running. (`--list-all-zones` marks the default zone only when it has an interface.)
   */
  firewalld: { defaultZone: string; runtime: string; permanent: string } | null;
}

const MARK = '@@sshfix-fw';

/** ufw's own rule files: planning reads them with the other files; the verification probe cats them. */
export const UFW_RULES_V4 = '/etc/ufw/user.rules';
export const UFW_RULES_V6 = '/etc/ufw/user6.rules';

/**
 * The probe script (constant: HostView caches probes by their text). With
 * `ufwRules`, it also prints ufw's rule files (planning reads them as files,
 * in the read script's one `cat`, instead).
 */
export function firewallProbeScript(options: { ufwRules?: boolean } = {}): string {
  const section = (name: string): string => `printf '\\n${MARK} ${name}\\n'`;
  const save = (program: string): string =>
    `command -v ${program} >/dev/null 2>&1 && { ${program} 2>/dev/null || echo '${MARK}-failed'; }`;
  return [
    'PATH="$PATH:/usr/sbin:/sbin:/usr/local/sbin"',
    // Which variant plain `iptables` is, without starting it: distributions point it (through
    // alternatives) at one of the xtables multi-call programs, next to it. Otherwise ask it.
    section('iptables-version'),
    'ipt=$(command -v iptables 2>/dev/null) && {',
    '  if [ "$ipt" -ef "${ipt%/*}/xtables-nft-multi" ]; then echo "iptables (nf_tables)"',
    '  elif [ "$ipt" -ef "${ipt%/*}/xtables-legacy-multi" ]; then echo "iptables (legacy)"',
    '  else iptables -V 2>&1; fi',
    '}',
    section('have-variants'),
    'variants=; command -v iptables-legacy-save >/dev/null 2>&1 && command -v iptables-nft-save >/dev/null 2>&1 && variants=yes',
    'echo "$variants"',
    // nftables first: its listing says which iptables-nft families have tables at all, and
    // iptables-nft-save of a family without tables prints nothing, so it is not started.
    section('nft'),
    'nft_ok=; nft_rules=',
    `command -v nft >/dev/null 2>&1 && { nft_rules=$(nft -a list ruleset 2>/dev/null) && nft_ok=yes; printf '%s\\n' "$nft_rules"; echo '${MARK}-present'; }`,
    // A legacy variant with no table loaded has nothing to save: the kernel's table list says so without a process.
    section('v4-legacy'),
    `{ read -r _ < /proc/net/ip_tables_names; } 2>/dev/null && ${save('iptables-legacy-save')}`,
    section('v6-legacy'),
    `{ read -r _ < /proc/net/ip6_tables_names; } 2>/dev/null && ${save('ip6tables-legacy-save')}`,
    section('v4-nft'),
    `case "$nft_ok:$nft_rules" in yes:*'table ip '*|:*) ${save('iptables-nft-save')} ;; esac`,
    section('v6-nft'),
    `case "$nft_ok:$nft_rules" in yes:*'table ip6 '*|:*) ${save('ip6tables-nft-save')} ;; esac`,
    // Plain iptables-save only where there are no variants: there it is one of them.
    section('v4-plain'),
    `[ -n "$variants" ] || { ${save('iptables-save')}; }`,
    section('v6-plain'),
    `[ -n "$variants" ] || { ${save('ip6tables-save')}; }`,
    section('ufw'),
    'command -v ufw >/dev/null 2>&1 && echo yes',
    ...(options.ufwRules
      ? [
          section('ufw-v4'),
          `[ -f ${UFW_RULES_V4} ] && cat ${UFW_RULES_V4} 2>/dev/null`,
          section('ufw-v6'),
          `[ -f ${UFW_RULES_V6} ] && cat ${UFW_RULES_V6} 2>/dev/null`,
        ]
      : []),
    section('iptables-dir'),
    '[ -d /etc/iptables ] && echo yes',
    section('firewalld'),
    'command -v firewall-cmd >/dev/null 2>&1 && echo installed',
    // Only a running firewalld answers; asking whether it runs first keeps Python off hosts without it.
    // Started by hand it writes /run/firewalld.pid (`read` fails on a pid file without a final newline,
    // yet sets pid: test pid, not read); firewalld.service starts it with --nopid, so there systemd knows.
    'fwd=; command -v firewall-cmd >/dev/null 2>&1 && {',
    '  pid=; { read -r pid < /run/firewalld.pid; } 2>/dev/null',
    '  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then fwd=yes',
    // systemctl only where systemd runs: elsewhere it can only fail, at a process per host.
    // firewalld.service's state from the show the round trip's other probes share (systemd_units.ts).
    '  elif [ -d /run/systemd/system ]; then',
    ...sharedShowLines(),
    `    ${isActiveTest(SHARED_UNITS.indexOf('firewalld.service'))} && fwd=yes`,
    '  fi',
    '}',
    '[ -n "$fwd" ] && {',
    `  ${section('firewalld-default')}; firewall-cmd --get-default-zone 2>&1`,
    `  ${section('firewalld-runtime')}; firewall-cmd --list-all-zones 2>&1 || echo '${MARK}-failed'`,
    `  ${section('firewalld-permanent')}; firewall-cmd --permanent --list-all-zones 2>&1 || echo '${MARK}-failed'`,
    '}',
    'exit 0',
  ].join('\n');
}

/** Splits probe output into its sections (each without the blank line before the next marker). */
/**
 * The firewall probe's output without what moves by itself: iptables-save's
 * "Generated/Completed on <date>" comments and chain packet counters
 * (`:INPUT ACCEPT [12:3456]`), nftables' `counter packets N bytes N`, and
 * ipset's remaining `timeout N` (fail2ban's bans count down). What is left
 * changes only when the rules do.
 */
export function firewallRulesetEssence(stdout: string): string {
  return stdout
    .split('\n')
    .filter((line) => !/^# (Generated|Completed) /.test(line))
    .map((line) =>
      line
        .replace(/ \[\d+:\d+\]$/, ' [0:0]')
        .replace(/\bcounter packets \d+ bytes \d+/g, 'counter')
        .replace(/ timeout \d+\b/g, '')
        .replace(/ packets \d+ bytes \d+\b/g, ''),
    )
    .join('\n');
}

export function probeSections(stdout: string): Map<string, string> {
  const sections = new Map<string, string>();
  const parts = stdout.split(new RegExp(`\\n?${MARK} (\\S+)\\n`));
  for (let i = 1; i + 1 < parts.length; i += 2) sections.set(parts[i]!, parts[i + 1]!);
  return sections;
}

/**
 * fail2ban's part of the loaded rules: the f2b-* chains of every iptables
 * variant, and nftables' f2b-table, as iptables-save and `nft list` print them.
 */
export function fail2banRulesText(stdout: string): string {
  const s = probeSections(stdout);
  const lines: string[] = [];
  for (const [name, body] of s) {
    if (/^v[46]-/.test(name)) lines.push(...body.split('\n').filter((l) => /^(:f2b-|-A f2b-)/.test(l)));
  }
  const nft = s.get('nft') ?? '';
  const table = /^table inet f2b-table \{[^]*?^\}/m.exec(nft);
  if (table) lines.push(...table[0].split('\n'));
  return lines.map((l) => `${l}\n`).join('');
}

function dump(sections: Map<string, string>, variant: IptablesVariant): IptablesDump | undefined {
  const v4 = sections.get(`v4-${variant}`) ?? '';
  const v6 = sections.get(`v6-${variant}`) ?? '';
  const failed = (s: string): boolean => s.includes(`${MARK}-failed`);
  if (v4 === '' && v6 === '' && variant !== 'plain') return undefined;
  return { v4: failed(v4) ? '' : v4, v6: failed(v6) ? '' : v6 };
}

/**
 * `sshd` says which ports sshd listens on (read from its configuration, not
 * by this probe); `ufwRules`, ufw's rule files when they were read as files
 * (else the probe's own sections, or null).
 */
export function parseFirewallProbe(
  stdout: string,
  sshd: SshdPorts,
  ufwRules?: { v4: string | null; v6: string | null },
): FirewallFacts {
  const s = probeSections(stdout);
  const version = s.get('iptables-version') ?? '';
  const hasVariants = (s.get('have-variants') ?? '').trim() === 'yes';
  const iptables: FirewallFacts['iptables'] = {};
  if (hasVariants) {
    iptables.legacy = dump(s, 'legacy') ?? { v4: '', v6: '' };
    iptables.nft = dump(s, 'nft') ?? { v4: '', v6: '' };
  } else if (version.trim() !== '') {
    iptables.plain = dump(s, 'plain');
  }
  const nft = s.get('nft');
  const runtime = s.get('firewalld-runtime');
  const permanent = s.get('firewalld-permanent');
  const firewalldOk = runtime !== undefined && !runtime.includes(`${MARK}-failed`);
  return {
    ...('ports' in sshd ? { sshdPorts: sshd.ports } : { sshdPorts: null, sshdError: sshd.error }),
    iptablesDefault: /nf_tables/.test(version) ? 'nft' : version.trim() !== '' ? 'legacy' : null,
    iptables,
    nftListing:
      nft !== undefined && nft.includes(`${MARK}-present`)
        ? nft.replace(`${MARK}-present`, '').trimEnd() + '\n'
        : null,
    ufwInstalled: (s.get('ufw') ?? '').trim() === 'yes',
    ufwV4: (ufwRules ? ufwRules.v4 : s.get('ufw-v4')) || null,
    ufwV6: (ufwRules ? ufwRules.v6 : s.get('ufw-v6')) || null,
    iptablesDir: (s.get('iptables-dir') ?? '').trim() === 'yes',
    firewalldInstalled: (s.get('firewalld') ?? '').trim() === 'installed',
    firewalld: firewalldOk
      ? {
          defaultZone: (s.get('firewalld-default') ?? '').trim(),
          runtime: runtime ?? '',
          permanent: (permanent ?? '').replace(`${MARK}-failed`, ''),
        }
      : null,
  };
}
