/**
 * Unit tests apply to this machine (`ansible_connection=local`) from two jest
 * workers at once, and each run refuses to change a host while another run's
 * change there is undecided. Each worker keeps its run directories apart, so
 * tests never wait on, or get refused by, a test in another worker.
 */
import os from 'node:os';
import path from 'node:path';

process.env.SSHFIX_BACKUP_DIR ??= path.join(os.tmpdir(), 'sshfix-unit-backups', String(process.pid));
