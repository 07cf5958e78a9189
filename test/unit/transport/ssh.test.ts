/**
 * The SSH transport against a real OpenSSH server that this file starts on
 * 127.0.0.1 with its own host key, authorized_keys and config. Needs root (sshd
 * refuses to run otherwise) and /usr/sbin/sshd; skipped with a printed reason
 * when they are missing, except under CI=true, where that is a failure.
 */

import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openConnection } from '../../../src/transport/connect.js';
import { connectFailure, connectSsh, hostKeyAlgorithmOrder } from '../../../src/transport/ssh.js';
import { CommandTimeoutError, HostKeyError, UnreachableError } from '../../../src/transport/types.js';
import type { Connection, ConnectionSpec } from '../../../src/transport/types.js';

const SSHD = '/usr/sbin/sshd';
const SLOW_MS = 30000;

function missingPrerequisite(): string | null {
  if (process.getuid?.() !== 0) return 'not running as root (sshd needs root)';
  if (!existsSync(SSHD)) return `${SSHD} is not installed`;
  return null;
}

const missing = missingPrerequisite();
if (missing !== null) {
  if (process.env.CI === 'true') {
    test('the SSH transport test can run', () => {
      throw new Error(`cannot run the SSH transport test under CI: ${missing}`);
    });
  } else {
    console.log(`Skipping the SSH transport test against a real sshd: ${missing}`);
  }
}
const describeWithSshd = missing === null ? describe : describe.skip;

interface KeyPair {
  privateFile: string;
  publicType: string;
  publicBase64: string;
  fingerprint: string;
}

function generateKey(dir: string, name: string): KeyPair {
  const privateFile = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', privateFile]);
  const [publicType = '', publicBase64 = ''] = readFileSync(`${privateFile}.pub`, 'utf8').trim().split(' ');
  const listed = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${privateFile}.pub`], {
    encoding: 'utf8',
  });
  return { privateFile, publicType, publicBase64, fingerprint: listed.split(' ')[1] ?? '' };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

async function waitForListener(port: number, sshd: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 10000;
  while (Date.now() < deadline) {
    if (sshd.exitCode !== null) throw new Error(`sshd exited with ${sshd.exitCode}: ${log()}`);
    const accepting = await new Promise<boolean>((resolve) => {
      const socket = tcpConnect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (accepting) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`sshd did not listen on 127.0.0.1:${port} within 10 s: ${log()}`);
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Polls `condition` until it holds; the bound only turns a hang into a failure. */
async function waitUntil(condition: () => boolean, what: string): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`gave up waiting for ${what}`);
}

describe('hostKeyAlgorithmOrder', () => {
  it('puts the algorithms for known key types first and keeps every default once', () => {
    const order = hostKeyAlgorithmOrder(['ssh-rsa', 'ecdsa-sha2-nistp384']);
    expect(order.slice(0, 4)).toEqual(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa', 'ecdsa-sha2-nistp384']);
    expect(order).toContain('ssh-ed25519');
    expect(new Set(order).size).toBe(order.length);
  });

  it('keeps the default order when nothing is known, and ignores types ssh2 cannot verify', () => {
    expect(hostKeyAlgorithmOrder([])).toEqual(hostKeyAlgorithmOrder(['sk-ssh-ed25519@openssh.com']));
    expect(hostKeyAlgorithmOrder([])[0]).toBe('ssh-ed25519');
  });
});

describe('connectFailure', () => {
  const target = {
    hostName: 'web1',
    connection: 'ssh',
    address: '10.0.0.5',
    port: 22,
    user: 'deploy',
    become: false,
    knownHostsFile: '/dev/null',
    acceptNewHostKeys: false,
    connectTimeoutMs: 8000,
    commandTimeoutMs: 60000,
    keepaliveIntervalMs: 15000,
  } satisfies ConnectionSpec;

  function socketError(code: string): Error & { code: string } {
    return Object.assign(new Error(`connect ${code} 10.0.0.5:22`), { code });
  }

  it.each([
    ['ECONNREFUSED', 'connection refused'],
    ['ECONNRESET', 'connection reset by peer'],
    ['EHOSTUNREACH', 'no route to host'],
    ['ENOTFOUND', 'cannot resolve 10.0.0.5'],
  ])('names %s in one line with host and address', (code, reason) => {
    const message = connectFailure(target, socketError(code), 'password');
    expect(message.startsWith(`cannot reach web1 (10.0.0.5:22): ${reason}`)).toBe(true);
    expect(message).not.toContain('\n');
  });

  it('names the user and the methods tried when authentication fails', () => {
    const error = Object.assign(new Error('All configured authentication methods failed'), {
      level: 'client-authentication',
    });
    expect(connectFailure(target, error, 'key /k, ssh-agent')).toBe(
      'cannot reach web1 (10.0.0.5:22): authentication as deploy failed (tried key /k, ssh-agent)',
    );
  });

  it('gives the handshake time limit on a handshake timeout', () => {
    const error = Object.assign(new Error('Timed out while waiting for handshake'), {
      level: 'client-timeout',
    });
    expect(connectFailure(target, error, '')).toContain('no SSH handshake within 8000 ms');
  });
});

describeWithSshd('SSH transport against a real sshd', () => {
  let dir: string;
  let port: number;
  let sshd: ChildProcess;
  let hostKey: KeyPair;
  let clientKey: KeyPair;
  let otherKey: KeyPair;
  let knownHostsFile: string;
  let shared: Connection;

  function spec(overrides: Partial<ConnectionSpec> = {}): ConnectionSpec {
    return {
      hostName: 'lab-sshd',
      connection: 'ssh',
      address: '127.0.0.1',
      port,
      user: 'root',
      privateKeyFile: clientKey.privateFile,
      become: false,
      knownHostsFile,
      acceptNewHostKeys: false,
      connectTimeoutMs: 10000,
      commandTimeoutMs: 20000,
      keepaliveIntervalMs: 5000,
      ...overrides,
    };
  }

  interface RunningSshd {
    port: number;
    process: ChildProcess;
    /** What sshd wrote to stderr so far. */
    log: () => string;
  }

  /** Starts an sshd on 127.0.0.1 with the test's host key and authorized_keys, plus `settings`. */
  async function startSshd(name: string, settings: readonly string[]): Promise<RunningSshd> {
    const config = join(dir, `sshd_config_${name}`);
    writeFileSync(
      config,
      [
        'ListenAddress 127.0.0.1',
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        'PidFile none',
        // The temp dir sits under world-writable /tmp, which StrictModes rejects.
        'StrictModes no',
        'UsePAM no',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PermitRootLogin prohibit-password',
        ...settings,
        '',
      ].join('\n'),
    );
    const sshdPort = await freePort();
    let log = '';
    const child = spawn(SSHD, ['-D', '-e', '-f', config, '-p', String(sshdPort), '-h', hostKey.privateFile], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
    await waitForListener(sshdPort, child, () => log);
    return { port: sshdPort, process: child, log: () => log };
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sshfix-sshd-'));
    hostKey = generateKey(dir, 'host_ed25519');
    clientKey = generateKey(dir, 'client_ed25519');
    otherKey = generateKey(dir, 'other_ed25519');
    writeFileSync(join(dir, 'authorized_keys'), `${clientKey.publicType} ${clientKey.publicBase64}\n`, {
      mode: 0o600,
    });
    mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    // Stated explicitly: the concurrency tests rely on the 11th channel being refused.
    const started = await startSshd('default', ['MaxSessions 10', 'LogLevel ERROR']);
    sshd = started.process;
    port = started.port;
    knownHostsFile = join(dir, 'known_hosts');
    writeFileSync(knownHostsFile, `[127.0.0.1]:${port} ${hostKey.publicType} ${hostKey.publicBase64}\n`);
    shared = await openConnection(spec());
  }, SLOW_MS);

  afterAll(async () => {
    await shared?.close();
    sshd?.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });

  it('returns stdout, stderr and the exit code of a script', async () => {
    const result = await shared.runScript(
      'echo "to stdout"\necho "to stderr" >&2\nprintf "ünïcødé"\nexit 7\n',
    );
    expect(result).toEqual({ stdout: 'to stdout\nünïcødé', stderr: 'to stderr\n', exitCode: 7 });
  });

  it('runs the script from stdin, not the command line', async () => {
    const result = await shared.runScript('ps -o args= -p $$\n');
    expect(result.stdout.trim()).toBe('sh -s');
  });

  it(
    'sends a script of 1 MB on stdin',
    async () => {
      const filler = `: ${'y'.repeat(1000)}\n`.repeat(1050);
      expect(filler.length).toBeGreaterThan(1024 * 1024);
      const result = await shared.runScript(`${filler}echo "all $(( 1000 + 50 )) lines read"\n`);
      expect(result).toEqual({ stdout: 'all 1050 lines read\n', stderr: '', exitCode: 0 });
    },
    SLOW_MS,
  );

  it(
    'queues 20 concurrent scripts on one connection within MaxSessions',
    async () => {
      const runs = Array.from({ length: 20 }, (_, index) =>
        shared.runScript(`sleep 0.2\necho "run ${index}"\n`),
      );
      const results = await Promise.all(runs);
      expect(results.map((result) => result.stdout)).toEqual(
        Array.from({ length: 20 }, (_, index) => `run ${index}\n`),
      );
      expect(results.every((result) => result.exitCode === 0)).toBe(true);
    },
    SLOW_MS,
  );

  it(
    'stops a script at its time limit and the connection keeps working',
    async () => {
      const pidFile = join(dir, 'time-limit.pid');
      const marker = join(dir, 'time-limit.finished');
      const outcome = shared.runScript(`echo $$ > '${pidFile}'\nsleep 60\ntouch '${marker}'\n`, {
        timeoutMs: 1000,
      });
      await expect(outcome).rejects.toThrow(CommandTimeoutError);
      // Stopped, not abandoned: the remote shell is gone and never reached its last line.
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      await waitUntil(() => !processExists(pid), `the timed-out shell ${pid} to end`);
      expect(existsSync(marker)).toBe(false);
      await expect(shared.runScript('echo "still usable"\n')).resolves.toMatchObject({
        stdout: 'still usable\n',
        exitCode: 0,
      });
    },
    SLOW_MS,
  );

  it(
    'waits for a session at most the time limit when every session is busy',
    async () => {
      const busy = await connectSsh(spec());
      try {
        const holders = Array.from({ length: 10 }, () =>
          busy.runScript('sleep 120\n', { timeoutMs: 240000 }),
        );
        for (const holder of holders) holder.catch(() => undefined);
        const waiting = busy.runScript('echo never\n', { timeoutMs: 1000 });
        await expect(waiting).rejects.toThrow(CommandTimeoutError);
        await expect(waiting).rejects.toThrow('no SSH session could be opened within 1000 ms');
      } finally {
        await busy.close();
      }
    },
    SLOW_MS,
  );

  it(
    'on a host with MaxSessions 2, runs 20 concurrent scripts and opens again only when a session frees',
    async () => {
      const strict = await startSshd('max_sessions_2', ['MaxSessions 2', 'LogLevel DEBUG1']);
      appendFileSync(
        knownHostsFile,
        `[127.0.0.1]:${strict.port} ${hostKey.publicType} ${hostKey.publicBase64}\n`,
      );
      const connection = await connectSsh(spec({ port: strict.port }));
      try {
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, index) => connection.runScript(`sleep 0.2\necho "run ${index}"\n`)),
        );
        expect(results.map((result) => result.stdout)).toEqual(
          Array.from({ length: 20 }, (_, index) => `run ${index}\n`),
        );
        // Each refusal is logged by sshd. Retrying on a timer while our own
        // sessions hold the host's slots costs several refusals per script;
        // waiting for a close of ours costs well under one.
        const refusals = strict
          .log()
          .split('\n')
          .filter((line) => line.includes('session open failed'));
        expect(refusals.length).toBeLessThan(20 * 3);
      } finally {
        await connection.close();
        strict.process.kill('SIGTERM');
      }
    },
    SLOW_MS,
  );

  it(
    'refuses a host key that is not in known_hosts',
    async () => {
      const emptyKnownHosts = join(dir, 'empty_known_hosts');
      writeFileSync(emptyKnownHosts, '');
      const outcome = connectSsh(spec({ knownHostsFile: emptyKnownHosts }));
      await expect(outcome).rejects.toThrow(HostKeyError);
      await expect(outcome).rejects.toThrow(
        `host key for lab-sshd (127.0.0.1:${port}) is not in known_hosts ${emptyKnownHosts} (ssh-ed25519 ${hostKey.fingerprint})`,
      );
      expect(readFileSync(emptyKnownHosts, 'utf8')).toBe('');
    },
    SLOW_MS,
  );

  it(
    'with accept-new records an unknown key after login, and the next connection matches it',
    async () => {
      const freshDir = join(dir, 'fresh-home', '.ssh');
      const freshKnownHosts = join(freshDir, 'known_hosts');
      const first = await connectSsh(spec({ knownHostsFile: freshKnownHosts, acceptNewHostKeys: true }));
      await first.close();
      expect(readFileSync(freshKnownHosts, 'utf8')).toBe(
        `[127.0.0.1]:${port} ${hostKey.publicType} ${hostKey.publicBase64}\n`,
      );
      expect(statSync(freshDir).mode & 0o777).toBe(0o700);
      expect(statSync(freshKnownHosts).mode & 0o777).toBe(0o600);
      const second = await connectSsh(spec({ knownHostsFile: freshKnownHosts, acceptNewHostKeys: false }));
      await expect(second.runScript('echo matched\n')).resolves.toMatchObject({ stdout: 'matched\n' });
      await second.close();
      expect(readFileSync(freshKnownHosts, 'utf8').split('\n')).toHaveLength(2);
    },
    SLOW_MS,
  );

  it(
    'does not record the key when accept-new login fails',
    async () => {
      const freshKnownHosts = join(dir, 'failed-login', 'known_hosts');
      const outcome = connectSsh(
        spec({
          knownHostsFile: freshKnownHosts,
          acceptNewHostKeys: true,
          privateKeyFile: otherKey.privateFile,
        }),
      );
      await expect(outcome).rejects.toThrow(UnreachableError);
      expect(existsSync(freshKnownHosts)).toBe(false);
    },
    SLOW_MS,
  );

  it.each([false, true])(
    'refuses a host whose known_hosts entry has another key, before any script runs (accept-new %s)',
    async (acceptNewHostKeys) => {
      const wrongKnownHosts = join(dir, `wrong_known_hosts_${acceptNewHostKeys}`);
      writeFileSync(wrongKnownHosts, `[127.0.0.1]:${port} ${otherKey.publicType} ${otherKey.publicBase64}\n`);
      const canary = join(dir, `canary_${acceptNewHostKeys}`);
      const outcome = connectSsh(spec({ knownHostsFile: wrongKnownHosts, acceptNewHostKeys })).then(
        (connection) => connection.runScript(`touch '${canary}'\n`),
      );
      await expect(outcome).rejects.toThrow(HostKeyError);
      await expect(outcome).rejects.toThrow(
        `host key for lab-sshd (127.0.0.1:${port}) does not match known_hosts (ssh-ed25519 ${hostKey.fingerprint})`,
      );
      expect(existsSync(canary)).toBe(false);
    },
    SLOW_MS,
  );

  it('fails closed when known_hosts cannot be read', async () => {
    const unreadable = join(dir, 'known_hosts_is_a_directory');
    mkdirSync(unreadable);
    await expect(connectSsh(spec({ knownHostsFile: unreadable, acceptNewHostKeys: true }))).rejects.toThrow(
      HostKeyError,
    );
  });

  it(
    'reports a rejected key as an authentication failure',
    async () => {
      await expect(connectSsh(spec({ privateKeyFile: otherKey.privateFile }))).rejects.toThrow(
        `cannot reach lab-sshd (127.0.0.1:${port}): authentication as root failed (tried key ${otherKey.privateFile})`,
      );
    },
    SLOW_MS,
  );

  it('reports connection refused as UnreachableError', async () => {
    const closedPort = await freePort();
    const outcome = connectSsh(spec({ port: closedPort }));
    await expect(outcome).rejects.toThrow(UnreachableError);
    await expect(outcome).rejects.toThrow(
      `cannot reach lab-sshd (127.0.0.1:${closedPort}): connection refused`,
    );
    // The confirmation after a reload retries a refusal sooner than other failures.
    await expect(outcome).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it(
    'rejects running and later scripts with UnreachableError when the connection drops',
    async () => {
      const doomed = await connectSsh(spec());
      // The script's parent is the sshd process serving this connection: killing it drops the connection.
      const running = doomed.runScript('kill -9 $PPID\nsleep 5\n');
      await expect(running).rejects.toThrow(UnreachableError);
      await expect(doomed.runScript('echo too late\n')).rejects.toThrow(UnreachableError);
    },
    SLOW_MS,
  );
});
