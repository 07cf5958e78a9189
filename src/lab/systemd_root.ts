/**
 * The root file system of the lab's systemd hosts (see LAB.md): Debian 13
 * (trixie) with systemd as PID 1 and OpenSSH 10, built once per machine with
 * debootstrap and shared read-only by every host (each boots it with
 * `systemd-nspawn --volatile=overlay`, so its writes go to its own tmpfs).
 *
 * The root is named after a hash of its recipe: a changed recipe builds a new
 * root beside the old one. The build runs under flock(1) on a lock file, so
 * concurrent test workers wait for one build instead of running several, and
 * the kernel drops the lock when a builder dies. It builds into a temporary
 * directory and renames it into place: a root that exists is complete.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** Outside any checkout: one root serves every checkout and run on the machine. */
export const DEFAULT_ROOT_CACHE_DIR = '/var/cache/sshfix-lab';
const SUITE = 'trixie';
/** Minutes on a quiet machine; much longer on a busy one. */
const BUILD_TIMEOUT_MS = 60 * 60_000;

/** What a lab host runs, beyond debootstrap's minimal base (LAB.md). */
const PACKAGES = [
  'systemd',
  'systemd-sysv',
  'dbus',
  'openssh-server',
  'iproute2',
  'iptables',
  'nftables',
  // The firewall front end of Ubuntu fleets; the firewall suite blocks a workstation with it.
  'ufw',
  // The firewall of RHEL-like fleets (also Debian's): D-Bus driven, nftables backend. Installed
  // but not enabled (see BUILD_SCRIPT): a suite that wants it starts firewalld.service itself.
  'firewalld',
  // polkitd (firewalld's) needs a logind; debootstrap picks no provider of a virtual package itself.
  'libpam-systemd',
  'procps',
  'sudo',
  'fail2ban',
  'python3-systemd',
];

/**
 * Debian's sshd-keygen.service makes host keys only on a machine's first boot
 * (ConditionFirstBoot), and the shared root must hold none: every host makes
 * its own at boot, before sshd starts in either mode. One ed25519 key, as on
 * the plain kind, so a client's known_hosts entry is the key sshd offers.
 */
const HOST_KEY_UNIT = `[Unit]
Description=This lab host's own SSH host key
Before=ssh.service ssh.socket sshd@.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -q -t ed25519 -N "" -C "" -f /etc/ssh/ssh_host_ed25519_key

[Install]
WantedBy=ssh.service ssh.socket sshd@.service
`;
const HOST_KEY_UNIT_NAME = 'sshfix-lab-host-key.service';

/**
 * Runs as `sh -c SCRIPT build ROOT MIRROR DEBS` while holding the lock.
 * Leftovers of a crashed build are unmounted first (debootstrap mounts /proc
 * and /sys inside its target) and removed without crossing into a mount.
 */
const BUILD_SCRIPT = `
set -eu
root=$1 mirror=$2 debs=$3
[ -d "$root" ] && exit 0
for old in "$root".tmp.*; do
  [ -e "$old" ] || continue
  findmnt -rn -o TARGET | grep -F "$old/" | sort -r | while read -r m; do umount -l "$m" || true; done
  rm -rf --one-file-system -- "$old"
done
tmp="$root.tmp.$$"
mkdir -p "$debs"
debootstrap --variant=minbase --cache-dir="$debs" --include=${PACKAGES.join(',')} ${SUITE} "$tmp" "$mirror"
# No host keys, no host name, a resolver in the lab (no query may leave it), no shell start-up files.
rm -f "$tmp"/etc/ssh/ssh_host_* "$tmp/etc/hostname" "$tmp/etc/resolv.conf" "$tmp/root/.bashrc" "$tmp/root/.profile"
echo 'nameserver 127.0.0.1' > "$tmp/etc/resolv.conf"
cat > "$tmp/etc/systemd/system/${HOST_KEY_UNIT_NAME}" <<'SSHFIX_UNIT_EOF'
${HOST_KEY_UNIT}SSHFIX_UNIT_EOF
# firewalld's package enables its unit; running on every host, its zones would refuse the ports other
# suites use and be picked over the iptables, nftables and ufw rules they set up.
systemctl --root="$tmp" --quiet disable firewalld.service
# libpam-systemd came only for polkitd: logins stay in ssh.service's cgroup as before (no logind session).
chroot "$tmp" pam-auth-update --package --remove systemd
for unit in ssh.service ssh.socket sshd@.service; do
  mkdir -p "$tmp/etc/systemd/system/$unit.wants"
  ln -sf "../${HOST_KEY_UNIT_NAME}" "$tmp/etc/systemd/system/$unit.wants/${HOST_KEY_UNIT_NAME}"
done
sync
mv -- "$tmp" "$root"
`;

/** The root's directory name: suite and a hash of everything that decides its contents. */
export function systemdRootName(): string {
  const recipe = JSON.stringify({ suite: SUITE, packages: PACKAGES, script: BUILD_SCRIPT });
  return `${SUITE}-${createHash('sha256').update(recipe).digest('hex').slice(0, 12)}`;
}

export function systemdRootCacheDir(): string {
  return process.env.SSHFIX_LAB_CACHE_DIR ?? DEFAULT_ROOT_CACHE_DIR;
}

/** The root's path, whether or not it is built yet. */
export function systemdRootPath(cacheDir: string = systemdRootCacheDir()): string {
  return path.join(cacheDir, systemdRootName());
}

/**
 * The Debian mirror apt already uses on this machine: the first archive
 * entry (not debian-security, not a third-party repository) of the one-line
 * (`deb URI SUITE …`) or deb822 (`URIs:` / `Suites:`) source lists.
 */
export function debianMirrorOf(sources: readonly string[]): string | undefined {
  const isArchive = (uri: string, suites: string[]): boolean =>
    /^https?:\/\//.test(uri) &&
    !/security/.test(uri) &&
    suites.some((s) => /^(bookworm|trixie|forky|bullseye|sid|stable|testing|unstable)(-updates)?$/.test(s));
  for (const text of sources) {
    for (const line of text.split('\n')) {
      // `deb [option=value …] URI SUITE COMPONENT…`
      const words = line
        .replace(/\[[^\]]*\]/, ' ')
        .trim()
        .split(/\s+/);
      const [type, uri, suite = ''] = words;
      if (type === 'deb' && uri && isArchive(uri, [suite])) return uri.replace(/\/+$/, '');
    }
    for (const stanza of text.split(/\n\s*\n/)) {
      const field = (name: string): string[] =>
        new RegExp(`^${name}:\\s*(.*)$`, 'mi').exec(stanza)?.[1]?.trim().split(/\s+/) ?? [];
      if (!field('Types').includes('deb')) continue;
      const uri = field('URIs').find((u) => isArchive(u, field('Suites')));
      if (uri) return uri.replace(/\/+$/, '');
    }
  }
  return undefined;
}

function aptSources(): string[] {
  const files = ['/etc/apt/sources.list'];
  const dir = '/etc/apt/sources.list.d';
  if (fs.existsSync(dir)) {
    for (const name of fs.readdirSync(dir).sort()) {
      if (/\.(list|sources)$/.test(name)) files.push(path.join(dir, name));
    }
  }
  return files.flatMap((file) => {
    try {
      return [fs.readFileSync(file, 'utf8')];
    } catch {
      return [];
    }
  });
}

/** SSHFIX_LAB_DEBIAN_MIRROR, else the mirror apt uses here. */
export function debianMirror(): string | undefined {
  return process.env.SSHFIX_LAB_DEBIAN_MIRROR ?? debianMirrorOf(aptSources());
}

/**
 * Builds the root unless it exists, and returns its path. Waits for a build
 * another process is running. `onBuild` is told when this call starts one.
 */
export async function ensureSystemdRoot(
  options: { cacheDir?: string; onBuild?: (root: string) => void } = {},
): Promise<string> {
  const cacheDir = options.cacheDir ?? systemdRootCacheDir();
  const root = systemdRootPath(cacheDir);
  if (fs.existsSync(root)) return root;
  const mirror = debianMirror();
  if (mirror === undefined) {
    throw new Error(
      'cannot build the systemd lab root: no Debian mirror in /etc/apt/sources.list*; set SSHFIX_LAB_DEBIAN_MIRROR',
    );
  }
  fs.mkdirSync(cacheDir, { recursive: true });
  options.onBuild?.(root);
  const lock = path.join(cacheDir, `${SUITE}.lock`);
  const args = [lock, 'sh', '-c', BUILD_SCRIPT, 'build', root, mirror, path.join(cacheDir, 'debs')];
  await new Promise<void>((resolve, reject) => {
    const child = spawn('flock', args, {
      cwd: '/',
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' },
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-4000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), BUILD_TIMEOUT_MS);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot build the systemd lab root: ${error.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0 && fs.existsSync(root)) resolve();
      else reject(new Error(`building the systemd lab root ${root} failed (exit ${code}): ${stderr.trim()}`));
    });
  });
  return root;
}
