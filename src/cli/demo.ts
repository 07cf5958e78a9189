/**
 * `sshfix demo`: a throw-away lab of real OpenSSH servers on this machine
 * (network namespaces; hosts booted with systemd where the machine can, as
 * real fleets run), each cutting the admin workstation off at a different
 * layer; diagnose says why, a shipped playbook fixes it, and new connections
 * prove it — then the lab is torn down. Needs Linux and root.
 *
 * The lab is torn down on every way out, signals included: namespaces,
 * veths and sshd processes left behind would outlive the demo. SIGINT,
 * SIGTERM or SIGHUP stop the demo after the step that is running (an apply
 * in progress settles its hosts first); a second signal tears the lab down
 * at once, whatever runs in it, and exits.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  labAvailability,
  labInventory,
  startLab,
  systemdLabAvailability,
  type Lab,
  type LabHost,
  type LabHostKind,
  type SshdUnitMode,
} from '../lab/lab.js';
import { ensureSystemdRoot, systemdRootPath } from '../lab/systemd_root.js';
import { colourWanted } from './io.js';

export interface DemoIO {
  stdout(text: string): void;
  stderr(text: string): void;
  isTTY: boolean;
  /** Ends the process at once; unset: process.exit. */
  exit?(code: number): void;
}

/** Runs the CLI itself for each step, so the demo shows exactly what a user would see. */
export type CliRunner = (argv: string[], io?: DemoIO) => Promise<number>;

const DEMO_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** Thrown between steps once a signal asked the demo to stop. */
class DemoStopped extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`stopped by ${signal}`);
  }
}

/** The lab could not be built or booted: said in one line, not as an internal error. */
class LabStartFailed extends Error {}

/** 128 + the signal's number, as shells report a process ended by it. */
function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + os.constants.signals[signal];
}

/** `--kind`: 'auto' boots systemd hosts where the machine can, plain ones otherwise. */
export type DemoKindRequest = 'auto' | LabHostKind;

/** What decides the kind of host: whether systemd hosts can boot, and whether their root exists. */
export interface DemoMachine {
  systemd: ReturnType<typeof systemdLabAvailability>;
  rootBuilt: boolean;
}

export type DemoKindChoice =
  | {
      ok: true;
      kind: LabHostKind;
      /** Systemd hosts only. */
      sshdUnit?: SshdUnitMode;
      /** The root is missing and was asked for explicitly: build it first. */
      buildRoot: boolean;
      /** Said before the lab starts: which kind, and why. */
      note: string;
    }
  | { ok: false; error: string };

const PLAIN_HOSTS = 'plain hosts (Debian 12, OpenSSH 9.2, sshd run directly)';
const systemdHosts = (unit: SshdUnitMode): string =>
  `systemd hosts (Debian 13 booted with systemd-nspawn, OpenSSH 10, sshd started by ssh.${unit})`;

/**
 * The kind of lab host for `sshfix demo`. Real fleets run systemd, so 'auto'
 * boots systemd hosts where the machine can, and plain ones otherwise. A
 * missing root is built only when asked for (`--kind systemd`): building it
 * downloads about 300 MB and takes minutes, more than a user who just typed
 * `sshfix demo` expects to wait; 'auto' then says how to build it.
 * `--sshd-unit` only means something on systemd hosts, so it asks for them.
 */
export function chooseDemoKind(
  request: { kind: DemoKindRequest; sshdUnit?: SshdUnitMode },
  machine: DemoMachine,
): DemoKindChoice {
  const { kind, sshdUnit } = request;
  if (kind === 'plain') {
    if (sshdUnit !== undefined)
      return { ok: false, error: '--sshd-unit is for hosts of the systemd kind, not with --kind plain' };
    return { ok: true, kind: 'plain', buildRoot: false, note: `${PLAIN_HOSTS}, as asked (--kind plain)` };
  }
  const unit = sshdUnit ?? 'service';
  const asked =
    kind === 'systemd' ? '--kind systemd' : sshdUnit !== undefined ? `--sshd-unit ${sshdUnit}` : '';
  if (!machine.systemd.ok) {
    if (asked !== '')
      return {
        ok: false,
        error: `${asked}: this machine cannot boot systemd hosts: ${machine.systemd.reason}`,
      };
    return {
      ok: true,
      kind: 'plain',
      buildRoot: false,
      note: `${PLAIN_HOSTS}: systemd hosts cannot boot here: ${machine.systemd.reason}`,
    };
  }
  if (!machine.rootBuilt && asked === '') {
    return {
      ok: true,
      kind: 'plain',
      buildRoot: false,
      note:
        `${PLAIN_HOSTS}: the root of the systemd hosts is not built yet (debootstrap, about 300 MB, minutes); ` +
        '`sshfix demo --kind systemd` builds it first, once per machine',
    };
  }
  return {
    ok: true,
    kind: 'systemd',
    sshdUnit: unit,
    buildRoot: !machine.rootBuilt,
    note: machine.rootBuilt
      ? `${systemdHosts(unit)}${asked !== '' ? `, as asked (${asked})` : ''}`
      : `${systemdHosts(unit)}; building their root first (debootstrap, about 300 MB, minutes, once per machine)`,
  };
}

const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Breakage {
  title: string;
  /** Breaks the host for the admin workstation (`ws`); `reloadSshd` makes sshd read its configuration. */
  script: (ws: string, reloadSshd: string) => string;
  fail2ban?: boolean;
}

/** Each host cuts the admin workstation off at a different layer: the causes of "Connection reset by peer". */
const BREAKAGES: Breakage[] = [
  {
    title: 'hosts.deny refuses the workstation (TCP wrappers)',
    script: (ws) => `printf 'sshd: ${ws}\\n' >> /etc/hosts.deny`,
  },
  {
    title: 'an iptables rule drops the workstation',
    script: (ws) => `iptables -A INPUT -s ${ws} -p tcp --dport 22 -j DROP`,
  },
  {
    title: 'fail2ban has banned the workstation',
    script: (ws) => `fail2ban-client set sshd banip ${ws} >/dev/null`,
    fail2ban: true,
  },
  {
    title: 'a cloud-init drop-in allows one key (MaxAuthTries 1) and throttles (MaxStartups 2:50:5)',
    script: (_ws, reloadSshd) =>
      `printf '# written by cloud-init\\nMaxStartups 2:50:5\\nMaxAuthTries 1\\n' > /etc/ssh/sshd_config.d/50-cloud-init.conf && ${reloadSshd}`,
  },
];

/**
 * How the host's own init system makes sshd read its configuration. Under
 * ssh.socket a SIGHUP makes sshd re-exec and die, unable to bind the port the
 * socket holds ("fatal: Cannot bind any address"): restart ssh.service, if a
 * connection has started it at all (otherwise it reads the file when one does).
 */
function reloadSshdScript(kind: LabHostKind, sshdUnit: SshdUnitMode | undefined): string {
  if (kind === 'plain') return 'kill -HUP $(cat /run/sshd.pid)';
  return sshdUnit === 'socket' ? 'systemctl try-restart ssh.service' : 'systemctl reload ssh.service';
}

const EFFECTIVE = 'maxstartups|maxauthtries';

async function effectiveSettings(host: LabHost): Promise<string> {
  const result = await host.exec(`/usr/sbin/sshd -T | grep -E '^(${EFFECTIVE}) ' | sort | tr '\\n' ' '`);
  return result.stdout.trim();
}

async function workstationCheck(lab: Lab, host: LabHost): Promise<string> {
  const probe = await lab.ssh(host, 'true', { from: lab.workstationAddress, timeoutMs: 15000 });
  return probe.code === 0 ? 'connects' : `FAILS: ${probe.stderr.trim().split('\n').pop() ?? ''}`;
}

export interface DemoOptions {
  hosts: number;
  keep: boolean;
  kind: DemoKindRequest;
  /** Given: asks for systemd hosts whose sshd this unit starts. */
  sshdUnit?: SshdUnitMode;
}

export async function runDemo(options: DemoOptions, io: DemoIO, cli: CliRunner): Promise<number> {
  // First: options that contradict each other are bad input on any machine.
  const choice = chooseDemoKind(
    { kind: options.kind, ...(options.sshdUnit !== undefined ? { sshdUnit: options.sshdUnit } : {}) },
    { systemd: systemdLabAvailability(), rootBuilt: fs.existsSync(systemdRootPath()) },
  );
  if (!choice.ok) {
    io.stderr(`sshfix demo: ${choice.error}\n`);
    return 1;
  }
  const availability = labAvailability();
  if (!availability.ok) {
    io.stderr(
      `sshfix demo builds a lab of real sshd hosts in network namespaces and cannot run here: ${availability.reason}.\n` +
        'It needs Linux, root, iproute2 (ip netns), overlayfs and openssh-server (apt-get install openssh-server iproute2).\n',
    );
    return 1;
  }
  const step = (text: string) =>
    io.stdout(colourWanted(io) ? `\n\x1b[1m==> ${text}\x1b[0m\n` : `\n==> ${text}\n`);
  const exit = io.exit ?? ((code: number) => process.exit(code));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sshfix-demo-'));
  let starting: Promise<Lab> | undefined;
  let stopSignal: NodeJS.Signals | undefined;
  let signals = 0;
  let tornDown: Promise<void> | undefined;
  // Once: by the last step, by an error, or by a second signal while a step still runs.
  const tearDown = (): Promise<void> => {
    tornDown ??= (async () => {
      // A lab still being built is waited for: destroying it half-built would race its creation.
      const lab = await starting?.catch(() => undefined);
      if (lab && !options.keep) {
        step('Tearing the lab down');
        await lab.destroy();
      } else if (lab) {
        io.stdout(`\nLab kept (--keep): inventory ${path.join(work, 'inventory.yml')}\n`);
      }
      if (!options.keep) fs.rmSync(work, { recursive: true, force: true });
    })();
    return tornDown;
  };
  const tearDownAndExit = (signal: NodeJS.Signals): void => {
    void tearDown()
      .catch((error: unknown) => io.stderr(`sshfix demo: tearing the lab down failed: ${String(error)}\n`))
      .finally(() => exit(signalExitCode(signal)));
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals === 1) {
      stopSignal = signal;
      io.stderr(
        `\nsshfix demo: ${signal}: stopping after the current step, then tearing the lab down ` +
          `(${signal} again tears it down now).\n`,
      );
    } else if (signals === 2) {
      io.stderr(`sshfix demo: ${signal} again: tearing the lab down now.\n`);
      tearDownAndExit(stopSignal ?? signal);
    } else {
      io.stderr('sshfix demo: still tearing the lab down; it takes a few seconds.\n');
    }
  };
  /** Between steps: a signal received meanwhile ends the demo here. */
  const proceed = (): void => {
    if (stopSignal !== undefined) throw new DemoStopped(stopSignal);
  };
  // The steps run apply in-process: its third SIGINT must tear the lab down too, not just exit.
  const stepIO: DemoIO = { ...io, exit: () => tearDownAndExit(stopSignal ?? 'SIGINT') };
  for (const signal of DEMO_SIGNALS) process.on(signal, onSignal);
  try {
    step(`Starting a lab of ${options.hosts} OpenSSH servers in network namespaces`);
    io.stdout(`  ${choice.note}\n`);
    starting = (async () => {
      if (choice.buildRoot) await ensureSystemdRoot();
      return startLab({
        id: 'demo',
        hosts: options.hosts,
        kind: choice.kind,
        ...(choice.sshdUnit !== undefined ? { sshdUnit: choice.sshdUnit } : {}),
      });
    })();
    const lab = await starting.catch((error: unknown) => {
      // Ctrl-C reaches the root's build too (one process group): that is the stop asked for, not a failure.
      if (stopSignal !== undefined) throw new DemoStopped(stopSignal);
      throw new LabStartFailed(error instanceof Error ? error.message : String(error));
    });
    proceed();
    const ws = lab.workstationAddress;
    io.stdout(`  controller ${lab.controllerAddress}, admin workstation ${ws}\n`);
    step('Breaking each host at a different layer, for the admin workstation');
    const reloadSshd = reloadSshdScript(choice.kind, choice.sshdUnit);
    for (const [i, host] of lab.hosts.entries()) {
      const breakage = BREAKAGES[i % BREAKAGES.length]!;
      if (breakage.fail2ban) await host.startFail2ban();
      const result = await host.exec(breakage.script(ws, reloadSshd));
      if (result.code !== 0) throw new Error(`breaking ${host.name}: ${result.stderr}`);
      io.stdout(`  ${host.name} (${host.address}): ${breakage.title}\n`);
    }
    proceed();
    step(`ssh from the workstation (${ws}) to every host`);
    for (const host of lab.hosts) io.stdout(`  ${host.name}: ${await workstationCheck(lab, host)}\n`);
    proceed();

    const inventory = path.join(work, 'inventory.yml');
    fs.writeFileSync(inventory, labInventory(lab));
    const common = ['-i', inventory, '--known-hosts', lab.knownHostsFile];
    const fixPlaybook = path.join(work, 'fix.yml');

    step(`sshfix diagnose --source ${ws} --client ${ws}  (why does the workstation get cut off?)`);
    await cli(['diagnose', ...common, '--source', ws, '--client', ws, '--fix-playbook', fixPlaybook], stepIO);
    proceed();

    const playbook = path.join(PACKAGE_ROOT, 'playbooks', 'fix-connection-reset.yml');
    step('sshfix plan playbooks/fix-connection-reset.yml  (a dry run: diffs, nothing changes)');
    await cli(['plan', playbook, ...common], stepIO);
    proceed();
    step(
      'sshfix apply playbooks/fix-connection-reset.yml  (validate, back up, apply, confirm with a new connection)',
    );
    const applied = await cli(['apply', playbook, ...common], stepIO);
    proceed();
    step(`ssh from the workstation (${ws}) to every host, again`);
    const after = await Promise.all(lab.hosts.map((h) => workstationCheck(lab, h)));
    lab.hosts.forEach((h, i) => io.stdout(`  ${h.name}: ${after[i]}\n`));
    proceed();
    step('What sshd itself now uses (sshd -T)');
    for (const host of lab.hosts) io.stdout(`  ${host.name}: ${await effectiveSettings(host)}\n`);
    proceed();
    step('sshfix apply again: nothing left to change');
    const again = await cli(['apply', playbook, ...common], stepIO);
    proceed();
    return applied === 0 && again === 0 && after.every((a) => a === 'connects') ? 0 : 1;
  } catch (error) {
    if (error instanceof DemoStopped) return signalExitCode(error.signal);
    if (error instanceof LabStartFailed) {
      const plainHint =
        choice.kind === 'systemd' ? ' (`sshfix demo --kind plain` needs no systemd root)' : '';
      io.stderr(`sshfix demo: cannot start the lab: ${error.message}${plainHint}\n`);
      return 1;
    }
    throw error;
  } finally {
    await tearDown();
    for (const signal of DEMO_SIGNALS) process.off(signal, onSignal);
  }
}
