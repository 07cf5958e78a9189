import { GITHUB_COMMENT_BUDGET, renderPlanMarkdown } from '../../../src/cli/render_plan_markdown.js';
import type { TaskPlan } from '../../../src/plan/types.js';
import { allowTask, planDocument, planHostInput, unchangedTask } from '../../support/plan_documents.js';

const name = (i: number) => `web${String(i).padStart(3, '0')}`;
const detailsSections = (markdown: string) => markdown.split('<details>').slice(1);

describe('show --format markdown of a 500-host plan', () => {
  const hosts = Array.from({ length: 500 }, (_, i) => {
    if (i < 300) return planHostInput(name(i), [allowTask('192.168.0.0/16'), unchangedTask()]);
    if (i < 450) return planHostInput(name(i), [allowTask('172.16.0.0/12'), unchangedTask()]);
    if (i < 495) return planHostInput(name(i), [unchangedTask()]);
    if (i < 498) return planHostInput(name(i), [], { unreachable: true, error: 'connect timed out' });
    return planHostInput(name(i), [], { error: `sudo: a password is required on ${name(i)}` });
  });
  const markdown = renderPlanMarkdown(planDocument(hosts));

  test('stays small: one section per distinct change, not per host', () => {
    expect(markdown.length).toBeLessThan(15_000);
    expect(detailsSections(markdown)).toHaveLength(2);
  });

  test('the summary table counts hosts by status and the tasks that change', () => {
    expect(markdown).toContain(
      '| hosts | to change | unchanged | failed | unreachable | skipped | tasks to change |',
    );
    expect(markdown).toContain('| 500 | 450 | 45 | 2 | 3 | 0 | 450 |');
  });

  test('hosts with identical changes share one section that names all of them, largest first', () => {
    const [first, second] = detailsSections(markdown);
    expect(first).toMatch(
      /^<summary><code>web000<\/code>, <code>web001<\/code>, <code>web002<\/code> and 297 more: 1 task to change \(300 hosts\)<\/summary>/,
    );
    for (let i = 0; i < 300; i++) expect(first).toContain(`\`${name(i)}\``);
    expect(first).not.toContain('web300');
    expect(first).toContain('+sshd: 10.0.0.0/8 192.168.0.0/16');
    expect(first).not.toContain('172.16.0.0/12');
    expect(second).toContain('(150 hosts)');
    expect(second).toContain('+sshd: 10.0.0.0/8 172.16.0.0/12');
    expect(markdown.match(/^```diff$/gm)).toHaveLength(2);
  });

  test('hosts with no change fold into one line', () => {
    const lines = markdown.split('\n').filter((l) => l.includes('web460'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^\*\*No changes \(45 hosts\):\*\* `web450`, `web451`, .*`web494`$/);
  });

  test('unreachable and failed hosts are listed by reason', () => {
    expect(markdown).toContain('**Unreachable (3):**\n\n- `web495`, `web496`, `web497`: connect timed out');
    expect(markdown).toContain('- `web498`: sudo: a password is required on web498');
  });
});

describe('show --format markdown keeps within a pull-request comment', () => {
  test('500 hosts with 500 different changes: sections past the budget are counted, not shown', () => {
    const hosts = Array.from({ length: 500 }, (_, i) =>
      planHostInput(name(i), [
        allowTask(`10.${Math.floor(i / 256)}.${i % 256}.0/24`, `sshd: ${'x'.repeat(200)}\n`),
      ]),
    );
    const markdown = renderPlanMarkdown(planDocument(hosts), { file: 'out/plan.json' });
    expect(markdown.length).toBeLessThanOrEqual(GITHUB_COMMENT_BUDGET);
    const shown = detailsSections(markdown).length;
    expect(shown).toBeGreaterThan(10);
    expect(markdown).toContain(
      `_${500 - shown} more change sets (${500 - shown} hosts) not shown: the comment would be too long. Run \`sshfix show out/plan.json\``,
    );
  });
});

describe('show --format markdown escapes what it quotes', () => {
  test('a diff holding a code fence gets a longer fence; names cannot inject HTML', () => {
    // " ```" (a context line) would close a three-backtick fence.
    const before = '```\nsshd: 10.0.0.0/8\n';
    const task: TaskPlan = { ...allowTask('x', before), task: 'allow <b>x</b> *now*' };
    const markdown = renderPlanMarkdown(planDocument([planHostInput('h<1>', [task])]));
    expect(markdown).toContain('````diff\n');
    expect(markdown).toContain('<code>h&lt;1&gt;</code>');
    expect(markdown).toContain('**allow &lt;b&gt;x&lt;/b&gt; \\*now\\***');
    expect(markdown).not.toContain('<b>');
  });

  test('a no_log task shows that it changes, nothing of what', () => {
    const task: TaskPlan = { ...allowTask('192.168.7.0/24'), task: 'allow the office', noLog: true };
    const markdown = renderPlanMarkdown(planDocument([planHostInput('h1', [task])]));
    expect(markdown).toContain('1 task to change');
    expect(markdown).toContain('no_log: true');
    expect(markdown).not.toContain('192.168.7.0');
  });
});
