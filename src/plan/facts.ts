/**
 * Facts a plan rests on, and what changed since: pure functions over plain
 * data, so a saved plan can be checked against a fresh reading of its host.
 */
import type { ChangedFact, Fact } from './types.js';

/**
 * The facts whose value differs between the planned and the current
 * reading, in the planned order, then facts only the current reading has
 * (a file an Include glob now matches). Equal readings give [].
 */
export function changedFacts(planned: readonly Fact[], current: readonly Fact[]): ChangedFact[] {
  const now = new Map(current.map((f) => [f.key, f]));
  const before = new Set(planned.map((f) => f.key));
  const changed: ChangedFact[] = [];
  for (const fact of planned) {
    const value = now.get(fact.key)?.value;
    if (value !== fact.value)
      changed.push({ key: fact.key, description: fact.description, planned: fact.value, current: value });
  }
  for (const fact of current) {
    if (!before.has(fact.key))
      changed.push({ key: fact.key, description: fact.description, planned: undefined, current: fact.value });
  }
  return changed;
}

/** A value for a message: digests shortened to what a person compares. */
function shown(value: string | undefined): string {
  if (value === undefined) return 'not read';
  return value.replace(/\b(sha256:)?([0-9a-f]{12})[0-9a-f]{52}\b/g, '$1$2…');
}

/** One line per changed fact: "/etc/hosts.allow: sha256:1a2b… 0644 root:root → absent". */
export function describeChangedFacts(changed: readonly ChangedFact[]): string[] {
  return changed.map((c) => `${c.description}: ${shown(c.planned)} → ${shown(c.current)}`);
}
