/**
 * Files every connection of a run reads (known_hosts, the private key) are
 * parsed once per version of the file, not once per host: on a fleet that
 * is the difference between O(hosts) and O(hosts²) work. A version is the
 * file's inode, size and mtime, so an edit (or an accepted new host key) is
 * seen by the next connection.
 */
import { statSync } from 'node:fs';

interface Entry {
  version: string;
  value: Promise<unknown>;
}

const cache = new Map<string, Entry>();

/**
 * Synchronous: a stat takes microseconds, but through libuv's thread pool
 * its answer waits for the event loop's next turn, and on a controller
 * starved of CPU that wait reached 1.4 s at the start of each confirmation's
 * new connection, time taken from the host's rollback window.
 */
function versionOf(file: string): string {
  try {
    const s = statSync(file);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    // Missing or unreadable: the loader reports it; a later, readable version is a new key.
    return 'unavailable';
  }
}

/** `load(file)`, reused while the file is unchanged; `kind` keeps different parses of one file apart. */
export async function cachedFileParse<T>(
  kind: string,
  file: string,
  load: (file: string) => Promise<T>,
): Promise<T> {
  const key = `${kind}\0${file}`;
  const version = versionOf(file);
  const hit = cache.get(key);
  if (hit && hit.version === version) return hit.value as Promise<T>;
  const value = load(file);
  cache.set(key, { version, value });
  // A failed load is not kept: the next connection tries again (and reports its own error).
  value.catch(() => {
    if (cache.get(key)?.value === value) cache.delete(key);
  });
  return value;
}
