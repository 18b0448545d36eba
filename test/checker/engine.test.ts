// The checker's machinery on small hand-made cases: deadlock and lock-order detection, schedule
// strings, the thread runner's nested steps, and that bounded search finds what random search
// finds on a case where sleep sets would hide it.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pmdWorld } from '../../src/check/cases/common.ts';
import { R1_EARLY_ANON_VMA_UNLOCK_MIGRATION } from '../../src/check/cases/r01.ts';
import { type CheckCase, explore } from '../../src/check/index.ts';
import { decodeSchedule, encodeSchedule } from '../../src/check/schedule.ts';
import { ThreadRun } from '../../src/check/thread.ts';
import { L_MMAP_READ, L_PMD_LOCK, type Step, lock, unlock } from '../../src/mm/step.ts';

function toy(id: string, threads: Array<() => Step<unknown>>): CheckCase {
  return {
    id,
    title: id,
    description: id,
    setup: () => pmdWorld({ shared: false, written: [0] }),
    threads: threads.map((run, i) => ({ name: `T${i}`, run: () => run() })),
    expect: 'verified',
    rules: [],
  };
}

describe('checker engine', () => {
  it('finds an ABBA deadlock between two PMD locks', () => {
    const ab = function* (a: number, b: number): Step<void> {
      yield lock(L_PMD_LOCK, a);
      yield lock(L_PMD_LOCK, b);
      yield unlock(L_PMD_LOCK, b);
      yield unlock(L_PMD_LOCK, a);
    };
    const r = explore(toy('abba', [() => ab(1, 2), () => ab(2, 1)]));
    expect(r.counterexample?.property).toBe('deadlock');
    expect(r.counterexample?.message).toMatch(/T0 waits at acquire pmd_lock#2/);
    // In one order only: each thread alone is fine.
    expect(explore(toy('ab', [() => ab(1, 2), () => ab(1, 2)])).ok).toBe(true);
  });

  it('reports a lock taken against the documented order', () => {
    const bad = function* (): Step<void> {
      yield lock(L_PMD_LOCK, 1);
      yield lock(L_MMAP_READ, 1);
      yield unlock(L_MMAP_READ, 1);
      yield unlock(L_PMD_LOCK, 1);
    };
    const r = explore(toy('order', [bad]));
    expect(r.counterexample?.property).toBe('lock-order');
    expect(r.counterexample?.message).toMatch(/rank-1 lock while holding a rank-6/);
  });

  it('schedule strings round-trip and reject bad input', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 200 }), (s) => {
        expect(decodeSchedule(encodeSchedule(s), 4)).toEqual(s);
      }),
    );
    expect(decodeSchedule('0x2.5x1', 2)).toMatch(/thread 5 does not exist/);
    expect(decodeSchedule('zz', 2)).toMatch(/expected THREADxSTEPS/);
  });

  it('runs nested steps one event at a time and passes results up', () => {
    const inner = function* (): Step<number> {
      yield lock(L_PMD_LOCK, 3);
      yield unlock(L_PMD_LOCK, 3);
      return 42;
    };
    const outer = function* (): Step<number> {
      const v = (yield inner()) as number;
      yield lock(L_PMD_LOCK, v);
      return v + 1;
    };
    const t = new ThreadRun(0, outer());
    const seen: number[] = [];
    t.advance();
    while (!t.done) {
      seen.push(t.pending!);
      t.advance();
    }
    expect(seen).toEqual([lock(L_PMD_LOCK, 3), unlock(L_PMD_LOCK, 3), lock(L_PMD_LOCK, 42)]);
    expect(t.result).toBe(43);
  });

  it('bounded search finds the leftover migration entry with the bounded sleep sets and without reduction; plain sleep sets miss it', () => {
    const c = R1_EARLY_ANON_VMA_UNLOCK_MIGRATION;
    const bounded = explore(c);
    expect(bounded.counterexample?.property).toBe('quiescence');
    expect(bounded.counterexample?.preemptions).toBe(2);
    expect(bounded.sleepPruned).toBeGreaterThan(0);
    expect(explore(c, { reduction: 'none' }).counterexample?.preemptions).toBe(2);
    const pruned = explore(c, { sleepSets: true });
    expect(pruned.sleepPruned).toBeGreaterThan(0);
    expect(pruned.ok).toBe(true);
    expect(explore(c, { mode: 'random', iterations: 5000, seed: 3 }).ok).toBe(false);
  });
});
