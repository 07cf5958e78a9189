/**
 * `service: {name, state}` — reload, restart or start a system service with
 * whatever init system the host runs. Used mostly as the `reload sshd`
 * handler, so sshd is reloaded once, at the end, and only where something
 * changed.
 *
 * sshd started by ssh.socket (socket activation, Ubuntu >= 22.10) is
 * restarted, never reloaded: on SIGHUP sshd re-executes itself without the
 * socket's descriptor and dies with "fatal: Cannot bind any address". Its
 * ssh.service keeps sessions on restart (KillMode=process), and the socket
 * keeps accepting meanwhile.
 *
 * Started, sshd comes back through the listener the host is set up with:
 * where UNIT.socket is enabled, the socket, not UNIT.service run by itself
 * beside a dead socket. systemd's start limit is cleared first: an sshd that
 * failed to start (an invalid sshd_config under ssh.socket fails once per
 * connection) leaves the unit refusing every start for a while
 * (StartLimitIntervalSec, systemd.unit(5)), the socket failed with
 * "service-start-limit-hit".
 */
import { shellQuote } from '../transport/shell.js';
import type { PlanEffects, ResourcePlan } from '../plan/types.js';
import type { HostView, ResourceKind } from './types.js';

export interface ServiceArgs {
  name: string;
  state: 'reloaded' | 'restarted' | 'started';
}

export type InitSystem = 'systemd' | 'sysvinit' | 'openrc';

/** sshd's unit is `ssh` on Debian/Ubuntu and `sshd` elsewhere: either name finds either unit. */
const ALIASES: Record<string, string[]> = { ssh: ['ssh', 'sshd'], sshd: ['ssh', 'sshd'] };

/**
 * Services whose start, restart or reload rewrites the live firewall: a
 * rollback snapshots and restores it (and reloads fail2ban, whose chains
 * the restore drops).
 */
const FIREWALL_UNITS = new Set([
  'ufw',
  'iptables',
  'ip6tables',
  'nftables',
  'firewalld',
  'netfilter-persistent',
]);

/** What reloading (or restarting, starting) `unit` does that a rollback must undo. */
export function serviceEffects(name: string, unit: string): PlanEffects {
  return {
    ...(ALIASES[name] !== undefined || ALIASES[unit] !== undefined ? { sshd: true } : {}),
    ...(FIREWALL_UNITS.has(unit) ? { firewall: true } : {}),
  };
}

/** What the detection script found: the init system, the unit (or none), whether its socket starts it. */
export interface DetectedService {
  init: InitSystem;
  unit: string | undefined;
  /** systemd only: `UNIT.socket` is active, so sshd gets its listening socket from systemd. */
  socketActivated: boolean;
  /** systemd only: `UNIT.socket` is enabled: the host is set up to start sshd through it, active or not. */
  socketEnabled: boolean;
}

/**
 * Prints `INIT UNIT SOCKET ENABLED` (`-` for no unit; SOCKET `socket` when the
 * unit's .socket is active under systemd, else `-`; ENABLED `enabled` when
 * that socket is enabled, else `-`). It runs in the read round trip, so
 * knowing about the socket costs no extra one.
 */
export function detectionScript(name: string): string {
  const candidates = (ALIASES[name] ?? [name]).map(shellQuote).join(' ');
  return [
    'if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then init=systemd',
    'elif command -v rc-service >/dev/null 2>&1 && [ -d /run/openrc ]; then init=openrc',
    'else init=sysvinit; fi',
    'unit=""',
    `for n in ${candidates}; do`,
    '  case $init in',
    '    systemd) systemctl cat "$n.service" >/dev/null 2>&1 && { unit=$n; break; } ;;',
    '    *) [ -x "/etc/init.d/$n" ] && { unit=$n; break; } ;;',
    '  esac',
    'done',
    's=-',
    '[ $init = systemd ] && [ -n "$unit" ] && systemctl is-active --quiet "$unit.socket" 2>/dev/null && s=socket',
    'e=-',
    '[ $init = systemd ] && [ -n "$unit" ] && systemctl is-enabled --quiet "$unit.socket" 2>/dev/null && e=enabled',
    'echo "$init ${unit:--} $s $e"',
  ].join('\n');
}

export function parseDetection(stdout: string): DetectedService {
  const [init = 'sysvinit', unit = '-', socket = '-', enabled = '-'] = stdout.trim().split(/\s+/);
  return {
    init: init as InitSystem,
    unit: unit === '-' ? undefined : unit,
    socketActivated: init === 'systemd' && socket === 'socket',
    socketEnabled: init === 'systemd' && enabled === 'enabled',
  };
}

const VERB: Record<ServiceArgs['state'], string> = {
  reloaded: 'reload',
  restarted: 'restart',
  started: 'start',
};

/** sshd is the one service whose reload kills it under socket activation (see the top of this file). */
function restartsInsteadOfReload(name: string, socketActivated: boolean): boolean {
  return socketActivated && ALIASES[name] !== undefined;
}

/** The command that puts the unit in the wanted state under the given init system. */
export function serviceCommand(init: InitSystem, unit: string, state: ServiceArgs['state']): string {
  const verb = VERB[state];
  const u = shellQuote(unit);
  switch (init) {
    case 'systemd':
      return `systemctl ${verb} ${u}.service`;
    case 'openrc':
      return `rc-service ${u} ${verb}`;
    case 'sysvinit':
      return `service ${u} ${verb}`;
  }
}

/** Whether the unit runs; under systemd an active socket of sshd's counts: it starts sshd on demand. */
function isRunningScript(init: InitSystem, unit: string, sshdSocket: boolean): string {
  const u = shellQuote(unit);
  if (init !== 'systemd') return `service ${u} status >/dev/null 2>&1`;
  return sshdSocket
    ? `systemctl is-active --quiet ${u}.service || systemctl is-active --quiet ${u}.socket`
    : `systemctl is-active --quiet ${u}.service`;
}

/**
 * Starts a unit that does not run (see the top of this file): under systemd its start limit cleared
 * first, and sshd through its socket where the host has that enabled.
 */
export function startScript(detected: DetectedService & { unit: string }, name: string): string {
  const { init, unit } = detected;
  if (init !== 'systemd') return serviceCommand(init, unit, 'started');
  const u = shellQuote(unit);
  const throughSocket = detected.socketEnabled && ALIASES[name] !== undefined;
  const units = throughSocket ? `${u}.service ${u}.socket` : `${u}.service`;
  return `systemctl reset-failed ${units} 2>/dev/null; systemctl start ${u}.${throughSocket ? 'socket' : 'service'}`;
}

async function planService(args: ServiceArgs, host: HostView): Promise<ResourcePlan> {
  const detected = await host.probe(detectionScript(args.name));
  const detection = parseDetection(detected.stdout);
  const { init, unit, socketActivated } = detection;
  const empty = { warnings: [], fileChanges: [] };
  if (!unit) {
    return {
      ...empty,
      action: 'skip',
      messages: [`no ${init} service named ${args.name} on this host`],
      commands: [],
    };
  }
  if (args.state === 'started') {
    const throughSocket = detection.socketEnabled && ALIASES[args.name] !== undefined;
    const running = await host.probe(isRunningScript(init, unit, throughSocket));
    if (running.exitCode === 0)
      return { ...empty, action: 'none', messages: [`${unit} is running`], commands: [] };
    const script = startScript({ ...detection, unit }, args.name);
    return {
      ...empty,
      action: 'change',
      messages: [
        throughSocket
          ? `start ${unit}.socket (${init}; the host starts sshd through it)`
          : `start ${unit} (${init})`,
      ],
      commands: [{ description: script, script }],
    };
  }
  if (args.state === 'reloaded' && restartsInsteadOfReload(args.name, socketActivated)) {
    const script = serviceCommand(init, unit, 'restarted');
    return {
      ...empty,
      action: 'change',
      messages: [
        `restart ${unit} (${init}; started by ${unit}.socket, whose sshd a reload would kill: it re-executes without the socket)`,
      ],
      commands: [{ description: script, script }],
      effects: serviceEffects(args.name, unit),
    };
  }
  const script = serviceCommand(init, unit, args.state);
  return {
    ...empty,
    action: 'change',
    messages: [`${VERB[args.state]} ${unit} (${init})`],
    commands: [{ description: script, script }],
    effects: serviceEffects(args.name, unit),
  };
}

export const serviceResource: ResourceKind<ServiceArgs> = {
  name: 'service',
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['name'],
    properties: {
      name: { type: 'string', minLength: 1, pattern: '^[A-Za-z0-9@._-]+$' },
      state: { enum: ['reloaded', 'restarted', 'started'], default: 'reloaded' },
    },
  },
  plan: (args, host) => planService({ ...args, state: args.state ?? 'reloaded' }, host),
};
