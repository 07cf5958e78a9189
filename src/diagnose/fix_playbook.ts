/**
 * Findings → a playbook of sshfix resources that fixes them, one play per
 * host, for review with `sshfix plan` before `sshfix apply`. Pure.
 *
 * Only findings of medium or high confidence are acted on; when a host has
 * none, its most likely finding is (a guess is better than nothing, and the
 * plan shows exactly what it would do). Findings without a remedy (network,
 * memory, disk) appear as comments.
 */
import { stringify } from 'yaml';
import type { Finding, Remedy } from './findings.js';

export interface HostFindings {
  /** Inventory name or address: the play's `hosts:`. */
  host: string;
  findings: Finding[];
}

interface Task {
  name: string;
  [resource: string]: unknown;
}

/** The findings a fix is written for. */
export function actionable(findings: readonly Finding[]): Finding[] {
  const sure = findings.filter((f) => f.confidence !== 'low');
  if (sure.length > 0) return sure;
  return findings.slice(0, 1);
}

const unique = <T>(items: T[]): T[] => [...new Set(items)];

/** One host's tasks, in the order they must run: access layers, then sshd's file, then the service. */
export function tasksFor(remedies: readonly Remedy[]): Task[] {
  const tasks: Task[] = [];
  const clients = (kind: Remedy['kind']): string[] =>
    unique(remedies.flatMap((r) => (r.kind === kind && 'client' in r ? [r.client] : [])));

  const wrapped = clients('tcp_wrappers');
  if (wrapped.length > 0) {
    tasks.push({
      name: `let ${wrapped.join(', ')} through TCP wrappers`,
      tcp_wrappers: { not_denied: wrapped, allow: [{ daemon: 'sshd', clients: [...wrapped] }] },
    });
  }
  const firewalled = clients('firewall');
  if (firewalled.length > 0) {
    tasks.push({
      name: `allow SSH from ${firewalled.join(', ')} in the firewall`,
      firewall: { allow_ssh_from: firewalled.map(hostCidr), remove_blocking: true },
    });
  }
  const banned = clients('fail2ban');
  if (banned.length > 0) {
    tasks.push({
      name: `unban ${banned.join(', ')} and never ban it again`,
      fail2ban: { ignoreip: banned, unban: banned },
    });
  }
  const penalised = clients('source_penalty');
  const settings: Record<string, string | number> = {};
  for (const r of remedies) if (r.kind === 'sshd_settings') Object.assign(settings, r.settings);
  if (penalised.length > 0) {
    // Restarted, not only reloaded: either lifts a live penalty (they live in the listener's memory),
    // but a reload kills a socket-activated sshd.
    const kept = remedies.flatMap((r) => (r.kind === 'source_penalty' ? r.exempt : []));
    tasks.push({
      name: `never penalise ${penalised.join(', ')} (PerSourcePenaltyExemptList)`,
      sshd_config: {
        settings: { PerSourcePenaltyExemptList: unique([...kept, ...penalised.map(hostCidr)]).join(',') },
      },
      notify: 'restart sshd',
    });
  }
  const removals = unique(remedies.flatMap((r) => (r.kind === 'sshd_remove' ? r.keywords : [])));
  const sshdConfig: Record<string, unknown> = {};
  if (Object.keys(settings).length > 0) sshdConfig.settings = settings;
  if (removals.length > 0) sshdConfig.remove = removals;
  // sshd would not start while a directive it rejects stays, and this playbook cannot name that one.
  const invalidUnknown = remedies.some((r) => r.kind === 'sshd_remove' && r.keywords.length === 0);
  const sshdDown =
    !invalidUnknown &&
    remedies.some((r) => r.kind === 'sshd_start' || (r.kind === 'sshd_remove' && !r.sshdRunning));
  if (Object.keys(sshdConfig).length > 0) {
    tasks.push({
      name: 'sshd limits and directives',
      sshd_config: sshdConfig,
      ...(sshdDown ? {} : { notify: 'restart sshd' }),
    });
  }
  if (sshdDown) tasks.push({ name: 'sshd is running', service: { name: 'sshd', state: 'started' } });
  return tasks;
}

function hostCidr(address: string): string {
  return address.includes(':') ? `${address}/128` : `${address}/32`;
}

/** Whether the playbook writes a task for this finding's remedy (an invalid directive it cannot name gets none). */
function fixes(remedy: Remedy | undefined, all: readonly Remedy[]): boolean {
  if (remedy === undefined) return false;
  if (remedy.kind === 'sshd_remove') return remedy.keywords.length > 0;
  if (remedy.kind === 'sshd_start') return tasksFor(all).some((t) => 'service' in t);
  return true;
}

function comments(host: HostFindings, used: readonly Finding[]): string[] {
  const lines = [`# ${host.host}:`];
  const remedies = used.flatMap((f) => (f.remedy ? [f.remedy] : []));
  for (const f of host.findings) {
    const acted = used.includes(f) && fixes(f.remedy, remedies);
    lines.push(`#   [${f.confidence}] ${f.cause}${acted ? '' : ' (not fixed by this playbook)'}: ${f.fix}`);
  }
  return lines;
}

/** The playbook text; null when no host has anything to fix. */
export function fixPlaybook(hosts: readonly HostFindings[]): string | null {
  const header = ['# Written by `sshfix diagnose`. Review with `sshfix plan` before `sshfix apply`.'];
  const plays: unknown[] = [];
  for (const host of hosts) {
    if (host.findings.length === 0) continue;
    const used = actionable(host.findings);
    header.push(...comments(host, used));
    const tasks = tasksFor(used.flatMap((f) => (f.remedy ? [f.remedy] : [])));
    if (tasks.length === 0) continue;
    const restart = tasks.some((t) => t.notify === 'restart sshd');
    plays.push({
      name: `fix SSH access to ${host.host}`,
      hosts: host.host,
      tasks,
      ...(restart
        ? { handlers: [{ name: 'restart sshd', service: { name: 'sshd', state: 'restarted' } }] }
        : {}),
    });
  }
  if (plays.length === 0) return null;
  return `${header.join('\n')}\n${stringify(plays, { lineWidth: 0, aliasDuplicateObjects: false })}`;
}
