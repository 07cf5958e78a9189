import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Connection, ExecResult } from '../../src/transport/types.js';

/** A Connection that runs scripts with this machine's /bin/sh: real shell, no SSH. */
export function localShell(hostName = 'local'): Connection & { scripts: string[] } {
  const scripts: string[] = [];
  return {
    hostName,
    scripts,
    runScript(script: string): Promise<ExecResult> {
      scripts.push(script);
      return new Promise((resolve, reject) => {
        const child = spawn('/bin/sh', ['-s'], { stdio: ['pipe', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
        child.on('error', reject);
        child.on('close', (code) => resolve({ stdout, stderr, exitCode: code }));
        child.stdin.end(script);
      });
    },
    close: async () => undefined,
  };
}

/** Whether this machine can count the processes a script starts (strace). */
export const canTraceExecs = spawnSync('strace', ['-V'], { stdio: 'ignore' }).status === 0;

/**
 * localShell whose scripts run under `strace -f`: `execs` lists every
 * program each script started (basenames, in order, the shell itself not
 * included). What a fleet pays per host is mostly processes, so tests of
 * that cost count them.
 */
export function tracedShell(hostName = 'local'): Connection & { scripts: string[]; execs: string[] } {
  const scripts: string[] = [];
  const execs: string[] = [];
  return {
    hostName,
    scripts,
    execs,
    runScript(script: string): Promise<ExecResult> {
      scripts.push(script);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-trace-'));
      const log = path.join(dir, 'execs');
      return new Promise<ExecResult>((resolve, reject) => {
        const child = spawn(
          'strace',
          ['-f', '-qq', '-e', 'trace=execve', '-e', 'signal=none', '-o', log, '/bin/sh', '-s'],
          { stdio: ['pipe', 'pipe', 'pipe'] },
        );
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
        child.on('error', reject);
        child.on('close', (code) => {
          const started = fs
            .readFileSync(log, 'utf8')
            .split('\n')
            .filter((line) => /execve\(/.test(line) && !/= -1 /.test(line))
            .map((line) => path.basename(/execve\("([^"]+)"/.exec(line)?.[1] ?? '?'));
          // The first is the shell that strace started.
          execs.push(...started.slice(1));
          fs.rmSync(dir, { recursive: true, force: true });
          resolve({ stdout, stderr, exitCode: code });
        });
        child.stdin.end(script);
      });
    },
    close: async () => undefined,
  };
}
