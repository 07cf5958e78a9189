/**
 * The OpenSSH release of a host's sshd, as `sshd -V` prints it: keywords
 * newer than the release are "Bad configuration option" to it, so they are
 * written only where the release knows them (sshd_keywords.ts `since`).
 */

/** An OpenSSH release: 9.2 for "OpenSSH_9.2p1". The portable suffix (p1, p2) adds no keyword. */
export interface OpenSshVersion {
  readonly major: number;
  readonly minor: number;
}

/**
 * The release in `sshd -V` output: "OpenSSH_9.2, OpenSSL 3.0.19 …" (9.2),
 * "OpenSSH_10.0p2 Debian-7+deb13u4, OpenSSL 3.5.9 …". Releases whose sshd has
 * no `-V` print the same line above their usage text (sshd.c usage()).
 * Undefined when there is none: not OpenSSH, or sshd could not run.
 */
export function parseOpenSshVersion(output: string): OpenSshVersion | undefined {
  const found = /(?:^|\s)OpenSSH_(\d+)\.(\d+)/m.exec(output);
  if (found === null) return undefined;
  return { major: Number(found[1]), minor: Number(found[2]) };
}

/**
 * The release exactly as `sshd -V` names it, portable suffix included:
 * "9.2p1", "10.0p2", or "9.2" where the build has none. Undefined as for
 * parseOpenSshVersion.
 */
export function parseOpenSshRelease(output: string): string | undefined {
  return /(?:^|\s)OpenSSH_(\d+\.\d+(?:p\d+)?)/m.exec(output)?.[1];
}

/** Whether `version` is `since` or later. */
export function versionAtLeast(version: OpenSshVersion, since: OpenSshVersion): boolean {
  return version.major !== since.major ? version.major > since.major : version.minor >= since.minor;
}

/** "9.8". */
export function formatVersion(version: OpenSshVersion): string {
  return `${version.major}.${version.minor}`;
}

/** `openssh('9.8')`: a release written as in the release notes, for tables. */
export function openssh(text: `${number}.${number}`): OpenSshVersion {
  const [major = '', minor = ''] = text.split('.');
  return { major: Number(major), minor: Number(minor) };
}

/**
 * Where OpenSSH >= 9.8 installs sshd-session, the per-connection half of sshd that
 * calls libwrap (Debian, Fedora/RHEL, upstream's default).
 */
export const SSHD_SESSION_LOCATIONS = [
  '/usr/lib/openssh/sshd-session',
  '/usr/libexec/openssh/sshd-session',
  '/usr/libexec/sshd-session',
] as const;
