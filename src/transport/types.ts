/**
 * The transport boundary: everything sshfix does on a host goes through a
 * Connection. Scripts travel on the channel's stdin (`sh -s`), never on the
 * remote command line, so values from playbooks never reach `ps` output and
 * never need a second layer of quoting.
 */

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** Exit status of the remote shell; null when it died by a signal. */
  exitCode: number | null;
}

export interface RunOptions {
  /** Data appended to stdin after the script (rarely needed: scripts carry their own here-docs). */
  timeoutMs?: number;
}

export interface Connection {
  /** Inventory name of the host. */
  readonly hostName: string;
  /** Runs a POSIX sh script as the login user, or as root when the host uses become. */
  runScript(script: string, options?: RunOptions): Promise<ExecResult>;
  close(): Promise<void>;
  /**
   * How this connection authenticated, when the transport knows: lockout
   * guards refuse `PasswordAuthentication no` for a password login.
   */
  readonly authMethod?: 'publickey' | 'password' | 'keyboard-interactive' | 'local';
}

/** How to reach one host; built from inventory variables and CLI flags. */
export interface ConnectionSpec {
  hostName: string;
  connection: 'ssh' | 'local';
  address: string;
  port: number;
  user: string;
  privateKeyFile?: string;
  /** Login password (secret: never logged). */
  password?: string;
  /** Use ssh-agent from SSH_AUTH_SOCK when set. */
  agent?: string;
  become: boolean;
  /** sudo password (secret: written to sudo's stdin, never to argv or logs). */
  becomePassword?: string;
  knownHostsFile: string;
  acceptNewHostKeys: boolean;
  /** Bind the client side to this local address (tests use it to act as another workstation). */
  localAddress?: string;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  keepaliveIntervalMs: number;
  /**
   * Jump hosts to pass through (ssh_config ProxyJump), outermost first. The
   * last one opens the TCP connection to `address`:`port`; every hop's host key
   * is checked against its own known_hosts like a direct connection.
   */
  jump?: ConnectionSpec[];
  /** Gives up a connection attempt still in progress when this fires (an interrupted run). */
  abort?: AbortSignal;
  /**
   * A handshake racing a deadline (the confirmation of a change, against the
   * host's rollback timer): it goes before first connections waiting for a
   * handshake slot (handshakes.ts), and its wait and handshake together end
   * by `notAfterMs` (controller clock, ms since the epoch).
   */
  urgent?: { notAfterMs: number };
  /**
   * Called once the server has finished the key exchange with a host key we
   * accept: the connection got through the firewall, TCP wrappers and
   * MaxStartups to the host's own sshd, and only authentication is left.
   */
  onKeyExchange?: () => void;
}

/** The host could not be reached or authenticated: nothing was done on it. */
export class UnreachableError extends Error {
  constructor(
    readonly hostName: string,
    message: string,
    /** The socket error's code (ECONNREFUSED, ETIMEDOUT...), when a socket error was the cause. */
    readonly code?: string,
  ) {
    super(message);
    this.name = 'UnreachableError';
  }
}

/**
 * No handshake within its time limit (or no handshake slot before an urgent
 * handshake's deadline): the host, or the controller, was too slow this time.
 * Another attempt may succeed where a refusal or a bad key would not.
 */
export class HandshakeTimeoutError extends UnreachableError {
  constructor(hostName: string, message: string) {
    super(hostName, message);
    this.name = 'HandshakeTimeoutError';
  }
}

/** The host's key is unknown or differs from known_hosts: refused before authentication. */
export class HostKeyError extends UnreachableError {
  constructor(hostName: string, message: string) {
    super(hostName, message);
    this.name = 'HostKeyError';
  }
}

/** A remote command did not finish (or, with a reason, could not start) within its time limit. */
export class CommandTimeoutError extends Error {
  constructor(
    readonly hostName: string,
    readonly timeoutMs: number,
    reason = `remote command did not finish within ${timeoutMs} ms`,
  ) {
    super(`${hostName}: ${reason}`);
    this.name = 'CommandTimeoutError';
  }
}
