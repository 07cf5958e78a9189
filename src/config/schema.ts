/**
 * JSON Schemas of playbooks and resource arguments, and the translation of
 * ajv's errors into Diagnostics that point at the offending YAML node.
 *
 * Instance locations are JSON pointers (RFC 6901), the same form ajv reports in
 * `instancePath`, so a position map keyed by pointer serves both.
 */
import { Ajv } from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type { Diagnostic, SourcePosition } from './diagnostics.js';
import { didYouMean } from './suggest.js';

/** JSON Schema of each resource's arguments, keyed by the resource's task key. */
export interface ResourceSchemas {
  [resource: string]: Record<string, unknown>;
}

/** Positions by JSON pointer: a Map, or a view of part of one (subPositionMap). */
export interface PositionLookup {
  get(pointer: string): SourcePosition | undefined;
  has(pointer: string): boolean;
}

/** Where each node of a parsed document came from. */
export interface SourcePositionMap {
  /** Position of the value at each JSON pointer ("" is the root). */
  values: PositionLookup;
  /** Position of the key, for pointers whose parent is a mapping. */
  keys: PositionLookup;
}

// ---------------------------------------------------------------------------
// JSON pointers and positions

export function childPointer(pointer: string, segment: string | number): string {
  return `${pointer}/${String(segment).replace(/~/g, '~0').replace(/\//g, '~1')}`;
}

function pointerSegments(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function parentPointer(pointer: string): string | undefined {
  return pointer === '' ? undefined : pointer.slice(0, pointer.lastIndexOf('/'));
}

/**
 * Position of the node at `pointer` (or of its key), falling back to the
 * nearest ancestor: values produced by rendering a template, or reached
 * through a YAML alias, have no node of their own.
 */
export function positionAt(
  map: SourcePositionMap,
  pointer: string,
  which: 'value' | 'key' = 'value',
): SourcePosition | undefined {
  if (which === 'key') {
    const keyPosition = map.keys.get(pointer);
    if (keyPosition) return keyPosition;
  }
  for (let current: string | undefined = pointer; current !== undefined; current = parentPointer(current)) {
    const position = map.values.get(current);
    if (position) return position;
  }
  return undefined;
}

/**
 * The part of `map` under `prefix`, re-rooted so that `prefix` becomes "".
 * A view that prefixes each lookup, not a copy: every task of a playbook gets
 * one, and copying meant scanning the whole document's map per task, which
 * made loading quadratic (4,000 tasks took over a minute).
 */
export function subPositionMap(map: SourcePositionMap, prefix: string): SourcePositionMap {
  // A pointer is "" or starts with "/": anything else names no node, here or in `map`.
  const inside = (pointer: string) => pointer === '' || pointer.startsWith('/');
  const under = (lookup: PositionLookup): PositionLookup => ({
    get: (pointer) => (inside(pointer) ? lookup.get(prefix + pointer) : undefined),
    has: (pointer) => inside(pointer) && lookup.has(prefix + pointer),
  });
  return { values: under(map.values), keys: under(map.keys) };
}

/** Diagnostics in source order; those without a position last. Stable otherwise. */
export function sortByPosition(diagnostics: Diagnostic[]): Diagnostic[] {
  const rank = (d: Diagnostic): [string, number, number] =>
    d.position ? [d.position.file, d.position.line, d.position.column] : ['\uffff', 0, 0];
  return [...diagnostics].sort((a, b) => {
    const [fileA, lineA, columnA] = rank(a);
    const [fileB, lineB, columnB] = rank(b);
    if (fileA !== fileB) return fileA < fileB ? -1 : 1;
    return lineA - lineB || columnA - columnB;
  });
}

// ---------------------------------------------------------------------------
// Schemas

const TASK_DEFINITION = 'task';
const PLAY_DEFINITION = 'play';
const IMPORT_DEFINITION = 'import_playbook';
/** ajv's schemaPath of the "exactly one resource key" rule, reported in our own words. */
const TASK_RESOURCE_RULE = `#/definitions/${TASK_DEFINITION}/oneOf`;

/**
 * Ansible's fully qualified names of the modules whose arguments a resource
 * accepts as Ansible's module does (a subset of them, with the same meaning),
 * so that `ansible.builtin.service: {name: ssh, state: reloaded}` means what it
 * means there. Modules that only look alike are left out: `copy` (the file
 * resource also takes `state: absent`, which copy does not know) and
 * `lineinfile` (sshd_config edits settings, not lines).
 */
export const FQCN_ALIASES: Readonly<Record<string, string>> = {
  'ansible.builtin.service': 'service',
  'ansible.builtin.template': 'template',
};

/** The task keys that name a resource: its own name, and each FQCN alias of it. */
export function resourceTaskKeys(resources: ResourceSchemas): string[] {
  const aliases = Object.entries(FQCN_ALIASES)
    .filter(([, target]) => Object.hasOwn(resources, target))
    .map(([alias]) => alias);
  return [...Object.keys(resources), ...aliases];
}

/** The resource a task key names (an FQCN alias names its resource), or undefined. */
export function resourceOfTaskKey(key: string, resources: ResourceSchemas): string | undefined {
  if (Object.hasOwn(resources, key)) return key;
  const target = Object.hasOwn(FQCN_ALIASES, key) ? FQCN_ALIASES[key] : undefined;
  return target !== undefined && Object.hasOwn(resources, target) ? target : undefined;
}

/** `namespace.collection.module`, e.g. ansible.builtin.copy. */
const FQCN_SHAPE = /^[a-z0-9_]+\.[a-z0-9_]+\.[a-z0-9_]+$/;

const TAGS_SCHEMA = {
  // One type list rather than anyOf: ajv then reports one error, not one per branch.
  type: ['string', 'array'],
  minLength: 1,
  items: { type: 'string', minLength: 1 },
  description:
    'Tags for --tags/--skip-tags: a list, or one string (commas separate tags). "always" runs unless skipped by name; "never" runs only when asked for.',
};

export interface PlaybookSchemaOptions {
  /**
   * "schema" (default) embeds each resource's argument schema, for editors.
   * "any" accepts any arguments: at load time arguments are still templates,
   * and are checked against their schema only once rendered.
   */
  resourceArgs?: 'schema' | 'any';
}

/**
 * The JSON Schema (draft-07) of a playbook using the given resources. Editors
 * given the "schema" form flag a templated value (`port: "{{ ssh_port }}"`)
 * where the resource wants a number; sshfix itself validates after rendering.
 */
export function playbookJsonSchema(
  resources: ResourceSchemas,
  options: PlaybookSchemaOptions = {},
): Record<string, unknown> {
  const taskKeys = resourceTaskKeys(resources);
  const argsSchemaOf = (key: string): Record<string, unknown> =>
    options.resourceArgs === 'any' ? {} : (resources[resourceOfTaskKey(key, resources) ?? key] ?? {});
  const task: Record<string, unknown> = {
    type: 'object',
    additionalProperties: false,
    properties: {
      name: {
        type: 'string',
        minLength: 1,
        description:
          'Shown in plans and reports; without it, the resource and a summary of its arguments are shown.',
      },
      ...Object.fromEntries(taskKeys.map((key) => [key, argsSchemaOf(key)])),
      notify: {
        type: ['string', 'array'],
        items: { type: 'string' },
        description:
          'Handlers of this play (by name or by a topic they listen to) to run once, at the end, if this task changed something.',
      },
      listen: {
        type: ['string', 'array'],
        items: { type: 'string', minLength: 1 },
        description: 'Handlers only: topics that notify this handler, besides its name.',
      },
      tags: TAGS_SCHEMA,
      check_mode: {
        type: 'boolean',
        description:
          'true: this task is always only planned: its changes are shown, never applied, and notify no handler.',
      },
      become: {
        type: 'boolean',
        description:
          "Run this task's reads, writes and commands as root through sudo (true) or as the login user (false); beats the play's and the host's.",
      },
      no_log: {
        type: 'boolean',
        description:
          "As in Ansible: hide this task's diff, messages, commands and errors in every output; only its status shows.",
      },
      diff: {
        type: 'boolean',
        description:
          "false: never show this task's diff (file contents may hold secrets), even with --diff or plan.",
      },
      when: {
        type: ['string', 'boolean', 'array'],
        items: { type: ['string', 'boolean'] },
        description:
          'Jinja expression(s) without {{ }}, over variables, facts and registered results; a list must all hold. False: the task is skipped.',
      },
      loop: {
        type: ['array', 'string'],
        description:
          'Run the task once per item (a list, or "{{ variable }}" naming one); the item is `item`.',
      },
      loop_control: {
        type: 'object',
        additionalProperties: false,
        properties: {
          loop_var: {
            type: 'string',
            pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
            description: 'The name of the item variable instead of `item`.',
          },
          label: { type: 'string', description: 'How an item is named in the output (a template).' },
        },
      },
      register: {
        type: 'string',
        pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
        description:
          "A variable that receives the task's planned result (changed, failed, skipped, msg; results for a loop).",
      },
      ignore_errors: {
        type: 'boolean',
        description:
          'A failure while planning this task does not stop the host; it shows as failed, ignored.',
      },
    },
  };
  if (taskKeys.length > 0) {
    task.oneOf = taskKeys.map((key) => ({ required: [key] }));
  }
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'sshfix playbook',
    type: 'array',
    items: {
      // A mapping with import_playbook is an import; anything else must be a play.
      if: { type: 'object', required: [IMPORT_DEFINITION] },
      then: { $ref: `#/definitions/${IMPORT_DEFINITION}` },
      else: { $ref: `#/definitions/${PLAY_DEFINITION}` },
    },
    definitions: {
      [PLAY_DEFINITION]: {
        type: 'object',
        required: ['hosts'],
        additionalProperties: false,
        properties: {
          name: { type: 'string' },
          hosts: { type: 'string', minLength: 1, description: 'Inventory host pattern.' },
          vars: { type: 'object' },
          vars_files: {
            type: 'array',
            items: { type: 'string', minLength: 1 },
            description:
              "YAML or JSON files of variables, relative to the playbook's directory (maybe encrypted with " +
              "ansible-vault); they beat the play's vars, -e beats them.",
          },
          become: { type: 'boolean' },
          tags: TAGS_SCHEMA,
          tasks: { type: 'array', items: { $ref: `#/definitions/${TASK_DEFINITION}` } },
          handlers: { type: 'array', items: { $ref: `#/definitions/${TASK_DEFINITION}` } },
        },
      },
      [IMPORT_DEFINITION]: {
        type: 'object',
        required: [IMPORT_DEFINITION],
        additionalProperties: false,
        properties: {
          [IMPORT_DEFINITION]: {
            type: 'string',
            minLength: 1,
            description: "Another playbook whose plays run here, its path relative to this file's directory.",
          },
          name: { type: 'string' },
          tags: TAGS_SCHEMA,
        },
      },
      [TASK_DEFINITION]: task,
    },
  };
}

// Resource schemas come from our own code: unknown keywords are bugs, but
// union types (`type: ['string', 'number']`) are how they say "either".
// Compiling them is start-up time of every run, before the first connection:
// they are checked against the draft-07 meta-schema by the unit tests
// (playbook-schema.test.ts) instead of on each run, and the generated code is
// not optimised (these validators run a handful of times, on small documents).
const ajv = new Ajv({
  allErrors: true,
  verbose: true,
  allowUnionTypes: true,
  strictTypes: false,
  validateSchema: false,
  code: { optimize: false },
});

const structureValidators = new WeakMap<ResourceSchemas, ValidateFunction>();
const resourceValidators = new WeakMap<Record<string, unknown>, ValidateFunction>();

function structureValidator(resources: ResourceSchemas): ValidateFunction {
  let validate = structureValidators.get(resources);
  if (!validate) {
    validate = ajv.compile(playbookJsonSchema(resources, { resourceArgs: 'any' }));
    structureValidators.set(resources, validate);
  }
  return validate;
}

function resourceValidator(schema: Record<string, unknown>): ValidateFunction {
  let validate = resourceValidators.get(schema);
  if (!validate) {
    validate = ajv.compile(schema);
    resourceValidators.set(schema, validate);
  }
  return validate;
}

// ---------------------------------------------------------------------------
// Validation entry points

/**
 * ajv's errors for `data` against one of our own schemas (compiled once per
 * schema object), for callers that word their diagnostics themselves with
 * diagnosticsFromAjvErrors.
 */
export function schemaErrors(schema: Record<string, unknown>, data: unknown): ErrorObject[] {
  const validate = resourceValidator(schema);
  return validate(data) ? [] : [...(validate.errors ?? [])];
}

/** Plays and tasks of a parsed playbook, with resource arguments left unchecked. */
export function playbookStructureDiagnostics(
  data: unknown,
  positions: SourcePositionMap,
  resources: ResourceSchemas,
): Diagnostic[] {
  const validate = structureValidator(resources);
  if (validate(data)) return [];
  const errors = validate.errors ?? [];
  const resourceNames = Object.keys(resources);
  const taskKeys = resourceTaskKeys(resources);
  const taskErrors = errors.filter((e) => e.schemaPath === TASK_RESOURCE_RULE);
  const otherErrors = errors.filter(
    (e) =>
      e.schemaPath !== TASK_RESOURCE_RULE &&
      !e.schemaPath.startsWith(`${TASK_RESOURCE_RULE}/`) &&
      // "must match then/else schema" only repeats the errors of the branch taken.
      e.keyword !== 'if',
  );
  const general = diagnosticsFromAjvErrors(otherErrors, positions, playbookLabel);
  const resourceKeyProblems = taskErrors.flatMap((error) =>
    resourceKeyDiagnostic(error, otherErrors, positions, taskKeys, resourceNames),
  );
  return [...general, ...resourceKeyProblems];
}

/**
 * Checks arguments against their resource's schema. "unknown-keys" reports
 * only keys the schema does not allow: keys are never templated, so this is
 * right even before rendering, when values may still be `{{ ... }}` strings.
 */
export function resourceArgsDiagnostics(
  resource: string,
  schema: Record<string, unknown>,
  args: unknown,
  positions: SourcePositionMap,
  scope: 'all' | 'unknown-keys',
): Diagnostic[] {
  const validate = resourceValidator(schema);
  if (validate(args)) return [];
  let errors = validate.errors ?? [];
  if (scope === 'unknown-keys') {
    // Inside a combinator the failing branch may not be the one the rendered
    // value will take, so only unconditional additionalProperties count.
    errors = errors.filter(
      (e) =>
        e.keyword === 'additionalProperties' &&
        !/\/(anyOf|oneOf|allOf|not|if|then|else|dependencies|dependentSchemas)\//.test(e.schemaPath),
    );
  }
  return diagnosticsFromAjvErrors(errors, positions, (pointer, map) =>
    pointer === '' ? `the arguments of '${resource}'` : genericLabel(pointer, map),
  );
}

// ---------------------------------------------------------------------------
// ajv errors -> Diagnostics

/** How a location is named in a message, e.g. "'hosts'" or "task 2". */
export type LabelFor = (pointer: string, positions: SourcePositionMap) => string;

export function genericLabel(pointer: string, positions: SourcePositionMap): string {
  const segments = pointerSegments(pointer);
  const last = segments.at(-1);
  if (last === undefined) return 'the document';
  const parent = segments.at(-2);
  // A numeric segment is a list index unless the YAML had a key there.
  if (/^\d+$/.test(last) && !positions.keys.has(pointer) && parent !== undefined) {
    return `item ${Number(last) + 1} of '${parent}'`;
  }
  return `'${last}'`;
}

function playbookLabel(pointer: string, positions: SourcePositionMap): string {
  const segments = pointerSegments(pointer);
  const [play, section, task] = segments;
  if (play === undefined) return 'the playbook';
  if (segments.length === 1) return `play ${Number(play) + 1}`;
  if (segments.length === 3 && (section === 'tasks' || section === 'handlers')) {
    return `${section === 'tasks' ? 'task' : 'handler'} ${Number(task) + 1} of play ${Number(play) + 1}`;
  }
  return genericLabel(pointer, positions);
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  integer: 'an integer',
  boolean: 'a boolean (true or false)',
  array: 'a list',
  object: 'a mapping',
  null: 'null',
};

function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'nothing (null)';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'number') return `the number ${value}`;
  if (typeof value === 'boolean') return `${value}`;
  return `the string ${JSON.stringify(value)}`;
}

/**
 * Ansible reads YAML 1.1, where `yes`/`no`/`on`/`off` are booleans; sshfix
 * reads YAML 1.2, where they are strings (so `PasswordAuthentication: no`
 * stays the word sshd expects). Say so where a boolean was wanted.
 */
function yaml11BooleanHint(type: unknown, value: unknown): string {
  const wantsBoolean = Array.isArray(type)
    ? type.includes('boolean')
    : String(type).split(',').includes('boolean');
  const yaml11Boolean = typeof value === 'string' && /^(y|yes|n|no|on|off)$/i.test(value);
  return wantsBoolean && yaml11Boolean ? ' (write true or false: in YAML 1.2 this word is a string)' : '';
}

function expectedTypes(type: unknown): string {
  const types = Array.isArray(type) ? type.map(String) : String(type).split(',');
  return types.map((t) => TYPE_NAMES[t] ?? t).join(' or ');
}

function quotedList(values: unknown[]): string {
  return values.map((v) => (typeof v === 'string' ? `'${v}'` : JSON.stringify(v))).join(', ');
}

function propertyNamesOf(schema: unknown): string[] {
  if (typeof schema !== 'object' || schema === null) return [];
  const properties = (schema as { properties?: unknown }).properties;
  return typeof properties === 'object' && properties !== null ? Object.keys(properties) : [];
}

function summaryOf(error: ErrorObject, label: string): string {
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'type':
      return `${label} must be ${expectedTypes(params.type)}, got ${describeValue(error.data)}${yaml11BooleanHint(params.type, error.data)}`;
    case 'required':
      return `missing required key '${String(params.missingProperty)}'`;
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      // A module's FQCN: a near alias would be a different module, not a typo.
      if (FQCN_SHAPE.test(key) && !Object.hasOwn(FQCN_ALIASES, key))
        return `unknown key '${key}': no resource of sshfix does what this Ansible module does (FQCN aliases: ${quotedList(Object.keys(FQCN_ALIASES))})`;
      return `unknown key '${key}'${didYouMean(key, propertyNamesOf(error.parentSchema))}`;
    }
    case 'enum': {
      const allowed = Array.isArray(params.allowedValues) ? params.allowedValues : [];
      const hint =
        typeof error.data === 'string'
          ? didYouMean(
              error.data,
              allowed.filter((v): v is string => typeof v === 'string'),
            )
          : '';
      return `${label} must be one of ${quotedList(allowed)}, got ${describeValue(error.data)}${hint}`;
    }
    case 'const':
      return `${label} must be ${quotedList([params.allowedValue])}`;
    case 'minLength':
      return params.limit === 1
        ? `${label} must not be empty`
        : `${label} ${error.message ?? 'is too short'}`;
    default:
      return `${label} ${error.message ?? `fails '${error.keyword}'`}`;
  }
}

function locationOf(error: ErrorObject, positions: SourcePositionMap): SourcePosition | undefined {
  if (error.keyword === 'additionalProperties') {
    const key = String((error.params as Record<string, unknown>).additionalProperty);
    return positionAt(positions, childPointer(error.instancePath, key), 'key');
  }
  return positionAt(positions, error.instancePath);
}

/** One Diagnostic per distinct problem, placed at the offending value (or key). */
export function diagnosticsFromAjvErrors(
  errors: ErrorObject[],
  positions: SourcePositionMap,
  labelFor: LabelFor = genericLabel,
): Diagnostic[] {
  const seen = new Set<string>();
  const diagnostics: Diagnostic[] = [];
  for (const error of errors) {
    const summary = summaryOf(error, labelFor(error.instancePath, positions));
    const position = locationOf(error, positions);
    const identity = `${summary}\u0000${position ? `${position.line}:${position.column}` : ''}`;
    if (seen.has(identity)) continue;
    seen.add(identity);
    diagnostics.push(position ? { severity: 'error', summary, position } : { severity: 'error', summary });
  }
  return diagnostics;
}

/**
 * "No resource key" or "several resource keys" for one task. A task whose
 * only unknown key looks like a resource name gets just the "did you mean"
 * for that key: it is the same mistake, reported once.
 */
function resourceKeyDiagnostic(
  error: ErrorObject,
  otherErrors: ErrorObject[],
  positions: SourcePositionMap,
  taskKeys: string[],
  resourceNames: string[],
): Diagnostic[] {
  // `required` ignores non-objects, so a task that is a string "matches" every
  // branch; its type error already says what is wrong.
  if (typeof error.data !== 'object' || error.data === null || Array.isArray(error.data)) return [];
  const task = error.data as Record<string, unknown>;
  const present = Object.keys(task).filter((key) => taskKeys.includes(key));
  const taskPosition = positionAt(positions, error.instancePath);
  const at = (position: SourcePosition | undefined): Pick<Diagnostic, 'position'> =>
    position ? { position } : {};
  if (present.length === 0) {
    const misspeltResource = otherErrors.some(
      (other) =>
        other.instancePath === error.instancePath &&
        other.keyword === 'additionalProperties' &&
        didYouMean(String((other.params as Record<string, unknown>).additionalProperty), taskKeys) !== '',
    );
    if (misspeltResource) return [];
    return [
      {
        severity: 'error',
        summary: `task has no resource key (expected one of ${quotedList(resourceNames)})`,
        ...at(taskPosition),
      },
    ];
  }
  const extra = present[1] ?? present[0] ?? '';
  return [
    {
      severity: 'error',
      summary: `task has several resource keys: ${quotedList(present)} (a task runs exactly one resource)`,
      ...at(positionAt(positions, childPointer(error.instancePath, extra), 'key') ?? taskPosition),
    },
  ];
}
