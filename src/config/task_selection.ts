/**
 * Which tasks of a playbook run: `--tags`, `--skip-tags` and
 * `--start-at-task`, with Ansible's meaning. Pure: it takes a loaded
 * playbook and returns one with fewer tasks; handlers are never filtered (a
 * notified handler runs, whatever its tags, as in Ansible).
 */
import { ConfigError, type Diagnostic } from './diagnostics.js';
import type { Playbook, TaskSpec } from './playbook.js';
import { didYouMean } from './suggest.js';

export interface TaskSelectionOptions {
  /** `--tags`: run only tasks with one of these (none given: `all`). */
  tags?: readonly string[];
  /** `--skip-tags`: never run tasks with one of these. */
  skipTags?: readonly string[];
  /** `--start-at-task`: skip every task before the first one of this name. */
  startAtTask?: string;
}

export interface TaskSelection {
  playbook: Playbook;
  /** A tag asked for that no task has: Ansible runs nothing for it without a word. */
  warnings: Diagnostic[];
}

/** The tag every task without tags has, so that `--tags untagged` can ask for them. */
const UNTAGGED = 'untagged';

/** The tags given to `--tags a,b --tags c`: commas separate tags, as in Ansible. */
export function parseTagOption(values: readonly string[]): string[] {
  return [
    ...new Set(
      values
        .flatMap((value) => value.split(','))
        .map((tag) => tag.trim())
        .filter((tag) => tag !== ''),
    ),
  ];
}

/**
 * Whether a task with these tags runs, as Ansible's Taggable.evaluate_tags
 * decides: `always` runs unless its tag (or `always`) is skipped; `never`
 * runs only when one of its tags, or `never`, is asked for; `all` (the
 * default of `--tags`) is every task but `never` ones; `tagged` and `untagged`
 * are what they say.
 */
export function tagsSelectTask(
  taskTags: readonly string[],
  only: readonly string[],
  skip: readonly string[],
): boolean {
  const tags = new Set(taskTags.length === 0 ? [UNTAGGED] : taskTags);
  const untagged = taskTags.length === 0;
  const any = (wanted: readonly string[]) => wanted.some((tag) => tags.has(tag));
  const wanted = only.length > 0 ? only : ['all'];
  const selected =
    tags.has('always') ||
    (wanted.includes('all') && !tags.has('never')) ||
    any(wanted) ||
    (wanted.includes('tagged') && !untagged && !tags.has('never'));
  if (!selected) return false;
  if (skip.length > 0) {
    if (skip.includes('all')) return tags.has('always') && !skip.includes('always');
    if (any(skip)) return false;
    if (skip.includes('tagged') && !untagged) return false;
  }
  return true;
}

const SPECIAL_TAGS = new Set(['all', 'always', 'never', 'tagged', UNTAGGED]);

/** The playbook with only the tasks that run; throws ConfigError when --start-at-task names no task. */
export function selectTasks(playbook: Playbook, options: TaskSelectionOptions): TaskSelection {
  const only = options.tags ?? [];
  const skip = options.skipTags ?? [];
  let started = options.startAtTask === undefined;
  if (!started) {
    const names = playbook.plays.flatMap((play) => play.tasks.map((task) => task.name));
    if (!names.includes(options.startAtTask!)) {
      throw new ConfigError([
        {
          severity: 'error',
          summary: `--start-at-task '${options.startAtTask!}': no task of ${playbook.path} has this name${didYouMean(options.startAtTask!, names)}`,
        },
      ]);
    }
  }
  const runs = (task: TaskSpec): boolean => {
    if (!started && task.name === options.startAtTask) started = true;
    return started && tagsSelectTask(task.tags, only, skip);
  };
  const plays = playbook.plays.map((play) => ({ ...play, tasks: play.tasks.filter(runs) }));
  const known = new Set(playbook.plays.flatMap((play) => play.tasks.flatMap((task) => task.tags)));
  const warnings: Diagnostic[] = [...only, ...skip]
    .filter((tag) => !SPECIAL_TAGS.has(tag) && !known.has(tag))
    .map((tag) => ({
      severity: 'warning',
      summary: `no task of ${playbook.path} has tag '${tag}'${didYouMean(tag, [...known])}`,
    }));
  return { playbook: { ...playbook, plays }, warnings };
}
