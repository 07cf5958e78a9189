/**
 * `sshfix demo` end to end, on each kind of lab host it can boot: the hosts
 * are broken, diagnosed and fixed for real, whichever kind `--kind` picks.
 */
import {
  describeLabKinds,
  LAB_START_TIMEOUT_MS,
  PLAIN,
  SYSTEMD_SERVICE,
  SYSTEMD_SOCKET,
  type LabKind,
} from './lab.js';
import { runCli } from '../support/cli.js';

/** What the demo says it boots, and the OpenSSH its hosts' banners show. */
function expected(kind: LabKind): { says: string; openssh: RegExp } {
  return kind.kind === 'plain'
    ? { says: 'plain hosts (Debian 12', openssh: /banner SSH-2\.0-OpenSSH_9\.2/ }
    : {
        says: `systemd hosts (Debian 13 booted with systemd-nspawn, OpenSSH 10, sshd started by ssh.${kind.sshdUnit ?? 'service'})`,
        openssh: /banner SSH-2\.0-OpenSSH_10\.0/,
      };
}

describeLabKinds('sshfix demo', [PLAIN, SYSTEMD_SERVICE, SYSTEMD_SOCKET], (kind) => {
  test(
    'cuts the workstation off four ways, diagnoses, fixes, and the second run changes nothing',
    async () => {
      const run = await runCli([
        'demo',
        '--kind',
        kind.kind,
        ...(kind.sshdUnit !== undefined ? ['--sshd-unit', kind.sshdUnit] : []),
      ]);
      expect(run.stderr).toMatch(/^fix playbook written to \S+fix.yml: review it with .*\n$/);
      expect(run.code).toBe(0);
      const section = (title: string) => run.stdout.split(`==> ${title}`)[1]?.split('\n==> ')[0] ?? '';
      expect(section('Starting a lab')).toContain(expected(kind).says);
      // Before: three of the four layers cut the workstation off.
      const before = section('ssh from the workstation (10.');
      expect(before.match(/FAILS/g)).toHaveLength(3);
      // diagnose names each cause, on hosts of the kind asked for.
      const diagnosis = section('sshfix diagnose');
      for (const cause of ['tcp_wrappers_deny', 'firewall_drop', 'fail2ban_ban', 'max_startups'])
        expect(diagnosis).toMatch(new RegExp(`1\\. \\[high\\] ${cause}`));
      expect(diagnosis).toMatch(expected(kind).openssh);
      // The refusal it names is libwrap's, in sshd or (OpenSSH >= 9.8) in sshd-session.
      expect(diagnosis).toContain('sshd is linked with libwrap');
      // After: every host takes a new connection from the workstation.
      const after = run.stdout.split('to every host, again')[1]?.split('\n==> ')[0] ?? '';
      expect(after.match(/: connects/g)).toHaveLength(4);
      expect(
        section('What sshd itself now uses').match(/maxauthtries 6 maxstartups 30:30:100/g),
      ).toHaveLength(4);
      const secondRun = section('sshfix apply again');
      expect(secondRun.match(/changed=0 {2}failed=0/g)).toHaveLength(4);
    },
    LAB_START_TIMEOUT_MS,
  );
});
