/**
 * sshd's host-key notice after authentication: acknowledged, never proved
 * (proving costs an RSA signature in sshd and its verification here, per
 * connection), while every other global request keeps ssh2's handling. Runs
 * against ssh2's real protocol object.
 */
import { jest } from '@jest/globals';
import { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import { HOST_KEYS_NOTICE, skipHostKeyProof } from '../../../src/transport/host_keys_notice.js';

type Handler = (packet: unknown, name: string, wantReply: boolean, data: unknown) => void;
interface ProtocolInternals {
  _handlers: { GLOBAL_REQUEST: Handler };
  openssh_hostKeysProve: (keys: unknown) => void;
  requestSuccess: () => void;
  requestFailure: () => void;
}

/**
 * A client whose protocol exists (connect() creates it) on a socket that
 * swallows what it writes and never answers, talking to what says it is
 * OpenSSH (ssh2 proves keys only to OpenSSH servers).
 */
function connectingClient(): { client: InstanceType<typeof ssh2.Client>; protocol: ProtocolInternals } {
  const client = new ssh2.Client();
  client.on('error', () => undefined);
  const sock = new Duplex({
    read: () => undefined,
    write: (_chunk, _encoding, done) => done(),
  });
  client.connect({ sock, username: 'root', readyTimeout: 60_000 });
  (client as unknown as { _remoteVer: string })._remoteVer = 'OpenSSH_9.2p1';
  const protocol = (client as unknown as { _protocol: ProtocolInternals })._protocol;
  return { client, protocol };
}

/** A host key blob as sshd lists it: string "ssh-ed25519", string 32-byte key. */
function ed25519Blob(): Buffer {
  const type = Buffer.from('ssh-ed25519');
  const key = Buffer.alloc(32, 7);
  const out = Buffer.alloc(4 + type.length + 4 + key.length);
  out.writeUInt32BE(type.length, 0);
  type.copy(out, 4);
  out.writeUInt32BE(key.length, 4 + type.length);
  key.copy(out, 8 + type.length);
  return out;
}

describe('skipHostKeyProof', () => {
  test('ssh2 on its own proves the notified keys (what the hook exists to avoid)', () => {
    const { client, protocol } = connectingClient();
    const prove = jest.spyOn(protocol, 'openssh_hostKeysProve').mockImplementation(() => undefined);
    protocol._handlers.GLOBAL_REQUEST(null, HOST_KEYS_NOTICE, false, [ed25519Blob()]);
    expect(prove).toHaveBeenCalledTimes(1);
    client.destroy();
  });

  test('with the hook the notice is acknowledged without a proof request', () => {
    const { client, protocol } = connectingClient();
    expect(skipHostKeyProof(client)).toBe(true);
    const prove = jest.spyOn(protocol, 'openssh_hostKeysProve').mockImplementation(() => undefined);
    const success = jest.spyOn(protocol, 'requestSuccess').mockImplementation(() => undefined);
    protocol._handlers.GLOBAL_REQUEST(null, HOST_KEYS_NOTICE, false, [ed25519Blob()]);
    expect(prove).not.toHaveBeenCalled();
    expect(success).not.toHaveBeenCalled();
    protocol._handlers.GLOBAL_REQUEST(null, HOST_KEYS_NOTICE, true, [ed25519Blob()]);
    expect(success).toHaveBeenCalledTimes(1);
    expect(prove).not.toHaveBeenCalled();
    client.destroy();
  });

  test('other global requests keep ssh2 handling (a keepalive that wants a reply is refused)', () => {
    const { client, protocol } = connectingClient();
    skipHostKeyProof(client);
    const failure = jest.spyOn(protocol, 'requestFailure').mockImplementation(() => undefined);
    protocol._handlers.GLOBAL_REQUEST(null, 'keepalive@openssh.com', true, undefined);
    expect(failure).toHaveBeenCalledTimes(1);
    client.destroy();
  });

  test('a client without the private protocol object is left alone', () => {
    expect(skipHostKeyProof({})).toBe(false);
    expect(skipHostKeyProof({ _protocol: { _handlers: {} } })).toBe(false);
  });
});
