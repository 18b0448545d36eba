// Exploration split by schedule prefix: two worker processes give the single-process report
// (counts, verdict, counterexample and its preemptions; only the wall time differs), and the
// prefix units of a bound cover its search exactly once.
import { describe, expect, it } from 'vitest';
import { caseById } from '../../src/check/cases/index.ts';
import { explore } from '../../src/check/index.ts';
import { exploreUnit, exploreParallel, partitionSchedules } from '../../src/check/jobs.ts';
import { Runner } from '../../src/check/explore.ts';

const noTime = <T extends { ms: number }>(r: T) => ({ ...r, ms: 0 });

describe('check --jobs', () => {
  it.each(['R5-kernel', 'R1-v5-fault', 'R11-no-recheck'])(
    '%s: two workers report what one process does',
    async (id) => {
      const c = caseById(id)!;
      expect(noTime(await exploreParallel(c, { id }, {}, 2))).toEqual(noTime(explore(c)));
    },
    240_000,
  );

  it('the prefix units of a bound add up to its whole search', () => {
    const c = caseById('R12-kernel')!;
    const units = partitionSchedules(c, {}, 2, 16);
    expect(units.length).toBeGreaterThanOrEqual(16);
    const r = new Runner(c, {});
    const total = units.map((u) => exploreUnit(r, u).executions).reduce((a, b) => a + b, 0);
    const one = explore(c, { maxPreemptions: 2 });
    const lower = explore(c, { maxPreemptions: 1 });
    expect(total).toBe(one.executions - lower.executions);
  });
});
