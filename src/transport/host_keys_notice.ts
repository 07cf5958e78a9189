/**
 * OpenSSH's sshd tells every client, right after authentication, which host
 * keys it has (the "hostkeys-00@openssh.com" global request, for the client
 * option UpdateHostKeys). ssh2 answers it, always, with a
 * "hostkeys-prove-00@openssh.com" request: sshd then signs the session with
 * every host key it has (an RSA signature among them) and ssh2 verifies each
 * signature, only to emit a 'hostkeys' event nobody here listens to. The host
 * key that matters was already checked against known_hosts during key
 * exchange; sshfix never learns keys from this notice.
 *
 * Measured on 100 lab hosts, that exchange was ~2 ms of controller CPU per
 * connection (a fifth of the per-host cost of a run that changes nothing) and
 * the same again in sshd. So the notice is acknowledged as OpenSSH's own
 * client does when UpdateHostKeys is off: not proved.
 *
 * This reaches into ssh2's private protocol object (ssh2 has no option for
 * it). If that object ever changes shape, nothing is patched and ssh2's
 * default behaviour stays: slower, never wrong.
 */

/** The notice's name (PROTOCOL, section 2.5). */
export const HOST_KEYS_NOTICE = 'hostkeys-00@openssh.com';

type GlobalRequestHandler = (packet: unknown, name: string, wantReply: boolean, data: unknown) => void;

interface PrivateProtocol {
  _handlers?: { GLOBAL_REQUEST?: GlobalRequestHandler };
  requestSuccess?: () => void;
}

/**
 * Makes `client` acknowledge sshd's host-key notice without proving the keys.
 * Call between `client.connect()` (which creates the protocol object) and the
 * end of authentication. Returns whether the hook was installed.
 */
export function skipHostKeyProof(client: object): boolean {
  const protocol = (client as { _protocol?: PrivateProtocol })._protocol;
  const handlers = protocol?._handlers;
  const original = handlers?.GLOBAL_REQUEST;
  if (protocol === undefined || handlers === undefined || typeof original !== 'function') return false;
  if (typeof protocol.requestSuccess !== 'function') return false;
  handlers.GLOBAL_REQUEST = (packet, name, wantReply, data) => {
    if (name !== HOST_KEYS_NOTICE) {
      original(packet, name, wantReply, data);
      return;
    }
    // sshd sends it with want-reply false; answer as ssh2 would if asked.
    if (wantReply) protocol.requestSuccess?.();
  };
  return true;
}
