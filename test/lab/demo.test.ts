import { describeLab } from './lab.js';
import { runCli } from '../support/cli.js';

describeLab('sshfix demo', () => {
  test('cuts the workstation off four ways, diagnoses, fixes, and the second run changes nothing', async () => {
    const run = await runCli(['demo']);
    expect(run.stderr).toMatch(/^fix playbook written to \S+fix.yml: review it with .*\n$/);
    expect(run.code).toBe(0);
    const section = (title: string) => run.stdout.split(`==> ${title}`)[1]?.split('\n==> ')[0] ?? '';
    // Before: three of the four layers cut the workstation off.
    const before = section('ssh from the workstation (10.');
    expect(before.match(/FAILS/g)).toHaveLength(3);
    // diagnose names each cause.
    const diagnosis = section('sshfix diagnose');
    for (const cause of ['tcp_wrappers_deny', 'firewall_drop', 'fail2ban_ban', 'max_startups'])
      expect(diagnosis).toMatch(new RegExp(`1\\. \\[high\\] ${cause}`));
    // After: every host takes a new connection from the workstation.
    const after = run.stdout.split('to every host, again')[1]?.split('\n==> ')[0] ?? '';
    expect(after.match(/: connects/g)).toHaveLength(4);
    const secondRun = section('sshfix apply again');
    expect(secondRun.match(/changed=0 {2}failed=0/g)).toHaveLength(4);
  });
});
