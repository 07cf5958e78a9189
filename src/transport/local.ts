/**
 * Connection to the machine sshfix runs on (`connection: local`, `-c local`):
 * for repairing a server from its own console when SSH is what is broken.
 * Same contract as the SSH transport: the script goes to the stdin of `sh -s`.
 */

import { spawn } from 'node:child_process';
import { scriptShell } from './shell.js';
import type { ScriptShell } from './shell.js';
import { CommandTimeoutError, UnreachableError } from './types.js';
import type { Connection, ConnectionSpec, ExecResult, RunOptions } from './types.js';

/** After TERM, how long a timed-out script gets before its process group is killed. */
const KILL_GRACE_MS = 1000;

export function openLocal(spec: ConnectionSpec): Connection {
  const shell = scriptShell({
    become: spec.become,
    becomePassword: spec.becomePassword,
    loginIsRoot: process.getuid?.() === 0,
  });
  return new LocalConnection(spec, shell);
}

class LocalConnection implements Connection {
  readonly hostName: string;
  readonly authMethod = 'local' as const;
  private closed = false;

  constructor(
    private readonly spec: ConnectionSpec,
    private readonly shell: ScriptShell,
  ) {
    this.hostName = spec.hostName;
  }

  runScript(script: string, options: RunOptions = {}): Promise<ExecResult> {
    if (this.closed) {
      return Promise.reject(
        new UnreachableError(this.hostName, `connection to ${this.hostName} (local) was closed`),
      );
    }
    const timeoutMs = options.timeoutMs ?? this.spec.commandTimeoutMs;
    return new Promise((resolve, reject) => {
      // Its own process group, so a timeout stops the script's children too.
      const child = spawn('/bin/sh', ['-c', this.shell.command], { detached: true, stdio: 'pipe' });
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      let settled = false;
      let killTimer: NodeJS.Timeout | undefined;
      const settle = (outcome: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        outcome();
      };
      const timer = setTimeout(() => {
        settle(() => reject(new CommandTimeoutError(this.hostName, timeoutMs)));
        signalGroup(child.pid, 'SIGTERM');
        killTimer = setTimeout(() => signalGroup(child.pid, 'SIGKILL'), KILL_GRACE_MS);
      }, timeoutMs);
      child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
      child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
      // EPIPE when the script exits before reading all of stdin: the exit status says what happened.
      child.stdin.on('error', () => undefined);
      child.on('error', (error) => {
        settle(() => reject(new Error(`${this.hostName}: cannot start /bin/sh: ${error.message}`)));
      });
      child.on('close', (code) => {
        clearTimeout(killTimer);
        settle(() =>
          resolve({
            stdout: Buffer.concat(stdout).toString('utf8'),
            stderr: Buffer.concat(stderr).toString('utf8'),
            exitCode: code,
          }),
        );
      });
      if (this.shell.stdinPrefix !== '') child.stdin.write(this.shell.stdinPrefix);
      child.stdin.end(script);
    });
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

function signalGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}
