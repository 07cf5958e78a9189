/**
 * The plan file (`sshfix plan --out plan.json`): a reviewed plan as a
 * document, read back by `sshfix show` and `sshfix apply plan.json`.
 *
 * It holds, per host, what each task would change and the facts that
 * decision rests on (file digests, the firewall ruleset's digest, sshd's
 * version...), so that apply can refuse a host whose facts changed since the
 * review; and digests of the playbook, inventory and variables it was made
 * from. Secrets are masked as in every other output, and a `no_log` task
 * leaves nothing of its contents here. The document carries its own digest:
 * sha256 over a canonical serialisation of everything else, so an edit or a
 * truncation is detected before anything is applied. (A checksum, not a
 * signature: whoever can write the file can recompute it.)
 *
 * Pure: no I/O (the CLI reads and writes the file).
 */
import { createHash } from 'node:crypto';
import { createTwoFilesPatch } from 'diff';
import { ConfigError, type Diagnostic, type SourcePosition } from '../config/diagnostics.js';
import { parseYaml } from '../config/playbook.js';
import { diagnosticsFromAjvErrors, schemaErrors, type SourcePositionMap } from '../config/schema.js';
import { redact, secretValues } from '../config/secrets.js';
import { changedFacts, describeChangedFacts } from './facts.js';
import type { CommandStep, Fact, FileChange, HostPlan, StateDiff, TaskPlan } from './types.js';

export const PLAN_FORMAT = 'sshfix-plan/1';

/** Text of a file change, for review; absent when the task says `diff: false`. */
export interface PlanFileText {
  /** null: the file does not exist yet. */
  before: string | null;
  after: string;
  /** Unified diff of before → after. */
  diff: string;
}

export interface PlanFileChange {
  path: string;
  /** sha256 (hex) of the content the plan was made against; null: absent. */
  beforeSha256: string | null;
  /** sha256 (hex) of the content apply will write (before masking). */
  afterSha256: string;
  mode?: string;
  owner?: string;
  group?: string;
  text?: PlanFileText;
}

export interface PlanStateChange {
  /** e.g. "iptables INPUT (IPv4)". */
  label: string;
  before: string;
  after: string;
  diff: string;
}

export interface PlanCommand {
  description: string;
  script: string;
  /** sha256 (hex) of the script as it will run (before masking): apply checks it is the one reviewed. */
  scriptSha256: string;
}

export type PlanAction = 'none' | 'change' | 'skip';

export interface PlanTask {
  name: string;
  resource: string;
  action: PlanAction;
  /** Planning the task failed: why (then action is 'none' and the host's plan ends here). */
  error?: string;
  /** `no_log: true`: messages, warnings and changes are left out, only the action shows. */
  noLog: boolean;
  /** `ignore_errors: true`: its `error` did not stop the host. */
  ignoreErrors?: boolean;
  /** Handlers notified when this task changes something. */
  notify: string[];
  messages: string[];
  warnings: string[];
  files: PlanFileChange[];
  states: PlanStateChange[];
  commands: PlanCommand[];
  /**
   * "sha256:<hex>" of everything applying the task would do, from the
   * unmasked values (taskChangeDigest): what apply compares with a fresh
   * plan. The only trace of a `no_log` task's changes.
   */
  changeSha256: string;
}

/** One play of a host's plan (a HostPlan, masked). */
export interface PlanPlay {
  name: string;
  /** What the play's decisions rest on, as planning read it (src/plan/types.ts Fact). */
  facts: Fact[];
  tasks: PlanTask[];
  /** Handlers that would run at the end of the play, in definition order. */
  handlers: PlanTask[];
}

export type PlanHostStatus = 'changed' | 'unchanged' | 'failed' | 'skipped' | 'unreachable';

export interface PlanHost {
  name: string;
  /** The address connected to (inventory `ansible_host`, or the name). */
  address: string;
  status: PlanHostStatus;
  /** Why the host failed, was unreachable or was skipped. */
  error?: string;
  /** Its plays, in playbook order. */
  plays: PlanPlay[];
}

/** A digest of one input the plan was made from. */
export interface PlanInputDigest {
  /** As given on the command line. */
  path?: string;
  /** "sha256:<hex>". */
  sha256: string;
}

/** The `-e` variables the plan was made from. */
export interface PlanVariables {
  /** "sha256:<hex>" of all of them, as a canonical JSON mapping. */
  sha256: string;
  /** The ones holding no secret: `apply PLAN` uses them again. */
  values: Record<string, unknown>;
  /** Names of the ones holding a secret: not stored, `apply PLAN` needs them passed again with -e. */
  secretNames: string[];
}

export interface PlanDocument {
  format: typeof PLAN_FORMAT;
  /** ISO 8601, UTC. */
  createdAt: string;
  sshfixVersion: string;
  inputs: {
    playbook: PlanInputDigest;
    inventory: PlanInputDigest;
    variables: PlanVariables;
  };
  hosts: PlanHost[];
  /** "sha256:<hex>" of the canonical serialisation of every other field. */
  digest: string;
}

/** A host's tasks over all its plays, in order. */
export function planHostTasks(host: PlanHost): PlanTask[] {
  return host.plays.flatMap((p) => p.tasks);
}

/** A host's notified handlers over all its plays, in order. */
export function planHostHandlers(host: PlanHost): PlanTask[] {
  return host.plays.flatMap((p) => p.handlers);
}

// ---------------------------------------------------------------------------
// Building

export interface PlanHostInput {
  host: string;
  address: string;
  /** What planHost returned for each play, unmasked. */
  plays: HostPlan[];
  unreachable?: boolean;
  /** The host failed as a whole, or (with `skipped`) why it was skipped. */
  error?: string;
  skipped?: boolean;
}

export interface PlanDocumentInput {
  createdAt: Date;
  sshfixVersion: string;
  playbook: { path: string; text: string };
  inventory: { path: string; text: string };
  extraVars: Record<string, unknown>;
  hosts: PlanHostInput[];
  /** Secret values (redact.ts secretValues) masked in every text of the document. */
  secrets: readonly string[];
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** A file's fact as planning records it (host_view.ts): its sha256 and owner, or "absent". */
export function fileFact(path: string, sha256: string | null, owner = '0644 root:root'): Fact {
  return {
    key: `file:${path}`,
    value: sha256 === null ? 'absent' : `sha256:${sha256} ${owner}`,
    description: path,
  };
}

/** JSON with object keys sorted at every depth and no whitespace: one text per value. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The digest the document should carry: everything but its `digest` field. */
export function planDigest(doc: Omit<PlanDocument, 'digest'> | PlanDocument): string {
  const { digest: _ignored, ...rest } = doc as PlanDocument;
  return `sha256:${sha256Hex(canonicalJson(rest))}`;
}

function unifiedDiff(label: string, before: string, after: string, beforeHeader: string): string {
  return (
    createTwoFilesPatch(label, label, before, after, beforeHeader, 'planned')
      // The ---/+++ lines already name the file.
      .replace(/^Index: .*\n=+\n/, '')
  );
}

function planFileChange(change: FileChange, showText: boolean, mask: (t: string) => string): PlanFileChange {
  const owner = {
    ...(change.mode !== undefined ? { mode: change.mode } : {}),
    ...(change.owner !== undefined ? { owner: change.owner } : {}),
    ...(change.group !== undefined ? { group: change.group } : {}),
  };
  const base = {
    path: mask(change.path),
    beforeSha256: change.beforeSha256,
    afterSha256: sha256Hex(change.after),
    ...owner,
  };
  if (!showText) return base;
  // Masked before diffing, so the diff holds no secret either.
  const before = change.before === null ? null : mask(change.before);
  const after = mask(change.after);
  const diff = unifiedDiff(base.path, before ?? '', after, before === null ? '(absent)' : 'current');
  return { ...base, text: { before, after, diff } };
}

function planStateChange(state: StateDiff, mask: (t: string) => string): PlanStateChange {
  const label = mask(state.label);
  const before = mask(state.before);
  const after = mask(state.after);
  return { label, before, after, diff: before === after ? '' : unifiedDiff(label, before, after, 'current') };
}

function planCommand(step: CommandStep, mask: (t: string) => string): PlanCommand {
  return {
    description: mask(step.description),
    script: mask(step.script),
    scriptSha256: sha256Hex(step.script),
  };
}

/**
 * What applying a task would do, as one digest of the unmasked values: its
 * action, every file's path, sha256 after and owner, every command's script.
 * Two plans whose tasks have equal digests make the same changes. Messages
 * and diffs of non-file state are left out: they describe, they are not applied.
 */
export function taskChangeDigest(task: TaskPlan): string {
  const plan = task.plan;
  const change =
    plan === undefined
      ? { error: true }
      : {
          action: plan.action,
          files: plan.fileChanges.map((c) => ({
            path: c.path,
            after: sha256Hex(c.after),
            mode: c.mode,
            owner: c.owner,
            group: c.group,
          })),
          commands: plan.commands.map((c) => sha256Hex(c.script)),
          touched: plan.touchedPaths ?? [],
        };
  return `sha256:${sha256Hex(canonicalJson({ resource: task.resource, task: task.task, ...change }))}`;
}

function planTask(input: TaskPlan, mask: (t: string) => string): PlanTask {
  const common = {
    name: mask(input.task),
    resource: input.resource,
    action: input.plan?.action ?? 'none',
    ...(input.error !== undefined ? { error: mask(input.error) } : {}),
    ...(input.ignoreErrors ? { ignoreErrors: true } : {}),
    notify: input.notify.map(mask),
    changeSha256: taskChangeDigest(input),
  };
  if (input.noLog || input.plan === undefined) {
    // A no_log task's error may quote its secrets too: only that it failed shows.
    const error = input.error !== undefined && input.noLog ? { error: 'planning failed (no_log)' } : {};
    return {
      ...common,
      ...error,
      noLog: Boolean(input.noLog),
      messages: [],
      warnings: [],
      files: [],
      states: [],
      commands: [],
    };
  }
  return {
    ...common,
    noLog: false,
    messages: input.plan.messages.map(mask),
    warnings: input.plan.warnings.map(mask),
    files: input.plan.fileChanges.map((c) => planFileChange(c, input.diff !== false, mask)),
    states: (input.plan.stateDiffs ?? []).map((s) => planStateChange(s, mask)),
    commands: input.plan.commands.map((c) => planCommand(c, mask)),
  };
}

function hostStatus(input: PlanHostInput): PlanHostStatus {
  if (input.unreachable) return 'unreachable';
  if (input.skipped) return 'skipped';
  const all = input.plays.flatMap((p) => [...p.tasks, ...p.handlers]);
  if (input.error !== undefined || all.some((t) => t.error !== undefined && !t.ignoreErrors)) return 'failed';
  if (all.some((t) => t.plan?.action === 'change')) return 'changed';
  const tasks = input.plays.flatMap((p) => p.tasks);
  if (tasks.length > 0 && tasks.every((t) => t.plan?.action === 'skip')) return 'skipped';
  return 'unchanged';
}

function planPlay(play: HostPlan, mask: (t: string) => string): PlanPlay {
  return {
    name: mask(play.play),
    facts: play.facts.map((f) => ({ ...f, description: mask(f.description) })),
    tasks: play.tasks.map((t) => planTask(t, mask)),
    handlers: play.handlers.map((t) => planTask(t, mask)),
  };
}

function planHost(input: PlanHostInput, mask: (t: string) => string): PlanHost {
  const plays = input.plays.map((p) => planPlay(p, mask));
  // A task whose planning failed is the host's reason too, as the markdown lists failed hosts by reason.
  const failedTask = plays.flatMap((p) => [...p.tasks, ...p.handlers]).find((t) => t.error !== undefined);
  const error =
    input.error !== undefined
      ? mask(input.error)
      : failedTask
        ? `task "${failedTask.name}": ${failedTask.error}`
        : undefined;
  return {
    name: input.host,
    address: input.address,
    status: hostStatus(input),
    ...(error !== undefined ? { error } : {}),
    plays,
  };
}

/**
 * The `-e` variables as the plan keeps them: those that hold no secret by
 * value, the names of the others (passed again to apply, checked by the
 * digest of all of them). A variable is secret by its name, or when it holds
 * one of `secrets` (a value that came out of a vault, say), also inside a
 * longer text.
 */
export function planVariables(
  extraVars: Record<string, unknown>,
  secrets: readonly string[] = [],
): PlanVariables {
  const values: Record<string, unknown> = {};
  const secretNames: string[] = [];
  const holdsSecret = (value: unknown): boolean =>
    typeof value === 'string' || typeof value === 'number'
      ? redact(String(value), secrets) !== String(value)
      : typeof value === 'object' && value !== null && Object.values(value).some(holdsSecret);
  for (const [name, value] of Object.entries(extraVars)) {
    if (secretValues({ [name]: value }).length > 0 || holdsSecret(value)) secretNames.push(name);
    else values[name] = value;
  }
  return { sha256: `sha256:${sha256Hex(canonicalJson(extraVars))}`, values, secretNames: secretNames.sort() };
}

export function buildPlanDocument(input: PlanDocumentInput): PlanDocument {
  const mask = (text: string) => redact(text, input.secrets);
  const body: Omit<PlanDocument, 'digest'> = {
    format: PLAN_FORMAT,
    createdAt: input.createdAt.toISOString(),
    sshfixVersion: input.sshfixVersion,
    inputs: {
      playbook: { path: input.playbook.path, sha256: `sha256:${sha256Hex(input.playbook.text)}` },
      inventory: { path: input.inventory.path, sha256: `sha256:${sha256Hex(input.inventory.text)}` },
      variables: planVariables(input.extraVars, input.secrets),
    },
    hosts: input.hosts.map((h) => planHost(h, mask)),
  };
  return { ...body, digest: planDigest(body) };
}

/** The file's text: indented JSON (diffable, readable), newline-terminated. */
export function serializePlanDocument(doc: PlanDocument): string {
  return JSON.stringify(doc, null, 2) + '\n';
}

// ---------------------------------------------------------------------------
// Reading

const SHA256_HEX = '^[0-9a-f]{64}$';
const SHA256_TAGGED = '^sha256:[0-9a-f]{64}$';
const stringList = { type: 'array', items: { type: 'string' } };

const TASK_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: [
    'name',
    'resource',
    'action',
    'noLog',
    'notify',
    'messages',
    'warnings',
    'files',
    'states',
    'commands',
    'changeSha256',
  ],
  properties: {
    name: { type: 'string' },
    resource: { type: 'string' },
    action: { enum: ['none', 'change', 'skip'] },
    error: { type: 'string' },
    changeSha256: { type: 'string', pattern: SHA256_TAGGED },
    noLog: { type: 'boolean' },
    ignoreErrors: { type: 'boolean' },
    notify: stringList,
    messages: stringList,
    warnings: stringList,
    files: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['path', 'beforeSha256', 'afterSha256'],
        properties: {
          path: { type: 'string', minLength: 1 },
          beforeSha256: { type: ['string', 'null'], pattern: SHA256_HEX },
          afterSha256: { type: 'string', pattern: SHA256_HEX },
          mode: { type: 'string' },
          owner: { type: 'string' },
          group: { type: 'string' },
          text: {
            type: 'object',
            additionalProperties: false,
            required: ['before', 'after', 'diff'],
            properties: {
              before: { type: ['string', 'null'] },
              after: { type: 'string' },
              diff: { type: 'string' },
            },
          },
        },
      },
    },
    states: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['label', 'before', 'after', 'diff'],
        properties: {
          label: { type: 'string' },
          before: { type: 'string' },
          after: { type: 'string' },
          diff: { type: 'string' },
        },
      },
    },
    commands: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['description', 'script', 'scriptSha256'],
        properties: {
          description: { type: 'string' },
          script: { type: 'string' },
          scriptSha256: { type: 'string', pattern: SHA256_HEX },
        },
      },
    },
  },
};

const INPUT_DIGEST_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['sha256'],
  properties: { path: { type: 'string' }, sha256: { type: 'string', pattern: SHA256_TAGGED } },
};

/** JSON Schema (draft-07) of format sshfix-plan/1. */
export const PLAN_DOCUMENT_SCHEMA: Record<string, unknown> = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'sshfix plan file',
  type: 'object',
  additionalProperties: false,
  required: ['format', 'createdAt', 'sshfixVersion', 'inputs', 'hosts', 'digest'],
  properties: {
    format: { const: PLAN_FORMAT },
    createdAt: { type: 'string', minLength: 1 },
    sshfixVersion: { type: 'string', minLength: 1 },
    inputs: {
      type: 'object',
      additionalProperties: false,
      required: ['playbook', 'inventory', 'variables'],
      properties: {
        playbook: INPUT_DIGEST_SCHEMA,
        inventory: INPUT_DIGEST_SCHEMA,
        variables: {
          type: 'object',
          additionalProperties: false,
          required: ['sha256', 'values', 'secretNames'],
          properties: {
            sha256: { type: 'string', pattern: SHA256_TAGGED },
            values: { type: 'object' },
            secretNames: stringList,
          },
        },
      },
    },
    hosts: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'address', 'status', 'plays'],
        properties: {
          name: { type: 'string', minLength: 1 },
          address: { type: 'string' },
          status: { enum: ['changed', 'unchanged', 'failed', 'skipped', 'unreachable'] },
          error: { type: 'string' },
          plays: {
            type: 'array',
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['name', 'facts', 'tasks', 'handlers'],
              properties: {
                name: { type: 'string' },
                facts: {
                  type: 'array',
                  items: {
                    type: 'object',
                    additionalProperties: false,
                    required: ['key', 'value', 'description'],
                    properties: {
                      key: { type: 'string', minLength: 1 },
                      value: { type: 'string' },
                      description: { type: 'string' },
                    },
                  },
                },
                tasks: { type: 'array', items: TASK_SCHEMA },
                handlers: { type: 'array', items: TASK_SCHEMA },
              },
            },
          },
        },
      },
    },
    digest: { type: 'string', pattern: SHA256_TAGGED },
  },
};

function error(summary: string, position?: SourcePosition): Diagnostic {
  return position ? { severity: 'error', summary, position } : { severity: 'error', summary };
}

/** Line and column (1-based) of a character offset. */
function positionOfOffset(text: string, offset: number, file: string): SourcePosition {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { file, line, column: offset - before.lastIndexOf('\n') };
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    // V8 says "... in JSON at position 42" (Node 20) or "... (line 3 column 5)" (Node 22).
    const offset = /at position (\d+)/.exec(message)?.[1];
    const lineColumn = /\(line (\d+) column (\d+)\)/.exec(message);
    const position = lineColumn
      ? { file, line: Number(lineColumn[1]), column: Number(lineColumn[2]) }
      : offset !== undefined
        ? positionOfOffset(text, Number(offset), file)
        : { file, line: 1, column: 1 };
    throw new ConfigError([error(`not a plan file: invalid JSON: ${message}`, position)]);
  }
}

/** Positions of the JSON's nodes (JSON is YAML 1.2), or only the file when that fails. */
function jsonPositions(text: string, file: string): SourcePositionMap {
  try {
    return parseYaml(text, file).positions;
  } catch {
    const root = new Map([['', { file, line: 1, column: 1 }]]);
    return { values: root, keys: new Map() };
  }
}

const pointerLabel = (pointer: string) => (pointer === '' ? 'the plan' : `'${pointer}'`);

/**
 * Reads a plan file's text. Throws ConfigError naming the file, the JSON
 * pointer and the line of each problem. Does not check the digest, age or
 * version: checkPlanUsable does, so `show` can still say what a refused plan holds.
 */
export function parsePlanDocument(text: string, fileName: string): PlanDocument {
  const data = parseJson(text, fileName);
  const format = (data as { format?: unknown } | null)?.format;
  if (typeof data === 'object' && data !== null && typeof format === 'string' && format !== PLAN_FORMAT) {
    throw new ConfigError([
      error(
        `plan file format '${format}' is not one this sshfix reads ('${PLAN_FORMAT}')`,
        jsonPositions(text, fileName).values.get('/format') ?? { file: fileName, line: 1, column: 1 },
      ),
    ]);
  }
  const errors = schemaErrors(PLAN_DOCUMENT_SCHEMA, data);
  if (errors.length > 0) {
    const positions = jsonPositions(text, fileName);
    throw new ConfigError(
      errors.flatMap((e) =>
        diagnosticsFromAjvErrors([e], positions, pointerLabel).map((d) =>
          // "missing required key 'x'" and "unknown key 'x'" name no place of their own.
          e.keyword === 'required' || e.keyword === 'additionalProperties'
            ? { ...d, summary: `${d.summary} in ${pointerLabel(e.instancePath)}` }
            : d,
        ),
      ),
    );
  }
  const doc = data as PlanDocument;
  if (Number.isNaN(Date.parse(doc.createdAt))) {
    throw new ConfigError([
      error(
        `'/createdAt' must be an ISO 8601 time, got ${JSON.stringify(doc.createdAt)}`,
        jsonPositions(text, fileName).values.get('/createdAt'),
      ),
    ]);
  }
  return doc;
}

// ---------------------------------------------------------------------------
// Refusal of a whole plan

export type PlanRefusalKind = 'broken-digest' | 'other-version' | 'too-old' | 'other-inputs';

export interface PlanRefusal {
  kind: PlanRefusalKind;
  message: string;
}

export interface PlanUsableOptions {
  now: Date;
  /** Unset: any age. */
  maxAgeMs?: number;
  /** This sshfix's version. */
  version: string;
}

function formatDuration(ms: number): string {
  if (ms < 120_000) return `${Math.floor(ms / 1000)}s`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 120) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  return hours < 48 ? `${hours}h${String(minutes % 60).padStart(2, '0')}m` : `${Math.floor(hours / 24)}d`;
}

/** Why `apply` must not use this plan at all; empty when it may. */
export function checkPlanUsable(doc: PlanDocument, options: PlanUsableOptions): PlanRefusal[] {
  const refusals: PlanRefusal[] = [];
  const expected = planDigest(doc);
  if (doc.digest !== expected) {
    refusals.push({
      kind: 'broken-digest',
      message: `the plan's digest does not match its contents (edited or corrupted after it was made): it says ${doc.digest}, the contents give ${expected}`,
    });
  }
  if (doc.sshfixVersion !== options.version) {
    refusals.push({
      kind: 'other-version',
      message: `the plan was made by sshfix ${doc.sshfixVersion}, this is sshfix ${options.version}: plan again with this version`,
    });
  }
  if (options.maxAgeMs !== undefined) {
    const age = options.now.getTime() - Date.parse(doc.createdAt);
    if (age > options.maxAgeMs) {
      refusals.push({
        kind: 'too-old',
        message: `the plan was made at ${doc.createdAt}, ${formatDuration(age)} ago, longer ago than --max-age ${formatDuration(options.maxAgeMs)}: plan again`,
      });
    }
  }
  return refusals;
}

/** The files and variables `apply PLAN` finds now, to compare with those the plan was made from. */
export interface PlanInputsNow {
  playbook: string;
  inventory: string;
  /** The plan's stored variables with this run's `-e` over them (planExtraVars). */
  extraVars: Record<string, unknown>;
}

/** The `-e` variables `apply PLAN` runs with: the plan's non-secret ones, then those given now over them. */
export function planExtraVars(doc: PlanDocument, given: Record<string, unknown>): Record<string, unknown> {
  return { ...doc.inputs.variables.values, ...given };
}

/**
 * Why the plan does not describe these inputs: a playbook or inventory edited
 * since (or a different one), other `-e` variables. Their sha256 is compared,
 * so secrets need not be in the plan to tell.
 */
export function checkPlanInputs(doc: PlanDocument, now: PlanInputsNow): PlanRefusal[] {
  const differs = (digest: { sha256: string }, text: string) => digest.sha256 !== `sha256:${sha256Hex(text)}`;
  const named = (label: string, digest: PlanInputDigest) =>
    `the ${label}${digest.path !== undefined ? ` ${digest.path}` : ''} is not the one the plan was made from (its sha256 differs)`;
  const refusals: PlanRefusal[] = [];
  const { playbook, inventory, variables } = doc.inputs;
  if (differs(playbook, now.playbook))
    refusals.push({ kind: 'other-inputs', message: named('playbook', playbook) });
  if (differs(inventory, now.inventory))
    refusals.push({ kind: 'other-inputs', message: named('inventory', inventory) });
  if (differs(variables, canonicalJson(now.extraVars))) {
    const secrets = variables.secretNames;
    const missing = secrets.filter((name) => !(name in now.extraVars));
    const hint =
      secrets.length === 0
        ? ''
        : `; the plan does not store secret ones: pass ${secrets.map((n) => `-e ${n}=…`).join(' ')} again` +
          (missing.length > 0 ? ` (missing: ${missing.join(', ')})` : '');
    refusals.push({
      kind: 'other-inputs',
      message: `the -e variables are not those the plan was made from${hint}`,
    });
  }
  return refusals;
}

// ---------------------------------------------------------------------------
// A host's reviewed play against a fresh plan of it

/**
 * What `apply PLAN` does with one play of one host, having planned it again
 * (reads only) just before:
 * - apply: the host is as it was when reviewed and the fresh plan makes the
 *   reviewed changes, so applying the fresh plan applies exactly those;
 * - already-applied: the host changed, but into what the plan would have made
 *   it (a second apply of the same plan): nothing to do;
 * - stale: anything else: the reviewed changes rest on a state that is gone.
 */
export type ReviewDecision =
  { kind: 'apply' } | { kind: 'already-applied' } | { kind: 'stale'; reasons: string[] };

/** A file fact's sha256 (hex), or undefined when absent or unread. */
function factSha256(value: string | undefined): string | undefined {
  return value === undefined ? undefined : /^sha256:([0-9a-f]{64})\b/.exec(value)?.[1];
}

export function reviewPlay(reviewed: PlanPlay, fresh: HostPlan): ReviewDecision {
  const freshTasks = [...fresh.tasks, ...fresh.handlers];
  const reviewedTasks = [...reviewed.tasks, ...reviewed.handlers];
  const changed = changedFacts(reviewed.facts, fresh.facts);
  const sameChanges =
    freshTasks.length === reviewedTasks.length &&
    freshTasks.every((t, i) => taskChangeDigest(t) === reviewedTasks[i]!.changeSha256);
  if (changed.length === 0) {
    if (sameChanges) return { kind: 'apply' };
    return {
      kind: 'stale',
      reasons: ['the host is as planned, but planning it now gives other changes than the reviewed ones'],
    };
  }
  const freshChangesNothing = freshTasks.every((t) => t.error === undefined && t.plan?.action !== 'change');
  const current = new Map(fresh.facts.map((f) => [f.key, f.value]));
  const reviewedFiles = reviewedTasks.flatMap((t) => (t.action === 'change' ? t.files : []));
  const filesAsReviewed = reviewedFiles.every(
    (f) => factSha256(current.get(`file:${f.path}`)) === f.afterSha256,
  );
  if (freshChangesNothing && filesAsReviewed) return { kind: 'already-applied' };
  return { kind: 'stale', reasons: describeChangedFacts(changed) };
}
