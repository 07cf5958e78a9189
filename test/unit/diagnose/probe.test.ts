/** The probe against small local TCP servers that behave like sshd, libwrap, MaxStartups and a firewall reset. */
import net from 'node:net';
import { burst, measureRefusal, probeHost, rawAttempt } from '../../../src/diagnose/probe.js';

type Behaviour = (socket: net.Socket, index: number) => void;

async function server(behaviour: Behaviour): Promise<{ port: number; close: () => Promise<void> }> {
  let count = 0;
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    behaviour(socket, count++);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        srv.close(() => resolve());
      }),
  };
}

const OPTIONS = { connectTimeoutMs: 2000, bannerTimeoutMs: 1500 };
const BANNER = 'SSH-2.0-OpenSSH_9.2p1\r\n';

describe('rawAttempt', () => {
  it('reads the banner, skipping lines before it (RFC 4253 4.2)', async () => {
    const s = await server((socket) => socket.write(`hello\r\n${BANNER}`));
    const { result, release } = rawAttempt('127.0.0.1', s.port, OPTIONS);
    const r = await result;
    release();
    await s.close();
    expect(r.tcp.outcome).toBe('connected');
    expect(r.tcp.localAddress).toBe('127.0.0.1');
    expect(r.banner).toMatchObject({ outcome: 'banner', banner: 'SSH-2.0-OpenSSH_9.2p1' });
  });

  it('tells a close (MaxStartups) from a reset (firewall tcp-reset) and measures the pause (libwrap)', async () => {
    const closing = await server((socket) => socket.end());
    const resetting = await server((socket) => socket.resetAndDestroy());
    const pausing = await server((socket) => setTimeout(() => socket.end(), 600));
    const attempt = (port: number) => rawAttempt('127.0.0.1', port, OPTIONS).result;
    const [closed, reset, paused] = await Promise.all([
      attempt(closing.port),
      attempt(resetting.port),
      attempt(pausing.port),
    ]);
    await Promise.all([closing, resetting, pausing].map((s) => s.close()));
    expect(closed.banner?.outcome).toBe('closed');
    expect(reset.banner?.outcome).toBe('reset');
    expect(paused.banner?.outcome).toBe('closed');
    expect(paused.banner!.ms).toBeGreaterThanOrEqual(550);
    expect(closed.banner!.ms).toBeLessThan(500);
  });

  it('times out waiting for a banner that never comes', async () => {
    const silent = await server(() => undefined);
    const r = await rawAttempt('127.0.0.1', silent.port, { connectTimeoutMs: 1000, bannerTimeoutMs: 300 })
      .result;
    await silent.close();
    expect(r.banner).toMatchObject({ outcome: 'timeout' });
  });

  it('reports a refused connection', async () => {
    const s = await server(() => undefined);
    const port = s.port;
    await s.close();
    const r = await rawAttempt('127.0.0.1', port, OPTIONS).result;
    expect(r.tcp.outcome).toBe('refused');
    expect(r.banner).toBeUndefined();
  });
});

describe('burst', () => {
  it('counts connections served and dropped while all are held open at once', async () => {
    // Like MaxStartups 2:100:2 — the first two get a banner, later ones are closed at once.
    const s = await server((socket, index) => (index < 2 ? socket.write(BANNER) : socket.end()));
    const b = await burst('127.0.0.1', s.port, { connections: 6, windowMs: 2000, connectTimeoutMs: 1000 });
    await s.close();
    expect(b).toMatchObject({ connections: 6, banners: 2, closedBeforeBanner: 4, resets: 0, refused: 0 });
  });

  it('is bounded in count whatever is asked', async () => {
    let accepted = 0;
    const s = await server((socket) => {
      accepted++;
      socket.write(BANNER);
    });
    const b = await burst('127.0.0.1', s.port, { connections: 500, windowMs: 1000, connectTimeoutMs: 1000 });
    await s.close();
    expect(b.connections).toBe(30);
    expect(accepted).toBe(30);
  });
});

/** A port nothing listens on: the kernel answers with a TCP reset. */
async function closedPort(): Promise<number> {
  const s = await server(() => undefined);
  await s.close();
  return s.port;
}

/** A fake InDestUnreachs counter that rises by `rise(i)` during the i-th attempt (read before, then after). */
function counter(rise: (attempt: number) => number | null): () => number | null {
  let reads = 0;
  let value = 100;
  return () => {
    const attempt = Math.floor(reads / 2);
    const after = reads++ % 2 === 1;
    const delta = after ? rise(attempt) : 0;
    if (delta === null) return null;
    value += delta;
    return value;
  };
}

describe('measureRefusal', () => {
  it('repeats the refused connect three times and records the counter’s rise during each', async () => {
    const port = await closedPort();
    const icmp = await measureRefusal(
      '127.0.0.1',
      port,
      { connectTimeoutMs: 1000 },
      counter(() => 1),
    );
    const rst = await measureRefusal(
      '127.0.0.1',
      port,
      { connectTimeoutMs: 1000 },
      counter(() => 0),
    );
    const noisy = await measureRefusal(
      '127.0.0.1',
      port,
      { connectTimeoutMs: 1000 },
      counter((i) => (i === 1 ? 2 : 0)),
    );
    expect(icmp).toEqual({ answer: 'icmp', attempts: 3, icmpDeltas: [1, 1, 1] });
    expect(rst).toEqual({ answer: 'rst', attempts: 3, icmpDeltas: [0, 0, 0] });
    expect(noisy).toEqual({ answer: 'rst', attempts: 3, icmpDeltas: [0, 2, 0] });
  });

  it('is unknown when the counter cannot be read (not Linux)', async () => {
    const port = await closedPort();
    const r = await measureRefusal('127.0.0.1', port, { connectTimeoutMs: 1000 }, () => null);
    expect(r).toEqual({ answer: 'unknown', attempts: 3, icmpDeltas: [null, null, null] });
  });

  it('leaves out repeats that were not refused (sshd came back meanwhile)', async () => {
    const s = await server((socket) => socket.write(BANNER));
    const r = await measureRefusal(
      '127.0.0.1',
      s.port,
      { connectTimeoutMs: 1000 },
      counter(() => 1),
    );
    await s.close();
    expect(r).toEqual({ answer: 'unknown', attempts: 3, icmpDeltas: [] });
  });
});

describe('probeHost', () => {
  it('when refused: records what refused it, and repeats the connect from the other sources', async () => {
    const port = await closedPort();
    const e = await probeHost({ host: '127.0.0.1', port }, { ...OPTIONS, alsoFrom: ['127.0.0.2'] });
    expect(e.tcp?.outcome).toBe('refused');
    expect(e.tcp?.refusal?.attempts).toBe(3);
    expect(e.alternates).toEqual([
      { source: '127.0.0.2', tcp: expect.objectContaining({ outcome: 'refused' }) },
    ]);
  });

  it('after a banner: no repeats, from here or elsewhere', async () => {
    const s = await server((socket) => socket.write(BANNER));
    const e = await probeHost(
      { host: '127.0.0.1', port: s.port },
      { connectTimeoutMs: 300, bannerTimeoutMs: 300, alsoFrom: ['127.0.0.2'] },
    );
    await s.close();
    expect(e.banner?.outcome).toBe('banner');
    expect(e.tcp?.refusal).toBeUndefined();
    expect(e.alternates).toBeUndefined();
  });

  it('a banner from another source while ours is closed before it', async () => {
    // Like TCP wrappers denying 127.0.0.1 only.
    const s = await server((socket) =>
      socket.remoteAddress === '127.0.0.1' ? socket.end() : socket.write(BANNER),
    );
    const e = await probeHost(
      { host: '127.0.0.1', port: s.port, sourceAddress: '127.0.0.1' },
      { ...OPTIONS, alsoFrom: ['127.0.0.2'] },
    );
    await s.close();
    expect(e.banner?.outcome).toBe('closed');
    expect(e.tcp?.refusal).toBeUndefined();
    expect(e.alternates?.[0]).toMatchObject({
      source: '127.0.0.2',
      banner: { outcome: 'banner', banner: 'SSH-2.0-OpenSSH_9.2p1' },
    });
  });

  it('stops at the first step that fails, and records DNS', async () => {
    const s = await server((socket) => socket.end());
    const e = await probeHost(
      { host: '127.0.0.1', port: s.port },
      { ...OPTIONS, burst: { connections: 3, windowMs: 500 } },
    );
    await s.close();
    expect(e.dns.addresses).toEqual(['127.0.0.1']);
    expect(e.banner?.outcome).toBe('closed');
    expect(e.kex).toBeUndefined();
    expect(e.burst).toBeUndefined();
  });
});

describe('measureRefusal on many hosts at once', () => {
  it('never opens two counter windows at once: each before/after pair is read with no other read between', async () => {
    const port = await closedPort();
    const reads: string[] = [];
    const reader = (id: string) => (): number => {
      reads.push(id);
      return 0;
    };
    const results = await Promise.all(
      ['a', 'b', 'c', 'd'].map((id) =>
        measureRefusal('127.0.0.1', port, { connectTimeoutMs: 1000 }, reader(id)),
      ),
    );
    expect(results.map((r) => r.answer)).toEqual(['rst', 'rst', 'rst', 'rst']);
    expect(reads).toHaveLength(4 * 3 * 2);
    const pairs = Array.from({ length: reads.length / 2 }, (_, i) => [reads[2 * i], reads[2 * i + 1]]);
    for (const [before, after] of pairs) expect(after).toBe(before);
  });
});
