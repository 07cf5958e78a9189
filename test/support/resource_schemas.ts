import type { ResourceSchemas } from '../../src/config/playbook.js';

/** Small stand-ins for the real resource schemas, so config tests do not depend on resource modules. */
export const TEST_RESOURCE_SCHEMAS: ResourceSchemas = {
  sshd_config: {
    type: 'object',
    additionalProperties: false,
    properties: {
      settings: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean', 'array'] } },
    },
  },
  service: {
    type: 'object',
    required: ['name'],
    additionalProperties: false,
    properties: { name: { type: 'string' }, state: { enum: ['reloaded', 'restarted', 'started'] } },
  },
};
