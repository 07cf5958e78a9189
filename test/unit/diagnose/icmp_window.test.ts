/** The ICMP measurement window is exclusive across processes of this network namespace. */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { exclusiveWindow } from '../../../src/diagnose/icmp_window.js';

/** Another sshfix run, as far as the lock is concerned: it holds the name until told to let go. */
async function otherRunHolding(
  name: string,
): Promise<{ child: ChildProcessWithoutNullStreams; exited: Promise<unknown> }> {
  const script = `
    const server = require('node:net').createServer();
    server.listen({ path: '\\0' + ${JSON.stringify(name)} }, () => console.log('held'));
    process.stdin.once('data', () => server.close(() => { console.log('released'); process.exit(0); }));
  `;
  const child = spawn(process.execPath, ['-e', script]);
  const exited = once(child, 'exit');
  child.stdout.setEncoding('utf8');
  const [first] = (await once(child.stdout, 'data')) as [string];
  expect(first.trim()).toBe('held');
  return { child, exited };
}

const uniqueName = (): string => `sshfix-test-window-${process.pid}-${Math.random().toString(36).slice(2)}`;

describe('exclusiveWindow', () => {
  it('waits while another process holds the window, and opens once it is released', async () => {
    const name = uniqueName();
    const { child: other, exited } = await otherRunHolding(name);
    const events: string[] = [];
    const measured = exclusiveWindow(
      async (exclusive) => {
        events.push(`measured exclusive=${exclusive}`);
      },
      { name },
    );
    // Give the waiting side time to try: while the other run holds the window, nothing is measured.
    await new Promise((resolve) => setTimeout(resolve, 200));
    events.push('released');
    other.stdin.write('go\n');
    await measured;
    await exited;
    expect(events).toEqual(['released', 'measured exclusive=true']);
  });

  it('says the window was not exclusive when the other process keeps it past the wait', async () => {
    const name = uniqueName();
    const { child: other, exited } = await otherRunHolding(name);
    try {
      const exclusive = await exclusiveWindow(async (e) => e, { name, waitMs: 50 });
      expect(exclusive).toBe(false);
    } finally {
      other.stdin.write('go\n');
      await exited;
    }
  });

  it('frees the name after each window', async () => {
    const name = uniqueName();
    expect(await exclusiveWindow(async (e) => e, { name })).toBe(true);
    expect(await exclusiveWindow(async (e) => e, { name, waitMs: 0 })).toBe(true);
  });
});
