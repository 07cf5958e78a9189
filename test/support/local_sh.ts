import { spawn } from 'node:child_process';
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
