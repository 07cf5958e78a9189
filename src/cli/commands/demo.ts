/** `sshfix demo`: see ../demo.ts. */
import { runDemo } from '../demo.js';
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
      .option('keep', { type: 'boolean', default: false, describe: 'Leave the lab running afterwards' }),
  run: (args, io, cli) => runDemo({ hosts: Number(args.hosts), keep: Boolean(args.keep) }, io, cli),
};
