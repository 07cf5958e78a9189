/**
 * `sshfix config`: which configuration file is used and where each setting
 * comes from (the environment, a file:line, or the default), as
 * `ansible-config dump` shows it. Warnings about the file go to stderr.
 */
import { formatDiagnostic } from '../../config/diagnostics.js';
import { SETTING_VARIABLES } from '../../config/settings.js';
import { EXIT } from '../exit_codes.js';
import type { CliIO, Command } from '../io.js';
import { describeSettings, processSettings } from '../settings.js';

function showConfig(io: CliIO): number {
  const settings = processSettings();
  if (settings.warnings.length > 0) io.stderr(settings.warnings.map(formatDiagnostic).join('\n') + '\n');
  io.stdout(describeSettings(settings));
  return EXIT.ok;
}

export const configCommand: Command = {
  command: 'config',
  describe: 'Show the config file used (sshfix.cfg or ansible.cfg) and where each setting comes from',
  builder: (y) =>
    y.epilog(
      'Looked for, first found is used: $SSHFIX_CONFIG, $ANSIBLE_CONFIG, ./sshfix.cfg, ./ansible.cfg, ' +
        '~/.sshfix.cfg, ~/.ansible.cfg, /etc/ansible/ansible.cfg; its [defaults] section is read. ' +
        `Environment variables beat it: ${SETTING_VARIABLES.join(', ')}. Command-line flags beat both.`,
    ),
  run: async (_args, io) => showConfig(io),
};
