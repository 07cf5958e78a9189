import type { ResourceKind } from './types.js';
import { sshdConfigResource } from './sshd_config.js';
import { serviceResource } from './service.js';

/** Every resource kind a task can use, by its task key. */
export const RESOURCES: ReadonlyMap<string, ResourceKind> = new Map<string, ResourceKind>(
  [sshdConfigResource, serviceResource].map((r) => [r.name, r as ResourceKind]),
);

export function resourceSchemas(): Record<string, Record<string, unknown>> {
  return Object.fromEntries([...RESOURCES].map(([name, r]) => [name, r.argsSchema]));
}
