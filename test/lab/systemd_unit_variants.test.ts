/**
 * The ways fleets run sshd under systemd beyond Debian's ssh.service and
 * ssh.socket (Accept=no), each made on a Debian 13 host of the systemd kind:
 * - sshd.service and no ssh.service (RHEL, Fedora, Arch, SUSE): ssh.service
 *   masked, Debian's unit copied to sshd.service;
 * - ssh.socket with Accept=yes and ssh@.service (Debian <= 11's documented
 *   per-connection mode), or sshd.socket with Accept=yes (Fedora's): every
 *   connection gets its own `sshd -i`, so there is no daemon to reload and
 *   ssh.service must not be started;
 * - ssh.service without ExecReload= (`systemctl reload` is refused);
 * - sshd started by hand while ssh.service is masked, or merely inactive.
 * In each, a change takes effect (a change that locks out shows it), the
 * dead-man restore puts the old configuration back into effect, and the units
 * are left as they were found.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  describeLab,
  LAB_START_TIMEOUT_MS,
  labInventory,
  startLab,
  SYSTEMD_SERVICE,
  type Lab,
  type LabHost,
} from './lab.js';
import { runCli } from '../support/cli.js';

interface JsonTask {
  task: string;
  status: string;
  error?: string;
}
interface JsonHost {
  changed: number;
  failed: number;
  tasks: JsonTask[];
}

const CONFIRM_TIMEOUT_S = 20;
const REPO = process.cwd();

/** Taken after a connection: ssh.service and ssh@…service units come and go with connections otherwise. */
const UNIT_STATES =
  'for u in ssh.service sshd.service ssh.socket sshd.socket; do echo "$u $(systemctl is-enabled $u 2>/dev/null) $(systemctl is-active $u)"; done';

/**
 * sshd started by hand. systemd removes ssh.service's RuntimeDirectory (/run/sshd) when it stops
 * the unit, and that can land after `systemctl stop` returned: sshd refuses to start without it.
 */
const START_BY_HAND =
  'i=0; until mkdir -p -m 0755 /run/sshd && /usr/sbin/sshd; do i=$((i+1)); [ $i -lt 50 ] || exit 1; sleep 0.2; done';

/** How each host is reshaped after boot (the lab boots them with ssh.service). */
const VARIANTS = {
  sshdService: [
    'systemctl -q disable --now ssh.service',
    "sed '/^Alias=/d' /usr/lib/systemd/system/ssh.service > /etc/systemd/system/sshd.service",
    'systemctl -q mask ssh.service',
    'systemctl daemon-reload',
    'systemctl -q enable --now sshd.service',
  ],
  perConnection: [
    'systemctl -q disable --now ssh.service',
    'cp /usr/lib/systemd/system/sshd@.service /etc/systemd/system/ssh@.service',
    'mkdir -p /etc/systemd/system/ssh.socket.d',
    "printf '[Socket]\\nAccept=yes\\n' > /etc/systemd/system/ssh.socket.d/accept.conf",
    'systemctl daemon-reload',
    'systemctl -q enable --now ssh.socket',
  ],
  // Fedora's way: sshd.socket, Accept=yes, sshd@.service (which Debian 13 ships too).
  sshdSocketPerConnection: [
    'systemctl -q disable --now ssh.service',
    "printf '[Socket]\\nListenStream=22\\nAccept=yes\\n\\n[Install]\\nWantedBy=sockets.target\\n' > /etc/systemd/system/sshd.socket",
    'systemctl daemon-reload',
    'systemctl -q enable --now sshd.socket',
  ],
  noExecReload: [
    'mkdir -p /etc/systemd/system/ssh.service.d',
    "printf '[Service]\\nExecReload=\\n' > /etc/systemd/system/ssh.service.d/no-reload.conf",
    'systemctl daemon-reload',
  ],
  byHand: ['systemctl -q disable --now ssh.service', 'systemctl -q mask ssh.service', START_BY_HAND],
  byHandUnitInactive: ['systemctl -q disable --now ssh.service', START_BY_HAND],
} as const;
type Variant = keyof typeof VARIANTS;

const AFTER_RESHAPE_LISTENS = `i=0; until ss -Hltn 'sport = :22' | grep -q .; do i=$((i+1)); [ $i -lt 300 ] || exit 1; sleep 0.1; done`;

describeLab(
  'sshd under systemd units other than Debian 13 ssh.service',
  () => {
    let lab: Lab;
    let work: string;
    let inventory: string;
    const hostOf: Partial<Record<Variant, LabHost>> = {};

    beforeAll(async () => {
      lab = await startLab({
        id: `suv${process.pid % 10_000}`,
        hosts: Object.keys(VARIANTS).length,
        ...SYSTEMD_SERVICE,
      });
      const variants = Object.keys(VARIANTS) as Variant[];
      for (const [i, variant] of variants.entries()) {
        const host = lab.hosts[i]!;
        const reshaped = await host.exec(['set -e', ...VARIANTS[variant], AFTER_RESHAPE_LISTENS].join('\n'));
        if (reshaped.code !== 0) throw new Error(`${variant} on ${host.name}: ${reshaped.stderr}`);
        hostOf[variant] = host;
      }
      work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-suv-'));
      inventory = path.join(work, 'inventory.yml');
      fs.writeFileSync(inventory, labInventory(lab));
    }, LAB_START_TIMEOUT_MS);

    afterAll(async () => {
      await lab?.destroy();
      if (work) fs.rmSync(work, { recursive: true, force: true });
    });

    async function apply(
      playbook: string,
      host: LabHost,
      extra: string[] = [],
    ): Promise<{ code: number; hosts: Record<string, JsonHost> }> {
      const run = await runCli([
        'apply',
        playbook,
        '-i',
        inventory,
        '--known-hosts',
        lab.knownHostsFile,
        '-l',
        host.name,
        '--format',
        'json',
        '--confirm-timeout',
        String(CONFIRM_TIMEOUT_S),
        ...extra,
      ]);
      try {
        return { ...run, hosts: (JSON.parse(run.stdout) as { hosts: Record<string, JsonHost> }).hosts };
      } catch {
        throw new Error(`no JSON from sshfix (exit ${run.code}): ${run.stdout}\n${run.stderr}`);
      }
    }

    function playbook(name: string, settings: string): string {
      const file = path.join(work, name);
      fs.writeFileSync(
        file,
        `- hosts: all
  tasks:
    - name: sshd settings
      sshd_config: { settings: ${settings} }
      notify: reload sshd
  handlers:
    - name: reload sshd
      service: { name: sshd, state: reloaded }
`,
      );
      return file;
    }

    /** The pids of listening sshd processes (none under Accept=yes). */
    async function listeners(host: LabHost): Promise<string> {
      return (await host.exec(`ss -Hltnp 'sport = :22' | grep -o 'pid=[0-9]*' | sort -u`)).stdout;
    }

    /** Polls a condition on the host until it holds; generous, since the machine is shared. */
    async function waitUntil(what: string, condition: () => Promise<boolean>): Promise<void> {
      const end = Date.now() + (CONFIRM_TIMEOUT_S + 60) * 1000;
      while (Date.now() < end) {
        if (await condition()) return;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      throw new Error(`timed out waiting for ${what}`);
    }

    describe.each(Object.keys(VARIANTS) as Variant[])('%s', (variant) => {
      test('a change converges, the handler does not fail, the units stay as they were', async () => {
        const host = hostOf[variant]!;
        expect((await lab.ssh(host, 'true')).code).toBe(0);
        const unitsBefore = (await host.exec(UNIT_STATES)).stdout;
        const listenersBefore = await listeners(host);
        const run = await apply(
          playbook(`maxauthtries-${variant}.yml`, `{ MaxAuthTries: 5, SetEnv: SSHFIX_MARK=${variant} }`),
          host,
        );
        const tasks = run.hosts[host.name]!.tasks;
        expect(tasks.filter((t) => t.status === 'failed')).toEqual([]);
        expect(run.code).toBe(0);
        expect(tasks.find((t) => t.task === 'sshd settings')?.status).toBe('changed');
        expect((await host.exec('/usr/sbin/sshd -T | grep "^maxauthtries "')).stdout).toBe(
          'maxauthtries 5\n',
        );
        // The sshd that serves a new connection took the change: SetEnv reaches the session.
        expect((await lab.ssh(host, 'echo "$SSHFIX_MARK"')).stdout).toBe(`${variant}\n`);
        // Under Accept=yes there is no daemon to reload: the handler does nothing, and says why.
        expect(tasks.find((t) => t.task === 'reload sshd')?.status).toBe(
          variant === 'perConnection' || variant === 'sshdSocketPerConnection' ? 'ok' : 'changed',
        );
        expect((await host.exec(UNIT_STATES)).stdout).toBe(unitsBefore);
        // sshd re-executes in place on SIGHUP: the same listener, or still none under Accept=yes.
        expect(await listeners(host)).toBe(listenersBefore);
        expect(await host.sshdLog()).not.toMatch(/Cannot bind any address/);
      });

      test('a change that locks out is rolled back by the restore, and sshd runs the old configuration', async () => {
        const host = hostOf[variant]!;
        expect((await lab.ssh(host, 'true')).code).toBe(0);
        const unitsBefore = (await host.exec(UNIT_STATES)).stdout;
        const listenersBefore = await listeners(host);
        const configBefore = await host.readFile('/etc/ssh/sshd_config');
        const run = await apply(playbook(`allowusers-${variant}.yml`, '{ AllowUsers: nobody }'), host, [
          '--force',
        ]);
        expect(run.code).toBe(1);
        const task = run.hosts[host.name]!.tasks.find((t) => t.task === 'sshd settings')!;
        // The lockout shows that the change took effect; a failed handler would roll back before any confirmation.
        expect(task.error).toMatch(/^rolled back: a new SSH connection to port 22 failed after the change: /);
        expect(task.error).not.toMatch(/incomplete/);
        expect(await host.readFile('/etc/ssh/sshd_config')).toBe(configBefore);
        expect((await host.exec('cat "$(ls -td /var/backups/sshfix/*/ | head -1)outcome"')).stdout).toBe(
          'restored\n',
        );
        expect((await lab.ssh(host, 'echo in')).stdout).toBe('in\n');
        expect((await host.exec(UNIT_STATES)).stdout).toBe(unitsBefore);
        expect(await listeners(host)).toBe(listenersBefore);
      });

      test('the controller is killed after the reload of a change that locks out: the host restores itself', async () => {
        const host = hostOf[variant]!;
        const bin = path.join(REPO, 'dist/cli/bin.js');
        expect(fs.existsSync(bin)).toBe(true); // npm run build (pretest) makes it
        expect((await lab.ssh(host, 'true')).code).toBe(0);
        const unitsBefore = (await host.exec(UNIT_STATES)).stdout;
        const listenersBefore = await listeners(host);
        const configBefore = await host.readFile('/etc/ssh/sshd_config');
        // A second handler keeps the run busy after the reload (handlers run in the order they are
        // defined), so the kill lands between the reload and the confirmation.
        const hold = `/usr/local/sbin/sshfix-hold-${variant}`;
        await host.writeFile(hold, `#!/bin/sh\ntouch /run/sshfix-hold.started; sleep 60\n`);
        await host.writeFile(
          `/etc/systemd/system/sshfix-hold.service`,
          `[Unit]\nDescription=lab: keeps a run busy\n\n[Service]\nType=oneshot\nExecStart=${hold}\n`,
        );
        expect(
          (await host.exec(`chmod 755 ${hold}; rm -f /run/sshfix-hold.started; systemctl daemon-reload`))
            .code,
        ).toBe(0);
        const pb = path.join(work, `killed-${variant}.yml`);
        fs.writeFileSync(
          pb,
          `- hosts: all
  tasks:
    - name: sshd settings
      sshd_config: { settings: { AllowUsers: nobody } }
      notify: [reload sshd, hold]
  handlers:
    - name: reload sshd
      service: { name: sshd, state: reloaded }
    - name: hold
      service: { name: sshfix-hold, state: restarted }
`,
        );
        const args = ['apply', pb, '-i', inventory, '--known-hosts', lab.knownHostsFile, '-l', host.name];
        const child = spawn(
          process.execPath,
          [bin, ...args, '--confirm-timeout', String(CONFIRM_TIMEOUT_S), '--force'],
          { cwd: REPO, stdio: 'ignore' },
        );
        const exited = new Promise((resolve) => child.on('exit', resolve));
        try {
          await waitUntil(
            'the hold handler to start',
            async () => (await host.exec('test -e /run/sshfix-hold.started')).code === 0,
          );
        } finally {
          child.kill('SIGKILL');
        }
        await exited;
        // The change is live: the host refuses new connections until its timer restores it.
        expect((await lab.ssh(host, 'true')).code).not.toBe(0);
        await waitUntil(
          'the host to restore by itself',
          async () =>
            // This run's backup is the newest; earlier tests' runs restored too.
            (await host.exec('cat "$(ls -td /var/backups/sshfix/*/ | head -1)outcome"')).stdout ===
            'restored\n',
        );
        expect(await host.readFile('/etc/ssh/sshd_config')).toBe(configBefore);
        expect((await lab.ssh(host, 'echo in')).stdout).toBe('in\n');
        expect((await host.exec(UNIT_STATES)).stdout).toBe(unitsBefore);
        expect(await listeners(host)).toBe(listenersBefore);
      }, 180_000);
    });

    test.each([
      ['perConnection', 'ssh.socket'],
      ['sshdSocketPerConnection', 'sshd.socket'],
    ] as const)(
      '%s: Port is refused before anything changes, since %s decides where sshd listens',
      async (variant, socket) => {
        const host = hostOf[variant]!;
        const configBefore = await host.readFile('/etc/ssh/sshd_config');
        const run = await apply(playbook(`port-${variant}.yml`, '{ Port: [22, 2222] }'), host, ['--force']);
        expect(run.code).toBe(1);
        const task = run.hosts[host.name]!.tasks.find((t) => t.task === 'sshd settings')!;
        expect(task.error).toMatch(`refused: sshd on this host is socket-activated (${socket})`);
        expect(await host.readFile('/etc/ssh/sshd_config')).toBe(configBefore);
      },
    );
  },
  SYSTEMD_SERVICE,
);
