/**
 * Whether the running sshd has loaded the configuration tree on disk (see
 * formats/sshd_loaded.ts), asked through a HostView. The first probe is sent
 * with the tree's own first read (it needs only the main path, and the stock
 * drop-in directory is covered speculatively), so it costs no round trip of
 * its own; files the tree Includes from elsewhere take one more.
 */
import path from 'node:path';
import {
  parseSshdLoadProbe,
  pendingReload,
  pendingReloadMessage,
  sshdLoadProbeScript,
  type SshdLoadFacts,
} from '../formats/sshd_loaded.js';
import { resolveIncludePattern, type SshdTree } from '../formats/sshd_effective.js';
import { DEFAULT_DROP_INS } from './sshd_tree.js';
import type { HostView } from './types.js';

/** Starts the probe for the tree of `mainPath`; undefined when the host could not tell. */
export function probeSshdLoad(host: HostView, mainPath: string): Promise<SshdLoadFacts | undefined> {
  const script = sshdLoadProbeScript([mainPath, path.posix.dirname(DEFAULT_DROP_INS)], [DEFAULT_DROP_INS]);
  return host.probe(script).then(
    (result) => (result.exitCode === 0 ? parseSshdLoadProbe(result.stdout) : undefined),
    () => undefined,
  );
}

/** The directories Include globs read (a drop-in removed from one changes it); only those without glob characters. */
function includeDirectories(tree: SshdTree): string[] {
  return tree.occurrences
    .filter((o) => o.key === 'include')
    .flatMap((o) => o.args.map((pattern) => path.posix.dirname(resolveIncludePattern(pattern))))
    .filter((dir) => !/[*?[]/.test(dir));
}

/**
 * Why sshd must be reloaded although no file needs changing, or undefined:
 * some file of `tree` changed after the running sshd read its configuration.
 */
export async function sshdReloadPending(
  host: HostView,
  probed: Promise<SshdLoadFacts | undefined>,
  tree: SshdTree,
): Promise<string | undefined> {
  const facts = await probed;
  if (!facts?.listener) return undefined;
  const paths = [...tree.files.keys(), ...includeDirectories(tree)];
  const missing = paths.filter((p) => !facts.changed.has(p));
  if (missing.length > 0) {
    const more = await host.probe(sshdLoadProbeScript(missing)).catch(() => undefined);
    if (more?.exitCode === 0)
      for (const [p, time] of parseSshdLoadProbe(more.stdout).changed) facts.changed.set(p, time);
  }
  const pending = pendingReload(facts, tree.mainPath, paths);
  return pending ? pendingReloadMessage(pending) : undefined;
}
