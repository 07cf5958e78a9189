/**
 * Facts of the host itself that every plan rests on, whatever its tasks
 * read: sshd's release (which keywords it knows) and how sshd runs (how a
 * change and a rollback are put into effect, sshd_unit.ts). Read in the
 * planning round trip; a later reading that differs makes a saved plan stale.
 */
import type { Fact } from '../plan/types.js';
import { formatVersion, parseOpenSshVersion } from '../formats/openssh_version.js';

const VERSION_MARK = '@@sshfix-sshd-version';

/**
 * Prints `MODE UNIT` as the begin script records it (sshd_unit.ts), or
 * `none` without systemd or without an ssh/sshd unit; then `sshd -V`'s
 * output (releases without -V print their version above the usage text).
 */
export const HOST_FACTS_PROBE = [
  'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  'u=none',
  'if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then',
  '  for n in ssh sshd; do',
  '    systemctl cat "$n.service" >/dev/null 2>&1 || continue',
  '    m=service; systemctl is-active --quiet "$n.socket" 2>/dev/null && m=socket',
  '    u="$m $n"; break',
  '  done',
  'fi',
  'echo "$u"',
  `echo '${VERSION_MARK}'`,
  'for s in /usr/sbin/sshd /usr/local/sbin/sshd /sbin/sshd /usr/bin/sshd; do',
  '  [ -x "$s" ] && { "$s" -V 2>&1 </dev/null; break; }',
  'done',
  'exit 0',
].join('\n');

export type SshdUnitMode = 'none' | 'service' | 'socket';

export interface HostFacts {
  /** "9.2"; undefined when no OpenSSH sshd runs here. */
  sshdVersion?: string;
  sshdUnit: { mode: SshdUnitMode; unit?: string };
}

export function parseHostFacts(stdout: string): HostFacts {
  const [unitPart = '', versionPart = ''] = stdout.split(`${VERSION_MARK}\n`);
  const [mode, unit] = unitPart.trim().split(/\s+/);
  const version = parseOpenSshVersion(versionPart);
  return {
    ...(version !== undefined ? { sshdVersion: formatVersion(version) } : {}),
    sshdUnit:
      (mode === 'service' || mode === 'socket') && unit !== undefined ? { mode, unit } : { mode: 'none' },
  };
}

/** The host's facts as plan facts. */
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
