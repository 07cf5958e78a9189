/** `sshfix show PLAN`: a saved plan (`plan --out`) as text, JSON or a pull-request comment in Markdown. */
import { ConfigError } from '../../config/diagnostics.js';
import { checkPlanUsable, serializePlanDocument } from '../../plan/plan_file.js';
import { EXIT } from '../exit_codes.js';
import { colourWanted, EXIT_CODES_EPILOG, type CliIO, type Command, type ParsedArgs } from '../io.js';
import { readPlanFile } from '../plan_file_io.js';
import { renderPlanMarkdown } from '../render_plan_markdown.js';
import { renderPlanText } from '../render_plan_text.js';

async function showPlan(args: ParsedArgs, io: CliIO): Promise<number> {
  const file = String(args.plan);
  const doc = await readPlanFile(file);
  // What a reviewer reads must be what apply would check: a plan edited after
  // it was made is refused here too. Its age and version are apply's business.
  const broken = checkPlanUsable(doc, { now: new Date(), version: doc.sshfixVersion }).filter(
    (r) => r.kind === 'broken-digest',
  );
  if (broken.length > 0) {
    throw new ConfigError(
      broken.map((r) => ({ severity: 'error', summary: `plan file ${file}: ${r.message}` })),
    );
  }
  const format = args.format as 'text' | 'json' | 'markdown';
  if (format === 'json') io.stdout(serializePlanDocument(doc));
  else if (format === 'markdown') io.stdout(renderPlanMarkdown(doc, { file }));
  else io.stdout(renderPlanText(doc, file, colourWanted(io)));
  return EXIT.ok;
}

export const showCommand: Command = {
  command: 'show <plan>',
  describe: 'Show a plan saved by plan --out: as text, JSON, or Markdown for a pull-request comment',
  builder: (y) =>
    y
      .positional('plan', { type: 'string', describe: 'Plan file (JSON, written by plan --out)' })
      .option('format', {
        choices: ['text', 'json', 'markdown'] as const,
        default: 'text' as const,
        describe:
          'text: as `sshfix plan` prints it; json: the plan document; markdown: a summary table and one ' +
          'collapsible diff per set of hosts with identical changes, sized for a pull-request comment',
      })
      .epilog(EXIT_CODES_EPILOG),
  run: (args, io) => showPlan(args, io),
};
