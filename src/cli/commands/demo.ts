/** `sshfix demo`: see ../demo.ts. */
import type { SshdUnitMode } from '../../lab/lab.js';
import { runDemo, type DemoKindRequest } from '../demo.js';
import type { Command } from '../io.js';

export const demoCommand: Command = {
  command: 'demo',
  describe: 'Build a throw-away lab of real sshd hosts, break them, and fix them (Linux, root)',
  builder: (y) =>
    y
      .option('hosts', {
        type: 'number',
        default: 4,
        describe: 'How many lab hosts (each broken differently)',
      })
      .option('keep', { type: 'boolean', default: false, describe: 'Leave the lab running afterwards' })
      .option('kind', {
        choices: ['auto', 'systemd', 'plain'] as const,
        default: 'auto' as const,
        describe:
          'Lab hosts: systemd (Debian 13, systemd as PID 1, OpenSSH 10; booted with systemd-nspawn), ' +
          'plain (Debian 12, OpenSSH 9.2, no init system), or auto: systemd where this machine can boot it ' +
          'and its root is built, plain otherwise (saying why). --kind systemd builds a missing root first (minutes)',
      })
      .option('sshd-unit', {
        choices: ['service', 'socket'] as const,
        describe:
          'Systemd hosts: sshd started by ssh.service (the default) or by ssh.socket (Ubuntu >= 22.10); asks for systemd hosts',
      }),
  run: (args, io, cli) =>
    runDemo(
      {
        hosts: Number(args.hosts),
        keep: Boolean(args.keep),
        kind: args.kind as DemoKindRequest,
        ...(args.sshdUnit !== undefined ? { sshdUnit: args.sshdUnit as SshdUnitMode } : {}),
      },
      io,
      cli,
    ),
};
