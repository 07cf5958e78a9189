/**
 * "Did you mean ...?" for misspelt keys, resource names, handlers and variables.
 *
 * Distance is the optimal-string-alignment variant of Damerau-Levenshtein
 * (insert, delete, substitute, swap two adjacent characters), compared without
 * case so that `Tasks` suggests `tasks`.
 */

/** A candidate is suggested when it differs in at most this share of the longer name. */
const MAX_DIFFERENCE_RATIO = 0.4;

/** Edit distance counting an adjacent transposition ("tsak" -> "task") as one edit. */
export function editDistance(a: string, b: string): number {
  // Three rolling rows: two back (for transpositions), previous and current.
  let twoBack: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(
        (previous[j] ?? 0) + 1,
        (current[j - 1] ?? 0) + 1,
        (previous[j - 1] ?? 0) + substitution,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, (twoBack[j - 2] ?? 0) + 1);
      }
      current.push(best);
    }
    twoBack = previous;
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/**
 * The candidate closest to `name`, or undefined when none is close enough.
 * Ties go to the earlier candidate, so callers list the likeliest first.
 */
export function suggest(name: string, candidates: Iterable<string>): string | undefined {
  const wanted = name.toLowerCase();
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    if (candidate === name) continue;
    const distance = editDistance(wanted, candidate.toLowerCase());
    const allowed = Math.max(wanted.length, candidate.length) * MAX_DIFFERENCE_RATIO;
    if (distance <= allowed && (best === undefined || distance < best.distance)) {
      best = { candidate, distance };
    }
  }
  return best?.candidate;
}

/** " (did you mean 'x'?)" or "" — appended to summaries. */
export function didYouMean(name: string, candidates: Iterable<string>): string {
  const suggestion = suggest(name, candidates);
  return suggestion === undefined ? '' : ` (did you mean '${suggestion}'?)`;
}
