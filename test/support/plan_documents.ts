/** Plan documents for tests of the plan file and its renderers, made with the real builder. */
import {
  buildPlanDocument,
  fileFact,
  sha256Hex,
  type PlanDocument,
  type PlanHostInput,
} from '../../src/plan/plan_file.js';
import type { Fact, TaskPlan } from '../../src/plan/types.js';

/** A tcp_wrappers task that adds `network` to /etc/hosts.allow (before → before + network). */
export function allowTask(network: string, before = 'sshd: 10.0.0.0/8\n'): TaskPlan {
  return {
    play: 'site',
    handler: false,
    task: `allow ${network}`,
    resource: 'tcp_wrappers',
    notify: [],
    plan: {
      action: 'change',
      messages: [`sshd: add ${network}`],
      warnings: [],
      fileChanges: [
        {
          path: '/etc/hosts.allow',
          before,
          beforeSha256: sha256Hex(before),
          after: `${before.trimEnd()} ${network}\n`,
        },
      ],
      commands: [],
    },
  };
}

export function unchangedTask(name = 'sshd limits'): TaskPlan {
  return {
    play: 'site',
    handler: false,
    task: name,
    resource: 'sshd_config',
    notify: [],
    plan: { action: 'none', messages: [], warnings: [], fileChanges: [], commands: [] },
  };
}

export function planHostInput(
  host: string,
  tasks: TaskPlan[],
  extra: Partial<PlanHostInput> = {},
): PlanHostInput {
  return {
    host,
    address: host,
    plays: [onePlay(host, [fileFact('/etc/hosts.allow', sha256Hex(`${host}\n`))], tasks)],
    ...extra,
  };
}

/** One play "site" of a host's plan. */
export function onePlay(host: string, facts: Fact[], tasks: TaskPlan[], handlers: TaskPlan[] = []) {
  return { host, play: 'site', facts, tasks, handlers };
}

export function planDocument(hosts: PlanHostInput[]): PlanDocument {
  return buildPlanDocument({
    createdAt: new Date('2026-12-03T10:00:00Z'),
    sshfixVersion: '0.1.0',
    playbook: { path: 'site.yml', text: '- hosts: all\n' },
    inventory: { path: 'hosts.yml', text: 'all: {}\n' },
    extraVars: {},
    secrets: [],
    hosts,
  });
}
