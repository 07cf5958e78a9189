/**
 * `service: {name, state}` — reload, restart or start a system service with
 * whatever init system the host runs. Used mostly as the `reload sshd`
 * handler, so sshd is reloaded once, at the end, and only where something
 * changed.
 */
import { shellQuote } from '../transport/shell.js';
import type { ResourcePlan } from '../plan/types.js';
import type { HostView, ResourceKind } from './types.js';

export interface ServiceArgs {
  name: string;
  state: 'reloaded' | 'restarted' | 'started';
}

export type InitSystem = 'systemd' | 'sysvinit' | 'openrc';

/** sshd's unit is `ssh` on Debian/Ubuntu and `sshd` elsewhere: either name finds either unit. */
const ALIASES: Record<string, string[]> = { ssh: ['ssh', 'sshd'], sshd: ['ssh', 'sshd'] };

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
    'echo "$init $unit"',
  ].join('\n');
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

function isRunningScript(init: InitSystem, unit: string): string {
  const u = shellQuote(unit);
  return init === 'systemd'
    ? `systemctl is-active --quiet ${u}.service`
    : `service ${u} status >/dev/null 2>&1`;
}

async function planService(args: ServiceArgs, host: HostView): Promise<ResourcePlan> {
  const detected = await host.probe(detectionScript(args.name));
  const [init, unit] = detected.stdout.trim().split(' ') as [InitSystem, string | undefined];
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
    const running = await host.probe(isRunningScript(init, unit));
    if (running.exitCode === 0)
      return { ...empty, action: 'none', messages: [`${unit} is running`], commands: [] };
  }
  const script = serviceCommand(init, unit, args.state);
  return {
    ...empty,
    action: 'change',
    messages: [`${VERB[args.state]} ${unit} (${init})`],
    commands: [{ description: script, script }],
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
