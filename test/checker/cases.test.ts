// Every required checker case behaves as stated: the broken variants give a counterexample for
// one of their properties, the fixed ones are verified within their bounds (R1, pte-level, R11)
// and reach every race window they state (their `sometimes`), so no verification is vacuous.
import { describe, expect, it } from 'vitest';
import { CASES } from '../../src/check/cases/index.ts';
import { explore } from '../../src/check/index.ts';

describe.each(CASES.map((c) => [c.id, c] as const))('%s', (_id, c) => {
  it(
    c.expect === 'verified'
      ? 'is verified within bounds, reaching its race windows'
      : `violates ${c.expect.join(' or ')}`,
    { timeout: 240_000 },
    () => {
      const r = explore(c);
      if (c.expect === 'verified') {
        expect(r.counterexample?.message).toBeUndefined();
        expect(r.ok).toBe(true);
        expect(r.incomplete).toBe(false);
        expect(r.executions).toBeGreaterThan(1);
        // At least one race window stated, and every one reached.
        expect(c.own?.filter((p) => p.kind === 'sometimes').length).toBeGreaterThan(0);
        expect(r.sometimes.filter((s) => !s.reached).map((s) => s.name)).toEqual([]);
        expect(r.verdict).toBe('verified');
      } else {
        expect(r.ok).toBe(false);
        expect(c.expect).toContain(r.counterexample!.property);
        // The trace replays to the same violation, and its last step is where it was seen.
        const again = explore(c, { replay: r.counterexample!.schedule });
        expect(again.counterexample?.property).toBe(r.counterexample!.property);
        expect(r.counterexample!.steps.length).toBe(r.counterexample!.schedule.length);
      }
    },
  );
});
