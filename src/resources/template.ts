/**
 * `template: {src, dest, mode?, owner?, group?, validate?}` — a file from
 * the controller, rendered with the task's variables at plan time, placed at
 * dest like `file` places its content (atomic write, attributes, optional
 * validate on a staged copy). A `.j2` source is Jinja, rendered by the same
 * engine as playbook strings (config/template.ts), as Ansible's templates
 * are; any other source (`.hbs`) is handlebars, as before Jinja came.
 *
 * Rendering is strict: a variable the template uses but the host does not
 * have is an error at `template:line:column`, never an empty string in a
 * config file. That includes the arguments of block helpers (`{{#each x}}`,
 * `{{#if x}}`), which handlebars' own strict mode lets through as undefined.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import Handlebars from 'handlebars';
import { ConfigError, type Diagnostic } from '../config/diagnostics.js';
import { didYouMean } from '../config/suggest.js';
import { renderFile } from '../config/template.js';
import { errorMessage } from '../errors.js';
import type { ResourcePlan } from '../plan/types.js';
import {
  FILE_TARGET_SCHEMA_PROPERTIES,
  checkFileTargetArgs,
  checkPath,
  planFilePresent,
  validateStagedFile,
  wantedAttributes,
  type FileTargetArgs,
  type StagedValidation,
} from './file_common.js';
import type { ArgumentProblem, HostView, PlanContext, ResourceKind } from './types.js';

export interface TemplateArgs extends FileTargetArgs {
  src: string;
}

type Vars = Record<string, unknown>;

// A private environment: helpers or partials registered elsewhere do not change how templates render.
const handlebars = Handlebars.create();
const COMPILE_OPTIONS: CompileOptions = { noEscape: true, strict: true };

/**
 * Where a relative `src` is looked for, in order: beside the playbook, in its
 * templates/, in templates/ beside the playbook's directory (playbooks/ and
 * templates/ side by side). An absolute `src` is used as given.
 */
export function templateCandidates(src: string, playbookDir: string): string[] {
  if (path.isAbsolute(src)) return [src];
  const candidates = [
    path.resolve(playbookDir, src),
    path.resolve(playbookDir, 'templates', src),
    path.resolve(playbookDir, '..', 'templates', src),
  ];
  return [...new Set(candidates)];
}

/** The first candidate that is a readable file, with its text. */
async function loadTemplate(src: string, playbookDir: string): Promise<{ file: string; text: string }> {
  const candidates = templateCandidates(src, playbookDir);
  for (const file of candidates) {
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      throw new Error(`cannot read template ${file}: ${errorMessage(error)}`);
    }
    return { file, text };
  }
  throw new Error(`template ${src} not found; looked in: ${candidates.join(', ')}`);
}

/**
 * Marks every path passed to a helper (`{{#each x}}`, `{{#if x}}`, hash
 * values, sub-expressions) as strict: handlebars' strict mode otherwise
 * checks only the mustache's own path, so `{{#each missing}}` renders nothing.
 */
class StrictParameters extends Handlebars.Visitor {
  override MustacheStatement(node: hbs.AST.MustacheStatement): void {
    markStrict(node);
    super.MustacheStatement(node);
  }
  override BlockStatement(node: hbs.AST.BlockStatement): void {
    markStrict(node);
    super.BlockStatement(node);
  }
  override SubExpression(node: hbs.AST.SubExpression): void {
    markStrict(node);
    super.SubExpression(node);
  }
}

function markStrict(node: { params: hbs.AST.Expression[]; hash?: hbs.AST.Hash }): void {
  const expressions = [...node.params, ...(node.hash?.pairs.map((pair) => pair.value) ?? [])];
  for (const expression of expressions) {
    // `strict` is read by handlebars' compiler but not declared in its AST types.
    if (expression.type === 'PathExpression')
      (expression as hbs.AST.PathExpression & { strict?: boolean }).strict = true;
  }
}

type Compiled =
  { ok: true; render: HandlebarsTemplateDelegate<Vars> } | { ok: false; diagnostic: Diagnostic };

/** The same template renders once per host: compile each distinct (file, text) once. */
const compiledTemplates = new Map<string, Compiled>();
const MAX_CACHED_TEMPLATES = 1_000;

function compile(file: string, text: string): Compiled {
  const key = `${file}\0${text}`;
  let entry = compiledTemplates.get(key);
  if (!entry) {
    entry = compileUncached(file, text);
    if (compiledTemplates.size >= MAX_CACHED_TEMPLATES) compiledTemplates.clear();
    compiledTemplates.set(key, entry);
  }
  return entry;
}

function compileUncached(file: string, text: string): Compiled {
  let program: hbs.AST.Program;
  try {
    program = handlebars.parse(text);
  } catch (error) {
    return { ok: false, diagnostic: parseErrorDiagnostic(file, error) };
  }
  new StrictParameters().accept(program);
  return { ok: true, render: handlebars.compile<Vars>(program, COMPILE_OPTIONS) };
}

/**
 * Handlebars reports syntax errors two ways: the parser's "Parse error on
 * line 3:\n<snippet>\n---^\nExpecting ..." (line only), and its checks'
 * "each doesn't match if - 2:3" (1-based line, 0-based column).
 */
function parseErrorDiagnostic(file: string, error: unknown): Diagnostic {
  const [first = 'unreadable template', ...rest] = errorMessage(error).split('\n');
  const located = / - (\d+):(\d+)$/.exec(first);
  const line = Number(located?.[1] ?? /on line (\d+)/.exec(first)?.[1] ?? 1);
  const column = located ? Number(located[2]) + 1 : 1;
  // Handlebars appends the long list of tokens it expected; the caret line says enough.
  const snippet = rest.filter((l) => !l.startsWith('Expecting ')).join('\n');
  return {
    severity: 'error',
    summary: `invalid template: ${first.replace(/:$/, '').replace(/ - \d+:\d+$/, '')}`,
    position: { file, line, column },
    ...(snippet ? { detail: snippet } : {}),
  };
}

/** Handlebars runtime errors carry a 1-based line and a 0-based column of the offending expression. */
interface LocatedError {
  lineNumber?: unknown;
  column?: unknown;
  endLineNumber?: unknown;
  endColumn?: unknown;
}

function locate(
  text: string,
  error: unknown,
): { line: number; column: number; expression?: string } | undefined {
  const { lineNumber, column, endLineNumber, endColumn } = error as LocatedError;
  if (typeof lineNumber !== 'number' || typeof column !== 'number') return undefined;
  const sourceLine = text.split('\n')[lineNumber - 1];
  const expression =
    endLineNumber === lineNumber && typeof endColumn === 'number'
      ? sourceLine?.slice(column, endColumn).trim()
      : undefined;
  return { line: lineNumber, column: column + 1, ...(expression ? { expression } : {}) };
}

/**
 * Renders template `text` (read from `file`, which names it in errors) with
 * `vars`. Pure. Throws ConfigError at `file:line:column` for a syntax error
 * or a variable the template uses that `vars` lacks.
 */
export function renderTemplate(file: string, text: string, vars: Vars): string {
  if (file.endsWith('.j2')) return renderFile(file, text, vars);
  const compiled = compile(file, text);
  if (!compiled.ok) throw new ConfigError([compiled.diagnostic]);
  try {
    return compiled.render(vars);
  } catch (error) {
    const message = errorMessage(error);
    const where = locate(text, error);
    const undefinedName = /^"(.*)" not defined in /.exec(message)?.[1];
    // With a position the diagnostic names the file already; without one the summary must.
    const inTemplate = where ? 'in template' : `in template ${file}`;
    const summary =
      undefinedName !== undefined
        ? `undefined variable '${where?.expression ?? undefinedName}' ${inTemplate}${didYouMean(undefinedName, Object.keys(vars))}`
        : `cannot render template ${file}: ${message.split('\n')[0] ?? ''}`;
    const diagnostic: Diagnostic = { severity: 'error', summary };
    if (where) diagnostic.position = { file, line: where.line, column: where.column };
    throw new ConfigError([diagnostic]);
  }
}

function checkTemplateArgs(args: TemplateArgs): ArgumentProblem[] {
  const problems = checkFileTargetArgs(args);
  const srcProblem = checkPath(args.src, 'src', false);
  if (srcProblem !== undefined) problems.push({ pointer: '/src', message: srcProblem });
  return problems;
}

async function planTemplate(
  args: TemplateArgs,
  host: HostView,
  ctx: PlanContext,
): Promise<ResourcePlan<StagedValidation>> {
  const { file, text } = await loadTemplate(args.src, ctx.playbookDir);
  const content = renderTemplate(file, text, ctx.vars);
  const { wanted, warnings } = wantedAttributes(args);
  return planFilePresent(
    {
      dest: args.dest,
      content,
      wanted,
      warnings,
      source: `rendered from ${file}`,
      ...(args.validate !== undefined ? { validate: args.validate } : {}),
    },
    host,
  );
}

export const templateResource: ResourceKind<TemplateArgs, StagedValidation> = {
  name: 'template',
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['src', 'dest'],
    properties: {
      src: { type: 'string', minLength: 1 },
      ...FILE_TARGET_SCHEMA_PROPERTIES,
    },
  },
  checkArgs: checkTemplateArgs,
  plan: planTemplate,
  validate: validateStagedFile,
};
