import { connectRetryingLate, FIRST_CONNECT_ATTEMPTS } from '../../../src/executor/run.js';
import type { Connection, ConnectionSpec } from '../../../src/transport/types.js';
import { HandshakeTimeoutError, HostKeyError, UnreachableError } from '../../../src/transport/types.js';

const spec = { hostName: 'h1' } as ConnectionSpec;
const conn = { hostName: 'h1' } as Connection;

/** A connect that fails with the given errors in turn, then succeeds. */
function connectFailing(errors: Error[]): { connect: () => Promise<Connection>; calls: () => number } {
  let calls = 0;
  return {
    connect: () => {
      const error = errors[calls++];
      return error === undefined ? Promise.resolve(conn) : Promise.reject(error);
    },
    calls: () => calls,
  };
}

const late = () => new HandshakeTimeoutError('h1', 'no SSH handshake within 10000 ms');

describe("a host's first connection", () => {
  test('is retried when its handshake was late, and says how often', async () => {
    const fake = connectFailing([late(), late()]);
    await expect(connectRetryingLate(fake.connect, spec)).resolves.toEqual({ conn, retries: 2 });
    expect(fake.calls()).toBe(3);
  });

  test(`gives up after ${FIRST_CONNECT_ATTEMPTS} late handshakes with the last error`, async () => {
    const fake = connectFailing(Array.from({ length: FIRST_CONNECT_ATTEMPTS }, late));
    await expect(connectRetryingLate(fake.connect, spec)).rejects.toBeInstanceOf(HandshakeTimeoutError);
    expect(fake.calls()).toBe(FIRST_CONNECT_ATTEMPTS);
  });

  test('is not retried when refused or when the host key is wrong: that would fail again', async () => {
    for (const error of [
      new UnreachableError('h1', 'connection refused', 'ECONNREFUSED'),
      new HostKeyError('h1', 'host key mismatch'),
    ]) {
      const fake = connectFailing([error]);
      await expect(connectRetryingLate(fake.connect, spec)).rejects.toBe(error);
      expect(fake.calls()).toBe(1);
    }
  });
});
