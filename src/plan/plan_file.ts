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
import { redact } from '../cli/redact.js';
import type { CommandStep, FileChange, StateDiff, TaskPlan } from './types.js';

export const PLAN_FORMAT = 'sshfix-plan/1';

/** One fact a host's plan rests on; apply compares them with the host's before changing it. */
export interface PlanFact {
  /** e.g. "file:/etc/hosts.allow", "sshd.version", "firewall.ruleset". */
  key: string;
  /** e.g. a sha256 (hex), "absent", "OpenSSH_9.2p1". */
  value: string;
  /** What the fact is, for the message that refuses a stale host. */
  description: string;
}

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
}

export type PlanAction = 'none' | 'change' | 'skip';

export interface PlanTask {
  name: string;
  resource: string;
  action: PlanAction;
  /** `no_log: true`: messages, warnings and changes are left out, only the action shows. */
  noLog: boolean;
  /** Handlers notified when this task changes something. */
  notify: string[];
  messages: string[];
  warnings: string[];
  files: PlanFileChange[];
  states: PlanStateChange[];
  commands: PlanCommand[];
}

export type PlanHostStatus = 'changed' | 'unchanged' | 'failed' | 'skipped' | 'unreachable';

export interface PlanHost {
  name: string;
  /** The address connected to (inventory `ansible_host`, or the name). */
  address: string;
  status: PlanHostStatus;
  /** Why the host failed, was unreachable or was skipped. */
  error?: string;
  facts: PlanFact[];
  tasks: PlanTask[];
  /** Handlers that would run at the end of the play, in definition order. */
  handlers: PlanTask[];
}

/** A digest of one input the plan was made from. */
export interface PlanInputDigest {
  /** As given on the command line; absent for the variables (`-e`). */
  path?: string;
  /** "sha256:<hex>". */
  sha256: string;
}

export interface PlanDocument {
  format: typeof PLAN_FORMAT;
  /** ISO 8601, UTC. */
  createdAt: string;
  sshfixVersion: string;
  inputs: {
    playbook: PlanInputDigest;
    inventory: PlanInputDigest;
    /** The `-e` variables, as a canonical JSON mapping. */
    variables: PlanInputDigest;
  };
  hosts: PlanHost[];
  /** "sha256:<hex>" of the canonical serialisation of every other field. */
  digest: string;
}

// ---------------------------------------------------------------------------
// Building

/** A task as the planner made it, with the playbook settings that decide what may be shown. */
export interface PlanTaskInput extends TaskPlan {
  /** `no_log: true`. */
  noLog?: boolean;
  /** `diff: false`: file contents stay out of the plan file (their digests stay). */
  diffHidden?: boolean;
}

export interface PlanHostInput {
  host: string;
  address: string;
  facts: PlanFact[];
  tasks: PlanTaskInput[];
  handlers: PlanTaskInput[];
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

/** A file's fact: its sha256, or "absent". */
export function fileFact(path: string, sha256: string | null): PlanFact {
  return { key: `file:${path}`, value: sha256 ?? 'absent', description: `content of ${path}` };
}

/** A fact that is the digest of some state's text (a firewall ruleset, fail2ban's bans). */
export function digestFact(key: string, text: string, description: string): PlanFact {
  return { key, value: `sha256:${sha256Hex(text)}`, description };
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
  return { description: mask(step.description), script: mask(step.script) };
}

function planTask(input: PlanTaskInput, mask: (t: string) => string): PlanTask {
  const common = {
    name: mask(input.task),
    resource: input.resource,
    action: input.plan.action,
    notify: input.notify.map(mask),
  };
  if (input.noLog) {
    return { ...common, noLog: true, messages: [], warnings: [], files: [], states: [], commands: [] };
  }
  return {
    ...common,
    noLog: false,
    messages: input.plan.messages.map(mask),
    warnings: input.plan.warnings.map(mask),
    files: input.plan.fileChanges.map((c) => planFileChange(c, input.diffHidden !== true, mask)),
    states: (input.plan.stateDiffs ?? []).map((s) => planStateChange(s, mask)),
    commands: input.plan.commands.map((c) => planCommand(c, mask)),
  };
}

function hostStatus(input: PlanHostInput): PlanHostStatus {
  if (input.unreachable) return 'unreachable';
  if (input.skipped) return 'skipped';
  if (input.error !== undefined) return 'failed';
  const tasks = [...input.tasks, ...input.handlers];
  if (tasks.some((t) => t.plan.action === 'change')) return 'changed';
  if (input.tasks.length > 0 && input.tasks.every((t) => t.plan.action === 'skip')) return 'skipped';
  return 'unchanged';
}

function planHost(input: PlanHostInput, mask: (t: string) => string): PlanHost {
  return {
    name: input.host,
    address: input.address,
    status: hostStatus(input),
    ...(input.error !== undefined ? { error: mask(input.error) } : {}),
    facts: input.facts.map((f) => ({ ...f, description: mask(f.description) })),
    tasks: input.tasks.map((t) => planTask(t, mask)),
    handlers: input.handlers.map((t) => planTask(t, mask)),
  };
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
      variables: { sha256: `sha256:${sha256Hex(canonicalJson(input.extraVars))}` },
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
  ],
  properties: {
    name: { type: 'string' },
    resource: { type: 'string' },
    action: { enum: ['none', 'change', 'skip'] },
    noLog: { type: 'boolean' },
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
        required: ['description', 'script'],
        properties: { description: { type: 'string' }, script: { type: 'string' } },
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
        variables: INPUT_DIGEST_SCHEMA,
      },
    },
    hosts: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'address', 'status', 'facts', 'tasks', 'handlers'],
        properties: {
          name: { type: 'string', minLength: 1 },
          address: { type: 'string' },
          status: { enum: ['changed', 'unchanged', 'failed', 'skipped', 'unreachable'] },
          error: { type: 'string' },
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
  extraVars: Record<string, unknown>;
}

/**
 * Why the plan does not describe these inputs: a playbook or inventory edited
 * since (or a different one), other `-e` variables. Their sha256 is compared,
 * so secrets need not be in the plan to tell.
 */
export function checkPlanInputs(doc: PlanDocument, now: PlanInputsNow): PlanRefusal[] {
  const differs = (digest: PlanInputDigest, text: string) => digest.sha256 !== `sha256:${sha256Hex(text)}`;
  const named = (label: string, digest: PlanInputDigest) =>
    `the ${label}${digest.path !== undefined ? ` ${digest.path}` : ''} is not the one the plan was made from (its sha256 differs)`;
  const refusals: PlanRefusal[] = [];
  const { playbook, inventory, variables } = doc.inputs;
  if (differs(playbook, now.playbook))
    refusals.push({ kind: 'other-inputs', message: named('playbook', playbook) });
  if (differs(inventory, now.inventory))
    refusals.push({ kind: 'other-inputs', message: named('inventory', inventory) });
  if (differs(variables, canonicalJson(now.extraVars)))
    refusals.push({ kind: 'other-inputs', message: 'the -e variables are not those the plan was made from' });
  return refusals;
}

// ---------------------------------------------------------------------------
// Stale hosts

/** A fact of a host's plan that no longer holds. */
export interface StaleFact {
  key: string;
  planned: string;
  /** null: the fact could not be read now. */
  current: string | null;
  /** e.g. "content of /etc/hosts.allow changed since the plan (sha256 3f2a… → sha256 91bc…)". */
  message: string;
}

/** A fact's value as a person compares them: digests shortened to 12 hex digits. */
function shortValue(value: string | null): string {
  if (value === null) return 'unknown';
  const digest = /^(?:sha256:)?([0-9a-f]{64})$/.exec(value);
  return digest ? `sha256 ${digest[1]!.slice(0, 12)}…` : value;
}

/**
 * The facts of `planned` that `current` (read from the host just before
 * applying) contradicts, in the plan's order. A host with any is stale: its
 * plan was reviewed against another state, and apply must refuse it.
 */
export function staleFacts(planned: readonly PlanFact[], current: readonly PlanFact[]): StaleFact[] {
  const now = new Map(current.map((f) => [f.key, f.value]));
  return planned.flatMap((fact) => {
    const value = now.get(fact.key) ?? null;
    if (value === fact.value) return [];
    return [
      {
        key: fact.key,
        planned: fact.value,
        current: value,
        message: `${fact.description} changed since the plan (${shortValue(fact.value)} → ${shortValue(value)})`,
      },
    ];
  });
}
