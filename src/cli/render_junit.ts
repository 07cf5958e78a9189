/**
 * `--format junit`: JUnit XML on stdout, for CI systems that show test
 * reports (GitHub Actions reporters, GitLab, Jenkins).
 *
 * One <testsuite> per host, named after it, and one <testcase> per task run
 * there (classname = host, name = task). Per host rather than per play because
 * an unreachable host has run no play at all, and a host stops at its first
 * failed task, so a per-play report would silently lack what never ran.
 *
 * - failed task      -> <failure message="first line">full error</failure>
 * - skipped task     -> <skipped message="why"/>
 * - unreachable host -> a testcase named "connection" with <error>
 * - ok/changed task  -> a passing testcase; messages (and, as in text output,
 *   the diff for plan or --diff) in <system-out>, so a plan's pending changes
 *   can be read in the CI report.
 *
 * No `time` attributes: sshfix does not measure tasks, and a made-up 0 would
 * read as a measurement.
 */
import { formatDiagnostic, type Diagnostic } from '../config/diagnostics.js';
import type { HostResult, TaskResult } from '../executor/results.js';
import { countTasks } from '../executor/results.js';
import { STALE_MESSAGE } from './render_text.js';

export interface JunitOptions {
  mode: 'apply' | 'plan';
  /** Check mode: "changed" means "would change". */
  check: boolean;
  /** Include diffs (plan, or --diff): file contents may hold secrets, so only when asked. */
  diff: boolean;
}

/** The testcase name of an unreachable host's connection attempt. */
export const CONNECTION_CASE_NAME = 'connection';

// Characters XML 1.0 cannot carry at all, not even as &#..; references: C0
// controls other than tab/newline/return, U+FFFE/U+FFFF, and lone surrogates.
const NOT_XML_CHARS =
  // eslint-disable-next-line no-control-regex
  /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Replaces what XML cannot hold with U+FFFD, so a stray escape code in sshd's output cannot break the report. */
function xmlChars(text: string): string {
  return text.replace(NOT_XML_CHARS, '\uFFFD');
}

/** `\r` too: XML readers turn a literal CR (and CRLF) into LF. */
export function escapeXmlText(text: string): string {
  return xmlChars(text)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/\r/g, '&#13;');
}

/** Also quotes, and newlines and tabs, which attribute-value normalisation would turn into spaces. */
export function escapeXmlAttribute(text: string): string {
  return escapeXmlText(text)
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;')
    .replace(/\n/g, '&#10;')
    .replace(/\t/g, '&#9;');
}

type Attributes = Record<string, string | number | undefined>;

function attributes(attrs: Attributes): string {
  return Object.entries(attrs)
    .filter((entry): entry is [string, string | number] => entry[1] !== undefined)
    .map(([name, value]) => ` ${name}="${escapeXmlAttribute(String(value))}"`)
    .join('');
}

function element(name: string, attrs: Attributes, children: string[] = [], indent = ''): string {
  if (children.length === 0) return `${indent}<${name}${attributes(attrs)}/>`;
  return [`${indent}<${name}${attributes(attrs)}>`, ...children, `${indent}</${name}>`].join('\n');
}

function textElement(name: string, attrs: Attributes, text: string, indent: string): string {
  return `${indent}<${name}${attributes(attrs)}>${escapeXmlText(text)}</${name}>`;
}

function firstLine(text: string): string {
  return text.split('\n', 1)[0] ?? '';
}

function caseName(task: TaskResult): string {
  return task.handler ? `${task.task} (handler)` : task.task;
}

/** What a passing or failed task did, for <system-out>. */
function taskOutput(task: TaskResult, options: JunitOptions): string {
  const lines = [
    ...(task.status === 'changed' ? [options.check ? 'would change' : 'changed'] : []),
    ...task.messages,
    ...task.warnings.map((w) => `warning: ${w}`),
    // Commands and diffs go together, as in text output.
    ...(options.diff && task.status !== 'ok' ? task.commands.map((c) => `$ ${c}`) : []),
  ];
  const diff = options.diff && task.status !== 'ok' ? task.diff : '';
  return [lines.join('\n'), diff].filter((part) => part !== '').join('\n');
}

function taskCase(host: string, task: TaskResult, options: JunitOptions, indent: string): string {
  const inner = `${indent}  `;
  const children: string[] = [];
  // As Ansible's junit callback by default (JUNIT_FAIL_ON_IGNORE=False): an ignored failure passes.
  if (task.status === 'failed' && !task.ignored) {
    const error = task.error ?? 'failed';
    children.push(textElement('failure', { message: firstLine(error), type: 'failed' }, error, inner));
  } else if (task.status === 'skipped') {
    children.push(element('skipped', { message: task.error }, [], inner));
  } else if (task.status === 'unreachable') {
    const error = task.error ?? 'unreachable';
    children.push(textElement('error', { message: firstLine(error), type: 'unreachable' }, error, inner));
  }
  const ignoring = task.ignored ? [`...ignoring: ${task.error ?? 'failed'}`] : [];
  const output = [...ignoring, taskOutput(task, options)].filter((part) => part !== '').join('\n');
  if (output !== '') children.push(textElement('system-out', {}, output, inner));
  return element('testcase', { classname: host, name: caseName(task) }, children, indent);
}

interface SuiteCounts {
  tests: number;
  failures: number;
  errors: number;
  skipped: number;
}

function suiteCounts(result: HostResult): SuiteCounts {
  const counts = countTasks(result);
  const taskErrors = result.tasks.filter((t) => t.status === 'unreachable').length;
  const connectionErrors = result.unreachable || result.stale ? 1 : 0;
  return {
    tests: result.tasks.length + connectionErrors,
    failures: counts.failed,
    errors: taskErrors + connectionErrors,
    skipped: counts.skipped,
  };
}

/** The connection attempt of an unreachable host, as a testcase in error. */
function connectionCase(result: HostResult, indent: string): string {
  const error = result.error ?? 'unreachable';
  return element(
    'testcase',
    { classname: result.host, name: CONNECTION_CASE_NAME },
    [textElement('error', { message: firstLine(error), type: 'unreachable' }, error, `${indent}  `)],
    indent,
  );
}

/** The name of the testcase that reports a host `apply PLAN` refused as stale. */
export const STALE_CASE_NAME = 'reviewed plan';

/** A host refused as stale, as a testcase in error of type "stale". */
function staleCase(result: HostResult, reasons: string[], indent: string): string {
  const text = [`${STALE_MESSAGE}:`, ...reasons].join('\n');
  return element(
    'testcase',
    { classname: result.host, name: STALE_CASE_NAME },
    [textElement('error', { message: `stale: ${reasons[0] ?? ''}`, type: 'stale' }, text, `${indent}  `)],
    indent,
  );
}

function hostSuite(result: HostResult, options: JunitOptions): string {
  const indent = '    ';
  // A host lost half-way keeps the tasks it ran before the connection error.
  const cases = [
    ...result.tasks.map((task) => taskCase(result.host, task, options, indent)),
    ...(result.unreachable ? [connectionCase(result, indent)] : []),
    ...(result.stale ? [staleCase(result, result.stale, indent)] : []),
  ];
  return element(
    'testsuite',
    { name: result.host, hostname: result.address, ...suiteCounts(result) },
    cases,
    '  ',
  );
}

export function renderJunit(results: HostResult[], options: JunitOptions): string {
  const suites = results.map((r) => hostSuite(r, options));
  const totals = results.map(suiteCounts).reduce(
    (sum, c) => ({
      tests: sum.tests + c.tests,
      failures: sum.failures + c.failures,
      errors: sum.errors + c.errors,
      skipped: sum.skipped + c.skipped,
    }),
    { tests: 0, failures: 0, errors: 0, skipped: 0 },
  );
  const root = element('testsuites', { name: `sshfix ${options.mode}`, ...totals }, suites);
  return `<?xml version="1.0" encoding="UTF-8"?>\n${root}\n`;
}

/** The name (and classname) of the testcase that reports bad input. */
export const INPUT_ERROR_CASE_NAME = 'bad input';

/**
 * The report of a run that bad input stopped before it started: one suite,
 * "input", with one testcase in error holding every problem, so that a CI
 * job shows a red test with the reason instead of an empty or missing report.
 */
export function renderJunitError(diagnostics: readonly Diagnostic[], mode: 'apply' | 'plan'): string {
  const text = diagnostics.map(formatDiagnostic).join('\n');
  const counts = { tests: 1, failures: 0, errors: 1, skipped: 0 };
  const error = textElement(
    'error',
    { message: diagnostics[0]?.summary ?? 'bad input', type: INPUT_ERROR_CASE_NAME },
    text,
    '      ',
  );
  const testcase = element('testcase', { classname: 'input', name: INPUT_ERROR_CASE_NAME }, [error], '    ');
  const suite = element('testsuite', { name: 'input', ...counts }, [testcase], '  ');
  return `<?xml version="1.0" encoding="UTF-8"?>\n${element('testsuites', { name: `sshfix ${mode}`, ...counts }, [suite])}\n`;
}
