/**
 * `{{ var }}` rendering of playbook strings with handlebars.
 *
 * - Strict: an undefined variable is an error, never an empty string that
 *   would end up in sshd_config.
 * - No HTML escaping: values go into config files, not web pages.
 * - A string that is exactly one `{{ path }}` yields the variable's value
 *   itself, so a list stays a list and a number a number (as in Ansible).
 * - Rendered values are not rendered again: a variable holding "{{ x }}"
 *   yields that text.
 */
import Handlebars from 'handlebars';
import { ConfigError } from './diagnostics.js';
import type { Diagnostic, SourcePosition } from './diagnostics.js';
import { didYouMean, suggest } from './suggest.js';

type Vars = Record<string, unknown>;

/** A variable reference written as a plain `{{ a.b.c }}` outside any block. */
interface VariableReference {
  /** As written, e.g. "net.cidr". */
  expression: string;
  parts: string[];
}

type CompiledTemplate =
  | { kind: 'literal' }
  | { kind: 'value'; reference: VariableReference }
  | { kind: 'text'; references: VariableReference[]; render: HandlebarsTemplateDelegate<Vars> }
  | { kind: 'invalid'; summary: string; detail?: string };

// A private environment: helpers registered elsewhere do not change how playbooks render.
const handlebars = Handlebars.create();
const COMPILE_OPTIONS: CompileOptions = { noEscape: true, strict: true };

/** The same task renders once per host: parse and compile each distinct string once. */
const compiled = new Map<string, CompiledTemplate>();
const MAX_CACHED_TEMPLATES = 10_000;

/** Whether any string in `value` (a task's arguments) is a template, to be rendered per host. */
export function containsTemplate(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('{{');
  if (Array.isArray(value)) return value.some(containsTemplate);
  if (typeof value === 'object' && value !== null) return Object.values(value).some(containsTemplate);
  return false;
}

export function renderString(template: string, vars: Vars, position?: SourcePosition): unknown {
  const entry = compile(template);
  switch (entry.kind) {
    case 'literal':
      return template;
    case 'invalid':
      throw configError(entry.summary, position, entry.detail);
    case 'value':
      // A copy, so that whoever edits the rendered arguments cannot change the variables.
      return structuredClone(lookupOrThrow(entry.reference, vars, position));
    case 'text':
      for (const reference of entry.references) {
        const value = lookupOrThrow(reference, vars, position);
        if (typeof value === 'object' && value !== null) {
          const kind = Array.isArray(value) ? 'a list' : 'a mapping';
          throw configError(
            `variable '${reference.expression}' is ${kind} and cannot be part of a longer string`,
            position,
            `Write "{{ ${reference.expression} }}" alone to pass ${kind}.`,
          );
        }
      }
      return renderText(entry.render, template, vars, position);
  }
}

function compile(template: string): CompiledTemplate {
  let entry = compiled.get(template);
  if (!entry) {
    entry = template.includes('{{') ? compileTemplate(template) : { kind: 'literal' };
    if (compiled.size >= MAX_CACHED_TEMPLATES) compiled.clear();
    compiled.set(template, entry);
  }
  return entry;
}

function compileTemplate(template: string): CompiledTemplate {
  let program: hbs.AST.Program;
  try {
    program = handlebars.parse(template);
  } catch (error) {
    const [first = 'unreadable template', ...rest] = errorMessage(error).split('\n');
    // Handlebars appends the long list of tokens it expected; the caret line says enough.
    const snippet = rest.filter((line) => !line.startsWith('Expecting ')).join('\n');
    return snippet
      ? { kind: 'invalid', summary: `invalid template: ${first.replace(/:$/, '')}`, detail: snippet }
      : { kind: 'invalid', summary: `invalid template: ${first}` };
  }
  const references = program.body.flatMap((statement) => {
    const reference = variableReference(statement);
    return reference ? [reference] : [];
  });
  const only = program.body.length === 1 ? references[0] : undefined;
  if (only) return { kind: 'value', reference: only };
  return { kind: 'text', references, render: handlebars.compile<Vars>(program, COMPILE_OPTIONS) };
}

/** `{{ a.b }}` — not a helper call, not `@data`, not `../parent`, not `this`. */
function variableReference(statement: hbs.AST.Statement): VariableReference | undefined {
  if (statement.type !== 'MustacheStatement') return undefined;
  const mustache = statement as hbs.AST.MustacheStatement;
  if (mustache.params.length > 0 || (mustache.hash?.pairs.length ?? 0) > 0) return undefined;
  if (mustache.path.type !== 'PathExpression') return undefined;
  const path = mustache.path as hbs.AST.PathExpression;
  const [head] = path.parts;
  if (path.data || path.depth > 0 || head === undefined || Object.hasOwn(handlebars.helpers, head))
    return undefined;
  return { expression: path.original, parts: path.parts };
}

type Lookup = { found: true; value: unknown } | { found: false; known: string[]; depth: number };

/** Own properties only: `{{ constructor }}` is undefined, not Object's constructor. */
function lookup(vars: Vars, parts: string[]): Lookup {
  let current: unknown = vars;
  for (const [depth, part] of parts.entries()) {
    if (typeof current !== 'object' || current === null || !Object.hasOwn(current, part)) {
      const known = typeof current === 'object' && current !== null ? Object.keys(current) : [];
      return { found: false, known, depth };
    }
    current = (current as Record<string, unknown>)[part];
  }
  return { found: true, value: current };
}

function lookupOrThrow(
  reference: VariableReference,
  vars: Vars,
  position: SourcePosition | undefined,
): unknown {
  const result = lookup(vars, reference.parts);
  if (result.found) return result.value;
  const prefix = reference.parts.slice(0, result.depth);
  const missing = reference.parts[result.depth] ?? '';
  const nearest = suggest(missing, result.known);
  const hint = nearest === undefined ? '' : ` (did you mean '${[...prefix, nearest].join('.')}'?)`;
  throw configError(`undefined variable '${reference.expression}'${hint}`, position);
}

function renderText(
  render: HandlebarsTemplateDelegate<Vars>,
  template: string,
  vars: Vars,
  position: SourcePosition | undefined,
): string {
  try {
    return render(vars);
  } catch (error) {
    // Inside blocks ({{#each}}...) handlebars' strict mode is the only check left.
    const undefinedName = /^"(.*)" not defined in /.exec(errorMessage(error))?.[1];
    if (undefinedName !== undefined) {
      const expression = expressionAt(template, error) ?? undefinedName;
      throw configError(
        `undefined variable '${expression}'${didYouMean(expression, Object.keys(vars))}`,
        position,
      );
    }
    throw configError(`cannot render template: ${errorMessage(error).split('\n')[0] ?? ''}`, position);
  }
}

/** The source text handlebars' exception points at (its columns are 0-based). */
function expressionAt(template: string, error: unknown): string | undefined {
  const { lineNumber, column, endLineNumber, endColumn } = error as Record<string, unknown>;
  if (typeof lineNumber !== 'number' || typeof column !== 'number' || typeof endColumn !== 'number') {
    return undefined;
  }
  if (endLineNumber !== lineNumber) return undefined;
  const text = template.split('\n')[lineNumber - 1]?.slice(column, endColumn).trim();
  return text ? text : undefined;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function configError(summary: string, position: SourcePosition | undefined, detail?: string): ConfigError {
  const diagnostic: Diagnostic = { severity: 'error', summary };
  if (detail !== undefined) diagnostic.detail = detail;
  if (position) diagnostic.position = position;
  return new ConfigError([diagnostic]);
}
