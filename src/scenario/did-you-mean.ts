// "did you mean ...?": the known name closest to a misspelt one, by optimal string alignment
// distance (insertions, deletions, substitutions and swaps of two neighbours each cost 1).

/** The edit distance between a and b, a swap of two adjacent characters counting once. */
export function editDistance(a: string, b: string): number {
  const n = a.length;
  const m = b.length;
  // Three rows: the one before the previous is needed for a swap.
  let pp = new Array<number>(m + 1).fill(0);
  let p = Array.from({ length: m + 1 }, (_, j) => j);
  let c = new Array<number>(m + 1).fill(0);
  for (let i = 1; i <= n; i++) {
    c[0] = i;
    for (let j = 1; j <= m; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      c[j] = Math.min(p[j] + 1, c[j - 1] + 1, p[j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        c[j] = Math.min(c[j], pp[j - 2] + 1);
    }
    [pp, p, c] = [p, c, pp];
  }
  return p[m];
}

/**
 * The candidate closest to name, if it is close enough to be a typo of it (at most a third of
 * its length, and at least one edit, apart; case is ignored). Ties go to the earlier candidate,
 * so callers list the likeliest ones (e.g. the missing required fields) first.
 */
export function closest(name: string, candidates: readonly string[]): string | undefined {
  const lower = name.toLowerCase();
  const limit = Math.max(1, Math.floor(name.length / 3));
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(lower, c.toLowerCase());
    if (d <= limit && d < bestD) {
      best = c;
      bestD = d;
    }
  }
  return best;
}
