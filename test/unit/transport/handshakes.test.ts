import { HandshakeWindow, type HandshakeTicket } from '../../../src/transport/handshakes.js';

/** Lets granted acquisitions run their continuations. */
const settle = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

const LIMIT_MS = 10_000;
const quick = { kind: 'completed', tookMs: 100 } as const;
const slow = { kind: 'completed', tookMs: 6000 } as const;

/** A window and the tickets it has granted, in order; the test finishes them as it likes. */
function drive(options = { initial: 4, min: 2, max: 64, slowFraction: 0.25 }) {
  const window = new HandshakeWindow(options);
  const granted: { name: string; ticket: HandshakeTicket }[] = [];
  const request = (name: string, extra: { urgent?: boolean; waitMs?: number } = {}) =>
    window.acquire({ timeLimitMs: LIMIT_MS, ...extra }).then((ticket) => void granted.push({ name, ticket }));
  return { window, granted, request };
}

describe('HandshakeWindow', () => {
  it('lets `initial` handshakes start and the others wait for a slot', async () => {
    const { window, granted, request } = drive();
    for (let i = 0; i < 10; i++) void request(`h${i}`);
    await settle();
    expect(granted.map((g) => g.name)).toEqual(['h0', 'h1', 'h2', 'h3']);
    expect(window.inFlight).toBe(4);
    expect(window.waiting).toBe(6);
  });

  it('grows by one per quick completion until the first slow one (slow start)', async () => {
    const { window, granted, request } = drive();
    for (let i = 0; i < 20; i++) void request(`h${i}`);
    await settle();
    granted[0]!.ticket.finish(quick);
    await settle();
    // One finished, the window grew from 4 to 5: two more started.
    expect(window.limit).toBe(5);
    expect(granted).toHaveLength(6);
    granted[1]!.ticket.finish(quick);
    granted[2]!.ticket.finish(quick);
    await settle();
    expect(window.limit).toBe(7);
    expect(window.inFlight).toBe(7);
  });

  it('halves on a slow completion, once for the handshakes that were in flight together', async () => {
    const { window, granted, request } = drive({ initial: 8, min: 2, max: 64, slowFraction: 0.25 });
    for (let i = 0; i < 30; i++) void request(`h${i}`);
    await settle();
    expect(granted).toHaveLength(8);
    // All eight ran together and all were slow: one cut, not three.
    granted[0]!.ticket.finish(slow);
    granted[1]!.ticket.finish({ kind: 'timed-out' });
    granted[2]!.ticket.finish(slow);
    await settle();
    expect(window.limit).toBe(4);
    // Five of the first eight still hold slots above the new limit: nothing new starts.
    expect(granted).toHaveLength(8);
    for (const g of granted.slice(3, 8)) g.ticket.finish(slow);
    await settle();
    expect(window.limit).toBe(4);
    expect(granted).toHaveLength(12);
    // One started after the cut that is slow too cuts again.
    granted[8]!.ticket.finish({ kind: 'timed-out' });
    await settle();
    expect(window.limit).toBe(2);
  });

  it('after a cut, grows by one slot per window of quick completions (congestion avoidance)', async () => {
    const { window, granted, request } = drive({ initial: 8, min: 2, max: 64, slowFraction: 0.25 });
    for (let i = 0; i < 40; i++) void request(`h${i}`);
    await settle();
    granted[0]!.ticket.finish(slow);
    for (const g of granted.slice(1, 8)) g.ticket.finish(quick);
    await settle();
    // 8 -> 4 at the cut, then seven quick completions at about 1/4 each: 5, not 11.
    expect(window.limit).toBe(5);
  });

  it('does not change for handshakes that failed for other reasons', async () => {
    const { window, granted, request } = drive();
    for (let i = 0; i < 10; i++) void request(`h${i}`);
    await settle();
    for (const g of granted.slice(0, 4)) g.ticket.finish({ kind: 'failed' });
    await settle();
    expect(window.limit).toBe(4);
    expect(granted).toHaveLength(8);
  });

  it('stays within min and max', async () => {
    const { window, granted, request } = drive({ initial: 3, min: 2, max: 5, slowFraction: 0.25 });
    for (let i = 0; i < 40; i++) void request(`h${i}`);
    await settle();
    for (let i = 0; i < 10; i++) {
      granted[i]!.ticket.finish(quick);
      await settle();
    }
    expect(window.limit).toBe(5);
    // Each cut is by a handshake started after the previous cut.
    for (let i = 10; i < 20; i++) {
      granted[granted.length - 1]!.ticket.finish({ kind: 'timed-out' });
      await settle();
    }
    expect(window.limit).toBe(2);
  });

  it('lets urgent handshakes (confirmations) start before first handshakes already waiting, in their order', async () => {
    const { granted, request } = drive({ initial: 2, min: 2, max: 64, slowFraction: 0.25 });
    void request('first-a');
    void request('first-b');
    void request('first-c');
    void request('first-d');
    void request('confirm-1', { urgent: true });
    void request('confirm-2', { urgent: true });
    await settle();
    expect(granted.map((g) => g.name)).toEqual(['first-a', 'first-b']);
    granted[0]!.ticket.finish({ kind: 'failed' });
    granted[1]!.ticket.finish({ kind: 'failed' });
    await settle();
    expect(granted.map((g) => g.name).slice(2)).toEqual(['confirm-1', 'confirm-2']);
    granted[2]!.ticket.finish({ kind: 'failed' });
    await settle();
    expect(granted.map((g) => g.name).slice(4)).toEqual(['first-c']);
  });

  it('ends a wait that has a limit, and the waiter no longer takes a slot', async () => {
    const { window, granted, request } = drive({ initial: 2, min: 2, max: 64, slowFraction: 0.25 });
    void request('a');
    void request('b');
    await settle();
    await expect(request('late', { urgent: true, waitMs: 0 })).rejects.toThrow(
      'no slot was free within 0 ms',
    );
    granted[0]!.ticket.finish({ kind: 'failed' });
    await settle();
    expect(window.inFlight).toBe(1);
    expect(granted).toHaveLength(2);
  });

  it('counts a finish once', async () => {
    const { window, granted, request } = drive();
    void request('a');
    await settle();
    granted[0]!.ticket.finish(quick);
    granted[0]!.ticket.finish(quick);
    expect(window.limit).toBe(5);
    expect(window.inFlight).toBe(0);
  });
});
