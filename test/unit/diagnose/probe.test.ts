/** The probe against small local TCP servers that behave like sshd, libwrap, MaxStartups and a firewall reset. */
import net from 'node:net';
import { burst, probeHost, rawAttempt } from '../../../src/diagnose/probe.js';

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

describe('probeHost', () => {
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
