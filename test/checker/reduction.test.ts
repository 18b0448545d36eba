// The reduction is sound under the preemption bound: every case explored with the bounded sleep
// sets (the default) and without any reduction gives the same verdict and, for a counterexample,
// the same minimal preemption count; the reduction never explores more schedules. Plain sleep
// sets do not have this property (engine.test.ts pins the case they miss).
import { describe, expect, it } from 'vitest';
import { CASES } from '../../src/check/cases/index.ts';
import { explore } from '../../src/check/index.ts';

/**
 * Verified cases whose unreduced search at their own bound takes minutes on this machine: both
 * sides run at one preemption less (still exhaustive, so the comparison is exact there).
 */
const LOWER_BOUND = new Set([
  'R1-v19',
  'pte-level-B',
  'pte-level-A',
  'pte-level-A-arm64',
  'R11-kernel',
  'rule14-kernel',
  'rule3-kernel',
]);

describe('bounded sleep sets keep every counterexample', () => {
  it.each(CASES.map((c) => c.id))(
    '%s: same verdict and preemptions as no reduction',
    (id) => {
      const c = CASES.find((x) => x.id === id)!;
      const bound = (c.maxPreemptions ?? 2) - (LOWER_BOUND.has(id) ? 1 : 0);
      const naive = explore(c, { reduction: 'none', maxPreemptions: bound });
      const reduced = explore(c, { reduction: 'bounded-sleep', maxPreemptions: bound });
      expect(naive.incomplete).toBe(false);
      expect(reduced.incomplete).toBe(false);
      expect(reduced.ok).toBe(naive.ok);
      expect(reduced.counterexample?.preemptions).toBe(naive.counterexample?.preemptions);
      if (c.expect !== 'verified' && !reduced.ok)
        expect(c.expect).toContain(reduced.counterexample!.property);
      expect(reduced.executions).toBeLessThanOrEqual(naive.executions);
    },
    240_000,
  );
});
