/**
 * Playbooks: an Ansible-like YAML list of plays, each a host pattern plus
 * tasks and handlers; each task names exactly one resource.
 *
 * Loading checks everything that does not depend on variables (structure,
 * unknown keys, notify targets) and reports every problem at once, in source
 * order. Resource arguments are checked against their schema per host, after
 * rendering, because `"{{ port }}"` only becomes a number then.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { LineCounter, isMap, isNode, isScalar, isSeq, parseDocument, visit } from 'yaml';
import type { Document, Node as YamlNode } from 'yaml';
import { ConfigError } from './diagnostics.js';
import type { Diagnostic, SourcePosition } from './diagnostics.js';
import {
  childPointer,
  playbookStructureDiagnostics,
  positionAt,
  resourceArgsDiagnostics,
  sortByPosition,
  subPositionMap,
} from './schema.js';
import type { ResourceSchemas, SourcePositionMap } from './schema.js';
import { didYouMean } from './suggest.js';
import { containsTemplate, renderString } from './template.js';
import { decryptVaultValues, Vault, VAULT_YAML_TAGS } from './vault.js';

export type { ResourceSchemas, SourcePositionMap } from './schema.js';

export interface TaskSpec {
  name: string;
  /** The one resource key, e.g. "sshd_config". */
  resource: string;
  /** Raw (unrendered) arguments as parsed from YAML. */
  args: unknown;
  /** Handler names; a single string in YAML becomes a one-item list. */
  notify: string[];
  /** `no_log: true`: only the task's status may be shown, as in Ansible. */
  noLog: boolean;
  /** `diff: false`: the task's diff is never shown. */
  diff: boolean;
  /** Of the task mapping. */
  position: SourcePosition;
  /** Positions inside `args`, keyed by JSON pointer relative to the arguments ("" is `args`). */
  argPositions: SourcePositionMap;
}

export interface PlaySpec {
  /** The play's `name`, or its host pattern when it has none. */
  name: string;
  hosts: string;
  vars: Record<string, unknown>;
  /** `vars_files:`, read when the playbook is loaded, in the order given. */
  varsFiles: VarsFile[];
  become?: boolean;
  tasks: TaskSpec[];
  handlers: TaskSpec[];
  position: SourcePosition;
}

export interface Playbook {
  path: string;
  plays: PlaySpec[];
}

export interface VarsFile {
  /** As written in the playbook. */
  path: string;
  vars: Record<string, unknown>;
}

/**
 * The variables a play sets: its `vars:`, then its `vars_files:` over them,
 * a later file over an earlier one. Ansible's order: inventory variables <
 * play vars < play vars_files < extra vars (`-e`).
 */
export function playVariables(play: Pick<PlaySpec, 'vars' | 'varsFiles'>): Record<string, unknown> {
  return Object.assign({}, play.vars, ...play.varsFiles.map((file) => file.vars));
}

export interface ParsedYaml {
  data: unknown;
  positions: SourcePositionMap;
}

/**
 * Reads and checks a playbook and its vars files. `vault` opens a playbook
 * encrypted as a whole, `!vault` values and vaulted vars files; without
 * passwords, any of them is an error that says how to give one.
 */
export function loadPlaybook(file: string, resources: ResourceSchemas, vault: Vault = new Vault()): Playbook {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConfigError([{ severity: 'error', summary: `cannot read playbook '${file}': ${reason}` }]);
  }
  const opened = vault.openFile(text, file);
  const playbook = parsePlaybook(opened.text, file, resources, vault);
  // A playbook encrypted whole: the values of its play variables are secrets.
  if (opened.encrypted) for (const play of playbook.plays) vault.rememberSecrets(play.vars);
  return playbook;
}

export function parsePlaybook(
  text: string,
  file: string,
  resources: ResourceSchemas,
  vault: Vault = new Vault(),
): Playbook {
  const { data, positions } = parseYaml(text, file, vault);
  const diagnostics = [
    ...playbookStructureDiagnostics(data, positions, resources),
    ...unknownArgumentKeyDiagnostics(data, positions, resources),
    ...handlerDiagnostics(data, positions),
  ];
  if (diagnostics.length > 0) throw new ConfigError(sortByPosition(diagnostics));
  // Validated above: the shape is now the one the schema describes.
  const plays = data as RawPlay[];
  const varsFiles = readPlayVarsFiles(plays, positions, file, vault);
  return buildPlaybook(plays, varsFiles, positions, file, resources);
}

/**
 * Every play's vars files, relative to the playbook's directory as in
 * Ansible; all problems of all of them at once.
 */
function readPlayVarsFiles(
  plays: RawPlay[],
  positions: SourcePositionMap,
  file: string,
  vault: Vault,
): VarsFile[][] {
  const diagnostics: Diagnostic[] = [];
  const dir = path.dirname(file);
  const read = plays.map((play, index) =>
    (play.vars_files ?? []).flatMap((name, entry): VarsFile[] => {
      const pointer = childPointer(childPointer(childPointer('', index), 'vars_files'), entry);
      const position = positionAt(positions, pointer) ?? { file, line: 1, column: 1 };
      if (containsTemplate(name)) {
        // Read before any host is known: there are no variables to render the name with yet.
        diagnostics.push({
          severity: 'error',
          summary: `vars_files: '${name}' is a template; sshfix reads vars files before any host variable is known: name the file`,
          position,
        });
        return [];
      }
      try {
        return [{ path: name, vars: loadVarsFile(path.resolve(dir, name), vault, position) }];
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        diagnostics.push(...error.diagnostics);
        return [];
      }
    }),
  );
  if (diagnostics.length > 0) throw new ConfigError(diagnostics);
  return read;
}

/**
 * A vars file (`vars_files:`, `-e @FILE`): a YAML or JSON mapping of
 * variables, maybe encrypted whole or holding `!vault` values. An empty file
 * sets nothing, as in Ansible. Every value of a file encrypted whole is a
 * secret. `reference` is where the file was named, for "cannot read it".
 */
export function loadVarsFile(
  file: string,
  vault: Vault,
  reference?: SourcePosition,
): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const reason =
      error !== null && typeof error === 'object' && 'message' in error
        ? String(error.message)
        : String(error);
    throw new ConfigError([
      {
        severity: 'error',
        summary: `cannot read vars file ${file}: ${reason}`,
        ...(reference ? { position: reference } : {}),
      },
    ]);
  }
  const opened = vault.openFile(text, file);
  const { data } = parseYaml(opened.text, file, vault);
  if (data === null || data === undefined) return {};
  if (!isRecord(data))
    throw new ConfigError([
      {
        severity: 'error',
        summary: `a vars file must hold a mapping of variable names to values, not ${Array.isArray(data) ? 'a list' : 'a single value'}`,
        position: { file, line: 1, column: 1 },
      },
    ]);
  if (opened.encrypted) vault.rememberSecrets(data);
  return data;
}

/**
 * Renders `{{ var }}` in every string of the task's args with the given vars,
 * then validates the result against the resource's schema. Errors carry the
 * position of the offending string or key; all of them are reported together.
 */
export function renderTaskArgs(
  task: TaskSpec,
  vars: Record<string, unknown>,
  resources: ResourceSchemas,
): unknown {
  const schema = Object.hasOwn(resources, task.resource) ? resources[task.resource] : undefined;
  if (!schema) {
    throw new ConfigError([
      {
        severity: 'error',
        summary: `unknown resource '${task.resource}'${didYouMean(task.resource, Object.keys(resources))}`,
        position: task.position,
      },
    ]);
  }
  const renderErrors: Diagnostic[] = [];
  const render = (value: unknown, pointer: string): unknown => {
    if (typeof value === 'string') {
      try {
        return renderString(value, vars);
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        // Looked up only now: every string of every task renders once per host.
        const position = positionAt(task.argPositions, pointer) ?? task.position;
        renderErrors.push(...error.diagnostics.map((d) => ({ ...d, position: d.position ?? position })));
        return value;
      }
    }
    if (Array.isArray(value)) return value.map((item, index) => render(item, childPointer(pointer, index)));
    if (isRecord(value)) {
      // Keys are never templated: they name settings, not values.
      return Object.fromEntries(
        Object.entries(value).map(([key, item]) => [key, render(item, childPointer(pointer, key))]),
      );
    }
    return value;
  };
  const rendered = render(task.args, '');
  if (renderErrors.length > 0) throw new ConfigError(sortByPosition(renderErrors));
  const schemaErrors = resourceArgsDiagnostics(task.resource, schema, rendered, task.argPositions, 'all');
  if (schemaErrors.length > 0) throw new ConfigError(sortByPosition(schemaErrors));
  return rendered;
}

/**
 * A resource's own findings about a task's rendered arguments (each at a
 * JSON pointer into them), as diagnostics at the offending key.
 */
export function argumentProblemDiagnostics(
  task: TaskSpec,
  problems: readonly { pointer: string; message: string }[],
): Diagnostic[] {
  return problems.map((p) => ({
    severity: 'error',
    summary: p.message,
    position: positionAt(task.argPositions, p.pointer, 'key') ?? task.position,
  }));
}

// ---------------------------------------------------------------------------
// YAML with positions

/**
 * Parses one YAML document and records the position of every node. Syntax
 * errors are thrown as one ConfigError listing all of them, and so are
 * `!vault` values `vault` cannot open.
 */
export function parseYaml(text: string, file: string, vault: Vault = new Vault()): ParsedYaml {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, customTags: VAULT_YAML_TAGS });
  const at = (offset: number): SourcePosition => {
    const { line, col } = lineCounter.linePos(offset);
    return { file, line, column: col };
  };
  if (doc.errors.length > 0) {
    throw new ConfigError(
      sortByPosition(
        doc.errors.map((error) => ({
          severity: 'error',
          summary: error.message,
          position: at(error.pos[0]),
        })),
      ),
    );
  }
  const vaultErrors = decryptVaultValues(doc, vault, at);
  if (vaultErrors.length > 0) throw new ConfigError(sortByPosition(vaultErrors));
  let data: unknown;
  try {
    data = doc.toJS();
  } catch (error) {
    // The parser accepts an alias to an anchor defined later; conversion does not.
    const summary = error instanceof Error ? error.message : String(error);
    throw new ConfigError([{ severity: 'error', summary, position: at(unresolvedAliasOffset(doc) ?? 0) }]);
  }
  const positions: RecordedPositions = { values: new Map(), keys: new Map() };
  positions.values.set('', at(0));
  if (doc.contents) recordPositions(doc.contents, '', positions, at);
  return { data, positions };
}

/** The positions of a whole document, as recordPositions fills them in. */
interface RecordedPositions {
  values: Map<string, SourcePosition>;
  keys: Map<string, SourcePosition>;
}

function recordPositions(
  node: YamlNode,
  pointer: string,
  positions: RecordedPositions,
  at: (offset: number) => SourcePosition,
): void {
  if (node.range) positions.values.set(pointer, at(node.range[0]));
  if (isMap(node)) {
    for (const pair of node.items) {
      // Only scalar keys become object keys a pointer can name.
      if (!isScalar(pair.key)) continue;
      const child = childPointer(pointer, String(pair.key.value));
      const keyPosition = pair.key.range ? at(pair.key.range[0]) : undefined;
      if (keyPosition) positions.keys.set(child, keyPosition);
      const value = pair.value;
      if (value === null || isEmptyScalar(value)) {
        // `tasks:` with nothing after it: the key is what the reader will look for.
        if (keyPosition) positions.values.set(child, keyPosition);
      } else if (isNode(value)) {
        recordPositions(value, child, positions, at);
      }
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, index) => {
      if (isNode(item)) {
        recordPositions(item, childPointer(pointer, index), positions, at);
      }
    });
  }
}

function isEmptyScalar(value: unknown): boolean {
  return isScalar(value) && value.value === null && value.range != null && value.range[0] === value.range[1];
}

function unresolvedAliasOffset(doc: Document): number | undefined {
  let offset: number | undefined;
  visit(doc, {
    Alias(_key, alias) {
      if (alias.resolve(doc) === undefined && alias.range) {
        offset = alias.range[0];
        return visit.BREAK;
      }
      return undefined;
    },
  });
  return offset;
}

// ---------------------------------------------------------------------------
// Checks beyond the schema

interface TaskLocation {
  pointer: string;
  task: Record<string, unknown>;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function playsOf(data: unknown): { pointer: string; play: Record<string, unknown> }[] {
  if (!Array.isArray(data)) return [];
  return data.flatMap((play, index) => (isRecord(play) ? [{ pointer: childPointer('', index), play }] : []));
}

function tasksOf(
  play: Record<string, unknown>,
  playPointer: string,
  section: 'tasks' | 'handlers',
): TaskLocation[] {
  const list = play[section];
  if (!Array.isArray(list)) return [];
  const sectionPointer = childPointer(playPointer, section);
  return list.flatMap((task, index) =>
    isRecord(task) ? [{ pointer: childPointer(sectionPointer, index), task }] : [],
  );
}

function resourceKeysOf(task: Record<string, unknown>, resources: ResourceSchemas): string[] {
  return Object.keys(task).filter((key) => Object.hasOwn(resources, key));
}

/** Argument keys are never templated, so unknown ones can be reported before any host is known. */
function unknownArgumentKeyDiagnostics(
  data: unknown,
  positions: SourcePositionMap,
  resources: ResourceSchemas,
): Diagnostic[] {
  return playsOf(data).flatMap(({ pointer, play }) =>
    [...tasksOf(play, pointer, 'tasks'), ...tasksOf(play, pointer, 'handlers')].flatMap(
      ({ pointer: taskPointer, task }) => {
        const [resource, ...others] = resourceKeysOf(task, resources);
        const schema = resource === undefined ? undefined : resources[resource];
        if (resource === undefined || others.length > 0 || !schema) return [];
        const argPositions = subPositionMap(positions, childPointer(taskPointer, resource));
        return resourceArgsDiagnostics(resource, schema, task[resource], argPositions, 'unknown-keys');
      },
    ),
  );
}

function notifyNames(task: Record<string, unknown>): string[] {
  const notify = task.notify;
  if (typeof notify === 'string') return [notify];
  return Array.isArray(notify) ? notify.filter((name): name is string => typeof name === 'string') : [];
}

/** Duplicate handler names, and `notify` entries naming no handler of the play. */
function handlerDiagnostics(data: unknown, positions: SourcePositionMap): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  const error = (summary: string, pointer: string): void => {
    const position = positionAt(positions, pointer);
    diagnostics.push(position ? { severity: 'error', summary, position } : { severity: 'error', summary });
  };
  for (const { pointer, play } of playsOf(data)) {
    const handlers = tasksOf(play, pointer, 'handlers');
    const handlerCount = Array.isArray(play.handlers) ? play.handlers.length : 0;
    const named = handlers.filter(
      (h): h is TaskLocation & { task: { name: string } } => typeof h.task.name === 'string',
    );
    // With a broken handler list, "no such handler" would only repeat the schema's complaint.
    if (play.handlers !== undefined && named.length !== handlerCount) continue;
    const firstByName = new Map<string, string>();
    for (const handler of named) {
      const namePointer = childPointer(handler.pointer, 'name');
      const first = firstByName.get(handler.task.name);
      if (first === undefined) {
        firstByName.set(handler.task.name, namePointer);
      } else {
        const firstLine = positionAt(positions, first)?.line;
        error(
          `duplicate handler name '${handler.task.name}' (first defined on line ${firstLine ?? '?'})`,
          namePointer,
        );
      }
    }
    const handlerNames = [...firstByName.keys()];
    for (const { pointer: taskPointer, task } of [...tasksOf(play, pointer, 'tasks'), ...handlers]) {
      const notifyPointer = childPointer(taskPointer, 'notify');
      const single = typeof task.notify === 'string';
      notifyNames(task).forEach((name, index) => {
        if (firstByName.has(name)) return;
        error(
          `notify names handler '${name}', which this play does not define${didYouMean(name, handlerNames)}`,
          single ? notifyPointer : childPointer(notifyPointer, index),
        );
      });
    }
  }
  return diagnostics;
}

// ---------------------------------------------------------------------------
// Model

interface RawTask {
  name: string;
  notify?: string | string[];
  no_log?: boolean;
  diff?: boolean;
  [key: string]: unknown;
}

interface RawPlay {
  name?: string;
  hosts: string;
  vars?: Record<string, unknown>;
  vars_files?: string[];
  become?: boolean;
  tasks?: RawTask[];
  handlers?: RawTask[];
}

function buildPlaybook(
  plays: RawPlay[],
  varsFiles: VarsFile[][],
  positions: SourcePositionMap,
  file: string,
  resources: ResourceSchemas,
): Playbook {
  const positionOf = (pointer: string): SourcePosition =>
    positionAt(positions, pointer) ?? { file, line: 1, column: 1 };
  const buildTask = (task: RawTask, pointer: string): TaskSpec => {
    // Exactly one resource key: checked by the schema.
    const resource = resourceKeysOf(task, resources)[0] ?? '';
    const notify =
      task.notify === undefined ? [] : typeof task.notify === 'string' ? [task.notify] : task.notify;
    return {
      name: task.name,
      resource,
      args: task[resource],
      notify,
      noLog: task.no_log ?? false,
      diff: task.diff ?? true,
      position: positionOf(pointer),
      argPositions: subPositionMap(positions, childPointer(pointer, resource)),
    };
  };
  const buildSection = (play: RawPlay, playPointer: string, section: 'tasks' | 'handlers'): TaskSpec[] =>
    (play[section] ?? []).map((task, index) =>
      buildTask(task, childPointer(childPointer(playPointer, section), index)),
    );
  return {
    path: file,
    plays: plays.map((play, index) => {
      const pointer = childPointer('', index);
      const spec: PlaySpec = {
        name: play.name ?? play.hosts,
        hosts: play.hosts,
        vars: play.vars ?? {},
        varsFiles: varsFiles[index] ?? [],
        tasks: buildSection(play, pointer, 'tasks'),
        handlers: buildSection(play, pointer, 'handlers'),
        position: positionOf(pointer),
      };
      if (play.become !== undefined) spec.become = play.become;
      return spec;
    }),
  };
}
