/**
 * `sshfix show plan.json --format markdown`: a plan as a pull-request comment.
 *
 * Made to stay readable for a whole fleet: a summary table; hosts whose
 * changes are identical share one collapsible section that lists their names;
 * hosts with nothing to change fold into one line; hosts that failed, were
 * unreachable or skipped are listed by reason. The comment is kept under
 * GitHub's limit (65,536 characters): sections past the budget are counted,
 * not shown.
 */
import type { PlanDocument, PlanHost, PlanTask } from '../plan/plan_file.js';
import { canonicalJson, planHostHandlers, planHostTasks } from '../plan/plan_file.js';
import { planTaskDiff } from './render_plan_text.js';

export interface MarkdownOptions {
  /** Largest output, in characters. Default: a little under GitHub's comment limit. */
  maxChars?: number;
  /** The plan file's name, as the reader would pass it to `sshfix show`. */
  file?: string;
}

export const GITHUB_COMMENT_BUDGET = 60_000;
/** Host names listed in one line at most; the rest are counted. */
const MAX_NAMES_LISTED = 1000;
/** Distinct reasons listed for failed, unreachable or skipped hosts; the rest are counted. */
const MAX_REASONS_LISTED = 20;

/** Escapes text for Markdown and the HTML GitHub allows in it. */
function escapeMarkdown(text: string): string {
  return text
    .replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c] ?? c)
    .replace(/[\\`*_[\]|~#]/g, '\\$&')
    .replace(/\r?\n/g, ' ');
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] ?? c);
}

/** `text` as inline code, whatever backticks it holds (CommonMark code spans). */
function inlineCode(text: string): string {
  const longestRun = Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(longestRun + 1);
  const pad = text.startsWith('`') || text.endsWith('`') ? ' ' : '';
  return `${fence}${pad}${text.replace(/\r?\n/g, ' ')}${pad}${fence}`;
}

/**
 * A fenced block that no line of `text` can close early: a closing fence may
 * be indented by up to three spaces (CommonMark 4.5), as a diff's context line
 * " ```" is.
 */
function fenced(info: string, text: string): string {
  const runs = text.match(/^ {0,3}`{3,}/gm) ?? [];
  const longestRun = Math.max(0, ...runs.map((run) => run.trimStart().length));
  const fence = '`'.repeat(Math.max(3, longestRun + 1));
  return `${fence}${info}\n${text.endsWith('\n') ? text : `${text}\n`}${fence}`;
}

function nameList(names: string[]): string {
  const shown = names.slice(0, MAX_NAMES_LISTED).map(inlineCode).join(', ');
  const rest = names.length - MAX_NAMES_LISTED;
  return rest > 0 ? `${shown} and ${rest} more` : shown;
}

function plural(count: number, one: string, many = `${one}s`): string {
  return `${count} ${count === 1 ? one : many}`;
}

const changing = (task: PlanTask) => task.action === 'change';

/** What makes two hosts' changes "the same": every task and handler as planned, not the facts. */
function changeIdentity(host: PlanHost): string {
  return canonicalJson({ tasks: planHostTasks(host), handlers: planHostHandlers(host) });
}

interface HostGroup {
  names: string[];
  host: PlanHost;
}

function groupByChanges(hosts: PlanHost[]): HostGroup[] {
  const groups = new Map<string, HostGroup>();
  for (const host of hosts) {
    const key = changeIdentity(host);
    const group = groups.get(key);
    if (group) group.names.push(host.name);
    else groups.set(key, { names: [host.name], host });
  }
  // Largest first: the change most of the fleet gets is the one to review first.
  return [...groups.values()].sort((a, b) => b.names.length - a.names.length);
}

function renderTask(task: PlanTask, handler: boolean): string {
  const kind = handler ? `${task.resource}, handler` : task.resource;
  const out = [`**${escapeMarkdown(task.name)}** (${inlineCode(kind)})`];
  if (task.noLog) {
    out.push('', '_Contents hidden: the task has `no_log: true`._');
    return out.join('\n');
  }
  const notes = [
    ...task.messages.map((m) => `- ${escapeMarkdown(m)}`),
    ...task.warnings.map((w) => `- :warning: ${escapeMarkdown(w)}`),
  ];
  if (notes.length > 0) out.push('', ...notes);
  const hiddenFiles = task.files.filter((f) => f.text === undefined).map((f) => f.path);
  if (hiddenFiles.length > 0)
    out.push('', `_Diff hidden (\`diff: false\`) for ${hiddenFiles.map(inlineCode).join(', ')}._`);
  const diff = planTaskDiff(task);
  if (diff !== '') out.push('', fenced('diff', diff));
  if (task.commands.length > 0)
    out.push('', fenced('sh', task.commands.map((c) => c.description).join('\n')));
  return out.join('\n');
}

function renderGroup(group: HostGroup): string {
  const { host, names } = group;
  const tasks = planHostTasks(host).filter(changing);
  const handlers = planHostHandlers(host).filter(changing);
  const count = tasks.length + handlers.length;
  const shownNames = names
    .slice(0, 3)
    .map((n) => `<code>${escapeHtml(n)}</code>`)
    .join(', ');
  const who = names.length > 3 ? `${shownNames} and ${names.length - 3} more` : shownNames;
  const summary = `${who}: ${plural(count, 'task')} to change${names.length > 1 ? ` (${plural(names.length, 'host')})` : ''}`;
  const body = [
    ...(names.length > 1 ? [`Hosts: ${nameList(names)}`] : []),
    ...tasks.map((t) => renderTask(t, false)),
    ...handlers.map((t) => renderTask(t, true)),
  ];
  return `<details><summary>${summary}</summary>\n\n${body.join('\n\n')}\n\n</details>`;
}

/** Hosts that failed, were unreachable or skipped: one line per distinct reason. */
function renderByReason(title: string, hosts: PlanHost[]): string | undefined {
  if (hosts.length === 0) return undefined;
  const byReason = new Map<string, string[]>();
  for (const host of hosts) {
    const reason = host.error ?? 'no reason given';
    byReason.set(reason, [...(byReason.get(reason) ?? []), host.name]);
  }
  const reasons = [...byReason.entries()].sort((a, b) => b[1].length - a[1].length);
  const lines = reasons
    .slice(0, MAX_REASONS_LISTED)
    .map(([reason, names]) => `- ${nameList(names)}: ${escapeMarkdown(reason.slice(0, 300))}`);
  const rest = reasons.slice(MAX_REASONS_LISTED);
  if (rest.length > 0)
    lines.push(
      `- … and ${plural(
        rest.reduce((n, [, names]) => n + names.length, 0),
        'host',
      )} with ${plural(rest.length, 'other reason')}`,
    );
  return `**${title} (${hosts.length}):**\n\n${lines.join('\n')}`;
}

export function renderPlanMarkdown(doc: PlanDocument, options: MarkdownOptions = {}): string {
  const budget = options.maxChars ?? GITHUB_COMMENT_BUDGET;
  const by = (status: PlanHost['status']) => doc.hosts.filter((h) => h.status === status);
  const changed = by('changed');
  const unchanged = by('unchanged');
  const failed = by('failed');
  const unreachable = by('unreachable');
  const skipped = by('skipped');
  const tasksChanging = changed.reduce(
    (n, h) => n + planHostTasks(h).filter(changing).length + planHostHandlers(h).filter(changing).length,
    0,
  );

  const head = [
    '### sshfix plan',
    '',
    `Made ${escapeMarkdown(doc.createdAt)} by sshfix ${escapeMarkdown(doc.sshfixVersion)} from ` +
      `playbook ${inlineCode(doc.inputs.playbook.path ?? '')} and inventory ${inlineCode(doc.inputs.inventory.path ?? '')}; ` +
      `plan digest ${inlineCode(doc.digest)}.`,
    '',
    '| hosts | to change | unchanged | failed | unreachable | skipped | tasks to change |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    `| ${doc.hosts.length} | ${changed.length} | ${unchanged.length} | ${failed.length} | ${unreachable.length} | ${skipped.length} | ${tasksChanging} |`,
  ].join('\n');
  const problems = [
    renderByReason('Failed', failed),
    renderByReason('Unreachable', unreachable),
    renderByReason('Skipped', skipped),
  ].filter((s): s is string => s !== undefined);
  const unchangedLine =
    unchanged.length > 0
      ? `**No changes (${plural(unchanged.length, 'host')}):** ${nameList(unchanged.map((h) => h.name))}`
      : undefined;

  const fixed = [head, ...problems, ...(unchangedLine !== undefined ? [unchangedLine] : [])];
  const groups = groupByChanges(changed);
  const reserve = 400; // the line that counts what did not fit
  let used = fixed.join('\n\n').length + reserve;
  const shown: string[] = [];
  let omitted = 0;
  let omittedHosts = 0;
  for (const group of groups) {
    const section = renderGroup(group);
    if (omitted === 0 && used + section.length + 2 <= budget) {
      shown.push(section);
      used += section.length + 2;
    } else {
      omitted++;
      omittedHosts += group.names.length;
    }
  }
  const tail =
    omitted > 0
      ? [
          `_${plural(omitted, 'more change set')} (${plural(omittedHosts, 'host')}) not shown: the comment would be too long. ` +
            `Run ${inlineCode(`sshfix show ${options.file ?? 'plan.json'}`)} on the plan file to see every change._`,
        ]
      : [];
  const sections = [
    head,
    ...problems,
    ...shown,
    ...tail,
    ...(unchangedLine !== undefined ? [unchangedLine] : []),
  ];
  return sections.join('\n\n') + '\n';
}
