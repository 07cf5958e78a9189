/**
 * Facts of the host itself, whatever its tasks read: sshd's release (which
 * keywords it knows) and how sshd runs (how a change and a rollback are put
 * into effect, sshd_unit.ts), which the plan rests on; and what templates and
 * conditions may ask about (Ansible's `ansible_facts`): the distribution, the
 * init system, whether sshd consults libwrap, the firewall in use, whether
 * fail2ban runs. Read in the planning round trip: the probe starts two
 * programs (`sshd -V` and one grep), plus one `systemctl show` under
 * systemd, which the round trip's sshd service detection and firewall probe
 * share (systemd_units.ts); the rest is shell built-ins. The firewall is read by the firewall
 * resource's own probe, cached by its text: a play that manages the
 * firewall or fail2ban reads it once for both.
 */
import type { Fact } from '../plan/types.js';
import { formatVersion, parseOpenSshRelease, parseOpenSshVersion } from '../formats/openssh_version.js';
import { firewallProbeScript, parseFirewallProbe } from '../formats/firewall_probe.js';
import { backendInUse, type BackendInUse } from '../formats/firewall_decide.js';
import { catSucceedsTest, isActiveTest, sharedShowLines } from '../formats/systemd_units.js';
import { INIT_SYSTEM_LINES, type InitSystem } from '../resources/service.js';
import { FAIL2BAN_RUNNING_LINES } from '../resources/fail2ban.js';
import { libwrapLinkedTest } from '../resources/tcp_wrappers.js';
import type { ExecResult } from '../transport/types.js';
import type { SshdRelease } from '../resources/types.js';

const VERSION_MARK = '@@sshfix-sshd-version';

/** The os-release(5) fields read: the rest of the file is not printed. */
const OS_RELEASE_FIELDS = ['ID', 'ID_LIKE', 'NAME', 'VERSION_ID', 'VERSION_CODENAME'] as const;

/**
 * Prints `KEY=VALUE` lines: `unit=MODE UNIT` as the begin script records it
 * (sshd_unit.ts), or `unit=none` without systemd or without an ssh/sshd
 * unit; `init=` (INIT_SYSTEM_LINES); `libwrap=yes|no` (empty without sshd);
 * `fail2ban=yes|no`; `debian_version=` (/etc/debian_version, the point
 * release); `os:FIELD=VALUE` for os-release's fields as the file writes them;
 * `root=yes|no` (the effective user, from /proc/self/status); `sshd=` its
 * absolute path (empty without sshd). Then `sshd -V`'s output (releases
 * without -V print their version above the usage text): the only sshd -V a
 * host runs, since the sshd_config tasks read the release from this same
 * answer (RemoteHostView.sshdRelease).
 */
export const HOST_FACTS_PROBE = [
  // The host's own PATH last: an sshd elsewhere is still found (below), after the usual places.
  'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH',
  ...INIT_SYSTEM_LINES,
  'echo "init=$init"',
  'u=none',
  'if [ "$init" = systemd ]; then',
  // The first of ssh.service and sshd.service (SHARED_UNITS 0 and 2) that `systemctl cat` finds, run
  // through its socket when that `systemctl is-active`: answered by one systemctl (systemd_units.ts).
  ...sharedShowLines(),
  `  if ${catSucceedsTest(0)}; then u=ssh; ${isActiveTest(1)} && u="socket $u" || u="service $u"`,
  `  elif ${catSucceedsTest(2)}; then u=sshd; ${isActiveTest(3)} && u="socket $u" || u="service $u"; fi`,
  'fi',
  'echo "unit=$u"',
  ...FAIL2BAN_RUNNING_LINES,
  'echo "fail2ban=$running"',
  // os-release(5): /etc first, /usr/lib as the fallback; read by the shell, no cat.
  'r=/etc/os-release; [ -r "$r" ] || r=/usr/lib/os-release',
  `[ -r "$r" ] && while IFS= read -r l || [ -n "$l" ]; do case $l in ${OS_RELEASE_FIELDS.map((f) => `${f}=*`).join('|')}) echo "os:$l" ;; esac; done < "$r"`,
  // Debian's point release ("12.11"): os-release says only "12".
  'v=; { IFS= read -r v < /etc/debian_version; } 2>/dev/null; echo "debian_version=$v"',
  'sshd=',
  'for s in /usr/sbin/sshd /usr/local/sbin/sshd /sbin/sshd /usr/bin/sshd; do',
  '  [ -x "$s" ] && { sshd=$s; break; }',
  'done',
  // PATH is searched last, and only then: `$(...)` costs a fork on every host.
  '[ -n "$sshd" ] || { s=$(command -v sshd 2>/dev/null) && [ -x "$s" ] && sshd=$s; }',
  'w=; [ -n "$sshd" ] && { w=no; ' + libwrapLinkedTest('"$sshd"') + ' && w=yes; }',
  'echo "libwrap=$w"',
  // The firewall's tables are readable by root only: read by anyone else they look empty.
  'e=; while read -r k _ e _; do [ "$k" = Uid: ] && break; done < /proc/self/status 2>/dev/null',
  'if [ "$e" = 0 ]; then echo root=yes; elif [ -n "$e" ]; then echo root=no; fi',
  'echo "sshd=$sshd"',
  `echo '${VERSION_MARK}'`,
  '[ -n "$sshd" ] && "$sshd" -V 2>&1 </dev/null',
  'exit 0',
].join('\n');

export type SshdUnitMode = 'none' | 'service' | 'socket';

/** os-release(5)'s fields, unquoted; absent where the file has none (or there is no file). */
export interface OsRelease {
  id?: string;
  idLike: string[];
  name?: string;
  versionId?: string;
  codename?: string;
  /** /etc/debian_version when it holds a release number ("12.11"); testing says "trixie/sid". */
  debianVersion?: string;
}

export interface HostFacts {
  /** "9.2"; undefined when no OpenSSH sshd runs here. */
  sshdVersion?: string;
  /** "9.2p1", as `sshd -V` names it; undefined as sshdVersion. */
  sshdRelease?: string;
  sshdUnit: { mode: SshdUnitMode; unit?: string };
  /** Whether sshd (or its sshd-session) is linked with libwrap; null when no sshd was found. */
  sshdLibwrap: boolean | null;
  init: InitSystem;
  os: OsRelease;
  fail2banRunning: boolean;
  /** null when the probes ran as another user than root: the firewall's tables were unreadable. */
  firewallBackend: BackendInUse | null;
}

/** An os-release value as a shell would read it: double quotes (with \-escapes) or single quotes removed. */
export function osReleaseValue(raw: string): string {
  const double = /^"((?:[^"\\]|\\.)*)"$/.exec(raw);
  if (double) return double[1]!.replace(/\\(.)/g, '$1');
  const single = /^'([^']*)'$/.exec(raw);
  return single ? single[1]! : raw;
}

function parseOsRelease(fields: Map<string, string>, debianVersion: string | undefined): OsRelease {
  const get = (name: (typeof OS_RELEASE_FIELDS)[number]): string | undefined => {
    const value = fields.get(`os:${name}`);
    return value === undefined || value === '' ? undefined : osReleaseValue(value);
  };
  const [id, name, versionId, codename] = [
    get('ID'),
    get('NAME'),
    get('VERSION_ID'),
    get('VERSION_CODENAME'),
  ];
  return {
    ...(id !== undefined ? { id } : {}),
    idLike: (get('ID_LIKE') ?? '').split(/\s+/).filter((w) => w !== ''),
    ...(name !== undefined ? { name } : {}),
    ...(versionId !== undefined ? { versionId } : {}),
    ...(codename !== undefined ? { codename } : {}),
    ...(debianVersion !== undefined && /^\d+(\.\d+)*$/.test(debianVersion) ? { debianVersion } : {}),
  };
}

const INIT_SYSTEMS: readonly InitSystem[] = ['systemd', 'openrc', 'sysvinit'];

/**
 * The facts in HOST_FACTS_PROBE's output and the firewall probe's
 * (firewallProbeScript()); the firewall backend is `none` where that
 * output is empty.
 */
export function parseHostFacts(stdout: string, firewallProbeStdout: string): HostFacts {
  const { fields, versionPart } = probeFields(stdout);
  const [mode, unit] = (fields.get('unit') ?? '').trim().split(/\s+/);
  const version = parseOpenSshVersion(versionPart);
  const release = parseOpenSshRelease(versionPart);
  const init = INIT_SYSTEMS.find((i) => i === fields.get('init')) ?? 'sysvinit';
  const libwrap = fields.get('libwrap');
  return {
    ...(version !== undefined ? { sshdVersion: formatVersion(version) } : {}),
    ...(release !== undefined ? { sshdRelease: release } : {}),
    sshdUnit:
      (mode === 'service' || mode === 'socket') && unit !== undefined ? { mode, unit } : { mode: 'none' },
    sshdLibwrap: libwrap === 'yes' ? true : libwrap === 'no' ? false : null,
    init,
    os: parseOsRelease(fields, fields.get('debian_version')),
    fail2banRunning: fields.get('fail2ban') === 'yes',
    firewallBackend:
      fields.get('root') === 'no'
        ? null
        : backendInUse(parseFirewallProbe(firewallProbeStdout, { error: 'not read' })),
  };
}

/** HOST_FACTS_PROBE's `KEY=VALUE` lines (the first of each key), and what sshd -V printed after them. */
function probeFields(stdout: string): { fields: Map<string, string>; versionPart: string } {
  const [fieldPart = '', versionPart = ''] = stdout.split(`${VERSION_MARK}\n`);
  const fields = new Map<string, string>();
  for (const line of fieldPart.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0 && !fields.has(line.slice(0, eq))) fields.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return { fields, versionPart };
}

/** sshd's path and what its -V printed, from HOST_FACTS_PROBE's output; undefined without sshd. */
export function parseSshdRelease(stdout: string): SshdRelease | undefined {
  const { fields, versionPart } = probeFields(stdout);
  const sshd = fields.get('sshd') ?? '';
  return sshd === '' ? undefined : { sshd, versionOutput: versionPart };
}

/** What gatherHostFacts reads through: a HostView's probeApart (batched and cached, no plan fact). */
export interface HostFactsReader {
  probeApart(script: string): Promise<ExecResult>;
}

/**
 * Reads the host's facts: both probes are asked in the same tick, so they go
 * out in one round trip together with whatever else is asked then.
 */
export async function gatherHostFacts(view: HostFactsReader): Promise<HostFacts> {
  const [own, firewall] = await Promise.all([
    view.probeApart(HOST_FACTS_PROBE),
    view.probeApart(firewallProbeScript()),
  ]);
  return parseHostFacts(own.stdout, firewall.stdout);
}

/** The host's facts as plan facts: how sshd runs and its release, which the plan rests on. */
export function hostFactList(facts: HostFacts): Fact[] {
  const { mode, unit } = facts.sshdUnit;
  return [
    {
      key: 'host:sshd-unit',
      value: unit === undefined ? mode : `${mode} ${unit}`,
      description: 'how sshd runs (systemd unit)',
    },
    { key: 'host:sshd-version', value: facts.sshdVersion ?? 'none', description: 'sshd version' },
  ];
}

/** Ansible's names for distributions, by os-release ID; others are the ID capitalized, as Ansible does. */
const DISTRIBUTIONS: Readonly<Record<string, string>> = {
  debian: 'Debian',
  ubuntu: 'Ubuntu',
  raspbian: 'Debian',
  linuxmint: 'Linux Mint',
  rhel: 'RedHat',
  centos: 'CentOS',
  fedora: 'Fedora',
  rocky: 'Rocky',
  almalinux: 'AlmaLinux',
  ol: 'OracleLinux',
  amzn: 'Amazon',
  arch: 'Archlinux',
  manjaro: 'Manjaro',
  alpine: 'Alpine',
  sles: 'SLES',
  'opensuse-leap': 'openSUSE Leap',
  'opensuse-tumbleweed': 'openSUSE Tumbleweed',
  gentoo: 'Gentoo',
};

/** Ansible's os_family, by os-release ID (then by ID_LIKE). */
const OS_FAMILIES: Readonly<Record<string, string>> = {
  debian: 'Debian',
  ubuntu: 'Debian',
  raspbian: 'Debian',
  linuxmint: 'Debian',
  rhel: 'RedHat',
  centos: 'RedHat',
  fedora: 'RedHat',
  rocky: 'RedHat',
  almalinux: 'RedHat',
  ol: 'RedHat',
  amzn: 'RedHat',
  arch: 'Archlinux',
  manjaro: 'Archlinux',
  alpine: 'Alpine',
  sles: 'Suse',
  suse: 'Suse',
  'opensuse-leap': 'Suse',
  'opensuse-tumbleweed': 'Suse',
  opensuse: 'Suse',
  gentoo: 'Gentoo',
};

/** What Ansible reports where it cannot tell. */
const UNKNOWN = 'NA';

/** The `ansible_facts` templates and conditions see (hostFactVariables). */
export interface AnsibleFacts {
  distribution: string;
  /** Debian: the point release ("12.11"); elsewhere os-release's VERSION_ID ("24.04", "9.4"). */
  distribution_version: string;
  distribution_major_version: string;
  /** VERSION_CODENAME ("bookworm"). */
  distribution_release: string;
  os_family: string;
  /** sshfix's own detection: systemd, openrc or sysvinit (also where no init system runs). */
  service_mgr: InitSystem;
  sshd: {
    /** "9.2p1" as `sshd -V` names it; null without OpenSSH's sshd. */
    version: string | null;
    /** The systemd unit that runs sshd ("ssh", "sshd"); null without one. */
    unit: string | null;
    /** Its .socket is the listener (Ubuntu >= 22.10's default): Port/ListenAddress in sshd_config are ignored. */
    socket_activated: boolean;
    /** Linked with libwrap (hosts.allow/hosts.deny apply); null without sshd. */
    libwrap: boolean | null;
  };
  /** null where the facts were not read as root (no become): the firewall could not be read. */
  firewall_backend: BackendInUse | null;
  fail2ban_running: boolean;
}

function capitalized(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

/** The host's facts as Ansible's `ansible_facts`. */
export function ansibleFacts(facts: HostFacts): AnsibleFacts {
  const { os } = facts;
  const distribution =
    os.id === undefined ? UNKNOWN : (DISTRIBUTIONS[os.id] ?? capitalized(os.id.replace(/-.*/, '')));
  const family =
    [os.id, ...os.idLike].map((id) => (id === undefined ? undefined : OS_FAMILIES[id])).find(Boolean) ??
    distribution;
  const version =
    (os.id === 'debian' || os.id === 'raspbian' ? os.debianVersion : undefined) ?? os.versionId ?? UNKNOWN;
  const { mode, unit } = facts.sshdUnit;
  return {
    distribution,
    distribution_version: version,
    distribution_major_version: version === UNKNOWN ? UNKNOWN : version.split('.')[0]!,
    distribution_release: os.codename ?? UNKNOWN,
    os_family: family,
    service_mgr: facts.init,
    sshd: {
      version: facts.sshdRelease ?? null,
      unit: unit ?? null,
      socket_activated: mode === 'socket',
      libwrap: facts.sshdLibwrap,
    },
    firewall_backend: facts.firewallBackend,
    fail2ban_running: facts.fail2banRunning,
  };
}

/**
 * The variables templates and conditions see: `ansible_facts`, and each
 * fact again as a top-level `ansible_<name>` (Ansible's
 * INJECT_FACTS_AS_VARS), e.g. `ansible_distribution`.
 */
export function hostFactVariables(facts: HostFacts): Record<string, unknown> {
  const ansible = ansibleFacts(facts);
  return {
    ansible_facts: ansible,
    ...Object.fromEntries(Object.entries(ansible).map(([name, value]) => [`ansible_${name}`, value])),
  };
}
