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
import {
  sharedShowLines,
  systemctlShowLines,
  unitVariable,
  type UnitProperty,
} from '../formats/systemd_units.js';
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

/**
 * How systemd runs the unit: `socket` (its .socket is active, Accept=no),
 * `per-connection` (its .socket is active with Accept=yes: `sshd -i` per
 * connection, no daemon), `active` (reload with `systemctl reload`),
 * `no-reload` (active, but no ExecReload=, or masked while running), or
 * `inactive`.
 */
export type UnitState = 'socket' | 'per-connection' | 'active' | 'no-reload' | 'inactive';

/** What the detection script found: the init system, the unit (or none), how systemd runs it. */
export interface DetectedService {
  init: InitSystem;
  unit: string | undefined;
  /** systemd only: `UNIT.socket` is active, so sshd gets its listening socket from systemd. */
  socketActivated: boolean;
  /** systemd only: `UNIT.socket` is enabled: the host is set up to start sshd through it, active or not. */
  socketEnabled: boolean;
  /** systemd and a unit only. */
  unitState?: UnitState;
  /** sshd only: the pid in /run/sshd.pid, when that process is alive. */
  sshdPid?: number;
}

/**
 * Sets `$init` to the init system (InitSystem) with shell built-ins only:
 * systemd when it runs as the system manager (sd_booted(3) tests
 * /run/systemd/system), OpenRC when its run directory exists, else sysvinit
 * (`service NAME reload`, or no init system at all, as in containers).
 */
export const INIT_SYSTEM_LINES: readonly string[] = [
  'if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then init=systemd',
  'elif command -v rc-service >/dev/null 2>&1 && [ -d /run/openrc ]; then init=openrc',
  'else init=sysvinit; fi',
];

const UNIT_STATE_WORDS: Record<string, UnitState> = {
  socket: 'socket',
  accept: 'per-connection',
  reload: 'active',
  hup: 'no-reload',
  inactive: 'inactive',
};

/**
 * Prints `INIT UNIT STATE PID ENABLED` (`-` for none). Under systemd the unit
 * that is active wins over one that is merely installed: a masked or disabled
 * ssh.service beside sshd.service (RHEL's name) is not how sshd runs. STATE
 * is systemd's view of the unit (see UnitState); PID, for sshd only, the
 * live pid in /run/sshd.pid — sshd started by hand, outside any unit;
 * ENABLED `enabled` when the unit's .socket is enabled (the host is set up
 * to start sshd through it, active or not). It runs in the read round trip,
 * so these facts cost no extra one.
 */
export function detectionScript(name: string): string {
  const names = ALIASES[name] ?? [name];
  const candidates = names.map(shellQuote).join(' ');
  // Unit 2k is candidate k's service, 2k+1 its socket: all their states from one systemctl (systemd_units.ts).
  const units = names.flatMap((n) => [`${n}.service`, `${n}.socket`]);
  const state = (k: number, socket: 0 | 1, property: UnitProperty): string =>
    `$${unitVariable(2 * k + socket, property)}`;
  return [
    ...INIT_SYSTEM_LINES,
    'unit=""; installed=""; svc=""; sock=""; accept=""; reload=""; socket_load=""',
    'if [ $init = systemd ]; then',
    // sshd's units are SHARED_UNITS' first four, in this order: the round trip's host facts share them.
    ...(ALIASES[name] !== undefined
      ? sharedShowLines()
      : systemctlShowLines(units, ['LoadState', 'ActiveState', 'CanReload', 'Accept'])),
    // The first candidate whose service or socket is active; else the first whose service is loaded.
    ...names.flatMap((n, k) => [
      `  if [ -z "$unit" ] && { [ "${state(k, 0, 'ActiveState')}" = active ] || [ "${state(k, 1, 'ActiveState')}" = active ]; }; then`,
      `    unit=${shellQuote(n)}; svc=${state(k, 0, 'ActiveState')}; sock=${state(k, 1, 'ActiveState')}`,
      `    accept=${state(k, 1, 'Accept')}; reload=${state(k, 0, 'CanReload')}; socket_load=${state(k, 1, 'LoadState')}`,
      `  elif [ -z "$unit$installed" ] && [ "${state(k, 0, 'LoadState')}" = loaded ]; then`,
      `    installed=${shellQuote(n)}; socket_load=${state(k, 1, 'LoadState')}`,
      '  fi',
    ]),
    'else',
    `  for n in ${candidates}; do [ -x "/etc/init.d/$n" ] && { unit=$n; break; }; done`,
    'fi',
    'unit=${unit:-$installed}',
    's=-',
    'if [ $init = systemd ] && [ -n "$unit" ]; then',
    '  if [ "$sock" = active ]; then',
    '    s=socket; [ "$accept" = yes ] && s=accept',
    '  elif [ "$svc" = active ]; then',
    '    s=reload; [ "$reload" = yes ] || s=hup',
    '  else s=inactive; fi',
    'fi',
    'p=-',
    ...(ALIASES[name]
      ? [
          'read -r q < /run/sshd.pid 2>/dev/null && [ "${q:-0}" -gt 0 ] 2>/dev/null && kill -0 "$q" 2>/dev/null && p=$q',
        ]
      : []),
    'e=-',
    // A socket systemd did not find has no unit file to be enabled by: is-enabled is not asked.
    '[ $init = systemd ] && [ -n "$unit" ] && [ "$socket_load" != not-found ] && systemctl is-enabled --quiet "$unit.socket" 2>/dev/null && e=enabled',
    'echo "$init ${unit:--} $s $p $e"',
  ].join('\n');
}

export function parseDetection(stdout: string): DetectedService {
  const [init = 'sysvinit', unit = '-', state = '-', pid = '-', enabled = '-'] = stdout.trim().split(/\s+/);
  const unitState = init === 'systemd' && unit !== '-' ? UNIT_STATE_WORDS[state] : undefined;
  return {
    init: init as InitSystem,
    unit: unit === '-' ? undefined : unit,
    socketActivated: unitState === 'socket' || unitState === 'per-connection',
    socketEnabled: init === 'systemd' && enabled === 'enabled',
    ...(unitState !== undefined ? { unitState } : {}),
    ...(/^[1-9][0-9]*$/.test(pid) ? { sshdPid: Number(pid) } : {}),
  };
}

const VERB: Record<ServiceArgs['state'], string> = {
  reloaded: 'reload',
  restarted: 'restart',
  started: 'start',
};

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

/**
 * How sshd takes a new sshd_config under systemd, when the plain `systemctl
 * reload` would not do it: a plan, or undefined for the plain reload.
 */
function sshdReloadUnderSystemd(
  unit: string,
  state: UnitState | undefined,
  sshdPid: number | undefined,
  start: string,
): { message: string; script?: string } | undefined {
  const u = shellQuote(unit);
  switch (state) {
    case 'socket':
      // On SIGHUP sshd re-executes without the socket's descriptor and dies (see the top of this file).
      return {
        message: `restart ${unit} (systemd; started by ${unit}.socket, whose sshd a reload would kill: it re-executes without the socket)`,
        script: `systemctl restart ${u}.service`,
      };
    case 'per-connection':
      // ssh.socket with Accept=yes starts `sshd -i` per connection, which reads sshd_config itself.
      return {
        message: `nothing to reload: ${unit}.socket starts sshd per connection (Accept=yes), and the next connection reads the new configuration`,
      };
    case 'no-reload':
      // What Debian's and Red Hat's ExecReload= do after `sshd -t`: the configuration was tested already.
      return {
        message: `send SIGHUP to sshd (${unit}.service runs it but cannot be reloaded: no ExecReload=, or masked)`,
        script: `kill -HUP "$(systemctl show -p MainPID --value ${u}.service)"`,
      };
    case 'inactive':
      if (sshdPid === undefined)
        return {
          message: `start ${unit} (systemd; ${unit}.service is not running)`,
          script: start,
        };
      return outsideSystemd(`${unit}.service is not active`, sshdPid);
    default:
      return undefined;
  }
}

/** sshd started by hand on a systemd host: no unit to ask, its pid file names it. */
function outsideSystemd(why: string, sshdPid: number): { message: string; script: string } {
  return {
    message: `send SIGHUP to sshd (pid ${sshdPid} in /run/sshd.pid), which runs outside systemd: ${why}`,
    script: 'kill -HUP "$(cat /run/sshd.pid)"',
  };
}

async function planService(args: ServiceArgs, host: HostView): Promise<ResourcePlan> {
  const detected = await host.probe(detectionScript(args.name));
  const detection = parseDetection(detected.stdout);
  const { init, unit, unitState, sshdPid } = detection;
  const empty = { warnings: [], fileChanges: [] };
  const isSshd = ALIASES[args.name] !== undefined;
  const special =
    isSshd && init === 'systemd' && args.state === 'reloaded'
      ? unit
        ? sshdReloadUnderSystemd(unit, unitState, sshdPid, startScript({ ...detection, unit }, args.name))
        : sshdPid !== undefined
          ? outsideSystemd('no ssh or sshd unit is installed', sshdPid)
          : undefined
      : undefined;
  if (special) {
    return {
      ...empty,
      action: special.script ? 'change' : 'none',
      messages: [special.message],
      commands: special.script ? [{ description: special.script, script: special.script }] : [],
      ...(special.script ? { effects: serviceEffects(args.name, unit ?? args.name) } : {}),
    };
  }
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
