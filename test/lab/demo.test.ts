import { describeLab } from './lab.js';
import { runCli } from '../support/cli.js';

describeLab('sshfix demo', () => {
  test('breaks a lab, converges it, and the second run changes nothing', async () => {
    const run = await runCli(['demo']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const [, afterFirstApply = ''] = run.stdout.split('==> What sshd itself now uses');
    const [effective = '', secondRun = ''] = afterFirstApply.split('==> sshfix apply again');
    const hostLines = effective.trim().split('\n').slice(1);
    expect(hostLines).toHaveLength(3);
    for (const line of hostLines)
      expect(line).toContain('maxauthtries 6 maxsessions 10 maxstartups 30:30:100');
    expect(secondRun).toMatch(/demo-h01\s+ok=1\s+changed=0\s+failed=0/);
    expect(run.stdout).not.toContain('FAILED');
  });
});
