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
import nodePath from 'node:path';
import { LineCounter, isMap, isNode, isScalar, isSeq, parseDocument, visit } from 'yaml';
import type { Document, Node as YamlNode } from 'yaml';
import { ConfigError } from './diagnostics.js';
import type { Diagnostic, SourcePosition } from './diagnostics.js';
import {
  childPointer,
  playbookStructureDiagnostics,
  positionAt,
  resourceArgsDiagnostics,
  resourceOfTaskKey,
  sortByPosition,
  subPositionMap,
} from './schema.js';
import type { ResourceSchemas, SourcePositionMap } from './schema.js';
import { didYouMean } from './suggest.js';
import {
  containsTemplate,
  evaluateCondition,
  referencedNames,
  renderString,
  templateProblem,
} from './template.js';
import { decryptVaultValues, Vault, VAULT_YAML_TAGS } from './vault.js';

export type { ResourceSchemas, SourcePositionMap } from './schema.js';

export interface TaskSpec {
  /** The task's `name`; without one, its resource key and a summary of its arguments (taskDisplayName). */
  name: string;
  /** The one resource, e.g. "sshd_config" (also for its FQCN alias, e.g. ansible.builtin.service → service). */
  resource: string;
  /** Raw (unrendered) arguments as parsed from YAML. */
  args: unknown;
  /**
   * The names of the handlers `notify` reaches, each once: those named by an
   * entry, and those that listen to it (a single string in YAML is one entry).
   */
  notify: string[];
  /** Handlers: the topics of `listen`, besides the name, that notify it. Empty for tasks. */
  listen: string[];
  /** Its own tags, the play's and those of the imports that brought the play in; no duplicates. */
  tags: string[];
  /** `check_mode: true`: planned and reported, never applied. */
  checkMode: boolean;
  /** `become:` of the task, which beats the play's and the host's; undefined when not given. */
  become?: boolean;
  /** `no_log: true`: only the task's status may be shown, as in Ansible. */
  noLog: boolean;
  /** `diff: false`: the task's diff is never shown. */
  diff: boolean;
  /** Of the task mapping. */
  position: SourcePosition;
  /** Positions inside `args`, keyed by JSON pointer relative to the arguments ("" is `args`). */
  argPositions: SourcePositionMap;
  /** `when:` expressions, all of which must hold (a list is "and", as in Ansible). */
  when: { expression: string; position: SourcePosition }[];
  /** `loop:` as written: a list (its strings are templates) or a template naming one. */
  loop?: { items: unknown; position: SourcePosition };
  /** `loop_control.loop_var`: the item's variable name ("item" unless given). */
  loopVar: string;
  /** `loop_control.label`: a template naming each item in the output. */
  loopLabel?: { template: string; position: SourcePosition };
  /** `register:`: the variable that receives the task's result. */
  register?: string;
  /** `ignore_errors: true`: a failure does not stop the host. */
  ignoreErrors: boolean;
}

export interface PlaySpec {
  /** The play's `name`, or its host pattern when it has none. */
  name: string;
  hosts: string;
  vars: Record<string, unknown>;
  /** `vars_files:`, read when the playbook is loaded, in the order given. */
  varsFiles: VarsFile[];
  become?: boolean;
  /** Its own tags and those of the imports that brought it in; every task has them too. */
  tags: string[];
  tasks: TaskSpec[];
  handlers: TaskSpec[];
  position: SourcePosition;
}

export interface Playbook {
  path: string;
  /** In run order, the plays of `import_playbook` in the place of the import (each has its file in `position`). */
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

/** How imported playbooks are read; tests may substitute. */
export interface PlaybookReadOptions {
  readFile?: (path: string) => string;
  /** Opens vaulted playbooks, `!vault` values and vaulted vars files; none by default. */
  vault?: Vault;
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
  const playbook = parsePlaybook(opened.text, file, resources, { vault });
  // A playbook encrypted whole: the values of its play variables are secrets.
  if (opened.encrypted) for (const play of playbook.plays) vault.rememberSecrets(play.vars);
  return playbook;
}

export function parsePlaybook(
  text: string,
  path: string,
  resources: ResourceSchemas,
  options: PlaybookReadOptions = {},
): Playbook {
  const readFile = options.readFile ?? ((file: string) => readFileSync(file, 'utf8'));
  const diagnostics: Diagnostic[] = [];
  const plays = parsePlaybookFile(text, path, resources, {
    readFile,
    vault: options.vault ?? new Vault(),
    chain: [nodePath.resolve(path)],
    tags: [],
    diagnostics,
  });
  if (diagnostics.length > 0) throw new ConfigError(sortByPosition(diagnostics));
  return { path, plays };
}

/** What loading one file of a playbook needs to know of the files that imported it. */
interface ImportContext {
  readFile: (path: string) => string;
  vault: Vault;
  /** Resolved paths of the importing files, outermost first, this one last: an import of one of them is a cycle. */
  chain: string[];
  /** Tags of the imports that led here. */
  tags: string[];
  /** Every problem of every file, collected so that all are reported at once. */
  diagnostics: Diagnostic[];
}

/**
 * The plays of one playbook file, those of its imports in their place. Its
 * problems go to `context.diagnostics`; imports are followed even when the
 * file has problems of its own, so that one validate run reports them all.
 */
function parsePlaybookFile(
  text: string,
  file: string,
  resources: ResourceSchemas,
  context: ImportContext,
): PlaySpec[] {
  const { data, positions } = parseYaml(text, file, context.vault);
  const problems = [
    ...playbookStructureDiagnostics(data, positions, resources),
    ...unknownArgumentKeyDiagnostics(data, positions, resources),
    ...handlerDiagnostics(data, positions, resources),
    ...templateDiagnostics(data, positions),
  ];
  context.diagnostics.push(...problems);
  const items = Array.isArray(data) ? data : [];
  // Validated above when there are no problems: the shape is the one the schema describes.
  const varsFiles =
    problems.length === 0 ? readPlayVarsFiles(items as RawPlay[], positions, file, context) : [];
  const plays: PlaySpec[] = [];
  items.forEach((item: unknown, index) => {
    const pointer = childPointer('', index);
    if (isRecord(item) && typeof item.import_playbook === 'string' && item.import_playbook !== '') {
      plays.push(...importedPlays(item, pointer, file, positions, resources, context));
    } else if (problems.length === 0) {
      // Validated above: the shape is now the one the schema describes.
      plays.push(
        buildPlay(item as RawPlay, varsFiles[index] ?? [], pointer, positions, file, resources, context.tags),
      );
    }
  });
  return plays;
}

/**
 * Every play's vars files, relative to the playbook's directory as in
 * Ansible; their problems join the playbook's, all reported at once.
 */
function readPlayVarsFiles(
  plays: RawPlay[],
  positions: SourcePositionMap,
  file: string,
  context: Pick<ImportContext, 'vault' | 'diagnostics'>,
): VarsFile[][] {
  const { vault, diagnostics } = context;
  const dir = nodePath.dirname(file);
  const read = plays.map((play, index) =>
    (isRecord(play) ? (play.vars_files ?? []) : []).flatMap((name, entry): VarsFile[] => {
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
        return [{ path: name, vars: loadVarsFile(nodePath.resolve(dir, name), vault, position) }];
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        diagnostics.push(...error.diagnostics);
        return [];
      }
    }),
  );
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

/** The plays of `import_playbook: other.yml`, found relative to the importing file's directory, as in Ansible. */
function importedPlays(
  item: Record<string, unknown>,
  pointer: string,
  file: string,
  positions: SourcePositionMap,
  resources: ResourceSchemas,
  context: ImportContext,
): PlaySpec[] {
  const target = String(item.import_playbook);
  const importPointer = childPointer(pointer, 'import_playbook');
  const position = positionAt(positions, importPointer) ?? { file, line: 1, column: 1 };
  const importedFile = nodePath.isAbsolute(target) ? target : nodePath.join(nodePath.dirname(file), target);
  const resolved = nodePath.resolve(importedFile);
  const fail = (summary: string): PlaySpec[] => {
    context.diagnostics.push({ severity: 'error', summary, position });
    return [];
  };
  const cycleStart = context.chain.indexOf(resolved);
  if (cycleStart !== -1) {
    const cycle = [...context.chain.slice(cycleStart), resolved].map((p) => nodePath.basename(p)).join(' → ');
    return fail(`import_playbook '${target}' makes a cycle (${cycle}): a playbook cannot import itself`);
  }
  let text: string;
  try {
    text = context.readFile(importedFile);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return fail(`cannot read imported playbook '${target}': ${reason}`);
  }
  try {
    const opened = context.vault.openFile(text, importedFile);
    return parsePlaybookFile(opened.text, importedFile, resources, {
      ...context,
      chain: [...context.chain, resolved],
      tags: uniqueTags([...context.tags, ...tagList(item.tags)]),
    });
  } catch (error) {
    // YAML syntax errors of the imported file, at their own positions in it.
    if (!(error instanceof ConfigError)) throw error;
    context.diagnostics.push(...error.diagnostics);
    return [];
  }
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

/** The tasks and handlers of a play whose own `become:` is `become`. */
export function tasksWithBecome(play: PlaySpec, become: boolean): TaskSpec[] {
  return [...play.tasks, ...play.handlers].filter((task) => task.become === become);
}

/** One run of a task on a host: its rendered arguments, or why it is skipped. */
export type TaskRun = ({ skipped: false; args: unknown } | { skipped: true; reason: string }) & {
  /** For a loop: how the item is named in the output, and the item itself. */
  label?: string;
  item?: unknown;
};

/**
 * What a task does on a host with these variables, as Ansible decides it:
 * without `loop`, `when` is evaluated once; with one, the loop is rendered
 * first and `when` is evaluated per item, with the item variable set. A
 * task whose `when` is false is skipped and its arguments are not rendered
 * (they may read what only exists when it holds). `checkArgs` is the
 * resource's own check of rendered arguments (ResourceKind.checkArgs).
 */
export function expandTask(
  task: TaskSpec,
  vars: Record<string, unknown>,
  resources: ResourceSchemas,
  checkArgs?: (args: unknown) => { pointer: string; message: string }[],
): TaskRun[] {
  const runOnce = (
    itemVars: Record<string, unknown>,
    loopItem?: { label: string; item: unknown },
  ): TaskRun => {
    const labelled = loopItem ?? {};
    for (const { expression, position } of task.when) {
      if (!evaluateCondition(expression, itemVars, position))
        return { skipped: true, reason: `skipped: the condition '${expression}' is false`, ...labelled };
    }
    const args = renderTaskArgs(task, itemVars, resources);
    const problems = argumentProblemDiagnostics(task, checkArgs?.(args) ?? []);
    if (problems.length > 0) throw new ConfigError(problems);
    return { skipped: false, args, ...labelled };
  };
  if (task.loop === undefined) return [runOnce(vars)];
  const items = renderLoop(task.loop, vars);
  return items.map((item) => {
    const itemVars = { ...vars, [task.loopVar]: item };
    return runOnce(itemVars, { label: itemLabel(task, item, itemVars), item });
  });
}

function renderLoop(loop: NonNullable<TaskSpec['loop']>, vars: Record<string, unknown>): unknown[] {
  const renderDeep = (value: unknown): unknown => {
    if (typeof value === 'string') return renderString(value, vars, loop.position);
    if (Array.isArray(value)) return value.map(renderDeep);
    if (isRecord(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renderDeep(v)]));
    return value;
  };
  const items = renderDeep(loop.items);
  if (!Array.isArray(items)) {
    const kind =
      items === null ? 'none' : isRecord(items) ? 'a mapping' : `${typeof items} ${JSON.stringify(items)}`;
    throw new ConfigError([
      { severity: 'error', summary: `loop needs a list, got ${kind}`, position: loop.position },
    ]);
  }
  return items;
}

function itemLabel(task: TaskSpec, item: unknown, vars: Record<string, unknown>): string {
  if (task.loopLabel !== undefined) {
    const label = renderString(task.loopLabel.template, vars, task.loopLabel.position);
    return typeof label === 'string' ? label : JSON.stringify(label);
  }
  return typeof item === 'string' ? item : JSON.stringify(item);
}

/**
 * The variable names a task reads in its condition, loop, label and
 * arguments: a task reading one that is only known on the host (a fact, a
 * registered result) can only be rendered there.
 */
export function taskVariableNames(task: TaskSpec): string[] {
  const names = new Set<string>();
  const strings = (value: unknown, kind: 'template' | 'expression'): void => {
    if (typeof value === 'string') for (const n of referencedNames(value, kind)) names.add(n);
    else if (Array.isArray(value)) for (const v of value) strings(v, kind);
    else if (isRecord(value)) for (const v of Object.values(value)) strings(v, kind);
  };
  for (const { expression } of task.when) strings(expression, 'expression');
  strings(task.loop?.items, 'template');
  strings(task.loopLabel?.template, 'template');
  strings(task.args, 'template');
  return [...names];
}

/**
 * Variables a task rendered on its host reads without `default` or `is
 * defined` and that `known` does not know, each at the string that reads
 * it, with the nearest known name: found before any host is contacted.
 */
export function unknownVariableDiagnostics(
  task: TaskSpec,
  known: (name: string) => boolean,
  suggestions: readonly string[],
): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  const check = (value: unknown, kind: 'template' | 'expression', position: SourcePosition): void => {
    if (typeof value !== 'string') return;
    for (const name of referencedNames(value, kind, { required: true })) {
      if (name === task.loopVar && task.loop !== undefined) continue;
      if (known(name)) continue;
      diagnostics.push({
        severity: 'error',
        summary: `undefined variable '${name}'${didYouMean(name, [...suggestions])}`,
        position,
      });
    }
  };
  const args = (value: unknown, pointer: string): void => {
    if (Array.isArray(value)) value.forEach((item, i) => args(item, childPointer(pointer, i)));
    else if (isRecord(value)) for (const [k, v] of Object.entries(value)) args(v, childPointer(pointer, k));
    else check(value, 'template', positionAt(task.argPositions, pointer) ?? task.position);
  };
  for (const { expression, position } of task.when) check(expression, 'expression', position);
  if (task.loop) {
    const loop = task.loop;
    const items = (value: unknown): void => {
      if (Array.isArray(value)) value.forEach(items);
      else if (isRecord(value)) Object.values(value).forEach(items);
      else check(value, 'template', loop.position);
    };
    items(loop.items);
  }
  if (task.loopLabel) check(task.loopLabel.template, 'template', task.loopLabel.position);
  args(task.args, '');
  return diagnostics;
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
 * errors are thrown as one ConfigError listing all of them.
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

/** The keys of a task that name a resource, as written (an FQCN alias stays an alias). */
function resourceKeysOf(task: Record<string, unknown>, resources: ResourceSchemas): string[] {
  return Object.keys(task).filter((key) => resourceOfTaskKey(key, resources) !== undefined);
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
        const [key, ...others] = resourceKeysOf(task, resources);
        const resource = key === undefined ? undefined : resourceOfTaskKey(key, resources);
        const schema = resource === undefined ? undefined : resources[resource];
        if (key === undefined || resource === undefined || others.length > 0 || !schema) return [];
        const argPositions = subPositionMap(positions, childPointer(taskPointer, key));
        return resourceArgsDiagnostics(resource, schema, task[key], argPositions, 'unknown-keys');
      },
    ),
  );
}

/**
 * Syntax errors and unknown filters or tests in conditions, loops, labels
 * and arguments: found before any variable is known, at the string's
 * position. Only well-formed values are looked at: the schema reports the rest.
 */
function templateDiagnostics(data: unknown, positions: SourcePositionMap): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  const check = (value: unknown, pointer: string, kind: 'template' | 'expression'): void => {
    if (typeof value === 'string') {
      const problem = templateProblem(value, kind);
      if (problem === undefined) return;
      const [summary = problem, ...detail] = problem.split('\n');
      const position = positionAt(positions, pointer);
      diagnostics.push({
        severity: 'error',
        summary,
        ...(detail.length > 0 ? { detail: detail.join('\n') } : {}),
        ...(position ? { position } : {}),
      });
    } else if (Array.isArray(value)) {
      value.forEach((item, index) => check(item, childPointer(pointer, index), kind));
    } else if (isRecord(value)) {
      for (const [key, item] of Object.entries(value)) check(item, childPointer(pointer, key), kind);
    }
  };
  for (const { pointer, play } of playsOf(data)) {
    for (const { pointer: taskPointer, task } of [
      ...tasksOf(play, pointer, 'tasks'),
      ...tasksOf(play, pointer, 'handlers'),
    ]) {
      for (const [key, value] of Object.entries(task)) {
        const at = childPointer(taskPointer, key);
        if (key === 'when') check(value, at, 'expression');
        else if (key === 'loop') check(value, at, 'template');
        else if (key === 'loop_control' && isRecord(value))
          check(value.label, childPointer(at, 'label'), 'template');
        else if (!['name', 'notify', 'no_log', 'diff', 'register', 'ignore_errors'].includes(key))
          check(value, at, 'template');
      }
    }
  }
  return diagnostics;
}

function notifyNames(task: Record<string, unknown>): string[] {
  return stringList(task.notify);
}

/** `notify:`/`listen:` as a list: a single string is one entry. */
function stringList(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  return Array.isArray(value) ? value.filter((name): name is string => typeof name === 'string') : [];
}

/**
 * `tags:` as a list: Ansible splits a single string at commas (`tags: ssh, firewall`)
 * and trims each tag.
 */
export function tagList(value: unknown): string[] {
  const written = typeof value === 'string' ? value.split(',') : stringList(value);
  return uniqueTags(written.map((tag) => tag.trim()).filter((tag) => tag !== ''));
}

function uniqueTags(tags: readonly string[]): string[] {
  return [...new Set(tags)];
}

/** A handler's name as shown: its own, else the one taskDisplayName derives. */
function handlerDisplayName(
  handler: Record<string, unknown>,
  resources: ResourceSchemas,
): string | undefined {
  if (typeof handler.name === 'string') return handler.name;
  const [key] = resourceKeysOf(handler, resources);
  return key === undefined ? undefined : taskDisplayName(key, handler[key], handler.no_log === true);
}

/**
 * Per play: duplicate handler names, handlers nothing can notify, `listen` on
 * a task, and `notify` entries naming neither a handler nor a topic one listens to.
 */
function handlerDiagnostics(
  data: unknown,
  positions: SourcePositionMap,
  resources: ResourceSchemas,
): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  const error = (summary: string, pointer: string, which: 'value' | 'key' = 'value'): void => {
    const position = positionAt(positions, pointer, which);
    diagnostics.push(position ? { severity: 'error', summary, position } : { severity: 'error', summary });
  };
  for (const { pointer, play } of playsOf(data)) {
    for (const { pointer: taskPointer, task } of tasksOf(play, pointer, 'tasks')) {
      if (task.listen !== undefined)
        error(
          "'listen' applies to handlers only: a task is notified by nothing",
          childPointer(taskPointer, 'listen'),
          'key',
        );
    }
    const handlers = tasksOf(play, pointer, 'handlers');
    const handlerCount = Array.isArray(play.handlers) ? play.handlers.length : 0;
    // With a broken handler list, "no such handler" would only repeat the schema's complaint.
    if (play.handlers !== undefined && handlers.length !== handlerCount) continue;
    const firstByName = new Map<string, string>();
    const topics = new Set<string>();
    for (const handler of handlers) {
      const listen = stringList(handler.task.listen);
      listen.forEach((topic) => topics.add(topic));
      if (typeof handler.task.name !== 'string' && listen.length === 0) {
        error("handler has neither 'name' nor 'listen': nothing can notify it", handler.pointer);
        continue;
      }
      const name = handlerDisplayName(handler.task, resources);
      if (name === undefined) continue; // no resource key: the schema says so
      const named = typeof handler.task.name === 'string';
      const namePointer = named ? childPointer(handler.pointer, 'name') : handler.pointer;
      const first = firstByName.get(name);
      if (first === undefined) {
        firstByName.set(name, namePointer);
      } else {
        const firstLine = positionAt(positions, first)?.line;
        error(
          named
            ? `duplicate handler name '${name}' (first defined on line ${firstLine ?? '?'})`
            : `this handler would be shown as '${name}', as the one on line ${firstLine ?? '?'}: give it a name`,
          namePointer,
        );
      }
    }
    const targets = [...firstByName.keys(), ...topics];
    for (const { pointer: taskPointer, task } of [...tasksOf(play, pointer, 'tasks'), ...handlers]) {
      const notifyPointer = childPointer(taskPointer, 'notify');
      const single = typeof task.notify === 'string';
      notifyNames(task).forEach((name, index) => {
        if (firstByName.has(name) || topics.has(name)) return;
        error(
          `notify names handler '${name}', which this play does not define${didYouMean(name, targets)}`,
          single ? notifyPointer : childPointer(notifyPointer, index),
        );
      });
    }
  }
  return diagnostics;
}

// ---------------------------------------------------------------------------
// Model

/** Longest argument summary in the name of a nameless task; longer ones end in "…". */
const NAME_SUMMARY_LENGTH = 60;

/**
 * The name shown for a task without `name:`: its resource key as written and
 * its arguments in Ansible's `key=value` style, e.g.
 * `service: name=ssh state=reloaded`. Arguments are shown unrendered, and
 * not at all under `no_log` (they may hold secrets).
 */
export function taskDisplayName(key: string, args: unknown, noLog: boolean): string {
  if (noLog) return key;
  const summary = isRecord(args)
    ? Object.entries(args)
        .map(([name, value]) => `${name}=${flowText(value)}`)
        .join(' ')
    : flowText(args);
  if (summary === '') return key;
  const cut =
    summary.length > NAME_SUMMARY_LENGTH ? `${summary.slice(0, NAME_SUMMARY_LENGTH - 1)}…` : summary;
  return `${key}: ${cut}`;
}

/** A value on one line, as YAML's flow style writes it (without quotes). */
function flowText(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(flowText).join(', ')}]`;
  if (isRecord(value))
    return `{${Object.entries(value)
      .map(([name, item]) => `${name}: ${flowText(item)}`)
      .join(', ')}}`;
  if (value === null || value === undefined) return '';
  return typeof value === 'string' ? value.replace(/\s+/g, ' ').trim() : String(value as number | boolean);
}

interface RawTask {
  name?: string;
  notify?: string | string[];
  listen?: string | string[];
  tags?: string | string[];
  check_mode?: boolean;
  become?: boolean;
  no_log?: boolean;
  diff?: boolean;
  when?: string | boolean | (string | boolean)[];
  loop?: unknown[] | string;
  loop_control?: { loop_var?: string; label?: string };
  register?: string;
  ignore_errors?: boolean;
  [key: string]: unknown;
}

interface RawPlay {
  vars_files?: string[];
  name?: string;
  hosts: string;
  vars?: Record<string, unknown>;
  become?: boolean;
  tags?: string | string[];
  tasks?: RawTask[];
  handlers?: RawTask[];
}

function buildPlay(
  play: RawPlay,
  varsFiles: VarsFile[],
  pointer: string,
  positions: SourcePositionMap,
  path: string,
  resources: ResourceSchemas,
  importTags: readonly string[],
): PlaySpec {
  const positionOf = (at: string): SourcePosition =>
    positionAt(positions, at) ?? { file: path, line: 1, column: 1 };
  const playTags = uniqueTags([...importTags, ...tagList(play.tags)]);
  const buildTask = (task: RawTask, taskPointer: string): TaskSpec => {
    // Exactly one resource key: checked by the schema.
    const key = resourceKeysOf(task, resources)[0] ?? '';
    const noLog = task.no_log ?? false;
    const whenPointer = childPointer(taskPointer, 'when');
    const conditions = task.when === undefined ? [] : Array.isArray(task.when) ? task.when : [task.when];
    const spec: TaskSpec = {
      name: task.name ?? taskDisplayName(key, task[key], noLog),
      resource: resourceOfTaskKey(key, resources) ?? key,
      args: task[key],
      notify: stringList(task.notify),
      listen: stringList(task.listen),
      tags: uniqueTags([...playTags, ...tagList(task.tags)]),
      checkMode: task.check_mode ?? false,
      noLog,
      diff: task.diff ?? true,
      position: positionOf(taskPointer),
      argPositions: subPositionMap(positions, childPointer(taskPointer, key)),
      // `when: false` is YAML's boolean: the expression of the same meaning.
      when: conditions.map((c, i) => ({
        expression: typeof c === 'boolean' ? (c ? 'true' : 'false') : c,
        position: positionOf(Array.isArray(task.when) ? childPointer(whenPointer, i) : whenPointer),
      })),
      loopVar: task.loop_control?.loop_var ?? 'item',
      ignoreErrors: task.ignore_errors ?? false,
    };
    if (task.become !== undefined) spec.become = task.become;
    if (task.loop !== undefined)
      spec.loop = { items: task.loop, position: positionOf(childPointer(taskPointer, 'loop')) };
    if (task.loop_control?.label !== undefined)
      spec.loopLabel = {
        template: task.loop_control.label,
        position: positionOf(childPointer(childPointer(taskPointer, 'loop_control'), 'label')),
      };
    if (task.register !== undefined) spec.register = task.register;
    return spec;
  };
  const buildSection = (section: 'tasks' | 'handlers'): TaskSpec[] =>
    (play[section] ?? []).map((task, index) =>
      buildTask(task, childPointer(childPointer(pointer, section), index)),
    );
  const handlers = buildSection('handlers');
  // `notify: X` reaches the handler named X and every handler listening to X, each once.
  const reached = (entry: string): string[] =>
    handlers.filter((h) => h.name === entry || h.listen.includes(entry)).map((h) => h.name);
  const resolveNotify = (task: TaskSpec): TaskSpec => ({
    ...task,
    notify: [...new Set(task.notify.flatMap(reached))],
  });
  const spec: PlaySpec = {
    name: play.name ?? play.hosts,
    hosts: play.hosts,
    vars: play.vars ?? {},
    varsFiles,
    tags: playTags,
    tasks: buildSection('tasks').map(resolveNotify),
    handlers: handlers.map(resolveNotify),
    position: positionOf(pointer),
  };
  if (play.become !== undefined) spec.become = play.become;
  return spec;
}
