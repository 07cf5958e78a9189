/**
 * The JSON Schema files shipped in schemas/, for editors (the YAML language
 * server reads a `# yaml-language-server: $schema=...` line). They are
 * generated from the same sources the CLI validates with — the playbook
 * schema of schema.ts with every resource's argument schema, and the
 * connection variables of inventory.ts — by `npm run schemas`, and a unit test
 * keeps the committed files equal to what is generated.
 *
 * The schemas describe what sshfix accepts, so an editor flags what the CLI
 * would reject, and nothing it would accept:
 * - resource arguments are rendered before they are checked, so a string with
 *   `{{ ... }}` is accepted wherever a value is (`port: "{{ ssh_port }}"`);
 * - everything else (play keys, `hosts`, inventory structure and connection
 *   variables) is taken as written.
 */
import { playbookJsonSchema, type ResourceSchemas } from './schema.js';
import { CONNECTION_VARIABLE_NAMES } from './inventory.js';

type JsonSchema = Record<string, unknown>;

export const DRAFT_07 = 'http://json-schema.org/draft-07/schema#';

/** A string holding a template: it may render to any type. */
const TEMPLATE_STRING: JsonSchema = {
  type: 'string',
  pattern: '\\{\\{',
  description: 'A template, rendered for each host before it is checked.',
};

function isSchemaObject(value: unknown): value is JsonSchema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function mapValues(record: unknown, f: (schema: JsonSchema) => JsonSchema): unknown {
  if (!isSchemaObject(record)) return record;
  return Object.fromEntries(
    Object.entries(record).map(([key, value]) => [key, isSchemaObject(value) ? f(value) : value]),
  );
}

/**
 * `schema`, with a template string accepted at every node that constrains a
 * value's type (`type`, `enum`, `const`), nested nodes included.
 */
export function acceptTemplates(schema: JsonSchema): JsonSchema {
  const node: JsonSchema = { ...schema };
  for (const key of ['properties', 'patternProperties', 'definitions']) {
    if (key in node) node[key] = mapValues(node[key], acceptTemplates);
  }
  for (const key of ['additionalProperties', 'items', 'not', 'if', 'then', 'else']) {
    const child = node[key];
    if (isSchemaObject(child)) node[key] = acceptTemplates(child);
    else if (key === 'items' && Array.isArray(child)) {
      node[key] = child.map((item: unknown) => (isSchemaObject(item) ? acceptTemplates(item) : item));
    }
  }
  for (const key of ['anyOf', 'oneOf', 'allOf']) {
    const branches = node[key];
    if (Array.isArray(branches)) {
      node[key] = branches.map((b: unknown) => (isSchemaObject(b) ? acceptTemplates(b) : b));
    }
  }
  const constrainsType = 'type' in node || 'enum' in node || 'const' in node;
  if (!constrainsType) return node;
  const { description, ...rest } = node;
  return {
    ...(description !== undefined ? { description } : {}),
    anyOf: [rest, TEMPLATE_STRING],
  };
}

/** schemas/playbook.schema.json: every play key, and each resource's arguments. */
export function playbookSchemaDocument(resources: ResourceSchemas): JsonSchema {
  const templated = Object.fromEntries(
    Object.entries(resources).map(([name, schema]) => [name, acceptTemplates(schema)]),
  );
  const { $schema: _draft, title: _title, ...schema } = playbookJsonSchema(templated);
  return {
    $schema: DRAFT_07,
    title: 'sshfix playbook',
    description:
      'A list of plays: a host pattern, variables, tasks (each with exactly one resource) and handlers.',
    ...schema,
  };
}

// A connection variable set to null counts as unset (connectionVars), hence `null` in each.
/** 1-65535, as a number or as digits. */
const PORT: JsonSchema = {
  anyOf: [
    { type: 'integer', minimum: 1, maximum: 65535 },
    {
      type: 'string',
      pattern: '^\\s*0*([1-9]\\d{0,3}|[1-5]\\d{4}|6[0-4]\\d{3}|65[0-4]\\d{2}|655[0-2]\\d|6553[0-5])\\s*$',
    },
    { type: 'null' },
  ],
};
const NON_EMPTY_STRING: JsonSchema = {
  anyOf: [{ type: 'string', minLength: 1 }, { type: 'number' }, { type: 'null' }],
};
/** Ansible's boolean words, in any case (parseAnsibleBoolean). */
const ANSIBLE_BOOLEAN: JsonSchema = {
  anyOf: [
    { type: ['boolean', 'null'] },
    { enum: [0, 1] },
    {
      type: 'string',
      pattern:
        '^\\s*([yY]([eE][sS])?|[nN][oO]?|[oO][nN]|[oO][fF][fF]|[tT]([rR][uU][eE])?|[fF]([aA][lL][sS][eE])?|0|1)\\s*$',
    },
  ],
};

const CONNECTION_VARIABLE_SCHEMAS: Record<keyof typeof CONNECTION_VARIABLE_NAMES, JsonSchema> = {
  connection: {
    enum: ['ssh', 'smart', 'paramiko', 'paramiko_ssh', 'local', null],
    description: 'How to reach the host: over SSH, or the machine sshfix runs on (local).',
  },
  address: { ...NON_EMPTY_STRING, description: 'Address to connect to (default: the host name).' },
  port: { ...PORT, description: 'SSH port (default 22).' },
  user: { ...NON_EMPTY_STRING, description: 'Remote user.' },
  privateKeyFile: { ...NON_EMPTY_STRING, description: 'Private key file.' },
  password: { ...NON_EMPTY_STRING, description: 'Login password (a secret: prefer keys).' },
  become: { ...ANSIBLE_BOOLEAN, description: 'Run as root through sudo.' },
  becomePassword: { ...NON_EMPTY_STRING, description: "sudo's password, written to its stdin." },
};

/** Connection variables by every name sshfix reads them under; other variables are free. */
function variablesSchema(extra: Record<string, JsonSchema> = {}): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  for (const [setting, names] of Object.entries(CONNECTION_VARIABLE_NAMES)) {
    const schema = CONNECTION_VARIABLE_SCHEMAS[setting as keyof typeof CONNECTION_VARIABLE_NAMES];
    for (const name of names) properties[name] = schema;
  }
  return { type: ['object', 'null'], properties: { ...properties, ...extra } };
}

/** Names the loader refuses (inventory.ts: FORBIDDEN_GROUP_NAME_CHARS and FORBIDDEN_HOST_NAME_CHARS). */
const GROUP_NAME = '^[^\\s:,!&~\\[\\]*?=#;\'"]+$';
const HOST_NAME = '^[^\\s,*?=\'"!&~][^\\s,*?=\'"]*$';

/** schemas/inventory.schema.json: Ansible's YAML inventory, as sshfix reads it. */
export function inventorySchemaDocument(): JsonSchema {
  return {
    $schema: DRAFT_07,
    title: 'sshfix inventory (Ansible YAML)',
    description:
      'Groups (usually just "all"), each with hosts, vars and children. Host names may hold ranges (web[01:20]) and a :port.',
    type: 'object',
    minProperties: 1,
    propertyNames: { pattern: GROUP_NAME },
    additionalProperties: { $ref: '#/definitions/group' },
    definitions: {
      group: {
        type: ['object', 'null'],
        additionalProperties: false,
        properties: {
          hosts: {
            type: ['object', 'null'],
            description: "A mapping of host names (write 'web01:' on its own line, not '- web01').",
            propertyNames: { pattern: HOST_NAME },
            additionalProperties: { $ref: '#/definitions/hostVars' },
          },
          vars: { $ref: '#/definitions/groupVars' },
          children: {
            type: ['object', 'null'],
            propertyNames: { pattern: GROUP_NAME },
            additionalProperties: { $ref: '#/definitions/group' },
          },
        },
      },
      hostVars: variablesSchema(),
      groupVars: variablesSchema({
        ansible_group_priority: {
          anyOf: [{ type: 'integer' }, { type: 'string', pattern: '^\\s*-?\\d+\\s*$' }],
          description: 'Orders groups of equal depth when their variables are merged (default 1).',
        },
      }),
    },
  };
}

export interface SchemaDocument {
  /** File name inside schemas/. */
  file: string;
  schema: JsonSchema;
}

/** Every file of schemas/, as generated now. */
export function schemaDocuments(resources: ResourceSchemas): SchemaDocument[] {
  return [
    { file: 'playbook.schema.json', schema: playbookSchemaDocument(resources) },
    { file: 'inventory.schema.json', schema: inventorySchemaDocument() },
  ];
}
