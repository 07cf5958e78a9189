/**
 * One ICMP measurement window at a time on this machine.
 *
 * The InDestUnreachs counter that tells an ICMP refusal from a TCP reset
 * (refusal.ts) counts every ICMP destination-unreachable the whole network
 * namespace receives. Two windows open at once (hosts probed in parallel,
 * or two sshfix runs) read each other's answers: a host whose closed port
 * answered with a reset was named a fail2ban ban because a banned host's
 * ICMP arrived during its window. Node cannot see ICMP per socket (that
 * needs IP_RECVERR on the socket), so the windows are serialised instead,
 * and only they: a window is one connect to a host on the same network,
 * about a round trip, while the rest of every probe stays parallel.
 *
 * The lock is held in two places: a queue inside this process, and an
 * abstract Unix socket name across processes. The abstract socket namespace
 * is per network namespace, exactly the scope of the counter, and the kernel
 * frees the name when its holder exits, so a crashed run never leaves a
 * stale lock behind.
 */
import net from 'node:net';

/** The name bound while a window is open; sshfix runs in one network namespace share it. */
export const WINDOW_LOCK_NAME = 'sshfix-icmp-window';
/** How long to wait for another process's window before measuring without the lock (readings then say unknown). */
export const WINDOW_LOCK_WAIT_MS = 30_000;
const RETRY_MS = { min: 2, max: 20 };

let queue: Promise<void> = Promise.resolve();

/** Binds the abstract name: the server is the held lock; null when it cannot be had (taken until the deadline, or no abstract sockets here). */
async function bindName(name: string, deadline: number): Promise<net.Server | 'unsupported' | null> {
  for (;;) {
    const result = await new Promise<net.Server | 'busy' | 'unsupported'>((resolve) => {
      const server = net.createServer();
      server.once('error', (error: NodeJS.ErrnoException) =>
        resolve(error.code === 'EADDRINUSE' ? 'busy' : 'unsupported'),
      );
      server.listen({ path: `\0${name}` }, () => resolve(server));
    });
    if (result !== 'busy') return result;
    if (performance.now() >= deadline) return null;
    const pause = RETRY_MS.min + Math.random() * (RETRY_MS.max - RETRY_MS.min);
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
}

/**
 * Runs `measure` with no other window open on this machine. `measure` gets
 * false when the lock could not be had in time: its readings may then be
 * disturbed and must not be trusted.
 */
export async function exclusiveWindow<T>(
  measure: (exclusive: boolean) => Promise<T>,
  options: { name?: string; waitMs?: number } = {},
): Promise<T> {
  const previous = queue;
  let releaseQueue!: () => void;
  queue = new Promise((resolve) => (releaseQueue = resolve));
  await previous;
  try {
    const deadline = performance.now() + (options.waitMs ?? WINDOW_LOCK_WAIT_MS);
    const held = await bindName(options.name ?? WINDOW_LOCK_NAME, deadline);
    // Without abstract sockets (not Linux) there is no counter to protect either: the queue suffices.
    try {
      return await measure(held !== null);
    } finally {
      if (held !== null && held !== 'unsupported') await new Promise((resolve) => held.close(resolve));
    }
  } finally {
    releaseQueue();
  }
}
