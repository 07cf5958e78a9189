/**
 * `--list-tasks`: the plays and the tasks that would run, in Ansible's
 * layout, so that a tag or --start-at-task selection can be checked before
 * anything connects.
 */
import type { Playbook } from '../config/playbook.js';

function tagText(tags: readonly string[]): string {
  return `TAGS: [${tags.join(', ')}]`;
}

export function renderTaskList(playbook: Playbook): string {
  const lines = ['', `playbook: ${playbook.path}`];
  playbook.plays.forEach((play, index) => {
    lines.push('', `  play #${index + 1} (${play.hosts}): ${play.name}\t${tagText(play.tags)}`, '    tasks:');
    for (const task of play.tasks) {
      const mode = task.checkMode ? ' (check_mode)' : '';
      lines.push(`      ${task.name}${mode}\t${tagText(task.tags)}`);
    }
  });
  return `${lines.join('\n')}\n`;
}
