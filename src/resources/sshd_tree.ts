/**
 * Reading sshd's configuration tree through a HostView, shared by every
 * resource that needs it (sshd_config edits it; firewall takes sshd's ports
 * from it). The reads are cached per host, so the tree costs one read
 * whoever asks first.
 */
import { effectiveSetting, formatAt, loadSshdTree, type SshdTree } from '../formats/sshd_effective.js';
import { errorMessage } from '../errors.js';
import type { SshdPorts } from '../formats/firewall_probe.js';
import type { HostView } from './types.js';

export const DEFAULT_SSHD_CONFIG = '/etc/ssh/sshd_config';
export const DEFAULT_DROP_INS = '/etc/ssh/sshd_config.d/*.conf';

/**
 * The tree of `mainPath`. The stock Debian/Ubuntu drop-in directory is read
 * speculatively with the main file, so the usual tree costs one round trip
 * instead of two.
 */
export async function readSshdTree(
  host: HostView,
  mainPath: string = DEFAULT_SSHD_CONFIG,
): Promise<SshdTree> {
  const speculative = host.globFiles(DEFAULT_DROP_INS).catch(() => []);
  const tree = await loadSshdTree(mainPath, host);
  await speculative;
  return tree;
}

/**
 * The ports sshd listens on, from its configuration: every global `Port`
 * line counts (they accumulate), 22 when there is none. The same answer as
 * `sshd -T`'s `port` lines without starting sshd on every host.
 */
export function sshdPortsOf(tree: SshdTree): SshdPorts {
  const setting = effectiveSetting(tree, 'Port');
  if (setting.contributing.length === 0) return { ports: [22] };
  const ports: number[] = [];
  for (const occurrence of setting.contributing) {
    const port = Number(occurrence.args[0]);
    if (occurrence.args.length !== 1 || !Number.isInteger(port) || port < 1 || port > 65535)
      return { error: `${formatAt(occurrence)}: Port ${occurrence.args.join(' ')} is not a port number` };
    ports.push(port);
  }
  return { ports: [...new Set(ports)] };
}

export async function readSshdPorts(host: HostView): Promise<SshdPorts> {
  try {
    return sshdPortsOf(await readSshdTree(host));
  } catch (error) {
    return { error: errorMessage(error) };
  }
}
