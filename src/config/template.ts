/**
 * Jinja rendering of playbook strings (`"{{ port }}"`, `"{{ x | default('y') }}"`)
 * and evaluation of `when:` conditions, as Ansible does.
 *
 * The engine is @huggingface/jinja: it never hands a template a JavaScript
 * object (values live in its own maps, so `x.constructor` or `__proto__` are
 * undefined, not a way out), it is ESM and has no dependencies. What Ansible
 * adds on top, or what that engine leaves out, lives here:
 *
 * - Strict: an undefined variable is an error with a did-you-mean, never an
 *   empty string that would end up in sshd_config; only `is defined`,
 *   `is undefined` and `default` may look at one (Ansible's behaviour).
 * - No HTML escaping: values go into config files, not web pages.
 * - A string that is exactly one `{{ expression }}` yields the value itself,
 *   so a list stays a list and a number a number (as in Ansible); a list or
 *   mapping pasted into a longer string is an error rather than its repr.
 * - Rendered values are not rendered again: a variable holding "{{ x }}"
 *   yields that text.
 * - Tests with arguments (`x is version('9.8', '>=')`) and Ansible's filters
 *   and tests (bool, ternary, mandatory, version, succeeded/failed/changed/
 *   skipped) are added here; an unknown filter or test is found when the
 *   string is first read, not when a host happens to reach it.
 */
import * as jinja from '@huggingface/jinja';
import { ConfigError } from './diagnostics.js';
import type { Diagnostic, SourcePosition } from './diagnostics.js';
import { suggest } from './suggest.js';

type Vars = Record<string, unknown>;

/** The engine's AST nodes, seen structurally: every node has a `type`, fields differ by type. */
interface AstNode {
  type: string;
  [field: string]: unknown;
}

interface Program extends AstNode {
  body: AstNode[];
}

interface Token {
  type: string;
  value: string;
}

/** A value inside the engine: `type` is its class name ("StringValue", "ArrayValue", ...). */
interface RuntimeValue {
  type: string;
  value: unknown;
}

interface Environment {
  variables: Map<string, RuntimeValue>;
  set(name: string, value: unknown): RuntimeValue;
}

interface Interpreter {
  global: Environment;
  run(program: Program): RuntimeValue;
  evaluate(node: AstNode | undefined, environment: Environment): RuntimeValue;
}

/**
 * The part of the engine used here, typed: its bundled typings import their
 * siblings without file extensions, which NodeNext resolution cannot follow.
 */
const engine = jinja as unknown as {
  Environment: new (parent?: Environment) => Environment;
  Interpreter: new (environment?: Environment) => Interpreter;
  tokenize(source: string, options?: { trim_blocks?: boolean; lstrip_blocks?: boolean }): Token[];
  parse(tokens: Token[]): Program;
};

interface Analysis {
  /** Identifiers and member expressions that may be undefined: operands of `default`, `is defined`... */
  guarded: Set<object>;
  /** Expressions whose value is pasted into the text. */
  outputs: Set<object>;
}

type Compiled =
  | { kind: 'literal' }
  | {
      kind: 'value' | 'text' | 'expression';
      program: Program;
      analysis: Analysis;
    }
  | { kind: 'invalid'; summary: string; detail?: string };

/** The same task renders once per host: parse and check each distinct string once. */
const compiled = new Map<string, Compiled>();
const MAX_CACHED_TEMPLATES = 10_000;

/** Whether `text` holds Jinja syntax (and so is rendered rather than used as it is). */
export function isTemplate(text: string): boolean {
  return text.includes('{{') || text.includes('{%') || text.includes('{#');
}

/** Whether any string in `value` (a task's arguments) is a template, to be rendered per host. */
export function containsTemplate(value: unknown): boolean {
  if (typeof value === 'string') return isTemplate(value);
  if (Array.isArray(value)) return value.some(containsTemplate);
  if (typeof value === 'object' && value !== null) return Object.values(value).some(containsTemplate);
  return false;
}

export function renderString(template: string, vars: Vars, position?: SourcePosition): unknown {
  const entry = compile(template, 'template');
  switch (entry.kind) {
    case 'literal':
      return template;
    case 'invalid':
      throw configError(entry.summary, position, entry.detail);
    default:
      return run(entry, vars, position);
  }
}

/**
 * A whole file (the template resource's `.j2` sources): always text, even
 * when it is one expression. Errors name `file`, at the line and column of
 * the expression they are about when it can be found in the text.
 */
export function renderFile(file: string, text: string, vars: Vars): string {
  const entry = compile(text, 'file');
  if (entry.kind === 'literal') return text;
  if (entry.kind === 'invalid')
    throw configError(
      `invalid template ${file}: ${entry.summary.replace(/^invalid template: /, '')}`,
      undefined,
      entry.detail,
    );
  try {
    return String(run(entry, vars, undefined));
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    throw new ConfigError(
      error.diagnostics.map((d) => {
        const expression = /'([^']+)'/.exec(d.summary)?.[1];
        const position = expression === undefined ? undefined : positionOf(text, expression, file);
        return position ? { ...d, position } : { ...d, summary: `${d.summary} in template ${file}` };
      }),
    );
  }
}

/** Where `expression` first appears inside a `{{ }}` or `{% %}` of `text`: 1-based line and column. */
function positionOf(text: string, expression: string, file: string): SourcePosition | undefined {
  const escaped = expression.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pattern = new RegExp(`\\{[{%][^}]*?(?<![\\w.])(${escaped})(?![\\w])`, 'g');
  const match = pattern.exec(text);
  if (!match) return undefined;
  const offset = match.index + match[0].length - expression.length;
  const before = text.slice(0, offset).split('\n');
  return { file, line: before.length, column: (before.at(-1)?.length ?? 0) + 1 };
}

/**
 * A `when:` condition: a bare Jinja expression (no braces), true or false by
 * Python's rules (an empty list or string is false), as in Ansible.
 */
export function evaluateCondition(expression: string, vars: Vars, position?: SourcePosition): boolean {
  const entry = compile(expression, 'expression');
  if (entry.kind === 'invalid') throw configError(entry.summary, position, entry.detail);
  if (entry.kind === 'literal') return false;
  return truthy(run(entry, vars, position));
}

/**
 * What is wrong with a string before any variable is known: syntax, unknown
 * filters and tests. `undefined` when it is fine.
 */
export function templateProblem(text: string, kind: 'template' | 'expression' | 'file'): string | undefined {
  const entry = compile(text, kind);
  if (entry.kind !== 'invalid') return undefined;
  return entry.detail === undefined ? entry.summary : `${entry.summary}\n${entry.detail}`;
}

/**
 * The top-level variable names a string reads (to tell which strings wait
 * for facts or registered results); with `required`, only those it reads
 * without `default` or `is defined` around them, which must exist.
 */
export function referencedNames(
  text: string,
  kind: 'template' | 'expression',
  options: { required?: boolean } = {},
): string[] {
  const entry = compile(text, kind);
  if (entry.kind === 'literal' || entry.kind === 'invalid') return [];
  const names = new Set<string>();
  const bound = new Set<string>();
  walk(entry.program as unknown as AstNode, (node) => {
    if (node.type !== 'Identifier') return;
    if (assignedIdentifiers.has(node)) bound.add(node.value as string);
    else if (options.required === true && entry.analysis.guarded.has(node)) return;
    else if (isEvaluatedIdentifier(node)) names.add(node.value as string);
  });
  // Names a `{% for %}` or `{% set %}` binds are the template's own (a close enough reading).
  return [...names].filter((name) => !bound.has(name) && !CONSTANTS.has(name) && !ENGINE_GLOBALS.has(name));
}

/** What the engine itself defines: a `{% for %}` loop's `loop`, and its functions. */
const ENGINE_GLOBALS = new Set(['loop', 'range', 'namespace', 'raise_exception', 'strftime_now']);

// ---------------------------------------------------------------------------
// Compiling

function compile(text: string, kind: 'template' | 'expression' | 'file'): Compiled {
  const key = `${kind}\0${text}`;
  let entry = compiled.get(key);
  if (!entry) {
    entry = kind === 'expression' ? compileExpression(text) : compileTemplate(text, kind === 'file');
    if (compiled.size >= MAX_CACHED_TEMPLATES) compiled.clear();
    compiled.set(key, entry);
  }
  return entry;
}

function compileTemplate(template: string, wholeFile = false): Compiled {
  if (!isTemplate(template)) return { kind: 'literal' };
  let tokens: Token[];
  let program: Program;
  try {
    // trim_blocks as Ansible sets it: the newline after a block tag is dropped. The engine
    // also drops a template's last newline (Jinja's default); Ansible keeps it: one more
    // newline for the engine to drop keeps it (and trim_blocks still sees the original).
    const source = template.endsWith('\n') ? `${template}\n` : template;
    tokens = withTestCalls(engine.tokenize(source, { trim_blocks: true }));
    program = engine.parse(tokens);
  } catch (error) {
    return { kind: 'invalid', summary: `invalid template: ${errorMessage(error)}` };
  }
  const problem = unknownNames(program);
  if (problem !== undefined) return { kind: 'invalid', summary: problem };
  // Exactly `{{ expression }}`, nothing around it: the value itself, as in Ansible.
  const single =
    !wholeFile &&
    program.body.length === 1 &&
    tokens[0]?.type === 'OpenExpression' &&
    tokens.at(-1)?.type === 'CloseExpression' &&
    tokens.filter((t) => t.type === 'OpenExpression').length === 1;
  return { kind: single ? 'value' : 'text', program, analysis: analyse(program) };
}

function compileExpression(expression: string): Compiled {
  if (expression.trim() === '') return { kind: 'invalid', summary: 'empty condition' };
  if (isTemplate(expression)) {
    return {
      kind: 'invalid',
      summary: 'a condition is an expression: write it without {{ }} or {% %}',
      detail: `e.g. when: ${expression.replace(/\{\{\s*|\s*\}\}/g, '')}`,
    };
  }
  let program: Program;
  try {
    const tokens = withTestCalls(engine.tokenize(`{{ ${expression} }}`));
    if (tokens.filter((t) => t.type === 'OpenExpression' || t.type === 'CloseExpression').length !== 2)
      throw new SyntaxError(`unexpected '}}'`);
    program = engine.parse(tokens);
  } catch (error) {
    return { kind: 'invalid', summary: `invalid condition: ${errorMessage(error)}` };
  }
  const problem = unknownNames(program);
  if (problem !== undefined) return { kind: 'invalid', summary: problem };
  return { kind: 'expression', program, analysis: analyse(program) };
}

/** A prefix no template can type (filter names are identifiers): tests with arguments, as filters. */
const TEST_CALL = '__is__';
const NEGATED_TEST_CALL = '__is_not__';

/**
 * The engine parses `x is name` but not `x is name(args)`. Both bind the
 * same operand as a filter does (`a | f is t` tests `a | f`), so a test
 * with arguments is rewritten to a filter call of our own, evaluated below.
 */
function withTestCalls(tokens: Token[]): Token[] {
  const out: Token[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (token.type === 'Identifier' && token.value === 'is') {
      const negated = tokens[i + 1]?.type === 'Identifier' && tokens[i + 1]?.value === 'not';
      const name = tokens[i + (negated ? 2 : 1)];
      const open = tokens[i + (negated ? 3 : 2)];
      if (name?.type === 'Identifier' && open?.type === 'OpenParen') {
        out.push(
          { value: '|', type: 'Pipe' },
          { type: 'Identifier', value: `${negated ? NEGATED_TEST_CALL : TEST_CALL}${name.value}` },
        );
        i += negated ? 2 : 1;
        continue;
      }
    }
    out.push(token);
  }
  return out;
}

function walk(node: AstNode, visit: (node: AstNode, parent: AstNode | undefined) => void): void {
  const visitAll = (value: unknown, parent: AstNode): void => {
    if (Array.isArray(value)) for (const item of value) visitAll(item, parent);
    else if (value instanceof Map)
      for (const [k, v] of value) {
        visitAll(k, parent);
        visitAll(v, parent);
      }
    else if (isNode(value)) {
      visit(value, parent);
      for (const [field, child] of Object.entries(value)) if (isChildField(field)) visitAll(child, value);
    }
  };
  visit(node, undefined);
  for (const [field, child] of Object.entries(node)) if (isChildField(field)) visitAll(child, node);
}

/** An operator is a lexer token (`{type: 'Identifier', value: 'and'}`), not a node. */
function isChildField(field: string): boolean {
  return field !== 'type' && field !== 'operator';
}

function isNode(value: unknown): value is AstNode {
  return typeof value === 'object' && value !== null && typeof (value as AstNode).type === 'string';
}

/** Filter and test names, member names and keyword names are identifiers that are never looked up. */
const nonVariableIdentifiers = new WeakSet<object>();
/** Names `{% for %}`, `{% set %}` and `{% macro %}` assign. */
const assignedIdentifiers = new WeakSet<object>();

function isEvaluatedIdentifier(node: AstNode): boolean {
  return !nonVariableIdentifiers.has(node);
}

function filterName(filter: AstNode): string {
  const callee = filter.type === 'CallExpression' ? (filter.callee as AstNode) : filter;
  return callee.value as string;
}

/** The filters and tests that look at an undefined value rather than failing on it. */
const UNDEFINED_ACCEPTING = new Set([
  'default',
  'd',
  'mandatory',
  'defined',
  'undefined',
  ...['defined', 'undefined'].flatMap((t) => [`${TEST_CALL}${t}`, `${NEGATED_TEST_CALL}${t}`]),
]);

function analyse(program: Program): Analysis {
  const guarded = new Set<object>();
  const outputs = new Set<object>();
  const guard = (node: AstNode): void => {
    guarded.add(node);
    if (node.type === 'MemberExpression') guard(node.object as AstNode);
  };
  const block = (statements: unknown): void => {
    if (!Array.isArray(statements)) return;
    for (const s of statements as AstNode[]) {
      if (s.type === 'If' || s.type === 'For') {
        block(s.body);
        block(s.type === 'If' ? s.alternate : s.defaultBlock);
      } else if (!['Set', 'Comment', 'Macro', 'Break', 'Continue', 'CallStatement'].includes(s.type))
        outputs.add(s);
    }
  };
  block(program.body);
  walk(program as unknown as AstNode, (node) => {
    if (node.type === 'FilterExpression') {
      const filter = node.filter as AstNode;
      nonVariableIdentifiers.add(filter.type === 'CallExpression' ? (filter.callee as AstNode) : filter);
      if (UNDEFINED_ACCEPTING.has(filterName(filter))) guard(node.operand as AstNode);
    } else if (node.type === 'TestExpression') {
      nonVariableIdentifiers.add(node.test as object);
      if (UNDEFINED_ACCEPTING.has((node.test as AstNode).value as string)) guard(node.operand as AstNode);
    } else if (node.type === 'MemberExpression' && node.computed !== true) {
      nonVariableIdentifiers.add(node.property as object);
    } else if (node.type === 'KeywordArgumentExpression') {
      nonVariableIdentifiers.add(node.key as object);
    } else if (node.type === 'For' || node.type === 'Set' || node.type === 'Macro') {
      // Assigned, not read: `{% for n in nets %}`, `{% set x = 1 %}`.
      const target = (node.loopvar ?? node.assignee ?? node.name) as AstNode | undefined;
      if (target)
        walk(target, (n) => {
          if (n.type !== 'Identifier') return;
          nonVariableIdentifiers.add(n);
          assignedIdentifiers.add(n);
        });
    }
  });
  return { guarded, outputs };
}

/** The engine's own filters (it throws on others only when a value reaches them). */
const ENGINE_FILTERS = new Set([
  'abs', 'capitalize', 'default', 'first', 'float', 'indent', 'int', 'items', 'join', 'last', 'length',
  'list', 'lower', 'map', 'rejectattr', 'replace', 'reverse', 'safe', 'selectattr', 'sort', 'string',
  'title', 'tojson', 'trim', 'unique', 'upper',
]); // prettier-ignore

const ENGINE_TESTS = new Set([
  'boolean', 'callable', 'odd', 'even', 'false', 'true', 'none', 'string', 'number', 'integer', 'iterable',
  'mapping', 'sequence', 'lower', 'upper', 'defined', 'undefined', 'equalto', 'eq',
]); // prettier-ignore

function unknownNames(program: Program): string | undefined {
  let problem: string | undefined;
  walk(program as unknown as AstNode, (node) => {
    if (problem !== undefined) return;
    if (node.type === 'FilterExpression') {
      const name = filterName(node.filter as AstNode);
      const test = name.startsWith(NEGATED_TEST_CALL)
        ? name.slice(NEGATED_TEST_CALL.length)
        : name.startsWith(TEST_CALL)
          ? name.slice(TEST_CALL.length)
          : undefined;
      if (test !== undefined) {
        if (!Object.hasOwn(TESTS_WITH_ARGUMENTS, test))
          problem = unknownMessage('test', test, Object.keys(TESTS_WITH_ARGUMENTS));
      } else if (!ENGINE_FILTERS.has(name) && !Object.hasOwn(FILTERS, name)) {
        problem = unknownMessage('filter', name, [...ENGINE_FILTERS, ...Object.keys(FILTERS)]);
      }
    } else if (node.type === 'TestExpression') {
      const name = (node.test as AstNode).value as string;
      if (!ENGINE_TESTS.has(name) && !Object.hasOwn(TESTS, name))
        problem = unknownMessage('test', name, [...ENGINE_TESTS, ...Object.keys(TESTS)]);
    }
  });
  return problem;
}

function unknownMessage(kind: string, name: string, known: string[]): string {
  const nearest = suggest(name, known);
  return `unknown ${kind} '${name}'${nearest === undefined ? '' : ` (did you mean '${nearest}'?)`}`;
}

// ---------------------------------------------------------------------------
// Ansible's filters and tests

type Filter = (operand: unknown, args: unknown[]) => unknown;

const FILTERS: Record<string, Filter> = {
  d: (operand, [fallback = '', boolean = false]) =>
    operand === undefined || (boolean === true && !truthy(operand)) ? fallback : operand,
  /** Ansible's `bool`: yes/on/true/1 (any case) are true, everything else false. */
  bool: (operand) => {
    if (typeof operand === 'boolean') return operand;
    if (typeof operand === 'number') return operand === 1;
    return (
      typeof operand === 'string' && ['yes', 'on', 'true', '1', 'y'].includes(operand.trim().toLowerCase())
    );
  },
  ternary: (operand, [whenTrue, whenFalse, whenNone]) =>
    operand === null && whenNone !== undefined ? whenNone : truthy(operand) ? whenTrue : whenFalse,
  mandatory: (operand, [message]) => {
    if (operand === undefined)
      throw new TemplateProblem(typeof message === 'string' ? message : 'mandatory variable not defined');
    return operand;
  },
};

type Test = (operand: unknown, args: unknown[]) => boolean;

/** A registered result (see executor) is a mapping with these flags. */
function flag(name: 'failed' | 'changed' | 'skipped'): Test {
  return (operand) => {
    if (typeof operand !== 'object' || operand === null || Array.isArray(operand))
      throw new TemplateProblem(
        `the '${name}' test expects a registered result, not ${describeValue(operand)}`,
      );
    return (operand as Record<string, unknown>)[name] === true;
  };
}

const TESTS: Record<string, Test> = {
  failed: flag('failed'),
  failure: flag('failed'),
  succeeded: (operand, args) => !flag('failed')(operand, args),
  success: (operand, args) => !flag('failed')(operand, args),
  changed: flag('changed'),
  change: flag('changed'),
  skipped: flag('skipped'),
  skip: flag('skipped'),
};

const TESTS_WITH_ARGUMENTS: Record<string, Test> = {
  ...TESTS,
  defined: (operand) => operand !== undefined,
  undefined: (operand) => operand === undefined,
  version: versionTest,
  version_compare: versionTest,
  in: (operand, [container]) => contains(container, operand),
  contains: (operand, [item]) => contains(operand, item),
};

function contains(container: unknown, item: unknown): boolean {
  if (typeof container === 'string') return typeof item === 'string' && container.includes(item);
  if (Array.isArray(container)) return container.some((x) => JSON.stringify(x) === JSON.stringify(item));
  if (typeof container === 'object' && container !== null)
    return typeof item === 'string' && Object.hasOwn(container, item);
  throw new TemplateProblem(`cannot look for an item in ${describeValue(container)}`);
}

const VERSION_OPERATORS: Record<string, (order: number) => boolean> = {
  '<': (o) => o < 0,
  lt: (o) => o < 0,
  '<=': (o) => o <= 0,
  le: (o) => o <= 0,
  '>': (o) => o > 0,
  gt: (o) => o > 0,
  '>=': (o) => o >= 0,
  ge: (o) => o >= 0,
  '==': (o) => o === 0,
  '=': (o) => o === 0,
  eq: (o) => o === 0,
  '!=': (o) => o !== 0,
  '<>': (o) => o !== 0,
  ne: (o) => o !== 0,
};

/** Ansible's `version` test with its default LooseVersion: "9.2p1" < "9.8" < "10.0". */
function versionTest(operand: unknown, args: unknown[]): boolean {
  const [other, operator = '=='] = args;
  if (typeof operator !== 'string' || !Object.hasOwn(VERSION_OPERATORS, operator))
    throw new TemplateProblem(
      `version test: unknown operator ${JSON.stringify(operator)} (one of ${Object.keys(VERSION_OPERATORS).join(' ')})`,
    );
  if (operand === undefined || other === undefined)
    throw new TemplateProblem('version test: a version is undefined');
  return VERSION_OPERATORS[operator]!(compareLooseVersions(String(operand), String(other)));
}

/**
 * Python's LooseVersion order: numbers compare as numbers, letters as text,
 * a number sorts before a letter run ("9.2p1" = [9, 2, "p", 1]).
 */
export function compareLooseVersions(a: string, b: string): number {
  const parts = (v: string): (number | string)[] =>
    (v.match(/\d+|[a-z]+/gi) ?? []).map((p) => (/^\d+$/.test(p) ? Number(p) : p));
  const left = parts(a);
  const right = parts(b);
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    const x = left[i];
    const y = right[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    if (x === y) continue;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    if (typeof x === 'number') return -1;
    if (typeof y === 'number') return 1;
    return x < y ? -1 : 1;
  }
  return 0;
}

// ---------------------------------------------------------------------------
// Running

/** A problem met while evaluating, reported at the string. */
class TemplateProblem extends Error {}

function toRuntime(value: unknown): RuntimeValue {
  return new engine.Environment().set('value', value);
}

function fromRuntime(value: RuntimeValue): unknown {
  switch (value.type) {
    case 'UndefinedValue':
      return undefined;
    case 'NullValue':
      return null;
    case 'ArrayValue':
    case 'TupleValue':
      return (value.value as RuntimeValue[]).map(fromRuntime);
    case 'ObjectValue':
    case 'KeywordArgumentsValue':
    case 'NamespaceValue':
      return Object.fromEntries(
        [...(value.value as Map<string, RuntimeValue>)].map(([k, v]) => [k, fromRuntime(v)]),
      );
    case 'FunctionValue':
      throw new TemplateProblem('a function is not a value');
    default:
      return value.value;
  }
}

function truthy(value: unknown): boolean {
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === 'object' && value !== null) return Object.keys(value).length > 0;
  return Boolean(value);
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'an undefined value';
  if (value === null) return 'none';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'a mapping' : `${typeof value} ${JSON.stringify(value)}`;
}

/** The expression as written, near enough: `net.cidr`, `nets[0]`. */
function describe(node: AstNode): string {
  switch (node.type) {
    case 'Identifier':
      return node.value as string;
    case 'MemberExpression': {
      const object = describe(node.object as AstNode);
      const property = node.property as AstNode;
      if (node.computed !== true) return `${object}.${String(property.value)}`;
      if (property.type === 'StringLiteral') return `${object}['${String(property.value)}']`;
      if (property.type === 'IntegerLiteral') return `${object}[${String(property.value)}]`;
      return `${object}[...]`;
    }
    default:
      return 'expression';
  }
}

class PlaybookInterpreter extends engine.Interpreter {
  constructor(
    env: Environment,
    private readonly vars: Vars,
    private readonly analysis: Analysis,
    private readonly pasting: boolean,
  ) {
    super(env);
  }

  override evaluate(node: AstNode | undefined, environment: Environment): RuntimeValue {
    const value = node?.type === 'FilterExpression' ? this.filter(node, environment) : undefined;
    const result = value ?? (node?.type === 'TestExpression' ? this.test(node, environment) : undefined);
    const evaluated = result ?? super.evaluate(node, environment);
    if (node === undefined) return evaluated;
    if (evaluated.type === 'UndefinedValue' && !this.analysis.guarded.has(node)) {
      if (node.type === 'Identifier' || node.type === 'MemberExpression')
        throw this.undefinedError(node, environment);
    }
    if (this.pasting && this.analysis.outputs.has(node)) {
      if (evaluated.type === 'ArrayValue' || evaluated.type === 'ObjectValue') {
        const kind = evaluated.type === 'ArrayValue' ? 'a list' : 'a mapping';
        const name = describe(node);
        const what = name === 'expression' ? 'an expression' : `variable '${name}'`;
        throw new TemplateProblem(
          `${what} is ${kind} and cannot be part of a longer string\n` +
            `Write "{{ ${name === 'expression' ? '...' : name} }}" alone to pass ${kind}.`,
        );
      }
    }
    return evaluated;
  }

  private arguments(filter: AstNode, environment: Environment): unknown[] {
    if (filter.type !== 'CallExpression') return [];
    return (filter.args as AstNode[]).map((arg) => {
      if (arg.type === 'KeywordArgumentExpression')
        throw new TemplateProblem('keyword arguments are not supported by this filter');
      return fromRuntime(this.evaluate(arg, environment));
    });
  }

  /** Our filters and tests-with-arguments; undefined for the engine's own. */
  private filter(node: AstNode, environment: Environment): RuntimeValue | undefined {
    const filter = node.filter as AstNode;
    const name = filterName(filter);
    const operand = () => fromRuntime(this.evaluate(node.operand as AstNode, environment));
    if (name.startsWith(NEGATED_TEST_CALL) || name.startsWith(TEST_CALL)) {
      const negated = name.startsWith(NEGATED_TEST_CALL);
      const test = TESTS_WITH_ARGUMENTS[name.slice(negated ? NEGATED_TEST_CALL.length : TEST_CALL.length)]!;
      const result = test(operand(), this.arguments(filter, environment));
      return toRuntime(negated ? !result : result);
    }
    if (!Object.hasOwn(FILTERS, name)) return undefined;
    return toRuntime(FILTERS[name]!(operand(), this.arguments(filter, environment)));
  }

  private test(node: AstNode, environment: Environment): RuntimeValue | undefined {
    const name = (node.test as AstNode).value as string;
    if (!Object.hasOwn(TESTS, name)) return undefined;
    const result = TESTS[name]!(fromRuntime(this.evaluate(node.operand as AstNode, environment)), []);
    return toRuntime(node.negate === true ? !result : result);
  }

  private undefinedError(node: AstNode, environment: Environment): TemplateProblem {
    const expression = describe(node);
    let known: string[] = Object.keys(this.vars);
    let prefix = '';
    let missing = expression;
    if (node.type === 'MemberExpression' && node.computed !== true) {
      const object = super.evaluate(node.object as AstNode, environment);
      known = object.type === 'ObjectValue' ? [...(object.value as Map<string, unknown>).keys()] : [];
      prefix = `${describe(node.object as AstNode)}.`;
      missing = String((node.property as AstNode).value);
    } else if (node.type === 'MemberExpression') {
      known = [];
    }
    const nearest = suggest(missing, known);
    const hint = nearest === undefined ? '' : ` (did you mean '${prefix}${nearest}'?)`;
    return new TemplateProblem(`undefined variable '${expression}'${hint}`);
  }
}

/** Jinja's spellings of the constants, and Python's, which Ansible users also type. */
const CONSTANTS = new Map<string, boolean | null>([
  ['true', true],
  ['True', true],
  ['false', false],
  ['False', false],
  ['none', null],
  ['None', null],
]);

/** The engine's view of a set of variables, made once per set (every string of every task reads it). */
const environments = new WeakMap<Vars, Environment>();

function environmentOf(vars: Vars): Environment {
  let base = environments.get(vars);
  if (!base) {
    base = new engine.Environment();
    for (const [name, value] of CONSTANTS) base.set(name, value);
    for (const [name, value] of Object.entries(vars)) if (!base.variables.has(name)) base.set(name, value);
    environments.set(vars, base);
  }
  return new engine.Environment(base);
}

function run(
  entry: Extract<Compiled, { program: Program }>,
  vars: Vars,
  position: SourcePosition | undefined,
): unknown {
  const interpreter = new PlaybookInterpreter(
    environmentOf(vars),
    vars,
    entry.analysis,
    entry.kind === 'text',
  );
  try {
    if (entry.kind === 'text') return interpreter.run(entry.program).value;
    const expression = entry.program.body[0];
    return fromRuntime(interpreter.evaluate(expression, interpreter.global));
  } catch (error) {
    const [summary = '', ...detail] = errorMessage(error).split('\n');
    const prefix = error instanceof TemplateProblem ? '' : 'cannot render template: ';
    throw configError(`${prefix}${summary}`, position, detail.length > 0 ? detail.join('\n') : undefined);
  }
}

function errorMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  // The engine's parser names its token types: "Expected closing expression token. CloseCurlyBracket !== CloseExpression."
  return message.replace(/^Parser Error: /, '').replace(/\.\s*\w+ !== \w+\.$/, '');
}

function configError(summary: string, position: SourcePosition | undefined, detail?: string): ConfigError {
  const diagnostic: Diagnostic = { severity: 'error', summary };
  if (detail !== undefined) diagnostic.detail = detail;
  if (position) diagnostic.position = position;
  return new ConfigError([diagnostic]);
}
