/** `sshfix diagnose` input checks: bad --also-from values are refused before anything is probed. */
import { runCli } from '../../support/cli.js';

describe('diagnose --also-from', () => {
  test('--help documents it', async () => {
    const run = await runCli(['diagnose', '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('--also-from');
  });

  test('must be addresses, at most 3 of them', async () => {
    const bad = await runCli(['diagnose', '127.0.0.1', '--also-from', 'not-an-address']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--also-from "not-an-address" is not an IPv4 or IPv6 address');
    const many = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'].flatMap((a) => ['--also-from', a]);
    const tooMany = await runCli(['diagnose', '127.0.0.1', ...many]);
    expect(tooMany.code).toBe(1);
    expect(tooMany.stderr).toContain('--also-from: at most 3 addresses');
  });
});
