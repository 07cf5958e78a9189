import type { ResourceKind } from './types.js';
import { sshdConfigResource } from './sshd_config.js';
import { serviceResource } from './service.js';
import { tcpWrappersResource } from './tcp_wrappers.js';
import { fail2banResource } from './fail2ban.js';
import { firewallResource } from './firewall.js';
import { templateResource } from './template.js';
import { fileResource } from './file.js';

/** Every resource kind a task can use, by its task key. */
export const RESOURCES: ReadonlyMap<string, ResourceKind> = new Map<string, ResourceKind>(
  [
    sshdConfigResource,
    serviceResource,
    tcpWrappersResource,
    fail2banResource,
    firewallResource,
    templateResource,
    fileResource,
  ].map((r) => [r.name, r as ResourceKind]),
);

export function resourceSchemas(): Record<string, Record<string, unknown>> {
  return Object.fromEntries([...RESOURCES].map(([name, r]) => [name, r.argsSchema]));
}
